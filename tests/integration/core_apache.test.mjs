// Core scenarios behind Apache (mod_fcgid, one request per sio-fcgi process).
// A longer ping_timeout than lighttpd's run: see defineCore.
import { defineCore } from "./core.mjs";
defineCore("apache", { pingTimeout: 5000 });
