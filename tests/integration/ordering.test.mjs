// Request-ordering rules of long-polling behind lighttpd and Apache.
import { defineOrdering } from "./core.mjs";
defineOrdering("lighttpd");
