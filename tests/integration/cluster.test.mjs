// Many machines: two of our nodes and one Node socket.io 4.8 server with
// @socket.io/redis-adapter on one real redis-server, plus the npm
// @socket.io/redis-emitter, form one cluster for the real socket.io-client.
import path from "node:path";
import { createRequire } from "node:module";
import {
  REPO, test, before, after, assert, startStack, startProcess, freePort, tmpDir, connect, connected,
  closeClients, eventually, sleep, once, whyGone,
} from "./lib.mjs";
import { app } from "./handlers_util.mjs";

const require = createRequire(path.join(REPO, "tests", "package.json"));
const { Emitter } = require("@socket.io/redis-emitter");
const { createClient } = require("redis");

let redisPort, redis, redisUrl, A, B, N, nodeUrl, emitterClient, emitter, appA, appB;

async function startRedis() {
  redis = await startProcess("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "",
    "--appendonly", "no"], { ready: /Ready to accept connections/, name: "redis" });
}

const ctl = async (body) => {
  const r = await fetch(`${nodeUrl}/ctl`, { method: "POST", body: JSON.stringify(body) });
  return r.json();
};
const status = async (stack) => JSON.parse((await stack.sioctl("status", "--json")).stdout).cluster;
// Every server of the cluster sees the others (PUBSUB NUMSUB of "/").
const whole = () => eventually(async () => {
  assert.equal(await ctl({ op: "count" }), 3);
  for (const s of [A, B]) {
    const st = await status(s);
    assert.equal(st.state, "up");
  }
}, 20000, 200);

// A server_event handler: records what it gets and answers when asked to.
const PING = `#!/bin/sh
cat >> "$1"; echo >> "$1"
[ -n "$SIO_ACK_ID" ] && sioctl ack '{"pong":"ours"}'
exit 0
`;
const conf = (name) => `redis_url = ${redisUrl}
[namespace /]
server_event.server-ping = sh ./ping.sh @DIR@/${name}.jsonl
[namespace /custom]
[namespace ~/dyn-[0-9]+]
`;

before(async () => {
  redisPort = await freePort();
  redisUrl = `redis://127.0.0.1:${redisPort}`;
  await startRedis();
  appA = app(conf("a"), { "ping.sh": PING });
  appB = app(conf("b"), { "ping.sh": PING });
  A = await startStack("embedded", { config: appA.config });
  B = await startStack("embedded", { config: appB.config });
  const np = await freePort();
  nodeUrl = `http://127.0.0.1:${np}`;
  N = await startProcess("node", [path.join(REPO, "tests/integration/cluster_node.cjs"), String(np), redisUrl], {
    ready: /node ready/, name: "node-cluster",
  });
  emitterClient = createClient({ url: redisUrl });
  emitterClient.on("error", () => {});
  await emitterClient.connect();
  emitter = new Emitter(emitterClient);
  await whole();
});

after(async () => {
  closeClients();
  try { await emitterClient.quit(); } catch {}
});

// One client on each server (and both transports on ours), recording events.
async function clients(nsp = "/") {
  const list = [
    connect(A.url, nsp, { transports: ["websocket"] }),
    connect(B.url, nsp, { transports: ["polling"] }),
    connect(B.url, nsp),
    connect(nodeUrl, nsp),
  ];
  for (const s of list) {
    s.got = [];
    s.onAny((ev, ...args) => s.got.push([ev, ...args]));
    s.on("q", (x, cb) => cb(`ack:${x}`));
  }
  await Promise.all(list.map((s) => connected(s)));
  return list;
}
const count = (s, ev) => s.got.filter((e) => e[0] === ev).length;
// Waits until every socket in `who` got the sentinel event `ev`.
const reached = (who, ev) => eventually(() => {
  for (const s of who) assert.ok(count(s, ev) >= 1, `${s.io.uri} did not get ${ev}${whyGone(s)}`);
}, 10000);
// The sources of a broadcast: each server and the emitter.
const sources = {
  ourA: (ev, ...a) => A.sioctl("emit", ev, ...a.map((x) => JSON.stringify(x))),
  ourB: (ev, ...a) => B.sioctl("emit", ev, ...a.map((x) => JSON.stringify(x))),
  node: (ev, ...a) => ctl({ op: "emit", event: ev, args: a }),
  emitter: async (ev, ...a) => emitter.emit(ev, ...a),
};

