// The Admin UI protocol (@socket.io/admin-ui 0.5.1) on the admin namespace,
// spoken to by socket.io-client as the UI speaks it: login (auth none, a
// bcrypt hash, a saved session id), config, all_sockets, server_stats every
// 2 s, the development-mode events, and the UI's emit / join / leave /
// _disconnect acting on real clients; through sio-front and through
// lighttpd; and /admin-ui/ serving the package's ui/dist.
import { hostname } from "node:os";
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  REPO, assert, test, before, after, startStack, startProcess, freePort, connect, connected, eventually, once, run,
  writeConfig,
} from "./lib.mjs";

const STATS_MS = 2000; // server_stats interval (stated/admin.h ADMIN_STATS_MS, Node's)
const UI_DIST = path.join(REPO, "tests", "node_modules", "@socket.io", "admin-ui", "ui", "dist");
const ALL_FEATURES = ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"];
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

// The password "s3cret" hashed as the README says (htpasswd's bcrypt is $2y$).
async function bcryptHash(password) {
  const r = await run("htpasswd", ["-bnBC", "5", "", password]);
  assert.equal(r.code, 0, r.stderr);
  const h = r.stdout.replace(/[:\n]/g, "");
  assert.match(h, /^\$2y\$05\$/);
  return h;
}

// An admin socket whose every event is kept from the start, with waits on them.
function adminSocket(url, nsp = "/admin", opts = {}) {
  const s = connect(url, nsp, opts);
  s.events = [];
  const waiters = new Set();
  s.onAny((event, ...args) => {
    s.events.push([event, ...args]);
    for (const w of waiters) if (w.event === event && w.pred(...args)) { waiters.delete(w); w.resolve(args); }
  });
  // Resolves with the args of the first `event` (since the socket was made)
  // for which pred holds.
  s.waitFor = (event, pred = () => true, timeout = 10000) => {
    const seen = s.events.find(([e, ...a]) => e === event && pred(...a));
    if (seen) return Promise.resolve(seen.slice(1));
    return new Promise((resolve, reject) => {
      const w = { event, pred, resolve };
      waiters.add(w);
      setTimeout(() => { if (waiters.delete(w)) reject(new Error(`no '${event}' as expected within ${timeout} ms`)); }, timeout);
    });
  };
  s.count = (event, pred = () => true) => s.events.filter(([e, ...a]) => e === event && pred(...a)).length;
  return s;
}

const statedPid = (stack) => Number(stack.proc.output.match(/stated\[(\d+)\] info: admin:/)[1]);
const sockets = async (stack) => JSON.parse((await stack.sioctl("--json", "sockets")).stdout);
const roomsOf = async (stack, id) => (await sockets(stack)).find((s) => s.id === id)?.rooms ?? null;

let dev, prod, plain, hash;
before(async () => {
  hash = await bcryptHash("s3cret");
  dev = await startStack("embedded", { config: writeConfig("[admin]\nauth = none\nmode = development\n") });
  prod = await startStack("embedded", {
    config: writeConfig(`[admin]\nnamespace = /ops\nusername = boss\npassword_hash = ${hash}\nmode = production\n`),
  });
  plain = await startStack("embedded");
});
after(async () => {
  for (const s of [dev, prod, plain]) if (s) await s.stop();
});

