// Strings are binary-safe end to end: U+0000, unpaired surrogates and any
// Unicode in event names, arguments and object keys survive a round trip
// through the codecs, the store, a process handler (sio-example-echo, the C
// handler API), sioctl's arguments and `listen` output, over WebSocket and
// long-polling, and in bare Engine.IO messages.
import path from "node:path";
import {
  BIN, assert, test, before, after, startStack, connect, connected, closeClients, eventually, http, startListen,
} from "./lib.mjs";
import { app, next } from "./handlers_util.mjs";

let stack;
before(async () => {
  const a = app(`engine_path = /engine.io/
[namespace /]
process = sio-example-echo
[engine]
process = sio-example-echo
`);
  stack = await startStack("embedded", { config: a.config });
});
after(async () => {
  closeClients();
  await stack?.stop();
});

// Everything JSON.parse and JSON.stringify carry, and cJSON alone could not.
const ARGS = ["a\u0000b", "\u0000", "\ud800", "x\udfffy", "\ud83d\ude00", "é€",
  { "k\u0000": "v\u0000", "\udbff": ["\u0000\u0000", 1.5] }];

for (const transports of [["websocket"], ["polling"]]) {
  test(`${transports[0]}: NUL and lone surrogates in event names and arguments come back intact`, async () => {
    const s = await connected(connect(stack.url, "/", { transports }));
    const back = next(s, "message-back");
    s.emit("message", ...ARGS);
    assert.deepEqual(await back, ARGS);
    const acked = await s.timeout(5000).emitWithAck("echo", "n\u0000", "\ud800");
    assert.deepEqual(acked, "n\u0000"); // the first argument of the ack, as Socket.IO gives it
    // sioctl's JSON arguments
    const got = [];
    s.onAny((ev, ...a) => got.push([ev, ...a]));
    const r = await stack.sioctl("emit", "from-sioctl", JSON.stringify("a\u0000b"), JSON.stringify({ "\u0000": "\udc00" }));
    assert.equal(r.code, 0, r.stderr);
    await eventually(() => assert.deepEqual(got, [["from-sioctl", "a\u0000b", { "\u0000": "\udc00" }]]));
    s.disconnect();
  });
}

test("sioctl listen prints them as JSON escapes", async () => {
  const listen = await startListen(stack.stateDir);
  try {
    const s = await connected(connect(stack.url, "/"));
    s.emit("message", ...ARGS);
    s.emit("e\u0000v\ud800", 1);
    await eventually(() => {
      const recs = listen.output.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      const ev = recs.filter((r) => r.type === "event");
      assert.equal(ev.length, 2, listen.output);
      assert.deepEqual(ev[0].args, ARGS);
      assert.equal(ev[1].event, "e\u0000v\ud800");
    });
    assert.match(listen.output, /"a\\u0000b"/);
    assert.match(listen.output, /"\\ud800"/);
    s.disconnect();
  } finally {
    await listen.stop();
  }
});

test("a bare Engine.IO text message with NUL is echoed byte for byte", async () => {
  const base = `${stack.url}/engine.io/?EIO=4&transport=polling`;
  const h = await http("GET", base);
  const sid = JSON.parse(h.body.slice(1)).sid;
  const u = `${base}&sid=${sid}`;
  const text = "x\u0000y\ud83d\ude00";
  const p = await http("POST", u, "4" + text, { "content-type": "text/plain;charset=UTF-8" });
  assert.equal(p.status, 200);
  await eventually(async () => {
    const g = await http("GET", u);
    assert.equal(g.body, "4" + text);
  }, 5000, 10);
});
