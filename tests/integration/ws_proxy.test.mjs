// WebSocket behind a web server: scripts/run-lighttpd and scripts/run-apache
// also start sio-front on an internal port, and the web server proxies
// "Upgrade: websocket" requests for the config's path (and engine_path) to
// it, while long-polling keeps going to the FastCGI gateway.  The real
// socket.io-client (and engine.io-client) through each web server: WebSocket
// only, the polling -> WebSocket upgrade (of a session the gateway created),
// sioctl reaching WebSocket and polling clients alike, rooms kept across the
// upgrade, heartbeats through the proxy; then SIO_WS=0 (no front, no upgrade
// offered), the supervision (sio-front restarted by the script, sio-fcgi
// by the web server, clients reconnecting), and no process left behind.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import {
  REPO, BIN, assert, test, before, after, startStack, startProcess, writeConfig, connect, connected,
  once, record, eventually, http, run, sleep, startListen,
} from "./lib.mjs";

const require = createRequire(path.join(REPO, "tests", "package.json"));
const eio = require("engine.io-client");

const KINDS = ["lighttpd", "apache"];
// Short heartbeats: a frame held back by a proxy for longer than
// ping_interval + ping_timeout (3 s) would end the session.
const CONFIG = writeConfig(`
ping_interval = 1500
ping_timeout = 1500
connect_timeout = 5000
engine_path = /engine.io/

[namespace /]
[namespace /chat]
`);
const WS = { transports: ["websocket"] };
const POLLING = { transports: ["polling"] };

async function ok(p) {
  const r = await p;
  assert.equal(r.code, 0, `sioctl failed (${r.code}): ${r.stderr}`);
  return r;
}

// Emits a sentinel to "/" and waits until every recorder has it: delivery is
// in log order, so whatever is not there before it never comes.
async function settle(stack, events) {
  const tag = `s${Math.random().toString(36).slice(2)}`;
  await ok(stack.sioctl("emit", "sentinel", tag));
  await eventually(() => {
    for (const ev of events) assert.ok(ev.some((e) => e[0] === "sentinel" && e[1] === tag), "sentinel not received");
  });
  return events.map((ev) => ev.filter((e) => e[0] !== "sentinel"));
}

// The pids the run script printed (its children are session leaders, so
// these are also their process groups: lighttpd's holds sio-fcgi, Apache's
// its children and mod_fcgid's gateways), and the script itself.
function stackPids(stack) {
  const pids = [...stack.proc.output.matchAll(/(?:stated|lighttpd|apache2|sio-front|sio-fcgi) pid (\d+)/g)]
    .map((m) => Number(m[1]));
  return [...new Set([stack.proc.child.pid, ...pids])];
}

// Lines of `ps` for live processes (not zombies) in any of those groups.
async function leftovers(pids) {
  const r = await run("ps", ["-eo", "pid=,pgid=,stat=,user=,args="]);
  return r.stdout.split("\n").filter((l) => {
    const [pid, pgid, stat] = l.trim().split(/\s+/);
    return l.trim() && !stat.startsWith("Z") && (pids.includes(Number(pid)) || pids.includes(Number(pgid)));
  });
}

// startStack returns on the first "listening on http" line, which may be
// sio-front's own (the script starts it last); wait for the script's.
async function started(stack) {
  await eventually(() => assert.ok(stack.proc.output.includes(`listening on http://127.0.0.1:${stack.port} (`),
    "the script did not say it is listening"), 10000);
  return stack;
}

// The sio-front the script started last.
function frontPid(stack) {
  const m = [...stack.proc.output.matchAll(/sio-front pid (\d+)(?: as (\S+))? on 127\.0\.0\.1:(\d+)/g)].pop();
  assert.ok(m, `the script did not report sio-front:\n${stack.proc.output}`);
  return { pid: Number(m[1]), user: m[2] ?? null, port: Number(m[3]) };
}

async function stopAndCheck(stack) {
  const pids = stackPids(stack);
  const r = await stack.stop();
  assert.equal(r.code, 0, `${stack.kind} script exit on SIGTERM: ${JSON.stringify(r)}\n${stack.proc.output.slice(-2000)}`);
  await eventually(async () => assert.deepEqual(await leftovers(pids), []), 5000, 200);
}

// A WebSocket transport that does not open until `gate` resolves: the
// client connects over polling and holds its upgrade probe until the test
// has done what must happen before the upgrade.
function gatedWebSocket(gate) {
  return class GatedWebSocket extends eio.NodeWebSocket {
    doOpen() {
      gate.then(() => { if (this.readyState === "opening") super.doOpen(); });
    }
  };
}