test("auth none, development mode: config lists every feature, then all_sockets has every socket with Node's fields", async () => {
  const c = await connected(connect(dev.url, "/", { query: { name: "c1" }, transports: ["websocket"] }));
  await dev.sioctl("join", "--to", c.id, "blue");
  const a = adminSocket(dev.url);
  await connected(a);
  const [config] = await a.waitFor("config");
  assert.deepEqual(config, { supportedFeatures: ALL_FEATURES });
  const [all] = await a.waitFor("all_sockets");
  assert.equal(a.events.findIndex(([e]) => e === "config") < a.events.findIndex(([e]) => e === "all_sockets"), true);
  const me = all.find((s) => s.id === c.id);
  assert.ok(me, `all_sockets lacks ${c.id}: ${JSON.stringify(all)}`);
  assert.deepEqual(Object.keys(me).sort(), ["clientId", "data", "handshake", "id", "nsp", "rooms", "transport"]);
  assert.equal(me.clientId, c.io.engine.id.slice(0, 12));
  assert.equal(me.nsp, "/");
  assert.equal(me.transport, "websocket");
  assert.deepEqual(me.data, {});
  assert.deepEqual(me.rooms.sort(), [c.id, "blue"].sort());
  const hs = me.handshake;
  assert.deepEqual(Object.keys(hs).sort(), ["address", "headers", "issued", "query", "secure", "time", "url", "xdomain"]);
  assert.equal(hs.address, "127.0.0.1");
  assert.equal(hs.headers.host, new URL(dev.url).host);
  assert.equal(hs.query.name, "c1");
  assert.equal(hs.query.EIO, "4");
  assert.equal(hs.query.transport, "websocket");
  assert.equal(typeof hs.issued, "number");
  assert.ok(Math.abs(hs.issued - Date.now()) < 600000, `issued ${hs.issued}`);
  assert.match(hs.time, /^\w{3} \w{3} \d\d \d{4} \d\d:\d\d:\d\d GMT\+0000 \(Coordinated Universal Time\)$/);
  assert.equal(Date.parse(hs.time), Math.floor(hs.issued / 1000) * 1000);
  assert.equal(hs.secure, false);
  assert.equal(hs.xdomain, false);
  assert.match(hs.url, /^\/socket\.io\/\?/);
  // the admin socket itself is listed, in its namespace, as Node lists it
  assert.ok(all.some((s) => s.id === a.id && s.nsp === "/admin"));
  c.disconnect();
  a.disconnect();
});

test("development mode: socket_connected, socket_updated, event_received, room_joined/left, event_sent, socket_disconnected for a real client", async () => {
  const a = adminSocket(dev.url);
  await connected(a);
  await a.waitFor("config");
  // polling first, then the upgrade: socket_updated {transport: websocket}
  const c = connect(dev.url, "/", { transports: ["polling", "websocket"] });
  await connected(c);
  const [sock, date] = await a.waitFor("socket_connected", (s) => s.id === c.id);
  assert.equal(sock.nsp, "/");
  assert.equal(sock.clientId, c.io.engine.id.slice(0, 12));
  assert.ok(sock.rooms.includes(c.id));
  assert.match(date, ISO);
  // the transport as the store had it when the connection was read: polling,
  // unless the upgrade was already done then (a slow machine)
  if (sock.transport === "polling") await a.waitFor("socket_updated", (u) => u.id === c.id && u.transport === "websocket");
  else assert.equal(sock.transport, "websocket");

  c.emit("hello", 1, { a: [2] });
  const [nsp, id, args, d2] = await a.waitFor("event_received", (n, i) => i === c.id);
  assert.deepEqual([nsp, id, args], ["/", c.id, ["hello", 1, { a: [2] }]]);
  assert.match(d2, ISO);

  assert.equal((await dev.sioctl("join", "--to", c.id, "r1")).code, 0);
  const joined = await a.waitFor("room_joined", (n, room, i) => room === "r1" && i === c.id);
  assert.equal(joined[0], "/");
  assert.match(joined[3], ISO);

  const got = once(c, "news");
  assert.equal((await dev.sioctl("emit", "--to", "r1", "news", '"x"', "7")).code, 0);
  await got;
  const sent = await a.waitFor("event_sent", (n, i) => i === c.id);
  assert.deepEqual(sent.slice(0, 3), ["/", c.id, ["news", "x", 7]]);

  assert.equal((await dev.sioctl("leave", "--to", c.id, "r1")).code, 0);
  await a.waitFor("room_left", (n, room, i) => n === "/" && room === "r1" && i === c.id);

  const cid = c.id; // the client forgets it at disconnect
  c.disconnect();
  const [dn, did, reason, d3] = await a.waitFor("socket_disconnected", (n, i) => i === cid);
  assert.deepEqual([dn, did, reason], ["/", cid, "client namespace disconnect"]);
  assert.match(d3, ISO);
  // events of the admin namespace itself are not reported (Node leaves them out)
  assert.equal(a.count("event_received", (n) => n === "/admin"), 0);
  a.disconnect();
});

