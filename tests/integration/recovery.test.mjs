// Connection state recovery with the real socket.io-client: a client whose
// connection broke gets back its id, rooms and every event it missed, in
// order, once (socket.recovered), also when sio-front, stated or the whole
// stack was killed or restarted; not after max_disconnection_duration, nor
// when the log no longer holds what it missed; volatile and acked emits
// are not replayed.  And a packet emitted to a room before a leave still
// reaches the socket when it is read after the leave.
import path from "node:path";
import {
  BIN, assert, test, after, writeConfig, connect, connected, once, eventually, sleep, pauseOutsideStoreLocks, startListen,
} from "./lib.mjs";
import { handStack, streamClients, allConnected, closeAll, emitter, checkStream, drained } from "./stream.mjs";

const PING_INTERVAL = 1000, PING_TIMEOUT = 2000;
const BASE = `connection_state_recovery = 1
ping_interval = ${PING_INTERVAL}
ping_timeout = ${PING_TIMEOUT}
`;
// How long a client may take to notice a broken connection and come back:
// a heartbeat, plus the reconnection back-off of streamClients.
const COMEBACK_MS = PING_INTERVAL + PING_TIMEOUT + 5000;

const stacks = [];
async function stack(extra = "") {
  const s = await handStack(writeConfig(BASE + extra + "[namespace /]\n"));
  stacks.push(s);
  return s;
}
let clients = [];
after(async () => {
  closeAll(clients);
  for (const s of stacks) await s.stop();
});

// The three transports a user meets: WebSocket only, polling only, and the
// default (polling, upgraded to WebSocket).
const TRANSPORTS = [["websocket"], ["polling"], ["polling", "websocket"]];
function threeClients(url) {
  const list = TRANSPORTS.flatMap((t) => streamClients(url, 1, { transports: t }));
  clients.push(...list);
  return list;
}

async function breakAndRecover(kill) {
  const st = await stack();
  const list = threeClients(st.url);
  await allConnected(list);
  for (const c of list) assert.equal((await st.sioctl("join", "--to", c.id, "kept")).code, 0);
  const em = emitter(st, 10);
  await eventually(() => assert.ok(em.accepted().length >= 20), 10000);
  await kill(st);
  await eventually(() => {
    for (const c of list) assert.equal(c.connects.length, 2, `${c.transportName}: not back yet`);
  }, COMEBACK_MS, 50);
  await allConnected(list);
  const n = em.accepted().length;
  await eventually(() => assert.ok(em.accepted().length >= n + 20), 10000);
  await em.stop();
  await drained(list, em.accepted(), COMEBACK_MS);
  checkStream(list, em.accepted());
  for (const c of list) {
    assert.deepEqual(c.connects.map((x) => x.recovered), [false, true], c.transportName);
    assert.equal(c.connects[1].id, c.connects[0].id, `${c.transportName}: same id`);
  }
  // the rooms came back too
  const got = list.map((c) => once(c, "in-room", 10000));
  assert.equal((await st.sioctl("emit", "--to", "kept", "in-room")).code, 0);
  await Promise.all(got);
  closeAll(list);
  return { st, em };
}

test("kill -9 of sio-front: every client recovers its id, rooms and the events it missed, once, in order", async () => {
  await breakAndRecover((st) => st.restart("front", "SIGKILL", 300));
}, { timeout: 60000 });

test("a restart of the whole stack (SIGTERM) loses nothing either", async () => {
  await breakAndRecover((st) => st.restartAll());
}, { timeout: 60000 });

test("kill -9 of stated: emits are refused while it is down, every accepted one arrives", async () => {
  const st = await stack();
  const list = threeClients(st.url);
  await allConnected(list);
  const em = emitter(st, 10);
  await eventually(() => assert.ok(em.accepted().length >= 20), 10000);
  await st.stated.stop("SIGKILL");
  await eventually(() => assert.ok(em.refused().length >= 3), 10000);
  await st.startStated();
  const n = em.accepted().length;
  await eventually(() => assert.ok(em.accepted().length >= n + 20), 10000);
  await em.stop();
  assert.ok(em.refused().every((r) => r.code === 3), JSON.stringify(em.refused().slice(0, 3)));
  await drained(list, em.accepted(), COMEBACK_MS);
  checkStream(list, em.accepted());
  closeAll(list);
}, { timeout: 60000 });