test("an emit from each server and from the emitter reaches every client of every server exactly once", async () => {
  const all = await clients();
  for (const [name, emit] of Object.entries(sources)) {
    await emit(`hello-${name}`, name, 7);
    await emit(`done-${name}`);
    await reached(all, `done-${name}`);
    for (const s of all) {
      assert.equal(count(s, `hello-${name}`), 1, `${s.io.uri} got hello-${name} ${count(s, `hello-${name}`)} times`);
      assert.deepEqual(s.got.find((e) => e[0] === `hello-${name}`).slice(1), [name, 7]);
    }
  }
  closeClients();
}, { timeout: 60000 });

test("rooms, except, another namespace and binary arguments cross the cluster", async () => {
  const all = await clients();
  const [a, bp, bu, n] = all;
  // socketsJoin across the cluster, from one of our nodes (REMOTE_JOIN)
  for (const s of [a, bu, n]) assert.equal((await A.sioctl("join", "--cluster", "--to", s.id, "r1")).code, 0);
  await eventually(async () => {
    const fetched = await ctl({ op: "fetch", rooms: ["r1"] });
    assert.deepEqual(fetched.map((f) => f.id).sort(), [a.id, bu.id, n.id].sort());
  });
  await B.sioctl("emit", "--to", "r1", "--except", a.id, "room-b");
  await ctl({ op: "emit", rooms: ["r1"], event: "room-n" });
  await emitter.to("r1").except(n.id).emit("room-e");
  await A.sioctl("emit", "--to", "r1", "bin", '{"$binary":"AQID"}');
  await emitter.emit("bin-e", Buffer.from([4, 5]));
  await A.sioctl("emit", "sync");
  await reached(all, "sync");
  await eventually(() => {
    assert.deepEqual([a, bp, bu, n].map((s) => count(s, "room-b")), [0, 0, 1, 1]);
    assert.deepEqual([a, bp, bu, n].map((s) => count(s, "room-n")), [1, 0, 1, 1]);
    assert.deepEqual([a, bp, bu, n].map((s) => count(s, "room-e")), [1, 0, 1, 0]);
    assert.deepEqual([a, bp, bu, n].map((s) => count(s, "bin")), [1, 0, 1, 1]);
    assert.deepEqual([a, bp, bu, n].map((s) => count(s, "bin-e")), [1, 1, 1, 1]);
  });
  for (const s of [a, bu, n]) assert.deepEqual([...s.got.find((e) => e[0] === "bin")[1]], [1, 2, 3]);
  for (const s of all) assert.deepEqual([...s.got.find((e) => e[0] === "bin-e")[1]], [4, 5]);
  closeClients();
  // another namespace: only its sockets
  const custom = await clients("/custom");
  const root = connect(A.url, "/");
  root.got = [];
  root.onAny((ev) => root.got.push([ev]));
  await connected(root);
  await emitter.of("/custom").emit("in-custom");
  await ctl({ op: "emit", nsp: "/custom", event: "in-custom-n" });
  await reached(custom, "in-custom");
  await reached(custom, "in-custom-n");
  await sleep(200);
  assert.equal(root.got.length, 0);
  closeClients();
}, { timeout: 60000 });

test("the emitter's socketsJoin, socketsLeave and disconnectSockets act on our sockets", async () => {
  const a = await connected(connect(A.url, "/"));
  const b = await connected(connect(B.url, "/", { transports: ["polling"] }));
  emitter.in(a.id).socketsJoin("e1");
  emitter.in(b.id).socketsJoin(["e1", "e2"]);
  await eventually(async () => {
    const rooms = JSON.parse((await A.sioctl("rooms", "--json")).stdout);
    assert.deepEqual(rooms.find((r) => r.room === "e1")?.members, [a.id]);
    const rb = JSON.parse((await B.sioctl("rooms", "--json")).stdout);
    assert.deepEqual(rb.map((r) => r.room).sort(), ["e1", "e2"]);
  });
  emitter.in("e2").socketsLeave("e1");
  await eventually(async () => {
    const rb = JSON.parse((await B.sioctl("rooms", "--json")).stdout);
    assert.deepEqual(rb.map((r) => r.room), ["e2"]);
  });
  const gone = once(a, "disconnect");
  emitter.in("e1").disconnectSockets();
  const [reason] = await gone;
  assert.equal(reason, "io server disconnect");
  assert.ok(b.connected);
  closeClients();
});