test("the UI's emit, join, leave and _disconnect, with and without a room filter, act on real clients", async () => {
  const a = adminSocket(dev.url);
  await connected(a);
  await a.waitFor("config");
  const x = await connected(connect(dev.url));
  const y = await connected(connect(dev.url, "/", { transports: ["polling"] }));
  await dev.sioctl("join", "--to", x.id, "blue");

  // join(nsp, room, filter): only the sockets of the filter room
  a.emit("join", "/", "green", "blue");
  await eventually(async () => assert.ok((await roomsOf(dev, x.id)).includes("green")));
  assert.ok(!(await roomsOf(dev, y.id)).includes("green"));

  // emit(nsp, filter, ev, ...args): x gets it, y does not (y's marker comes after it in the log)
  const xs = [], ys = [];
  x.onAny((...e) => xs.push(e));
  y.onAny((...e) => ys.push(e));
  a.emit("emit", "/", "green", "hi", 1, { two: 2 });
  a.emit("emit", "/", null, "marker");
  await eventually(() => assert.ok(ys.some(([e]) => e === "marker") && xs.some(([e]) => e === "marker")));
  assert.deepEqual(xs, [["hi", 1, { two: 2 }], ["marker"]]);
  assert.deepEqual(ys, [["marker"]]);

  // join without a filter: everyone of the namespace; leave with a filter
  a.emit("join", "/", "all", null);
  await eventually(async () => {
    assert.ok((await roomsOf(dev, x.id)).includes("all"));
    assert.ok((await roomsOf(dev, y.id)).includes("all"));
  });
  a.emit("leave", "/", "all", y.id);
  await eventually(async () => assert.ok(!(await roomsOf(dev, y.id)).includes("all")));
  assert.ok((await roomsOf(dev, x.id)).includes("all"));
  a.emit("leave", "/", "green", null);
  await eventually(async () => assert.ok(!(await roomsOf(dev, x.id)).includes("green")));

  // _disconnect(nsp, close, filter): the socket of the filter only
  const xGone = once(x, "disconnect"), xid = x.id;
  a.emit("_disconnect", "/", false, xid);
  assert.equal((await xGone)[0], "io server disconnect");
  await a.waitFor("socket_disconnected", (n, i, why) => i === xid && why === "server namespace disconnect");
  assert.ok(y.connected);
  // no filter: every socket of the namespace (y); close = true ends its Engine.IO connection too
  const yGone = once(y, "disconnect");
  a.emit("_disconnect", "/", true, null);
  await yGone;
  await eventually(async () => assert.equal((await sockets(dev)).filter((s) => s.nsp === "/").length, 0));
  a.disconnect();
});

test("garbage from an admin socket (wrong types, unknown namespaces, long names, unknown events) changes nothing and breaks nothing", async () => {
  const a = adminSocket(dev.url);
  await connected(a);
  await a.waitFor("config");
  const x = await connected(connect(dev.url));
  const before = await roomsOf(dev, x.id);
  a.emit("join");
  a.emit("join", 42, "r", null);
  a.emit("join", "/", { not: "a room" }, null);
  a.emit("join", "/nowhere", "r", null);
  a.emit("join", "/", "r".repeat(300), null);
  a.emit("leave", "/", null, x.id);
  a.emit("emit", "/", null);
  a.emit("emit", "/", null, 7);
  a.emit("_disconnect", "/nowhere", true, null);
  a.emit("_disconnect", null, true, null);
  a.emit("whatever", "/", 1, 2);
  a.emit("emit", "/", x.id, "still-alive");
  await once(x, "still-alive");
  assert.deepEqual(await roomsOf(dev, x.id), before);
  assert.ok(x.connected);
  x.disconnect();
  a.disconnect();
});

