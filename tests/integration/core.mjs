// The core scenarios (issue "Core"): the real socket.io-client over
// long-polling through a real web server in front of sio-fcgi, with
// `sioctl` acting on the same store.  defineCore(kind) registers them for
// one web server ("lighttpd" or "apache").
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  REPO, assert, test, before, after, startStack, connect, connected, once, record,
  eventually, http, eioSession, sleep, tmpDir, sioctl, whyGone, writeConfig,
} from "./lib.mjs";

const CONFIG = path.join(REPO, "tests/integration/conf/core.conf");
const PING_INTERVAL = 1000; // core.conf's
const POLLING = { transports: ["polling"] };

// Emits a sentinel event to everyone in `/` and waits until each of the given
// sockets has it: since delivery is in log order, whatever a socket has not
// received before the sentinel it will never receive.
async function settle(stack, sockets, events) {
  const tag = `s${Math.random().toString(36).slice(2)}`;
  const r = await stack.sioctl("emit", "sentinel", tag);
  assert.equal(r.code, 0, r.stderr);
  await eventually(() => {
    events.forEach((ev, i) =>
      assert.ok(ev.some((e) => e[0] === "sentinel" && e[1] === tag), `sentinel not received by socket ${i}${whyGone(sockets[i])}`));
  });
}

async function ok(p) {
  const r = await p;
  assert.equal(r.code, 0, `sioctl failed (${r.code}): ${r.stderr}`);
  return r;
}

// core.conf with another ping_timeout (ms), or core.conf itself.
function coreConfig(pingTimeout) {
  const text = readFileSync(CONFIG, "utf8");
  const changed = text.replace(/^ping_timeout = \d+$/m, `ping_timeout = ${pingTimeout}`);
  return changed === text ? CONFIG : writeConfig(changed);
}

