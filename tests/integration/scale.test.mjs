// One gateway process holds hundreds of waiting long-polls, and one
// `sioctl emit` wakes every one of them (the notify channel, not timers).
import { assert, test, before, after, startStack, eioSession } from "./lib.mjs";

const N = 400;
let stack;
before(async () => {
  // default heartbeat (25 s): no ping answers a held GET during the test
  stack = await startStack("lighttpd"); // the shipped defaults: held polls need no thread
});
after(async () => { if (stack) await stack.stop(); });

test(`${N} held polls in one gateway process all receive one broadcast`, async () => {
  const sessions = [];
  for (let i = 0; i < N; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, N - i) }, async () => {
      const e = await eioSession(stack.url);
      await e.post("40");
      const r = await e.get();
      assert.match(r.body, /^40\{"sid":"/);
      return e;
    }));
    sessions.push(...batch);
  }
  // hold a GET on every session, then emit once
  const held = sessions.map((e) => e.get());
  await new Promise((r) => setTimeout(r, 300));
  const r = await stack.sioctl("emit", "fanout", "1");
  assert.equal(r.code, 0, r.stderr);
  const got = await Promise.all(held);
  // a GET may also carry a ping; the event must be in every one
  const missing = got.filter((g) => g.status !== 200 || !g.body.split("\x1e").includes('42["fanout",1]'));
  assert.equal(missing.length, 0, `missing in ${missing.length}: ${JSON.stringify(missing.slice(0, 3))}`);
}, { timeout: 60000 });