test("server_stats every 2 s: Node's fields, and the counts move as clients connect and emit", async () => {
  const a = adminSocket(dev.url);
  await connected(a);
  // the first figures once the clients of the tests before have gone: the admin socket alone
  const nsp = (s, name) => s.namespaces.find((n) => n.name === name);
  const [first] = await a.waitFor("server_stats", (s) => s.clientsCount === 1 && nsp(s, "/")?.socketsCount === 0,
                                  5 * STATS_MS + 5000);
  assert.deepEqual(Object.keys(first).sort(),
    ["aggregatedEvents", "clientsCount", "hostname", "namespaces", "pid", "pollingClientsCount", "serverId", "uptime"]);
  const pid = statedPid(dev);
  assert.equal(first.hostname, hostname());
  assert.equal(first.pid, pid);
  assert.equal(first.serverId, `${hostname()}#${pid}`);
  assert.ok(first.uptime > 0);
  assert.equal(nsp(first, "/admin").socketsCount, 1);

  // three polling-only clients that each emit twice
  const cs = [];
  for (let i = 0; i < 3; i++) cs.push(await connected(connect(dev.url, "/", { transports: ["polling"] })));
  const t0 = Date.now();
  for (const c of cs) { c.emit("ping1"); c.emit("ping2", { n: 2 }); }
  // the figures of a stats emitted once the clients are there: at most two intervals later
  const [later] = await a.waitFor("server_stats", (s) => s.clientsCount === 4 && s.pollingClientsCount >= 3,
                                  3 * STATS_MS + 5000);
  assert.equal(nsp(later, "/").socketsCount, 3);
  assert.ok(later.uptime > first.uptime);
  // aggregatedEvents: per second (timestamps whole seconds), summed over the stats since
  await eventually(() => {
    const agg = a.events.filter(([e, s]) => e === "server_stats" && s.uptime > first.uptime).flatMap(([, s]) => s.aggregatedEvents);
    for (const e of agg) {
      assert.equal(e.timestamp % 1000, 0);
      assert.ok(["rawConnection", "rawDisconnection", "packetsIn", "packetsOut", "bytesIn", "bytesOut"].includes(e.type), e.type);
      assert.equal(typeof e.count, "number");
    }
    const sum = (type) => agg.filter((e) => e.type === type).reduce((n, e) => n + e.count, 0);
    // the shared counters of every process (base/stats.h), spread over whole seconds
    for (const e of agg) assert.ok(Number.isInteger(e.count) && e.count > 0, JSON.stringify(e));
    assert.ok(sum("rawConnection") >= 3, `rawConnection ${sum("rawConnection")}`);
    assert.ok(sum("packetsIn") >= 6, `packetsIn ${sum("packetsIn")}`);       // the 6 events (and more: CONNECTs, pongs)
    assert.ok(sum("bytesIn") >= 6 * "2[\"ping1\"]".length, `bytesIn ${sum("bytesIn")}`);
    assert.ok(sum("packetsOut") >= 3, `packetsOut ${sum("packetsOut")}`);     // at least the 3 CONNECT replies
    assert.ok(sum("bytesOut") > 0, `bytesOut ${sum("bytesOut")}`);
    assert.ok(agg.some((e) => e.type === "rawConnection" && e.timestamp >= Math.floor((t0 - 60000) / 1000) * 1000));
  }, 3 * STATS_MS + 5000);
  // uptime grows by about the interval between two stats
  const stats = a.events.filter(([e]) => e === "server_stats").map(([, s]) => s);
  for (let i = 1; i < stats.length; i++) assert.ok(stats[i].uptime > stats[i - 1].uptime);

  // a client that goes away: clientsCount drops, rawDisconnection counts it with Node's reason
  const seen = a.events.length;
  cs[0].io.engine.close();
  await eventually(() => {
    const agg = a.events.slice(seen).filter(([e]) => e === "server_stats").flatMap(([, s]) => s.aggregatedEvents);
    assert.ok(agg.some((e) => e.type === "rawDisconnection" && e.subType === "transport close"), JSON.stringify(agg));
    assert.ok(a.events.slice(seen).some(([e, s]) => e === "server_stats" && s.clientsCount === 3));
  }, 3 * STATS_MS + 5000);
  for (const c of cs) c.disconnect();
  a.disconnect();
});

