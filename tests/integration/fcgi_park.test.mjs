// One sio-fcgi process behind lighttpd, with the shipped defaults (no thread
// count given), holds far more polls than it has threads: held GETs wait in
// one event loop, so its thread count does not grow with them, every one is
// answered by one emit, and a held GET whose client goes away is dropped
// (its connection closed, its session closed as Node does).
import net from "node:net";
import { readFileSync, readdirSync } from "node:fs";
import { assert, test, before, after, startStack, eioSession, eventually, writeConfig } from "./lib.mjs";

const N = 2000;     // well above the old default of 256 threads
const ABORTED = 200;
let stack, pid;

const status = () => readFileSync(`/proc/${pid}/status`, "utf8");
const threads = () => Number(status().match(/^Threads:\s+(\d+)/m)[1]);
const rssKb = () => Number(status().match(/^VmRSS:\s+(\d+)/m)[1]);
const fds = () => readdirSync(`/proc/${pid}/fd`).length;

// n sessions (below), and then sio-fcgi back to fdsIdle descriptors, its
// count before them: the connections of their answered requests are closed
// just after the answer, so right after it a few may still be open, and
// would be taken for held polls later.
async function quietSessions(n, fdsIdle) {
  const all = await sessions(n);
  await eventually(() => assert.ok(fds() <= fdsIdle, `${fds() - fdsIdle} connections still open after the handshakes`), 30000, 50);
  return all;
}

// n Socket.IO sessions on "/" (handshake, CONNECT, its answer), 100 at a time.
async function sessions(n) {
  const out = [];
  for (let i = 0; i < n; i += 100) {
    out.push(...await Promise.all(Array.from({ length: Math.min(100, n - i) }, async () => {
      const e = await eioSession(stack.url);
      const p = await e.post("40");
      assert.equal(p.status, 200, p.body);
      const r = await e.get();
      assert.match(r.body, /^40\{"sid":"/);
      return e;
    })));
  }
  return out;
}

// A GET on its own TCP connection (raw HTTP/1.1, no client library): {sock,
// done} where done resolves to {status, body} once the whole answer is in.
function heldGet(e) {
  const u = new URL(e.url);
  const sock = net.connect(Number(u.port), u.hostname);
  sock.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`);
  let data = "";
  sock.setEncoding("utf8");
  sock.on("data", (d) => { data += d; });
  const done = new Promise((resolve) => {
    sock.on("close", () => {
      const [head, ...rest] = data.split("\r\n\r\n");
      resolve({ status: Number((head.match(/^HTTP\/1\.\d (\d+)/) || [])[1]), body: rest.join("\r\n\r\n") });
    });
    sock.on("error", () => {});
  });
  return { sock, done };
}

before(async () => {
  // A long heartbeat: no ping answers a held GET during the test, and no
  // session times out while the others are opened (slow under ASan).
  // Everything else, the thread count included, is the shipped default.
  stack = await startStack("lighttpd", { config: writeConfig("ping_interval = 200000\nping_timeout = 100000\n") });
  pid = Number(stack.proc.output.match(/sio-fcgi pid (\d+)/)[1]);
});
after(async () => { if (stack) await stack.stop(); });

test(`${N} held polls through lighttpd and one sio-fcgi with the shipped defaults: threads stay few, one emit answers all`, async () => {
  const fdsIdle = fds();
  const all = await quietSessions(N, fdsIdle);
  const threadsIdle = threads(), rssIdle = rssKb();
  const held = all.map(heldGet);
  const answered = [];
  held.forEach((h) => h.done.then((g) => answered.push(g)));
  // every held GET is parked with its web-server connection open in sio-fcgi
  await eventually(() => assert.ok(fds() >= fdsIdle + N,
    `${fds() - fdsIdle} of ${N} held; ${answered.length} answered early: ${JSON.stringify(answered.slice(0, 2))}`), 120000, 200);
  const threadsHeld = threads(), rssHeld = rssKb();
  console.log(`  sio-fcgi: ${threadsIdle} threads idle, ${threadsHeld} with ${N} held polls; ` +
    `RSS ${rssIdle} -> ${rssHeld} KB (${((rssHeld - rssIdle) * 1024 / N).toFixed(0)} bytes per held poll)`);
  assert.ok(threadsHeld <= threadsIdle + 4 && threadsHeld < 64, `${threadsHeld} threads with ${N} held polls`);
  const r = await stack.sioctl("emit", "fanout", "1");
  assert.equal(r.code, 0, r.stderr);
  const got = await Promise.all(held.map((h) => h.done));
  // a GET may also carry a ping; the event must be in every one
  const missing = got.filter((g) => g.status !== 200 || !g.body.split("\x1e").includes('42["fanout",1]'));
  assert.equal(missing.length, 0, `missing in ${missing.length}: ${JSON.stringify(missing.slice(0, 3))}`);
  await eventually(() => assert.ok(fds() <= fdsIdle, `${fds() - fdsIdle} connections left open`), 30000, 100);
}, { timeout: 240000 });

test(`${ABORTED} held polls whose clients go away are dropped: connections closed, sessions closed`, async () => {
  const fdsIdle = fds();
  const all = await quietSessions(ABORTED, fdsIdle);
  const held = all.map(heldGet);
  await eventually(() => assert.ok(fds() >= fdsIdle + ABORTED, `${fds() - fdsIdle} of ${ABORTED} held`), 60000, 100);
  // a reset, as when a client process dies with its request unanswered
  // (lighttpd takes a bare FIN for a half-close and waits on)
  for (const h of held) h.sock.resetAndDestroy();
  // lighttpd closes its FastCGI connection for each: nothing is left parked
  await eventually(() => assert.ok(fds() <= fdsIdle, `${fds() - fdsIdle} parked connections left`), 30000, 100);
  // and each session was closed ("transport error"), as Node does
  const again = await Promise.all(all.slice(0, 20).map((e) => e.get()));
  for (const g of again) {
    assert.equal(g.status, 400, g.body);
    assert.equal(g.body, '{"code":1,"message":"Session ID unknown"}');
  }
}, { timeout: 120000 });