// A client whose connection ends (its Engine.IO close) and that comes back
// by itself only when told to (reconnection off).
async function offlineClient(st) {
  const s = connect(st.url, "/", { transports: ["websocket"] });
  clients.push(s);
  s.connects = [];
  s.on("connect", () => s.connects.push({ id: s.id, recovered: s.recovered }));
  s.nums = [];
  s.lastArgs = [];
  s.on("n", (...args) => { s.nums.push(args[0]); s.lastArgs.push(args[args.length - 1]); });
  await connected(s);
  return s;
}
async function goOffline(s) {
  const gone = once(s, "disconnect");
  s.io.engine.close();
  await gone;
}
async function comeBack(s) {
  const back = once(s, "connect");
  s.connect();
  await back;
}

test("volatile and acked emits are not replayed; the offset is the last argument, as Node sends it", async () => {
  const st = await stack();
  const s = await offlineClient(st);
  assert.equal((await st.sioctl("emit", "n", "1")).code, 0);
  await eventually(() => assert.equal(s.nums.length, 1));
  assert.match(s.lastArgs[0], /^\d+$/, "the offset, a string");
  await goOffline(s);
  assert.equal((await st.sioctl("emit", "n", "2")).code, 0);
  assert.equal((await st.sioctl("emit", "--volatile", "n", "3")).code, 0);
  const acked = await st.sioctl("emit", "--ack", "--timeout", "200", "n", "4");
  assert.notEqual(acked.code, 2, acked.stderr);
  assert.equal((await st.sioctl("emit", "n", "5")).code, 0);
  await comeBack(s);
  await eventually(() => assert.deepEqual(s.nums, [1, 2, 5]));
  assert.deepEqual(s.connects.map((c) => c.recovered), [false, true]);
  assert.ok(Number(s.lastArgs[1]) > Number(s.lastArgs[0]) && Number(s.lastArgs[2]) > Number(s.lastArgs[1]),
    `offsets grow: ${s.lastArgs}`);
  // once live again, a volatile emit arrives without an offset
  assert.equal((await st.sioctl("emit", "--volatile", "n", "6")).code, 0);
  await eventually(() => assert.deepEqual(s.nums, [1, 2, 5, 6]));
  assert.equal(s.lastArgs[3], 6);
  s.disconnect();
}, { timeout: 30000 });

test("after max_disconnection_duration the client gets a new socket and the old one leaves its rooms", async () => {
  const WINDOW = 1000;
  const st = await stack(`max_disconnection_duration = ${WINDOW}\n`);
  const s = await offlineClient(st);
  const oldId = s.id;
  assert.equal((await st.sioctl("join", "--to", oldId, "r")).code, 0);
  await goOffline(s);
  // the socket waits, in its rooms, for its client (not among the connected)
  const rooms = async () => JSON.parse((await st.sioctl("rooms", "--json")).stdout);
  assert.deepEqual((await rooms()).find((x) => x.room === "r")?.members, [oldId]);
  assert.deepEqual(JSON.parse((await st.sioctl("sockets", "--json")).stdout), []);
  assert.match((await st.sioctl("status")).stdout, /1 waiting for their client/);
  // ... until the window is over (stated's reaper runs every second)
  await eventually(async () => assert.equal((await rooms()).find((x) => x.room === "r"), undefined),
    WINDOW + 3000, 100);
  await comeBack(s);
  assert.deepEqual(s.connects.map((c) => c.recovered), [false, false]);
  assert.notEqual(s.id, oldId);
  s.disconnect();
}, { timeout: 30000 });

test("all or nothing: when the log was trimmed past its offset the client gets a new socket", async () => {
  const st = await stack("max_log_bytes = 65536\n");
  const s = await offlineClient(st);
  assert.equal((await st.sioctl("emit", "n", "1")).code, 0);
  await eventually(() => assert.equal(s.nums.length, 1));
  const oldId = s.id;
  await goOffline(s);
  // 100 kB more than the log may hold: the record after its offset goes
  const big = JSON.stringify("x".repeat(2000));
  for (let i = 2; i < 60; i++) assert.equal((await st.sioctl("emit", "n", String(i), big)).code, 0);
  const status = async () => JSON.parse((await st.sioctl("status", "--json")).stdout);
  const offset = Number(s.lastArgs[0]);
  await eventually(async () => assert.ok((await status()).log.first > offset + 1, "not trimmed yet"), 5000, 100);
  await comeBack(s);
  assert.deepEqual(s.connects.map((c) => c.recovered), [false, false]);
  assert.notEqual(s.id, oldId);
  assert.deepEqual(s.nums, [1], "no partial replay");
  s.disconnect();
}, { timeout: 30000 });