test("Node's fetchSockets returns our sockets with rooms and handshake; sioctl sockets --cluster returns Node's", async () => {
  const a = await connected(connect(A.url, "/", { query: { who: "alice" } }));
  const n = await connected(connect(nodeUrl, "/"));
  await A.sioctl("join", "--to", a.id, "lobby");
  const fetched = await ctl({ op: "fetch", rooms: ["lobby"] });
  assert.equal(fetched.length, 1);
  assert.equal(fetched[0].id, a.id);
  assert.deepEqual(fetched[0].rooms.sort(), [a.id, "lobby"].sort());
  assert.equal(fetched[0].handshake.query.who, "alice");
  assert.equal(fetched[0].handshake.address, "127.0.0.1");
  assert.equal(typeof fetched[0].handshake.issued, "number");
  const everyone = (await ctl({ op: "fetch" })).map((f) => f.id);
  assert.ok(everyone.includes(a.id) && everyone.includes(n.id));
  const r = await B.sioctl("sockets", "--cluster", "--json");
  assert.equal(r.code, 0, r.stderr);
  const ours = JSON.parse(r.stdout);
  const node = ours.find((s) => s.id === n.id);
  assert.ok(node, `Node's socket missing from ${r.stdout}`);
  assert.deepEqual(node.data, { origin: "node" });
  assert.ok(ours.find((s) => s.id === a.id).rooms.includes("lobby"));
  const rooms = await ctl({ op: "allRooms" });
  assert.ok(rooms.includes("lobby") && rooms.includes(a.id));
  closeClients();
});

test("serverSideEmit both ways, with acks", async () => {
  const r = await ctl({ op: "serverSideEmit", event: "server-ping", args: [1, "x"], ack: true });
  assert.deepEqual(r.answers, [{ pong: "ours" }, { pong: "ours" }], JSON.stringify(r));
  for (const side of [appA, appB]) {
    await eventually(() => {
      const rec = JSON.parse(side.read(side === appA ? "a.jsonl" : "b.jsonl").trim().split("\n").pop());
      assert.equal(rec.type, "serverSideEmit");
      assert.equal(rec.event, "server-ping");
      assert.deepEqual(rec.args, [1, "x"]);
    });
  }
  const before = appA.read("a.jsonl");
  const out = await A.sioctl("emit", "--server-side", "--ack", "server-ping", "2");
  assert.equal(out.code, 0, out.stderr);
  const answers = JSON.parse(out.stdout);
  assert.equal(answers.length, 2); // Node and B: every other server
  assert.ok(answers.some((x) => x.pong === "node") && answers.some((x) => x.pong === "ours"));
  await eventually(async () => assert.ok((await ctl({ op: "serverSideEvents" })).some((e) => e.args[0] === 2)));
  await eventually(() => assert.match(appB.read("b.jsonl"), /"args":\[2\]/));
  await sleep(300);
  assert.equal(appA.read("a.jsonl"), before, "the emitting server does not get its own serverSideEmit");
});

test("Node's emitWithAck counts and collects our clients' acks; sioctl emit --ack --cluster collects everyone's", async () => {
  const all = await clients();
  const r = await ctl({ op: "emitWithAck", event: "q", args: [5], timeout: 4000 });
  assert.deepEqual(r.acks, ["ack:5", "ack:5", "ack:5", "ack:5"], JSON.stringify(r));
  const out = await B.sioctl("emit", "--ack", "--cluster", "--timeout", "4000", "q", "6");
  assert.equal(out.code, 0, out.stderr);
  assert.deepEqual(out.stdout.trim().split("\n").map((l) => JSON.parse(l)), Array(all.length).fill("ack:6"));
  closeClients();
});

test("sioctl --cluster names the server that does not answer in time", async () => {
  N.child.kill("SIGSTOP");
  try {
    const r = await A.sioctl("sockets", "--cluster", "--timeout", "500");
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /timeout: 2 of 3 server\(s\) answered within 500 ms; no answer from one of: \S+/);
  } finally {
    N.child.kill("SIGCONT");
  }
});

test("a dynamic namespace is in the cluster once a socket joins it", async () => {
  const b = await connected(connect(B.url, "/dyn-7", { transports: ["polling"] }));
  b.got = [];
  b.onAny((ev, ...args) => b.got.push([ev, ...args]));
  await eventually(async () => {
    const fetched = await ctl({ op: "fetch", nsp: "/dyn-7" });
    assert.deepEqual(fetched.map((f) => f.id), [b.id]);
  }, 10000);
  await emitter.of("/dyn-7").emit("dyn", 1);
  await eventually(() => assert.deepEqual(b.got, [["dyn", 1]]));
  closeClients();
});

