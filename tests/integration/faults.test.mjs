// The fault campaign of connection state recovery: under a steady numbered
// stream (`sioctl emit` every 10 ms), kill -9 of stated, of sio-front, of
// sio-fcgi behind lighttpd, and a restart of the whole stack.  Every client
// whose connection broke gets its socket back (recovered, same id) and every
// client ends with exactly the accepted emits: none lost, duplicated or
// reordered.  Emits refused while stated is down (exit 3) are not counted.
import { assert, test, after, writeConfig, eventually } from "./lib.mjs";
import {
  handStack, streamClients, allConnected, closeAll, emitter, checkStream, checkRecovered, drained,
} from "./stream.mjs";

// Every break here is a process dying, which the clients see at once (a
// closed connection, a 502/503 from lighttpd): the heartbeat only has to
// leave well-behaved clients alone on a loaded box.
const PING_INTERVAL = 5000, PING_TIMEOUT = 10000;
const CONFIG = `connection_state_recovery = 1
ping_interval = ${PING_INTERVAL}
ping_timeout = ${PING_TIMEOUT}
[namespace /]
`;
const RECONNECT_DELAY = 100; // streamClients: back-off from 100 ms up to 400 ms
// How long a client may take to come back once the process it needs is up
// again: a whole heartbeat (if it missed the break), the back-off, and room
// for a loaded box.
const COMEBACK_MS = PING_INTERVAL + PING_TIMEOUT + 8 * RECONNECT_DELAY * 4 + 10000;
// How long the emits after a fault may take to reach everyone.
const DRAIN_MS = COMEBACK_MS;
const EMIT_MS = 10;
// Emits wait their turn one at a time: a deadline for n of them assumes
// nothing about the box but that each takes under half a second.
const emitsWithin = (n) => 10000 + n * 500;

const stacks = [];
let clients = [];
async function stack(opts) {
  const s = await handStack(writeConfig(CONFIG), opts);
  stacks.push(s);
  return s;
}
after(async () => {
  closeAll(clients);
  for (const s of stacks) await s.stop();
});

// Waits until each client of `list` has connected `want(c)` times and is
// connected.
async function back(list, want) {
  await eventually(() => {
    const out = list.filter((c) => !c.connected || c.connects.length < want(c));
    assert.equal(out.length, 0, `${out.length} client(s) not back: ` +
      out.slice(0, 3).map((c) => `${c.transportName} ${JSON.stringify(c.connects)}`).join(", "));
  }, COMEBACK_MS, 50);
}

function refusedWith3(em) {
  const r = em.refused();
  assert.ok(r.every((x) => x.code === 3), `emits refused otherwise than with exit 3: ${JSON.stringify(r.slice(0, 3))}`);
  return r.length;
}

// ---- the scenario ----------------------------------------------------------

const SCENARIO_CLIENTS = 100, SCENARIO_EMITS = 366;

test(`${SCENARIO_CLIENTS} clients (half WebSocket, half polling), an emit every ${EMIT_MS} ms, kill -9 of stated ` +
  `(back after 0.5 s) then of sio-front (0.3 s): 0 of ${SCENARIO_CLIENTS * SCENARIO_EMITS} deliveries lost, ` +
  "duplicated or reordered", async () => {
  const st = await stack();
  const list = streamClients(st.url, SCENARIO_CLIENTS, { reconnectionDelay: RECONNECT_DELAY });
  clients.push(...list);
  await allConnected(list, 30000);
  const em = emitter(st, EMIT_MS, { count: SCENARIO_EMITS });
  // stated goes at a quarter of the stream, sio-front at half of it
  await em.reached(SCENARIO_EMITS / 4, emitsWithin(SCENARIO_EMITS / 4));
  await st.restart("stated", "SIGKILL", 500);
  const refusedStated = em.refused().length;
  await em.reached(SCENARIO_EMITS / 2, emitsWithin(SCENARIO_EMITS / 4));
  await st.restart("front", "SIGKILL", 300);
  await back(list, () => 2);
  const backAt = em.accepted().length;
  await em.reached(SCENARIO_EMITS, emitsWithin(SCENARIO_EMITS - backAt));
  await em.done;
  const accepted = em.accepted();
  assert.equal(accepted.length, SCENARIO_EMITS);
  await drained(list, accepted, DRAIN_MS);
  const r = checkStream(list, accepted);
  checkRecovered(list, 1);
  const refused = refusedWith3(em);
  assert.ok(refusedStated > 0, "no emit was refused while stated was down");
  console.log(`     ${r.text}; ${refused} emits refused (exit 3) while stated was down; ` +
    `${SCENARIO_EMITS - backAt} emits after every client was back`);
  closeAll(list);
}, { timeout: 100000 });

