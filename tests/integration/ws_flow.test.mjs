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
