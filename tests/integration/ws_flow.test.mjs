// Flow control: a producer broadcasting as fast as it can (the bench
// protocol's bench:start with rate 0, in the C example handler) turns into
// no loss for clients that keep up: the front pauses reading the log while
// most queues are full, and the dispatcher waits while the front is behind.
import path from "node:path";
import { REPO, assert, test, before, after, startStack, connect, connected, eventually } from "./lib.mjs";

let stack;
before(async () => {
  stack = await startStack("embedded", { config: path.join(REPO, "scripts/examples/echo.conf") });
});
after(async () => { if (stack) await stack.stop(); });

test("a flood to 3 websocket clients arrives complete and in order at every client", async () => {
  const N = 3; // few enough that one Node process serves them all evenly
  const socks = await Promise.all(
    Array.from({ length: N }, () => connected(connect(stack.url, "/", { transports: ["websocket"] }))));
  const got = socks.map(() => []);
  socks.forEach((s, i) => s.on("bench:msg", (m) => got[i].push(m.seq)));
  const done = new Promise((resolve) => socks[0].once("bench:done", resolve));
  socks[0].emit("bench:start", { size: 64, batch: 64, rate: 0, ms: 1500 });
  const { sent } = await done;
  assert.ok(sent > 1000, `only ${sent} broadcasts`);
  await eventually(() => { for (const g of got) assert.equal(g.length, sent); }, 20000);
  for (const g of got) {
    for (let k = 1; k < g.length; k++) assert.ok(g[k] > g[k - 1], "out of order");
  }
  assert.doesNotMatch(stack.proc.output, /dropped: fell behind/);
  assert.ok(socks.every((s) => s.connected));
}, { timeout: 40000 });

test("a flood with a slow reader among fast ones: the front pauses for it, and every client gets every message in order", async () => {
  // The slow reader stops reading for 250 ms of every 300 ms: its kernel
  // buffers fill, then its queue in the front, past the flow threshold
  // (front_conn.h) again and again; one of three clients is over a quarter,
  // so the front stops reading the log until it drains (nothing is skipped
  // or dropped, and it keeps taking bytes, so it is never judged stalled).
  const socks = await Promise.all(
    Array.from({ length: 3 }, () => connected(connect(stack.url, "/", { transports: ["websocket"] }))));
  const got = socks.map(() => []);
  socks.forEach((s, i) => s.on("bench:msg", (m) => got[i].push(m.seq)));
  const raw = socks[2].io.engine.transport.ws._socket;
  let reading = true;
  const slow = setInterval(() => {
    raw.pause();
    setTimeout(() => { if (reading) raw.resume(); }, 250);
  }, 300);
  try {
    const done = new Promise((resolve) => socks[0].once("bench:done", resolve));
    socks[0].emit("bench:start", { size: 512, batch: 64, rate: 0, ms: 2000 });
    const { sent } = await done;
    assert.ok(sent > 1000, `only ${sent} broadcasts`);
    await eventually(() => { for (const g of got) assert.equal(g.length, sent); }, 60000, 100);
  } finally {
    reading = false;
    clearInterval(slow);
    raw.resume();
  }
  for (const g of got) {
    for (let k = 1; k < g.length; k++) assert.ok(g[k] > g[k - 1], "out of order");
  }
  assert.doesNotMatch(stack.proc.output, /dropped: fell behind/);
  assert.ok(socks.every((s) => s.connected));
  for (const s of socks) s.disconnect();
}, { timeout: 90000 });