// ---- 200 clients, each fault in turn ---------------------------------------------
// 100 on sio-front (50 WebSocket, 50 polling) and 100 polling through
// lighttpd and `sio-fcgi --socket`, one stream.  Each test below emits
// LEAD numbers, breaks something, waits for the clients it broke to come
// back, emits LIVE more, and checks that stretch of the stream.

const LEAD = 30, LIVE = 50;
let big = null, bigList = [], nextEmit = 1;

async function bigStack() {
  if (big) return big;
  big = await stack({ fcgi: true, fcgiThreads: 256 });
  const front = streamClients(big.url, 100, { reconnectionDelay: RECONNECT_DELAY });
  const gw = streamClients(big.pollUrl, 100, { transports: ["polling"], reconnectionDelay: RECONNECT_DELAY,
    label: "polling (lighttpd)" });
  for (const c of front) c.on_ = "front";
  for (const c of gw) c.on_ = "fcgi";
  bigList = [...front, ...gw];
  for (const c of bigList) c.breaks = 0;
  clients.push(...bigList);
  await allConnected(bigList, 30000);
  return big;
}

// Runs one fault: `breaks(c)` says whether it breaks client c's connection.
async function faultUnderStream(fault, breaks) {
  const st = await bigStack();
  for (const c of bigList) {
    c.nums = [];
    c.offsets = [];
    if (breaks(c)) c.breaks++;
  }
  const em = emitter(st, EMIT_MS, { first: nextEmit });
  await em.reached(LEAD, emitsWithin(LEAD));
  await fault(st);
  await back(bigList, (c) => c.breaks + 1);
  const n = em.accepted().length;
  await em.reached(n + LIVE, emitsWithin(LIVE));
  await em.stop();
  const accepted = em.accepted();
  nextEmit = em.next();
  await drained(bigList, accepted, DRAIN_MS);
  const r = checkStream(bigList, accepted);
  checkRecovered(bigList, (c) => c.breaks);
  const refused = refusedWith3(em);
  console.log(`     ${r.text}; ${refused} emits refused (exit 3)`);
  return { em, refused };
}

test("200 clients, kill -9 of stated (back after 0.5 s): nobody disconnects, emits are refused (exit 3) " +
  "meanwhile, every accepted one arrives once, in order", async () => {
  const { refused } = await faultUnderStream((st) => st.restart("stated", "SIGKILL", 500), () => false);
  assert.ok(refused > 0, "no emit was refused while stated was down");
}, { timeout: 60000 });

test("200 clients, kill -9 of sio-front (back after 0.3 s): its 100 clients recover, nothing lost", async () => {
  await faultUnderStream((st) => st.restart("front", "SIGKILL", 300), (c) => c.on_ === "front");
}, { timeout: 60000 });

test("200 clients, kill -9 of sio-fcgi behind lighttpd (back after 0.3 s): its 100 polling clients recover, " +
  "nothing lost", async () => {
  await faultUnderStream((st) => st.restart("fcgi", "SIGKILL", 300), (c) => c.on_ === "fcgi");
}, { timeout: 60000 });

test("200 clients, a restart of the whole stack (SIGTERM, started again): all recover, nothing lost", async () => {
  await faultUnderStream((st) => st.restartAll(), () => true);
  closeAll(bigList);
}, { timeout: 60000 });