// pingTimeout: Apache's mod_fcgid makes a request wait a whole second (or two)
// whenever every gateway process is busy, so a pong can arrive seconds
// after its ping while the pool grows; its run needs a longer ping_timeout.
export function defineCore(kind, { pingTimeout = 1000 } = {}) {
  let stack;
  const config = coreConfig(pingTimeout);
  before(async () => { stack = await startStack(kind, { config }); });
  after(async () => { if (stack) await stack.stop(); });

  test(`${kind}: connects to / over polling and is listed by sioctl`, async () => {
    const s = await connected(connect(stack.url, "/", POLLING));
    assert.match(s.id, /^[A-Za-z0-9_-]{20}$/);
    assert.notEqual(s.id, s.io.engine.id, "socket id must differ from the Engine.IO sid");
    const r = await ok(stack.sioctl("sockets", "--json"));
    const me = JSON.parse(r.stdout).find((x) => x.id === s.id);
    assert.ok(me, "socket not listed");
    assert.equal(me.nsp, "/");
    assert.deepEqual(me.rooms, [s.id]);
  });

  test(`${kind}: connects to a custom namespace and to a pattern namespace`, async () => {
    const a = await connected(connect(stack.url, "/my-namespace", POLLING));
    const b = await connected(connect(stack.url, "/dyn-42", POLLING));
    const r = JSON.parse((await ok(stack.sioctl("sockets", "--json"))).stdout);
    assert.equal(r.find((x) => x.id === a.id).nsp, "/my-namespace");
    assert.equal(r.find((x) => x.id === b.id).nsp, "/dyn-42");
  });

  test(`${kind}: an unknown namespace is refused with "Invalid namespace"`, async () => {
    const s = connect(stack.url, "/nope", POLLING);
    const [err] = await once(s, "connect_error");
    assert.equal(err.message, "Invalid namespace");
    const d = connect(stack.url, "/dyn-x", POLLING); // does not match ~/dyn-[0-9]+
    const [err2] = await once(d, "connect_error");
    assert.equal(err2.message, "Invalid namespace");
  });

  test(`${kind}: sioctl emit reaches every socket of the namespace, and only it`, async () => {
    const a = await connected(connect(stack.url, "/", POLLING));
    const b = await connected(connect(stack.url, "/", POLLING));
    const c = await connected(connect(stack.url, "/my-namespace", POLLING));
    const ea = record(a), eb = record(b), ec = record(c);
    await ok(stack.sioctl("emit", "hello", "world", "42", '{"a":[1,true,null]}', '"quoted"'));
    await ok(stack.sioctl("emit", "--nsp", "/my-namespace", "custom", "x"));
    await settle(stack, [a, b], [ea, eb]);
    for (const ev of [ea, eb]) assert.deepEqual(ev[0], ["hello", "world", 42, { a: [1, true, null] }, "quoted"]);
    await eventually(() => assert.deepEqual(ec, [["custom", "x"]]));
    assert.ok(!ec.some((e) => e[0] === "hello"));
  });

  test(`${kind}: emit to a room, to a socket id, with --except, and to a union of rooms`, async () => {
    const a = await connected(connect(stack.url, "/", POLLING));
    const b = await connected(connect(stack.url, "/", POLLING));
    const c = await connected(connect(stack.url, "/", POLLING));
    const ea = record(a), eb = record(b), ec = record(c);
    await ok(stack.sioctl("join", "--to", a.id, "r1", "r2"));
    await ok(stack.sioctl("join", "--to", b.id, "r1"));
    await ok(stack.sioctl("emit", "--to", "r1", "room-event", "1"));
    await ok(stack.sioctl("emit", "--to", c.id, "direct", "2"));
    await ok(stack.sioctl("emit", "--to", "r1", "--except", b.id, "except-event", "3"));
    await ok(stack.sioctl("emit", "--to", "r1", "--to", "r2", "union-event", "4"));
    await settle(stack, [a, b, c], [ea, eb, ec]);
    const names = (ev) => ev.map((e) => e[0]).filter((n) => n !== "sentinel");
    assert.deepEqual(names(ea), ["room-event", "except-event", "union-event"]);
    assert.deepEqual(names(eb), ["room-event", "union-event"]);
    assert.deepEqual(names(ec), ["direct"]);
  });

  test(`${kind}: sioctl rooms shows membership and forgets a socket that disconnects`, async () => {
    const a = await connected(connect(stack.url, "/", POLLING));
    const b = await connected(connect(stack.url, "/", POLLING));
    await ok(stack.sioctl("join", "--to", a.id, "--to", b.id, "lobby"));
    let rooms = JSON.parse((await ok(stack.sioctl("rooms", "--json"))).stdout);
    let lobby = rooms.find((r) => r.room === "lobby");
    assert.deepEqual(lobby.members.sort(), [a.id, b.id].sort());
    assert.ok(!rooms.some((r) => r.room === a.id), "private rooms are hidden without --all");
    const plain = (await ok(stack.sioctl("rooms"))).stdout;
    assert.match(plain, /^lobby\t2\t/m);
    a.disconnect();
    await eventually(async () => {
      rooms = JSON.parse((await ok(stack.sioctl("rooms", "--json"))).stdout);
      lobby = rooms.find((r) => r.room === "lobby");
      assert.deepEqual(lobby.members, [b.id]);
    });
    const socks = JSON.parse((await ok(stack.sioctl("sockets", "--json"))).stdout);
    assert.ok(!socks.some((s) => s.id === a.id));
    await ok(stack.sioctl("leave", "--to", "lobby", "lobby"));
    rooms = JSON.parse((await ok(stack.sioctl("rooms", "--json"))).stdout);
    assert.ok(!rooms.some((r) => r.room === "lobby"));
  });

  test(`${kind}: a client that stops polling is reaped and leaves its rooms`, async () => {
    const e = await eioSession(stack.url);
    let r = await e.post("40");
    assert.equal(r.status, 200);
    const first = await e.get();
    const id = JSON.parse(first.body.slice(2)).sid;
    await ok(stack.sioctl("join", "--to", id, "ghosts"));
    let rooms = JSON.parse((await ok(stack.sioctl("rooms", "--json"))).stdout);
    assert.ok(rooms.find((x) => x.room === "ghosts"));
    // pingInterval + pingTimeout without a pong: stated reaps it.
    await eventually(async () => {
      const socks = JSON.parse((await ok(stack.sioctl("sockets", "--json"))).stdout);
      assert.ok(!socks.some((s) => s.id === id), "still listed");
    }, PING_INTERVAL + pingTimeout + 6000, 200);
    rooms = JSON.parse((await ok(stack.sioctl("rooms", "--json"))).stdout);
    assert.ok(!rooms.find((x) => x.room === "ghosts"));
    r = await e.get();
    assert.equal(r.status, 400);
    assert.deepEqual(JSON.parse(r.body), { code: 1, message: "Session ID unknown" });
  }, { timeout: PING_INTERVAL + pingTimeout + 13000 });

  test(`${kind}: bad requests get the Node server's status codes and bodies`, async () => {
    const base = `${stack.url}/socket.io/`;
    const cases = [
      ["GET", "?EIO=4&transport=abc", 400, { code: 0, message: "Transport unknown" }],
      ["GET", "?EIO=4", 400, { code: 0, message: "Transport unknown" }],
      ["GET", "?EIO=3&transport=polling", 400, { code: 5, message: "Unsupported protocol version" }],
      ["GET", "?EIO=abc&transport=polling", 400, { code: 5, message: "Unsupported protocol version" }],
      ["GET", "?transport=polling", 400, { code: 5, message: "Unsupported protocol version" }],
      ["POST", "?EIO=4&transport=polling", 400, { code: 2, message: "Bad handshake method" }],
      ["GET", "?EIO=4&transport=websocket", 400, { code: 3, message: "Bad request" }],
      ["GET", "?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA", 400, { code: 1, message: "Session ID unknown" }],
      ["GET", "?EIO=4&transport=polling&sid=nope", 400, { code: 1, message: "Session ID unknown" }],
    ];
    for (const [m, q, status, body] of cases) {
      const r = await http(m, base + q, m === "POST" ? "40" : undefined);
      assert.equal(r.status, status, `${m} ${q}`);
      assert.equal(r.headers.get("content-type"), "application/json", `${m} ${q}`);
      assert.deepEqual(JSON.parse(r.body), body, `${m} ${q}`);
    }
  });

  test(`${kind}: an invalid packet closes only that session`, async () => {
    const bystander = await connected(connect(stack.url, "/", POLLING));
    const ev = record(bystander);
    for (const bad of ["abc", "", "4abc", "42{}", "40/my-namespace,[]", "9", "4" + "2[\"x\"]".repeat(1) + "\x1e" + "b!!"]) {
      const e = await eioSession(stack.url);
      await e.post("40");
      await e.post(bad);
      const r = await e.get();
      // either the session is gone (400) or its held GET got the close packet
      assert.ok(r.status === 400 || r.body.endsWith("1"), `after ${JSON.stringify(bad)}: ${r.status} ${r.body}`);
      const r2 = await e.get();
      assert.equal(r2.status, 400, `after ${JSON.stringify(bad)}`);
    }
    await settle(stack, [bystander], [ev]);
  });

  test(`${kind}: a second GET while one is held gets 400 and closes the session`, async () => {
    const e = await eioSession(stack.url);
    await e.post("40");
    await e.get(); // the CONNECT reply
    const held = e.get();
    await sleep(300);
    const second = await e.get();
    assert.equal(second.status, 400);
    const first = await held;
    assert.equal(first.status, 200);
    assert.equal(first.body, "1");
    assert.equal((await e.get()).status, 400);
  });

  test(`${kind}: maxHttpBufferSize: a 1e6-byte POST passes, one byte more gets 413`, async () => {
    const e = await eioSession(stack.url);
    await e.post("40");
    const id = JSON.parse((await e.get()).body.slice(2)).sid;
    const head = '42["big","', tail = '"]';
    const msg = head + "x".repeat(1e6 - head.length - tail.length) + tail;
    assert.equal(Buffer.byteLength(msg), 1e6);
    let r = await e.post(msg);
    assert.equal(r.status, 200, "a POST of exactly maxHttpBufferSize must pass");
    assert.equal(r.body, "ok");
    r = await e.post(head + "x".repeat(1e6 - head.length - tail.length + 1) + tail);
    assert.equal(r.status, 413);
    // the session survives (Node keeps it): its socket is still there
    const socks = JSON.parse((await ok(stack.sioctl("sockets", "--json"))).stdout);
    assert.ok(socks.some((s) => s.id === id), "socket lost after 413");
    const g = await e.get();
    assert.equal(g.status, 200);
  });

  test(`${kind}: the ping cycle keeps a polling client alive past ping timeout`, async () => {
    const s = await connected(connect(stack.url, "/", POLLING));
    const ev = record(s);
    // Longer than pingInterval + pingTimeout: without its pongs it would be gone.
    await sleep(PING_INTERVAL + pingTimeout + 1500);
    assert.ok(s.connected, `client dropped${whyGone(s)}`);
    await settle(stack, [s], [ev]);
  }, { timeout: PING_INTERVAL + pingTimeout + 13000 });

  test(`${kind}: sioctl errors: unknown namespace, bad JSON, no daemon`, async () => {
    let r = await stack.sioctl("emit", "--nsp", "/nope", "x");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown namespace/);
    r = await stack.sioctl("emit", "x", "{bad json");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not valid JSON/);
    r = await stack.sioctl("emit", "disconnect");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /reserved/);
    r = await stack.sioctl("frobnicate");
    assert.equal(r.code, 2);
    const many = Array.from({ length: 256 }, (_, i) => ["--to", `r${i}`]).flat();
    r = await stack.sioctl("sockets", ...many, "--room", "one-more");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /sockets: unknown option --to/); // each command takes its own options
    r = await stack.sioctl("emit", ...many, "--to", "r256", "x");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /too many --to rooms/);
    r = await sioctl(path.join(tmpDir(), "nothing"), undefined, "rooms");
    assert.equal(r.code, 3);
    assert.match(r.stderr, /stated/);
  });

  test(`${kind}: sioctl disconnect sends DISCONNECT and removes the socket`, async () => {
    const a = await connected(connect(stack.url, "/", POLLING));
    const b = await connected(connect(stack.url, "/", POLLING));
    const gone = once(a, "disconnect");
    await ok(stack.sioctl("disconnect", "--to", a.id));
    const [reason] = await gone;
    assert.equal(reason, "io server disconnect");
    const socks = JSON.parse((await ok(stack.sioctl("sockets", "--json"))).stdout);
    assert.ok(!socks.some((s) => s.id === a.id));
    assert.ok(socks.some((s) => s.id === b.id));
    assert.ok(b.connected);
  });
}

// Polling rules that depend on the order in which a web server hands
// requests to the gateway (registered for every stack by defineOrdering).
export function defineOrdering(kind) {
  let stack;
  before(async () => { stack = await startStack(kind, { config: CONFIG }); });
  after(async () => { if (stack) await stack.stop(); });

  test(`${kind}: a GET sent with the client's close gets the noop, later ones 400`, async () => {
    for (let i = 0; i < 5; i++) {
      const e = await eioSession(stack.url);
      await e.post("40");
      await e.get();
      // both at once, in either order at the gateway
      const [g, p] = await Promise.all([e.get(), e.post("1")]);
      assert.equal(p.status, 200);
      assert.equal(g.status, 200, `round ${i}`);
      assert.equal(g.body, "6", `round ${i}`);
      assert.equal((await e.get()).status, 400);
    }
  });
}
