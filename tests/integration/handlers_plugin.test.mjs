// In-process handlers: a namespace's `plugin = FILE.so` (shared/handlers/sioh.h,
// scripts/examples/echo_plugin.c) runs inside the process that received the
// event (sio-front, and sio-fcgi behind lighttpd); what it passes on reaches
// the namespace's other handlers; a plugin that cannot be loaded stops the
// front at start with a clear message.
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  BIN, assert, test, before, after, startStack, connect, connected, record, eventually, run,
} from "./lib.mjs";
import { app } from "./handlers_util.mjs";

const A = app(`
[namespace /]
plugin = sio-example-echo-plugin.so
process = sio-example-echo
`);

const stacks = {};
before(async () => {
  stacks.embedded = await startStack("embedded", { config: A.config });
  stacks.lighttpd = await startStack("lighttpd", { config: A.config, env: { SIO_WS: "0" } });
});
after(async () => { for (const s of Object.values(stacks)) await s.stop(); });

const ask = (s, ev, ...args) => new Promise((resolve) => s.emit(ev, ...args, (...a) => resolve(a)));
const comm = (pid) => readFileSync(`/proc/${pid}/comm`, "utf8").trim();

test("websocket: the plugin answers inside sio-front, and passes the rest on to the process handler", async () => {
  const st = stacks.embedded;
  const s = await connected(connect(st.url, "/", { transports: ["websocket"] }));
  assert.deepEqual(await ask(s, "echo", { a: [1, "x"] }, 2.5, Buffer.from([7])), [{ a: [1, "x"] }, 2.5, Buffer.from([7])]);
  // strings are binary-safe through the plugin API too
  assert.deepEqual(await ask(s, "echo", "a\u0000b", { "\u0000": "\ud800" }), ["a\u0000b", { "\u0000": "\ud800" }]);
  const [who, pid] = await ask(s, "plugin:where");
  assert.equal(who, "plugin");
  const front = Number(st.proc.output.match(/sio-front pid (\d+)/)[1]);
  assert.equal(pid, front, "the plugin ran in another process than the front");
  // not handled by the plugin: the process handler (echo.c) answers it
  const ev = record(s);
  s.emit("message", "hello", 3);
  await eventually(() => assert.deepEqual(ev.filter((e) => e[0] === "message-back"), [["message-back", "hello", 3]]));
});

test("polling behind lighttpd: sio-fcgi loads the plugin and runs it too", async () => {
  const s = await connected(connect(stacks.lighttpd.url, "/", { transports: ["polling"] }));
  assert.deepEqual(await ask(s, "echo", "over", "polling"), ["over", "polling"]);
  const [who, pid] = await ask(s, "plugin:where");
  assert.equal(who, "plugin");
  assert.equal(comm(pid), "sio-fcgi");
});

test("a plugin that cannot be loaded stops sio-front at start, naming it", async () => {
  const bad = app(`
[namespace /]
plugin = no-such-plugin.so
`);
  const r = await run(path.join(BIN, "sio-front"), ["--port", "1", "--state", stacks.embedded.stateDir,
    "--config", bad.config], { timeout: 10000 });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /namespace \/: cannot load plugin .*no-such-plugin\.so/);
});