test("bcrypt login: a wrong password is refused ('invalid credentials'), the right one gets session(id); the id logs in again", async () => {
  // the default namespace does not exist with `namespace = /ops`
  const wrongNsp = connect(prod.url, "/admin", { auth: { username: "boss", password: "s3cret" } });
  await assert.rejects(connected(wrongNsp), /Invalid namespace/);

  for (const auth of [{}, { username: "boss", password: "nope" }, { username: "other", password: "s3cret" },
    { username: "boss" }, { sessionId: "0123456789abcdef" }, { username: "boss", password: 42 }]) {
    const s = connect(prod.url, "/ops", { auth });
    await assert.rejects(connected(s), (e) => e.message === "invalid credentials", JSON.stringify(auth));
  }

  const a = adminSocket(prod.url, "/ops", { auth: { username: "boss", password: "s3cret" } });
  await connected(a);
  const [sessionId] = await a.waitFor("session");
  assert.match(sessionId, /^[A-Za-z0-9_-]{16}$/);
  const [config] = await a.waitFor("config");
  // production mode: no ALL_EVENTS, and no all_sockets
  assert.deepEqual(config, { supportedFeatures: ALL_FEATURES.filter((f) => f !== "ALL_EVENTS") });
  // the socket keeps the login's name, never the password
  const mine = (await sockets(prod)).find((s) => s.id === a.id);
  assert.deepEqual(mine.auth, { username: "boss" });

  // the saved session id logs in without the password (a new socket: no new session event)
  const b = adminSocket(prod.url, "/ops", { auth: { sessionId } });
  await connected(b);
  await b.waitFor("config");

  // production mode: a client that connects, emits and leaves shows up in the
  // counts only; wait for a server_stats that counts it, and then one more
  const c = await connected(connect(prod.url));
  c.emit("hello");
  await b.waitFor("server_stats", (s) => s.namespaces.some((n) => n.name === "/" && n.socketsCount >= 1), 3 * STATS_MS + 5000);
  c.disconnect();
  await b.waitFor("server_stats", (s) => s.namespaces.some((n) => n.name === "/" && n.socketsCount === 0), 3 * STATS_MS + 5000);
  for (const ev of ["all_sockets", "socket_connected", "socket_disconnected", "event_received", "event_sent", "room_joined", "session"])
    assert.equal(b.count(ev), 0, `${ev} in production mode`);
  assert.equal(a.count("session"), 1);
  a.disconnect();
  b.disconnect();
});

test("without [admin] there is no admin namespace and no /admin-ui/; with it /admin-ui/ serves the package's ui/dist", async () => {
  const s = connect(plain.url, "/admin");
  await assert.rejects(connected(s), /Invalid namespace/);
  assert.equal((await fetch(`${plain.url}/admin-ui/`)).status, 404);

  const redirect = await fetch(`${dev.url}/admin-ui`, { redirect: "manual" });
  assert.ok([301, 302, 303, 307, 308].includes(redirect.status), `status ${redirect.status}`);
  assert.match(redirect.headers.get("location"), /\/admin-ui\/$/);
  const index = await fetch(`${dev.url}/admin-ui/`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get("content-type"), /text\/html/);
  assert.equal(await index.text(), readFileSync(path.join(UI_DIST, "index.html"), "utf8"));
  const js = readFileSync(path.join(UI_DIST, "index.html"), "utf8").match(/src="(js\/app\.[0-9a-f]+\.js)"/)[1];
  const app = await fetch(`${dev.url}/admin-ui/${js}`);
  assert.equal(app.status, 200);
  assert.ok(Buffer.from(await app.arrayBuffer()).equals(readFileSync(path.join(UI_DIST, js))));
  assert.equal((await fetch(`${dev.url}/admin-ui/../README.md`)).status, 404);
});

