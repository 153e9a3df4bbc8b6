// Core scenarios behind Apache (mod_fcgid, one request per sio-fcgi process).
import { defineCore } from "./core.mjs";
defineCore("apache");
