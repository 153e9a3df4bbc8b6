// Core scenarios behind lighttpd (mod_fastcgi, threaded sio-fcgi).
import { defineCore } from "./core.mjs";
defineCore("lighttpd");