test("readonly = true: config offers aggregated events (and all events in development mode) only, and the UI's actions do nothing", async () => {
  const ro = await startStack("embedded", { config: writeConfig("[admin]\nauth = none\nreadonly = true\n") });
  try {
    const a = adminSocket(ro.url);
    await connected(a);
    const [config] = await a.waitFor("config");
    assert.deepEqual(config, { supportedFeatures: ["AGGREGATED_EVENTS", "ALL_EVENTS"] });
    const x = await connected(connect(ro.url));
    const got = [];
    x.onAny((...e) => got.push(e));
    a.emit("join", "/", "nope", null);
    a.emit("emit", "/", null, "nope");
    a.emit("_disconnect", "/", true, null);
    // the admin thread has read them once it reports x's own event after them
    x.emit("after");
    await a.waitFor("event_received", (n, id, args) => id === x.id && args[0] === "after");
    assert.deepEqual((await sockets(ro)).find((s) => s.id === x.id).rooms, [x.id]);
    assert.ok(x.connected);
    assert.deepEqual(got, []);
    x.disconnect();
    a.disconnect();
  } finally {
    await ro.stop();
  }
});

test("through lighttpd: an admin socket on polling+websocket gets config and server_stats, sees a client connect, and its join acts on it", async () => {
  const lt = await startStack("lighttpd", { config: writeConfig("[admin]\nauth = none\nmode = development\n") });
  try {
    const a = adminSocket(lt.url, "/admin", { transports: ["polling"] });
    await connected(a);
    await a.waitFor("config");
    await a.waitFor("all_sockets");
    const c = await connected(connect(lt.url, "/", { transports: ["polling"] }));
    await a.waitFor("socket_connected", (s) => s.id === c.id && s.transport === "polling");
    a.emit("join", "/", "lit", c.id);
    await a.waitFor("room_joined", (n, room, id) => room === "lit" && id === c.id);
    const got = once(c, "lamp");
    a.emit("emit", "/", "lit", "lamp", "on");
    assert.deepEqual(await got, ["on"]);
    const [st] = await a.waitFor("server_stats", (s) => s.pollingClientsCount >= 2, 3 * STATS_MS + 5000);
    assert.equal(st.pid, statedPid(lt));
    c.disconnect();
    a.disconnect();
  } finally {
    await lt.stop();
  }
});

test("with the Redis cluster, each node reports as its own server: an admin socket on one node gets both nodes' server_stats and events, and its emit reaches the other node's clients", async () => {
  const port = await freePort();
  const redis = await startProcess("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "",
    "--appendonly", "no"], { ready: /Ready to accept connections/, name: "redis" });
  const conf = writeConfig(`redis_url = redis://127.0.0.1:${port}\n[admin]\nauth = none\nmode = development\n`);
  const nodes = [];
  try {
    for (let i = 0; i < 2; i++) nodes.push(await startStack("embedded", { config: conf }));
    const [A, B] = nodes;
    await eventually(async () => {
      for (const n of nodes) assert.equal(JSON.parse((await n.sioctl("status", "--json")).stdout).cluster.state, "up");
    }, 20000, 200);
    const a = adminSocket(A.url);
    await connected(a);
    const ids = nodes.map((n) => `${hostname()}#${statedPid(n)}`);
    assert.notEqual(ids[0], ids[1]);
    for (const [i, id] of ids.entries()) {
      const [st] = await a.waitFor("server_stats", (s) => s.serverId === id, 3 * STATS_MS + 5000);
      assert.equal(st.pid, statedPid(nodes[i]));
    }
    // a client of node B: node B tells the admin sockets of the cluster
    const c = await connected(connect(B.url));
    await a.waitFor("socket_connected", (s) => s.id === c.id);
    // the UI's emit (to the whole namespace) reaches it through the cluster
    const got = once(c, "from-ui");
    a.emit("emit", "/", null, "from-ui", "hello");
    assert.deepEqual(await got, ["hello"]);
    c.disconnect();
    a.disconnect();
  } finally {
    for (const n of nodes) await n.stop();
    await redis.stop();
  }
}, { timeout: 90000 });