const stacks = {};
before(async () => {
  await Promise.all(KINDS.map(async (k) => { stacks[k] = await started(await startStack(k, { config: CONFIG })); }));
});
after(async () => {
  for (const k of KINDS) if (stacks[k]) await stopAndCheck(stacks[k]);
});

for (const kind of KINDS) {
  const st = () => stacks[kind];

  test(`${kind}: sio-front runs on an internal port${kind === "apache" ? " as www-data" : ""}`, async () => {
    const f = frontPid(st());
    assert.notEqual(f.port, st().port);
    const ps = await run("ps", ["-o", "user=,args=", "-p", String(f.pid)]);
    assert.match(ps.stdout, /sio-front --port \d+ --host 127\.0\.0\.1 /);
    if (kind === "apache" && process.getuid() === 0) assert.match(ps.stdout, /^www-data /);
    const stated = stackPids(st()).find((p) => st().proc.output.includes(`stated pid ${p}`));
    const su = await run("ps", ["-o", "user=", "-p", String(stated)]);
    assert.equal(ps.stdout.split(/\s+/)[0], su.stdout.trim(), "sio-front and stated must run as the same user");
  });

  test(`${kind}: a websocket-only client connects through the proxy and gets sioctl emit`, async () => {
    const s = await connected(connect(st().url, "/", WS));
    assert.equal(s.io.engine.transport.name, "websocket");
    const ev = record(s);
    const sockets = JSON.parse((await ok(st().sioctl("sockets", "--json"))).stdout);
    assert.ok(sockets.some((x) => x.id === s.id), "socket not in the store");
    await ok(st().sioctl("emit", "--to", s.id, "hello", "world", "42", '{"a":[1,true,null]}'));
    await eventually(() => assert.deepEqual(ev, [["hello", "world", 42, { a: [1, true, null] }]]));
    // a custom namespace on the same connection
    const c = await connected(connect(st().url, "/chat", WS));
    const ec = record(c);
    await ok(st().sioctl("emit", "--nsp", "/chat", "in-chat", "1"));
    await eventually(() => assert.deepEqual(ec, [["in-chat", 1]]));
  });

  test(`${kind}: the default client upgrades from polling (gateway) to websocket (front)`, async () => {
    const h = await http("GET", `${st().url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(h.status, 200);
    assert.deepEqual(JSON.parse(h.body.slice(1)).upgrades, ["websocket"]);
    const s = connect(st().url, "/");
    const upgraded = once(s.io.engine, "upgrade", 10000);
    await connected(s);
    const sid = s.io.engine.id;
    await upgraded;
    assert.equal(s.io.engine.transport.name, "websocket");
    assert.equal(s.io.engine.id, sid, "the upgrade must keep the Engine.IO session");
    const ev = record(s);
    await ok(st().sioctl("emit", "--to", s.id, "after-upgrade", '"x"'));
    await eventually(() => assert.deepEqual(ev, [["after-upgrade", "x"]]));
  });

  test(`${kind}: sioctl emit reaches a websocket client and a polling-only client, in order`, async () => {
    const w = await connected(connect(st().url, "/", WS));
    const p = await connected(connect(st().url, "/", POLLING));
    assert.equal(w.io.engine.transport.name, "websocket");
    assert.equal(p.io.engine.transport.name, "polling");
    const [ew, ep] = [record(w), record(p)];
    const N = 20;
    for (let i = 0; i < N; i++) await ok(st().sioctl("emit", "--to", w.id, "--to", p.id, "seq", String(i)));
    await ok(st().sioctl("emit", "both", '"x"'));
    const [gw, gp] = await settle(st(), [ew, ep]);
    const want = [...Array.from({ length: N }, (_, i) => ["seq", i]), ["both", "x"]];
    assert.deepEqual(gw, want);
    assert.deepEqual(gp, want);
  });

  test(`${kind}: a session keeps the rooms it joined before the upgrade`, async () => {
    let open;
    const gate = new Promise((r) => { open = r; });
    const s = await connected(connect(st().url, "/", { transports: [eio.NodeXHR, gatedWebSocket(gate)] }));
    assert.equal(s.io.engine.transport.name, "polling");
    await ok(st().sioctl("join", "--to", s.id, "before-upgrade"));
    const rooms = JSON.parse((await ok(st().sioctl("rooms", "--json"))).stdout);
    assert.deepEqual(rooms.find((x) => x.room === "before-upgrade")?.members, [s.id]);
    const ev = record(s);
    await ok(st().sioctl("emit", "--to", "before-upgrade", "polled", "1"));
    await eventually(() => assert.deepEqual(ev, [["polled", 1]]));
    assert.equal(s.io.engine.transport.name, "polling", "upgraded before the gate opened");
    const upgraded = once(s.io.engine, "upgrade", 10000);
    open();
    await upgraded;
    assert.equal(s.io.engine.transport.name, "websocket");
    await ok(st().sioctl("emit", "--to", "before-upgrade", "room-after-upgrade", '"y"'));
    await eventually(() => assert.deepEqual(ev, [["polled", 1], ["room-after-upgrade", "y"]]));
  });

  test(`${kind}: heartbeats cross the proxy: a websocket client outlives several ping timeouts`, async () => {
    const s = await connected(connect(st().url, "/", WS));
    const sid = s.io.engine.id;
    let pings = 0, gone = null;
    s.io.engine.on("ping", () => pings++);
    s.on("disconnect", (r) => { gone = r; });
    await sleep(5000); // > ping_interval + ping_timeout (3 s)
    assert.equal(gone, null, `disconnected: ${gone}`);
    assert.ok(pings >= 2, `only ${pings} pings in 5 s (ping_interval 1.5 s)`);
    assert.equal(s.io.engine.id, sid);
    const ev = record(s);
    await ok(st().sioctl("emit", "--to", s.id, "still", "1"));
    await eventually(() => assert.deepEqual(ev, [["still", 1]]));
  }, { timeout: 20000 });

  test(`${kind}: large frames both ways are passed on whole`, async () => {
    const s = await connected(connect(st().url, "/", WS));
    const ev = record(s);
    const big = "x".repeat(100000);
    await ok(st().sioctl("emit", "--to", s.id, "big", JSON.stringify(big)));
    await eventually(() => assert.equal(ev[0]?.[1]?.length, big.length));
    assert.equal(ev[0][1], big);
    // client -> server: a 200 KB event, as `sioctl listen` sees it
    const listen = await startListen(st().stateDir, ["upload"], { env: { SIO_CONFIG: CONFIG }, name: `listen:${kind}` });
    const tag = `up${Math.random().toString(36).slice(2)}`;
    s.emit("upload", tag, "y".repeat(200000));
    try {
      await eventually(() => assert.match(listen.output, new RegExp(`"${tag}","y{200000}"`)), 8000, 100);
    } finally {
      await listen.stop("SIGKILL");
    }
  });

  test(`${kind}: a bare Engine.IO client at engine_path goes over websocket too`, async () => {
    const c = new eio.Socket(st().url, { path: "/engine.io/", transports: ["websocket"], forceNew: true });
    try {
      await once(c, "open", 8000);
      assert.equal(c.transport.name, "websocket");
      const got = once(c, "message", 8000);
      await ok(st().sioctl("send", "--sid", c.id, "bare-hello"));
      assert.deepEqual(await got, ["bare-hello"]);
    } finally {
      c.close();
    }
  });
}

// ---- SIO_WS=0: polling only --------------------------------------------------------
for (const kind of KINDS) {
  test(`${kind}: SIO_WS=0 starts no sio-front and the handshake offers no upgrade`, async () => {
    const stack = await started(await startStack(kind, { config: CONFIG, env: { SIO_WS: "0" } }));
    try {
      assert.doesNotMatch(stack.proc.output, /sio-front pid/);
      const front = await leftovers(stackPids(stack));
      assert.deepEqual(front.filter((l) => /sio-front/.test(l)), []);
      const h = await http("GET", `${stack.url}/socket.io/?EIO=4&transport=polling`);
      assert.equal(h.status, 200);
      assert.deepEqual(JSON.parse(h.body.slice(1)).upgrades, []);
      // the default client stays on polling, and works
      const s = connect(stack.url, "/");
      let upgrades = 0;
      s.io.engine.on("upgrade", () => upgrades++);
      await connected(s);
      const ev = record(s);
      await ok(stack.sioctl("emit", "--to", s.id, "polling-only", "1"));
      await eventually(() => assert.deepEqual(ev, [["polling-only", 1]]));
      assert.equal(upgrades, 0);
      assert.equal(s.io.engine.transport.name, "polling");
      // and a WebSocket is refused (by the gateway: transport not enabled)
      const w = connect(stack.url, "/", WS);
      await once(w, "connect_error");
      s.disconnect();
      w.disconnect();
    } finally {
      await stopAndCheck(stack);
    }
  }, { timeout: 45000 });
}

// ---- supervision ---------------------------------------------------------------------
// The script's restart policy (scripts/lib-run.sh): a death is seen within
// a 0.5 s tick and the first restart follows 0.2 s later; 5 deaths in a
// row, each within 5 s of the start, end it.  START is what a process may
// take to come up on a busy box.  Clients retry every second at most.
// Deadlines are built from these.
const TICK = 500, FIRST_DELAY = 200, QUICK = 5000, TRIES = 5, START = 15000;
const RESTARTED = TICK + FIRST_DELAY + START;
const RECONNECT = { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 1000 };

async function logged(stack, re, ms, from) {
  return eventually(() => {
    const m = stack.proc.output.slice(from).match(re);
    assert.ok(m, `no ${re} in the script's output within ${ms} ms:\n${stack.proc.output.slice(from)}`);
    return m;
  }, ms, 50);
}

// Live sio-fcgi processes in the web server's process group.
async function gateways(stack) {
  const web = Number(stack.proc.output.match(/(?:lighttpd|apache2) pid (\d+)/)[1]);
  const r = await run("ps", ["-eo", "pid=,pgid=,stat=,args="]);
  return r.stdout.split("\n").map((l) => l.trim().split(/\s+/)).filter(([, pgid, stat, cmd]) =>
    Number(pgid) === web && stat && !stat.startsWith("Z") && cmd === path.join(BIN, "sio-fcgi")).map(([pid]) => Number(pid));
}

for (const kind of KINDS) {
  const st = () => stacks[kind];
  const me = `run-${kind}`;

  test(`${kind}: kill -9 of sio-front: the script restarts it, websocket clients reconnect through the proxy`, async () => {
    const stack = st();
    const s = await connected(connect(stack.url, "/", { ...WS, ...RECONNECT }));
    const ev = record(s);
    const f = frontPid(stack);
    const reconnected = once(s, "connect", RESTARTED + 10000); // the next one
    const from = stack.proc.output.length;
    process.kill(f.pid, "SIGKILL");
    await logged(stack, new RegExp(`${me}: sio-front \\(pid ${f.pid}\\) died \\(SIGKILL\\) [\\d.]+ s after its start; restarting it in 0\\.2 s`), TICK + 5000, from);
    await logged(stack, /sio-front restarted \(pid \d+\)/, RESTARTED, from);
    const g = frontPid(stack);
    assert.notEqual(g.pid, f.pid);
    assert.equal(g.port, f.port);
    assert.equal(g.user, f.user);
    assert.equal(stack.proc.child.exitCode, null, "the script exited");
    await reconnected;
    assert.equal(s.io.engine.transport.name, "websocket");
    await ok(stack.sioctl("emit", "--to", s.id, "after-front-restart", '"x"'));
    await eventually(() => assert.deepEqual(ev, [["after-front-restart", "x"]]));
    // and a new client, with the default transports (polling, then the upgrade)
    const n = connect(stack.url, "/");
    const upgraded = once(n.io.engine, "upgrade", 10000);
    await connected(n);
    await upgraded;
    const en = record(n);
    await ok(stack.sioctl("emit", "--to", n.id, "new-client", "1"));
    await eventually(() => assert.deepEqual(en, [["new-client", 1]]));
  }, { timeout: RESTARTED + 40000 });

  test(`${kind}: kill -9 of sio-fcgi: ${kind === "lighttpd" ? "lighttpd" : "mod_fcgid"} starts it again, polling clients connect and get emits`, async () => {
    const stack = st();
    const p = await connected(connect(stack.url, "/", { ...POLLING, ...RECONNECT }));
    const ep = record(p);
    const before = await gateways(stack);
    assert.ok(before.length >= 1, "no sio-fcgi process");
    const from = stack.proc.output.length;
    for (const pid of before) process.kill(pid, "SIGKILL");
    if (kind === "lighttpd") {
      // lighttpd restarts it at once, or a second later when it died young
      await logged(stack, new RegExp(`${me}: sio-fcgi \\(pid ${before[0]}\\) died \\(lighttpd: child signalled: 9\\) [\\d.]+ s after its start; lighttpd restarts it`), TICK + 5000, from);
      await logged(stack, /sio-fcgi restarted by lighttpd \(pid \d+\)/, 2000 + RESTARTED, from);
    } else {
      // mod_fcgid notices within its scan intervals (1 s) and logs it
      await logged(stack, new RegExp(`${me}: a sio-fcgi process died: \\S*sio-fcgi\\((${before.join("|")})\\) exit\\(`), 5000 + RESTARTED, from);
    }
    // a new polling client is served by a new gateway
    const n = await eventually(() => connected(connect(stack.url, "/", POLLING)), RESTARTED, 500);
    const en = record(n);
    await ok(stack.sioctl("emit", "--to", n.id, "gateway-back", "1"));
    await eventually(() => assert.deepEqual(en, [["gateway-back", 1]]));
    const after = await gateways(stack);
    assert.ok(after.length >= 1 && after.every((x) => !before.includes(x)), `gateways before ${before}, after ${after}`);
    // and the one that was connected comes back too (its poll was cut)
    await eventually(() => assert.ok(p.connected, "polling client not connected"), RESTARTED);
    await ok(stack.sioctl("emit", "--to", p.id, "gateway-back", "2"));
    await eventually(() => assert.deepEqual(ep.filter((e) => e[0] === "gateway-back"), [["gateway-back", 2]]), RESTARTED);
    assert.equal(stack.proc.child.exitCode, null, "the script exited");
  }, { timeout: RESTARTED * 2 + 40000 });
}

// lighttpd starts a gateway that dies at once again every second or two, for
// ever: the script counts those deaths from lighttpd's log and gives up.
test("lighttpd: a gateway that cannot start any more (config broken) makes the script give up, leaving no process", async () => {
  const config = writeConfig(readFileSync(CONFIG, "utf8"));
  const stack = await started(await startStack("lighttpd", { config }));
  const pids = stackPids(stack);
  const [gw] = await gateways(stack);
  writeFileSync(config, "ping_interval = not-a-number\n");
  process.kill(gw, "SIGKILL");
  // 5 deaths, each within QUICK of the one before (lighttpd waits 1-2 s)
  const r = await Promise.race([stack.proc.exited, sleep(TRIES * (QUICK + TICK) + 15000).then(() => null)]);
  assert.ok(r, `run-lighttpd did not give up:\n${stack.proc.output.slice(-3000)}`);
  assert.equal(r.code, 1);
  assert.match(stack.proc.output, /run-lighttpd: sio-fcgi(?: \(pid \d+\))? died \(lighttpd: child exited: 1\) [\d.]+ s after its start, the 5th time in a row within 5 s: giving up/);
  assert.match(stack.proc.output, /sio-fcgi\[\d+\] error: config .*ping_interval must be an integer/);
  await eventually(async () => assert.deepEqual(await leftovers(pids), []), 5000, 200);
}, { timeout: TRIES * (QUICK + TICK) + 60000 });

// ---- the default heartbeat (25 s + 20 s) ---------------------------------------------
// An idle Socket.IO WebSocket carries only a ping (server) and a pong
// (client) every ping_interval: no proxy timeout may end it sooner than the
// heartbeat would.  Both web servers at once, default config, 2 pings (~52 s).
test("lighttpd + apache: an idle websocket with the default heartbeat lives through two ping intervals", async () => {
  const tries = await Promise.allSettled(KINDS.map(async (k) => started(await startStack(k))));
  const both = tries.filter((t) => t.status === "fulfilled").map((t) => t.value);
  try {
    for (const t of tries) if (t.status === "rejected") throw t.reason;
    const clients = await Promise.all(both.map(async (stack) => {
      const s = await connected(connect(stack.url, "/", WS));
      const c = { stack, s, sid: s.io.engine.id, pings: 0, gone: null };
      s.io.engine.on("ping", () => c.pings++);
      s.on("disconnect", (r) => { c.gone = r; });
      return c;
    }));
    await sleep(52000);
    for (const c of clients) {
      assert.equal(c.gone, null, `${c.stack.kind}: disconnected (${c.gone})`);
      assert.equal(c.pings, 2, `${c.stack.kind}: ${c.pings} pings`);
      assert.equal(c.s.io.engine.id, c.sid);
      const ev = record(c.s);
      await ok(c.stack.sioctl("emit", "--to", c.s.id, "awake", "1"));
      await eventually(() => assert.deepEqual(ev, [["awake", 1]]));
    }
  } finally {
    for (const stack of both) await stopAndCheck(stack);
  }
}, { timeout: 100000 });