test("a quiet client recovers even when the log was trimmed past its last event", async () => {
  // What reached a client is known from its pongs (WebSocket, saved every
  // second) and its next GET (polling): two pings after the traffic, with a
  // ping interval above that second, the server knows.
  const INTERVAL = 2500;
  const st = await handStack(writeConfig(`connection_state_recovery = 1
ping_interval = ${INTERVAL}
ping_timeout = 5000
max_log_bytes = 65536
[namespace /]
`));
  stacks.push(st);
  const list = [...streamClients(st.url, 1, { transports: ["websocket"] }),
    ...streamClients(st.url, 1, { transports: ["polling"] })];
  clients.push(...list);
  await allConnected(list);
  assert.equal((await st.sioctl("emit", "n", "1")).code, 0);
  await eventually(() => { for (const c of list) assert.deepEqual(c.nums, [1]); });
  const offset = Number(list[0].offsets[0]);
  // traffic for others: 60 records of 2 kB, more than max_log_bytes
  const big = JSON.stringify("x".repeat(2000));
  for (let i = 0; i < 60; i++) assert.equal((await st.sioctl("emit", "--to", "elsewhere", "other", big)).code, 0);
  const status = async () => JSON.parse((await st.sioctl("status", "--json")).stdout);
  await eventually(async () => assert.ok((await status()).log.first > offset + 1, "not trimmed yet"), 5000, 100);
  await Promise.all(list.map(async (c) => {
    for (let k = 0; k < 2; k++) await once(c.io.engine, "ping", INTERVAL * 3);
  }));
  await st.restart("front", "SIGKILL", 100);
  await eventually(() => {
    for (const c of list) assert.equal(c.connects.length, 2, `${c.transportName}: not back yet`);
  }, COMEBACK_MS, 50);
  for (const c of list) {
    assert.deepEqual(c.connects.map((x) => x.recovered), [false, true], c.transportName);
    assert.equal(c.connects[1].id, c.connects[0].id);
  }
  assert.equal((await st.sioctl("emit", "n", "2")).code, 0);
  await eventually(() => { for (const c of list) assert.deepEqual(c.nums, [1, 2]); });
  closeAll(list);
}, { timeout: 60000 });

test("handlers see the recovered connection: \"recovered\": true", async () => {
  const st = await stack();
  const listen = await startListen(st.stateDir);
  try {
    const s = await offlineClient(st);
    await goOffline(s);
    await comeBack(s);
    await eventually(() => {
      const recs = listen.output.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
        .filter((r) => r.type === "connection");
      assert.equal(recs.length, 2, listen.output);
      assert.equal(recs[0].recovered, undefined);
      assert.equal(recs[1].recovered, true);
      assert.equal(recs[1].socket, recs[0].socket);
    });
    s.disconnect();
  } finally {
    await listen.stop();
  }
}, { timeout: 30000 });

test("a packet emitted to a room before a leave reaches the socket even when read after it", async () => {
  const st = await stack();
  const s = await offlineClient(st);
  assert.equal((await st.sioctl("join", "--to", s.id, "L")).code, 0);
  // the front reads nothing while stopped: both writes happen before it reads
  await pauseOutsideStoreLocks(st.front.child.pid, st.stateDir);
  try {
    assert.equal((await st.sioctl("emit", "--to", "L", "n", "1")).code, 0);
    assert.equal((await st.sioctl("leave", "--to", s.id, "L")).code, 0);
    assert.equal((await st.sioctl("emit", "--to", "L", "n", "2")).code, 0);
    assert.equal((await st.sioctl("emit", "--to", s.id, "n", "3")).code, 0);
  } finally {
    process.kill(st.front.child.pid, "SIGCONT");
  }
  await eventually(() => assert.deepEqual(s.nums, [1, 3]));
  await sleep(100);
  assert.deepEqual(s.nums, [1, 3]);
  s.disconnect();
}, { timeout: 30000 });