test("strings with NUL cross the cluster intact, both ways", async () => {
  const all = await clients();
  const odd = ["a\u0000b", { "k\u0000": "\u00e9\u20ac\ud83d\ude00" }];
  await A.sioctl("emit", "odd-a", ...odd.map((x) => JSON.stringify(x)));
  await emitter.emit("odd-e", ...odd);
  await ctl({ op: "emit", event: "odd-n", args: odd });
  for (const ev of ["odd-a", "odd-e", "odd-n"]) {
    await reached(all, ev);
    for (const s of all) assert.deepEqual(s.got.find((e) => e[0] === ev).slice(1), odd, `${ev} at ${s.io.uri}`);
  }
  closeClients();
});

test("emit --local stays on its node", async () => {
  const all = await clients();
  await A.sioctl("emit", "--local", "mine");
  await A.sioctl("emit", "sync-local");
  await reached(all, "sync-local");
  assert.deepEqual(all.map((s) => count(s, "mine")), [1, 0, 0, 0]);
  closeClients();
});

test("connection state recovery on one of our nodes: what other servers emitted meanwhile is replayed; offsets stay on the node", async () => {
  const appC = app(`connection_state_recovery = 1\n${conf("c")}`, { "ping.sh": PING });
  const C = await startStack("embedded", { config: appC.config });
  try {
    const c = connect(C.url, "/", { transports: ["websocket"] });
    c.got = [];
    c.onAny((ev, ...args) => c.got.push([ev, ...args]));
    const n = connect(nodeUrl, "/");
    n.got = [];
    n.onAny((ev, ...args) => n.got.push([ev, ...args]));
    await Promise.all([connected(c), connected(n)]);
    await eventually(async () => assert.equal((await status(C)).state, "up"), 20000, 200);
    // ours get the offset as the last argument; Node's clients never see it
    await C.sioctl("emit", "from-c", "1");
    await eventually(() => assert.equal(count(n, "from-c"), 1));
    assert.deepEqual(n.got.find((e) => e[0] === "from-c"), ["from-c", 1]);
    await eventually(() => assert.equal(count(c, "from-c"), 1));
    const [, one, offset] = c.got.find((e) => e[0] === "from-c");
    assert.equal(one, 1);
    assert.match(offset, /^\d+$/);
    // offline while the emitter, Node and node A emit
    const gone = once(c, "disconnect");
    c.io.engine.close();
    await gone;
    await emitter.emit("away", "emitter");
    await ctl({ op: "emit", event: "away", args: ["node"] });
    await A.sioctl("emit", "away", "a");
    await eventually(async () => {
      const r = JSON.parse((await C.sioctl("status", "--json")).stdout);
      assert.ok(r.log.head >= Number(offset) + 3, "not all arrived on C yet");
    });
    const back = once(c, "connect");
    c.connect();
    await back;
    assert.equal(c.recovered, true);
    await eventually(() => assert.equal(count(c, "away"), 3));
    // (the emitter publishes without waiting: its order against Node's is not fixed)
    assert.deepEqual(c.got.filter((e) => e[0] === "away").map((e) => e[1]).sort(), ["a", "emitter", "node"]);
  } finally {
    closeClients();
    await C.stop();
  }
}, { timeout: 60000 });

test("Redis killed and restarted: local delivery goes on, the cluster is whole again", async () => {
  const all = await clients();
  const [a, , , n] = all;
  await redis.stop("SIGKILL");
  await eventually(async () => assert.equal((await status(A)).state, "down"), 15000);
  const st = await A.sioctl("status");
  assert.match(st.stdout, /NOT in the cluster/);
  await A.sioctl("emit", "while-down");
  await eventually(() => assert.equal(count(a, "while-down"), 1));
  assert.equal((await A.sioctl("sockets", "--cluster")).code, 5);
  await startRedis();
  await whole();
  await A.sioctl("emit", "after");
  await reached(all, "after");
  assert.equal(count(n, "while-down"), 0, "pub/sub: what was published while Redis was down is gone");
  assert.match(A.proc.output, /lost Redis/);
  assert.match(A.proc.output, /connected to Redis/);
  closeClients();
}, { timeout: 60000 });
