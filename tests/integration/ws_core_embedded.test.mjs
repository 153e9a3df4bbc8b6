// The core scenarios (long-polling + sioctl) against the embedded front
// (scripts/run-embedded: stated + sio-front, no web server).
import { defineCore } from "./core.mjs";
defineCore("embedded");
