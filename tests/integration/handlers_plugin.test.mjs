// In-process handlers: a namespace's `plugin = FILE.so` (shared/handlers/sioh.h,
// scripts/examples/echo_plugin.c) runs inside the process that received the
// event (sio-front, and sio-fcgi behind lighttpd); what it passes on reaches
// the namespace's other handlers; a plugin that cannot be loaded stops the
// front at start with a clear message.
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  BIN, assert, test, before, after, startStack, connect, connected, record, eventually, run,
  startStated, startProcess, freePort, eioSession,
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

// sio-front delivers what its own loop turn committed (here the plugin's
// acks) in that same turn: the hub does not send a lone publisher its own
// news back, and the front's eventfd is not written for it.  Its WebSocket
// and polling clients get their answers that way; another front serving the
// same session's held poll is woken by the hub as before.
test("two fronts on one store: a front's own commits reach its WebSocket and held polls, and the other front's held poll", async () => {
  const stated = await startStated({ config: A.config });
  const fronts = [];
  try {
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const proc = await startProcess(path.join(BIN, "sio-front"),
        ["--port", String(port), "--state", stated.stateDir, "--config", A.config],
        { ready: /listening on http/, name: `sio-front-${i}:${port}` });
      fronts.push({ proc, url: `http://127.0.0.1:${port}` });
    }
    const [f1, f2] = fronts;
    const ws = await connected(connect(f1.url, "/", { transports: ["websocket"] }));
    const poll = await connected(connect(f1.url, "/", { transports: ["polling"] }));
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(await ask(ws, "echo", i), [i]);
      assert.deepEqual(await ask(poll, "echo", "p", i), ["p", i]);
    }
    const both = await Promise.all([0, 1, 2, 3].map((i) => ask(i % 2 ? poll : ws, "echo", { i })));
    assert.deepEqual(both, [0, 1, 2, 3].map((i) => [{ i }]));
    // One Engine.IO session over both fronts: its GET held by front 2, its
    // event posted to front 1 (the plugin answers there)
    const e = await eioSession(f2.url);
    assert.equal((await e.post("40")).status, 200);
    // the process handler greets each connection with "auth" (scripts/examples/
    // echo.c), through stated, at a time of its own: take it before the loop
    const first = (await e.get()).body;
    assert.match(first, /^40\{"sid":/);
    if (!first.includes('\x1e42["auth"')) assert.match((await e.get()).body, /^42\["auth",/);
    for (let i = 0; i < 5; i++) {
      const held = e.get();
      const via1 = e.url.replace(f2.url, f1.url);
      const r = await fetch(via1, { method: "POST", body: `42${i}["echo","x${i}"]`, headers: { "content-type": "text/plain;charset=UTF-8" } });
      assert.equal(r.status, 200, await r.text());
      const got = await held;
      assert.equal(got.status, 200);
      assert.equal(got.body, `43${i}["x${i}"]`);
    }
    ws.disconnect();
    poll.disconnect();
  } finally {
    for (const f of fronts) await f.proc.stop();
    await stated.stop();
  }
}, { timeout: 40000 });

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
