// Helpers for the handler tests (handlers_*.test.mjs): an "app" is a temp
// directory holding a config and the handler scripts it names (commands run
// in the config's directory), and a few waits on a stack's log.
import { writeFileSync, readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { REPO, tmpDir, eventually, assert, sleep } from "./lib.mjs";

export const JGET = path.join(REPO, "scripts/examples/jget");
const require = createRequire(path.join(REPO, "tests", "package.json"));
export const WebSocket = require("ws");

// app(conf, files): writes files (name -> text, executable) and sio.conf into
// a fresh directory; "@JGET@" and "@DIR@" in any text are replaced by the
// jget path and the directory.  Returns {dir, config, file(name)}.
export function app(conf, files = {}) {
  const dir = tmpDir("sio-app-");
  const fill = (t) => t.replaceAll("@JGET@", JGET).replaceAll("@DIR@", dir);
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(path.join(dir, name), fill(text), { mode: 0o755 });
  }
  const config = path.join(dir, "sio.conf");
  writeFileSync(config, fill(conf));
  return {
    dir, config,
    file: (name) => path.join(dir, name),
    read: (name) => (existsSync(path.join(dir, name)) ? readFileSync(path.join(dir, name), "utf8") : ""),
  };
}

// Waits until the stack's output matches re; returns the match.
export async function logMatch(stack, re, timeout = 8000) {
  let m;
  await eventually(() => {
    m = stack.proc.output.match(re);
    assert.ok(m, `log never matched ${re}`);
  }, timeout);
  return m;
}

// Resolves with the args of the next `event`, or rejects after timeout ms.
export function next(socket, event, timeout = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no '${event}' within ${timeout} ms`)), timeout);
    socket.once(event, (...args) => { clearTimeout(t); resolve(args); });
  });
}

// Resolves with the connect_error of a socket that must be refused.
export function refused(socket, timeout = 8000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no connect_error within ${timeout} ms`)), timeout);
    socket.once("connect", () => { clearTimeout(t); reject(new Error("connected, but should be refused")); });
    socket.once("connect_error", (e) => { clearTimeout(t); resolve(e); });
  });
}

export { sleep };
