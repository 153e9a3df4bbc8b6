// sio-front (the WebSocket + embedded front), started by the test next to its
// own stated on a free port with a temp state directory: the real
// socket.io-client over WebSocket, long-polling and the upgrade, sioctl
// acting on the same store, and raw WebSocket frames for what a client
// library would not send.
import net from "node:net";
import path from "node:path";
import {
  BIN, REPO, assert, test, before, after, startStated, startProcess, freePort, writeConfig,
  connect, connected, once, record, eventually, http, eioSession, sioctl, sleep, run,
} from "./lib.mjs";

const CONFIG = writeConfig(`
ping_interval = 1500
ping_timeout = 1500
connect_timeout = 5000
upgrade_timeout = 1000
[namespace /]
[namespace /chat]
`);

// ---- a raw WebSocket client over net.Socket ------------------------------------
// Enough of RFC 6455 to send masked frames (fragmented or not) and read the
// server's frames; answers Engine.IO pings unless autoPong is false, and a
// close frame with a close frame.
function rawWs(port, query, { autoPong = true } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    const key = Buffer.from(Array.from({ length: 16 }, () => Math.random() * 256 | 0)).toString("base64");
    let head = Buffer.alloc(0), upgraded = false, frag = null, fragOp = 0;
    const c = {
      sock, messages: [], waiters: [], closeCode: null, status: null, body: "",
      closed: null,
      sendFrame(opcode, payload, fin = true) {
        const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
        const mask = Buffer.from([1, 2, 3, 4].map(() => Math.random() * 256 | 0));
        let hdr;
        if (data.length < 126) hdr = Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | data.length]);
        else if (data.length < 65536) { hdr = Buffer.alloc(4); hdr[0] = (fin ? 0x80 : 0) | opcode; hdr[1] = 0x80 | 126; hdr.writeUInt16BE(data.length, 2); }
        else { hdr = Buffer.alloc(10); hdr[0] = (fin ? 0x80 : 0) | opcode; hdr[1] = 0x80 | 127; hdr.writeBigUInt64BE(BigInt(data.length), 2); }
        const masked = Buffer.alloc(data.length);
        for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ mask[i & 3];
        return new Promise((r) => sock.write(Buffer.concat([hdr, mask, masked]), () => r()));
      },
      send(text) { return c.sendFrame(1, text); },
      // Resolves with the first message (string or Buffer) matching pred, taken
      // out of the buffer; rejects after timeout.
      next(pred = () => true, timeout = 5000) {
        const i = c.messages.findIndex(pred);
        if (i >= 0) return Promise.resolve(c.messages.splice(i, 1)[0]);
        return new Promise((res, rej) => {
          const w = { pred, res };
          const t = setTimeout(() => { c.waiters.splice(c.waiters.indexOf(w), 1); rej(new Error(`no matching message within ${timeout} ms (have ${JSON.stringify(c.messages.map(String).slice(-5))})`)); }, timeout);
          w.res = (m) => { clearTimeout(t); res(m); };
          c.waiters.push(w);
        });
      },
      close() { sock.destroy(); },
    };
    c.closed = new Promise((res) => sock.on("close", () => res(c.closeCode ?? 1006)));
    const deliver = (m) => {
      if (autoPong && m === "2") { c.send("3"); return; }
      const w = c.waiters.find((x) => x.pred(m));
      if (w) { c.waiters.splice(c.waiters.indexOf(w), 1); w.res(m); } else c.messages.push(m);
    };
    const parse = () => {
      for (;;) {
        if (head.length < 2) return;
        const fin = head[0] & 0x80, op = head[0] & 0x0f;
        let len = head[1] & 0x7f, off = 2;
        if (len === 126) { if (head.length < 4) return; len = head.readUInt16BE(2); off = 4; }
        else if (len === 127) { if (head.length < 10) return; len = Number(head.readBigUInt64BE(2)); off = 10; }
        if (head.length < off + len) return;
        const payload = head.subarray(off, off + len);
        head = head.subarray(off + len);
        if (op === 8) { // answer like a browser: a close frame, then hang up
          c.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
          c.sendFrame(8, payload.subarray(0, 2)).then(() => sock.end());
          continue;
        }
        if (op === 9 || op === 10) continue;
        if (op !== 0) { frag = [payload]; fragOp = op; } else if (frag) frag.push(payload);
        if (!fin) continue;
        const all = Buffer.concat(frag || [payload]);
        deliver(fragOp === 1 ? all.toString("utf8") : Buffer.from(all));
        frag = null;
      }
    };
    sock.on("connect", () => {
      sock.write(`GET /socket.io/?${query} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    sock.on("data", (d) => {
      head = Buffer.concat([head, d]);
      if (!upgraded) {
        const e = head.indexOf("\r\n\r\n");
        if (e < 0) return;
        const h = head.subarray(0, e).toString();
        c.status = Number(h.split(" ")[1]);
        head = head.subarray(e + 4);
        if (c.status !== 101) {
          const m = h.match(/content-length: *(\d+)/i);
          const want = m ? Number(m[1]) : 0;
          const done = () => { c.body = head.subarray(0, want).toString(); resolve(c); };
          if (head.length >= want) done();
          else sock.on("data", () => { if (head.length >= want) done(); });
          upgraded = "no";
          return;
        }
        upgraded = true;
        resolve(c);
      }
      if (upgraded === true) parse();
    });
    sock.on("error", (e) => { if (!upgraded) reject(e); });
  });
}

// ---- the stack under test -------------------------------------------------------
async function startFront({ config = CONFIG, args = [] } = {}) {
  const stated = await startStated({ config });
  const port = await freePort();
  const front = await startProcess(path.join(BIN, "sio-front"),
    ["--port", String(port), "--state", stated.stateDir, "--config", config, ...args], {
      ready: /listening on http/, name: `sio-front:${port}`,
    });
  return {
    port, stated, front, url: `http://127.0.0.1:${port}`,
    sioctl: (...a) => sioctl(stated.stateDir, config, ...a),
    async stop() { await front.stop(); await stated.stop(); },
  };
}

async function ok(p) {
  const r = await p;
  assert.equal(r.code, 0, `sioctl failed (${r.code}): ${r.stderr}`);
  return r;
}

// Connects a raw WebSocket session to "/" and returns it with its socket id.
async function rawConnected(port) {
  const c = await rawWs(port, "EIO=4&transport=websocket");
  assert.equal(c.status, 101);
  const open = await c.next();
  assert.match(open, /^0\{"sid":"/);
  c.sid = JSON.parse(open.slice(1)).sid;
  await c.send("40");
  const ack = await c.next((m) => typeof m === "string" && m.startsWith("40"));
  c.id = JSON.parse(ack.slice(2)).sid;
  return c;
}

let st;
before(async () => { st = await startFront(); });
after(async () => { if (st) await st.stop(); });

test("websocket only: the real client connects and gets sioctl emit", async () => {
  const s = await connected(connect(st.url, "/", { transports: ["websocket"] }));
  assert.equal(s.io.engine.transport.name, "websocket");
  const ev = record(s);
  await ok(st.sioctl("emit", "hello", "world", "42", '{"a":[1,true]}'));
  await eventually(() => assert.deepEqual(ev, [["hello", "world", 42, { a: [1, true] }]]));
});

test("polling only: the real client connects and gets sioctl emit", async () => {
  const s = await connected(connect(st.url, "/", { transports: ["polling"] }));
  const ev = record(s);
  await ok(st.sioctl("emit", "--to", s.id, "direct", '"x"'));
  await eventually(() => assert.deepEqual(ev, [["direct", "x"]]));
  assert.equal(s.io.engine.transport.name, "polling");
});

test("polling upgraded to websocket: the real client upgrades and gets sioctl emit", async () => {
  const s = await connected(connect(st.url, "/"));
  await eventually(() => assert.equal(s.io.engine.transport.name, "websocket"));
  const ev = record(s);
  await ok(st.sioctl("emit", "--to", s.id, "after-upgrade", "1"));
  await eventually(() => assert.deepEqual(ev, [["after-upgrade", 1]]));
});

test("sioctl emit reaches every transport in the same order", async () => {
  const ws = await connected(connect(st.url, "/", { transports: ["websocket"] }));
  const poll = await connected(connect(st.url, "/", { transports: ["polling"] }));
  const up = await connected(connect(st.url, "/"));
  await eventually(() => assert.equal(up.io.engine.transport.name, "websocket"));
  const evs = [record(ws), record(poll), record(up)];
  const N = 40;
  for (let i = 0; i < N; i++) await ok(st.sioctl("emit", "--to", ws.id, "--to", poll.id, "--to", up.id, "seq", String(i)));
  await eventually(() => { for (const e of evs) assert.equal(e.length, N); }, 10000);
  const want = Array.from({ length: N }, (_, i) => ["seq", i]);
  for (const e of evs) assert.deepEqual(e, want);
});

test("room broadcasts over WebSocket: union of rooms once, --except, members only", async () => {
  const WS = { transports: ["websocket"] };
  const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map(() => connected(connect(st.url, "/", WS))));
  const [ea, eb, ec, ed] = [a, b, c, d].map(record);
  await ok(st.sioctl("join", "--to", a.id, "r1", "r2"));
  await ok(st.sioctl("join", "--to", b.id, "r1"));
  await ok(st.sioctl("join", "--to", d.id, "r2", "muted"));
  await ok(st.sioctl("emit", "--to", "r1", "--to", "r2", "--except", "muted", "u", "1"));
  // the same, with more room members than WebSocket connections (polling ones)
  const polls = await Promise.all([1, 2, 3, 4, 5, 6].map(() => connected(connect(st.url, "/", { transports: ["polling"] }))));
  const ep = polls.map(record);
  for (const p of polls) await ok(st.sioctl("join", "--to", p.id, "r1"));
  await ok(st.sioctl("emit", "--to", "r1", "u", "2"));
  await ok(st.sioctl("emit", "end", "3"));
  await eventually(() => { for (const e of [ea, eb, ec, ed, ...ep]) assert.deepEqual(e[e.length - 1], ["end", 3]); });
  assert.deepEqual(ea, [["u", 1], ["u", 2], ["end", 3]]);
  assert.deepEqual(eb, [["u", 1], ["u", 2], ["end", 3]]);
  assert.deepEqual(ec, [["end", 3]]);
  assert.deepEqual(ed, [["end", 3]]);
  for (const e of ep) assert.deepEqual(e, [["u", 2], ["end", 3]]);
});

test("an upgraded polling session keeps its rooms and gets what was queued during the probe", async () => {
  const e = await eioSession(st.url);
  assert.equal((await e.post("40")).status, 200);
  const r = await e.get();
  const m = r.body.match(/^40\{"sid":"([^"]+)"\}/);
  assert.ok(m, `no CONNECT reply: ${r.body}`);
  const id = m[1];
  await ok(st.sioctl("join", "--to", id, "room1"));
  const w = await rawWs(st.port, `EIO=4&transport=websocket&sid=${e.sid}`);
  assert.equal(w.status, 101);
  await w.send("2probe");
  assert.equal(await w.next(), "3probe");
  // queued for the polling transport, not fetched: the upgrade must flush it
  await ok(st.sioctl("emit", "--to", "room1", "during", '"probe"'));
  const noop = await e.get(); // the client pauses polling: a held GET gets a noop
  assert.equal(noop.status, 200);
  assert.equal(noop.body, "6");
  await w.send("5");
  assert.equal(await w.next(), '42["during","probe"]');
  await ok(st.sioctl("emit", "--to", "room1", "after", '"upgrade"'));
  assert.equal(await w.next(), '42["after","upgrade"]');
  const rooms = JSON.parse((await ok(st.sioctl("--json", "rooms"))).stdout);
  assert.ok(JSON.stringify(rooms).includes(id), `socket ${id} left its room: ${JSON.stringify(rooms)}`);
  assert.equal((await e.get()).status, 400, "polling on an upgraded session must be refused");
  w.close();
});

test("a probe that times out, sends something else, or goes away leaves the session on polling", async () => {
  const check = async (e) => { // still a working polling session
    assert.equal((await e.post("40")).status, 200);
    const r = await e.get();
    assert.equal(r.status, 200);
    assert.match(r.body, /^40\{"sid":"/);
  };
  // no '5' within upgrade_timeout (1000 ms)
  const e1 = await eioSession(st.url);
  const w1 = await rawWs(st.port, `EIO=4&transport=websocket&sid=${e1.sid}`);
  await w1.send("2probe");
  assert.equal(await w1.next(), "3probe");
  const t0 = Date.now();
  await w1.closed;
  assert.ok(Date.now() - t0 >= 900, "closed before upgrade_timeout");
  await check(e1);
  // anything but 2probe / 5 on the probing socket
  const e2 = await eioSession(st.url);
  const w2 = await rawWs(st.port, `EIO=4&transport=websocket&sid=${e2.sid}`);
  await w2.send("2probe");
  assert.equal(await w2.next(), "3probe");
  await w2.send("4hello");
  await w2.closed;
  await check(e2);
  // the client drops the probing socket
  const e3 = await eioSession(st.url);
  const w3 = await rawWs(st.port, `EIO=4&transport=websocket&sid=${e3.sid}`);
  await w3.send("2probe");
  assert.equal(await w3.next(), "3probe");
  w3.close();
  await sleep(100);
  await check(e3);
});

test("a message sent in fragments is reassembled", async () => {
  const c = await rawWs(st.port, "EIO=4&transport=websocket");
  await c.next(); // open
  await c.sendFrame(1, "4", false);
  await c.sendFrame(0, "0/ch", false);
  await c.sendFrame(0, "at,", true);
  assert.match(await c.next(), /^40\/chat,\{"sid":"[^"]{20}"\}$/);
  c.close();
});

test("a rejected WebSocket gets HTTP 400 and the Engine.IO message", async () => {
  const a = await rawWs(st.port, "EIO=5&transport=websocket");
  assert.equal(a.status, 400);
  assert.equal(a.body, "Unsupported protocol version");
  const b = await rawWs(st.port, "EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA");
  assert.equal(b.status, 400);
  assert.equal(b.body, "Session ID unknown");
  a.close();
  b.close();
});

test("a second WebSocket on an upgraded session is closed, the first keeps working", async () => {
  const e = await eioSession(st.url);
  await e.post("40");
  const id = JSON.parse((await e.get()).body.slice(2)).sid;
  const w = await rawWs(st.port, `EIO=4&transport=websocket&sid=${e.sid}`);
  await w.send("2probe");
  assert.equal(await w.next(), "3probe");
  await w.send("5");
  const w2 = await rawWs(st.port, `EIO=4&transport=websocket&sid=${e.sid}`);
  assert.equal(w2.status, 101);
  await w2.closed;
  await ok(st.sioctl("emit", "--to", id, "still", "here"));
  assert.equal(await w.next(), '42["still","here"]');
  w.close();
});

test("the heartbeat: pings keep a WebSocket alive; without pongs it is closed", async () => {
  const alive = await rawConnected(st.port);
  const silent = await rawWs(st.port, "EIO=4&transport=websocket", { autoPong: false });
  await silent.next();
  assert.equal(await silent.next((m) => m === "2", 3000), "2");
  const t0 = Date.now();
  const code = await silent.closed;
  const dt = Date.now() - t0;
  assert.ok(dt >= 1300 && dt < 3000, `closed ${dt} ms after the ping (ping_timeout 1500)`);
  assert.equal(code, 1005, "closed without a status code, as Node does");
  // the other one answered its pings and is still there
  await ok(st.sioctl("emit", "--to", alive.id, "alive", "1"));
  assert.equal(await alive.next((m) => m.startsWith("42")), '42["alive",1]');
  alive.close();
});

test("a client '1' closes the WebSocket and the session at once", async () => {
  const c = await rawConnected(st.port);
  await c.send("1");
  const t0 = Date.now();
  await c.closed;
  assert.ok(Date.now() - t0 < 1000);
  await eventually(async () => {
    const socks = JSON.parse((await ok(st.sioctl("--json", "sockets"))).stdout);
    assert.ok(!socks.some((s) => s.id === c.id), "socket still listed");
  });
});

test("sioctl disconnect --close reaches a WebSocket client", async () => {
  const s = await connected(connect(st.url, "/", { transports: ["websocket"] }));
  const gone = once(s, "disconnect");
  await ok(st.sioctl("disconnect", "--to", s.id, "--close"));
  const [reason] = await gone;
  assert.equal(reason, "io server disconnect");
});

test("the client bundle and the static files are served", async () => {
  const js = await http("GET", `${st.url}/socket.io/socket.io.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type"), /javascript/);
  assert.ok(js.body.length > 10000 && js.body.includes("io"), "not the client bundle");
  const map = await http("GET", `${st.url}/socket.io/socket.io.min.js.map`);
  assert.equal(map.status, 200);
  assert.equal(JSON.parse(map.body).version, 3);
  const page = await http("GET", `${st.url}/`);
  assert.equal(page.status, 200);
  assert.match(page.body, /socket\.io\/socket\.io\.js/);
  assert.equal((await http("GET", `${st.url}/nope.html`)).status, 404);
});

test("without --demo the demo endpoints do not exist: 404 like any missing file, and nobody is moved", async () => {
  const a = await connected(connect(st.url, "/", { transports: ["websocket"] }));
  const missing = await http("GET", `${st.url}/nope/rooms?room=chat`);
  assert.equal(missing.status, 404);
  const body = JSON.stringify({ nsp: "/", socket: a.id, room: "chat" });
  for (const [method, what, b] of [["GET", "rooms?nsp=%2F&room=chat"], ["POST", "join", body], ["POST", "leave", body]]) {
    const r = await http(method, `${st.url}/demo/${what}`, b, b ? { "content-type": "application/json" } : {});
    assert.equal(r.status, 404, `${method} /demo/${what}`);
    assert.equal(r.body, missing.body);
    assert.equal(r.headers.get("content-type"), missing.headers.get("content-type"));
  }
  const socks = JSON.parse((await ok(st.sioctl("sockets", "--json"))).stdout);
  assert.deepEqual(socks.find((x) => x.id === a.id).rooms, [a.id], "a socket joined through /demo/join");
});

test("demo endpoints (--demo): join, list, emit to the room, leave", async () => {
  const d = await startFront({ args: ["--demo"] });
  try {
    await demoEndpoints(d);
  } finally {
    await d.stop();
  }
});

async function demoEndpoints(st) {
  const a = await connected(connect(st.url, "/", { transports: ["websocket"] }));
  const b = await connected(connect(st.url, "/", { transports: ["polling"] }));
  const post = (what, body) => http("POST", `${st.url}/demo/${what}`, JSON.stringify(body), { "content-type": "application/json" });
  for (const s of [a, b]) assert.equal((await post("join", { nsp: "/", socket: s.id, room: "chat" })).status, 200);
  const list = await http("GET", `${st.url}/demo/rooms?nsp=%2F&room=chat`);
  assert.equal(list.status, 200);
  assert.deepEqual(JSON.parse(list.body).sort(), [a.id, b.id].sort());
  const ea = record(a), eb = record(b);
  await ok(st.sioctl("emit", "--to", "chat", "some-event", '"hello"'));
  await eventually(() => { assert.deepEqual(ea, [["some-event", "hello"]]); assert.deepEqual(eb, [["some-event", "hello"]]); });
  assert.equal((await post("leave", { nsp: "/", socket: a.id, room: "chat" })).status, 200);
  assert.deepEqual(JSON.parse((await http("GET", `${st.url}/demo/rooms?room=chat`)).body), [b.id]);
  assert.equal((await post("join", { nsp: "/chat", socket: a.id, room: "x" })).status, 404, "wrong namespace");
  assert.equal((await post("join", { nsp: "/", socket: "AAAAAAAAAAAAAAAAAAAA", room: "x" })).status, 404);
  assert.equal((await http("POST", `${st.url}/demo/join`, "{nope", {})).status, 400);
}

test("an oversized message closes only that connection (1009), fragmented or not", async () => {
  const other = await connected(connect(st.url, "/", { transports: ["websocket"] }));
  const ev = record(other);
  // exactly maxPayload (1e6 bytes) is fine
  const fits = await rawConnected(st.port);
  await fits.send("42" + JSON.stringify(["big", "x".repeat(1000000 - 2 - 10)]));
  // one byte more in a single frame: refused from the frame header
  const one = await rawConnected(st.port);
  one.sock.on("error", () => {});
  one.send("4" + "x".repeat(1000000));
  assert.equal(await one.closed, 1009);
  // the same in 64 KiB fragments, never finished: refused once past the
  // limit, without waiting for an end that never comes.  The client sends
  // just past the limit (16 x 64 KiB) and then nothing more.
  const frag = await rawConnected(st.port);
  frag.sock.on("error", () => {});
  let sent = 0, closed = false;
  frag.closed.then(() => { closed = true; });
  await frag.sendFrame(1, "4" + "y".repeat(65535), false);
  sent = 65536;
  // (a client stops sending once the close frame is in: writing on would
  // race the server's hang-up and lose the frame to a reset)
  while (!closed && frag.closeCode === null && sent <= 1000000) {
    await frag.sendFrame(0, "y".repeat(65536), false);
    sent += 65536;
  }
  assert.equal(await frag.closed, 1009);
  assert.match(st.front.output, /message over max_http_buffer_size/);
  // the others are unaffected
  await ok(st.sioctl("emit", "after-big", "1"));
  await eventually(() => assert.deepEqual(ev, [["after-big", 1]]));
  assert.equal(await fits.next((m) => m.startsWith("42")), '42["after-big",1]');
  fits.close();
});

test("an invalid packet closes only that connection", async () => {
  const other = await connected(connect(st.url, "/", { transports: ["websocket"] }));
  const ev = record(other);
  const bad = await rawConnected(st.port);
  await bad.send("abc");
  await bad.closed;
  const bad2 = await rawConnected(st.port);
  await bad2.send("4abc"); // a Socket.IO packet of an unknown type
  await bad2.closed;
  const bad3 = await rawConnected(st.port);
  await bad3.sendFrame(2, Buffer.from([1, 2, 3])); // binary with no attachment due
  await bad3.closed;
  for (const c of [bad, bad2, bad3])
    await eventually(async () => {
      const socks = JSON.parse((await ok(st.sioctl("--json", "sockets"))).stdout);
      assert.ok(!socks.some((s) => s.id === c.id), `socket ${c.id} of a closed session still listed`);
    });
  await ok(st.sioctl("emit", "after-bad", "1"));
  await eventually(() => assert.deepEqual(ev, [["after-bad", 1]]));
  assert.ok(other.connected);
});

test("a client that stops reading is dropped past max_queue_bytes; the others lose nothing", async () => {
  const lim = await startFront({ config: writeConfig("ping_interval = 20000\nping_timeout = 20000\nmax_queue_bytes = 1048576\n") });
  try {
    const good = await connected(connect(lim.url, "/", { transports: ["websocket"] }));
    const poll = await connected(connect(lim.url, "/", { transports: ["polling"] }));
    const eg = record(good), ep = record(poll);
    const stalled = await rawConnected(lim.port);
    stalled.sock.pause(); // never reads again: the kernel buffers fill, then our queue
    const N = 24, chunk = "z".repeat(120000);
    const args = Array.from({ length: 8 }, () => chunk); // ~960 kB per event
    for (let i = 0; i < N; i++) await ok(lim.sioctl("emit", "big", String(i), ...args));
    await eventually(() => { assert.equal(eg.length, N); assert.equal(ep.length, N); }, 20000);
    for (const e of [eg, ep]) {
      assert.deepEqual(e.map((x) => x[1]), Array.from({ length: N }, (_, i) => i), "lost or reordered");
      assert.ok(e.every((x) => x.length === 10 && x[2] === chunk));
    }
    await eventually(() => assert.match(lim.front.output, new RegExp(`session ${stalled.sid} dropped: fell behind \\(send queue`)), 10000);
    await eventually(async () => {
      const socks = JSON.parse((await ok(lim.sioctl("--json", "sockets"))).stdout);
      assert.ok(!socks.some((s) => s.id === stalled.id), "the stalled socket is still listed");
      assert.ok(socks.some((s) => s.id === good.id));
    });
    assert.ok(good.connected && poll.connected);
    stalled.close();
  } finally {
    await lim.stop();
  }
}, { timeout: 60000 });

test("per_message_deflate = 1: compressed both ways, big messages too, and a compressed bomb is refused", async () => {
  const z = await startFront({ config: writeConfig("per_message_deflate = 1\n") });
  try {
    const s = await connected(connect(z.url, "/", { transports: ["websocket"] }));
    assert.ok(s.io.engine.transport.ws._extensions["permessage-deflate"], "permessage-deflate not negotiated");
    const ev = record(s);
    const big = "a".repeat(120000);
    await ok(z.sioctl("emit", "big", big, big, big));
    await ok(z.sioctl("emit", "small", "1"));
    await eventually(() => assert.equal(ev.length, 2));
    assert.deepEqual(ev[0], ["big", big, big, big]);
    assert.deepEqual(ev[1], ["small", 1]);
    s.emit("client-big", "b".repeat(500000)); // compressed on the wire, fine once inflated
    await sleep(200);
    assert.ok(s.connected);
    const gone = once(s, "disconnect");
    s.emit("client-bomb", "c".repeat(2000000)); // a few kB on the wire, 2 MB inflated
    const [reason] = await gone;
    assert.match(reason, /transport (close|error)/);
    assert.match(z.front.output, /message over max_http_buffer_size/);
    // without the extension (a raw client offers none) the same front works too
    const raw = await rawConnected(z.port);
    await ok(z.sioctl("emit", "--to", raw.id, "plain", "1"));
    assert.equal(await raw.next((m) => m.startsWith("42")), '42["plain",1]');
    raw.close();
  } finally {
    await z.stop();
  }
}, { timeout: 30000 });

test("--reuse-port: two fronts on one port share the clients of every transport", async () => {
  const stated = await startStated({ config: CONFIG });
  const port = await freePort();
  const fronts = [];
  try {
    for (let i = 0; i < 2; i++)
      fronts.push(await startProcess(path.join(BIN, "sio-front"),
        ["--port", String(port), "--state", stated.stateDir, "--config", CONFIG, "--reuse-port"], {
          ready: /listening on http/, name: `sio-front-${i}:${port}`, env: { SIO_LOG_LEVEL: "debug" },
        }));
    const url = `http://127.0.0.1:${port}`;
    const kinds = [{ transports: ["websocket"] }, { transports: ["polling"] }, {}];
    const socks = [];
    for (let i = 0; i < 24; i++) socks.push(connect(url, "/", kinds[i % 3]));
    await Promise.all(socks.map((s) => connected(s)));
    const evs = socks.map(record);
    for (let i = 0; i < 5; i++) {
      const r = await sioctl(stated.stateDir, CONFIG, "emit", "shared", String(i));
      assert.equal(r.code, 0, r.stderr);
    }
    const want = [0, 1, 2, 3, 4].map((i) => ["shared", i]);
    await eventually(() => { for (const e of evs) assert.deepEqual(e, want); }, 10000);
    for (const f of fronts) assert.match(f.output, /new WebSocket session|upgraded to WebSocket/, `${f.name} got no WebSocket`);
    for (const s of socks) s.disconnect();
  } finally {
    for (const f of fronts) await f.stop();
    await stated.stop();
  }
}, { timeout: 40000 });

test("SIGKILL of one of two fronts: stated closes the dead front's WebSocket sessions, and only those", async () => {
  const stated = await startStated({ config: CONFIG });
  const fronts = [], socks = [];
  try {
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const f = await startProcess(path.join(BIN, "sio-front"),
        ["--port", String(port), "--state", stated.stateDir, "--config", CONFIG], {
          ready: /listening on http/, name: `sio-front-${i}:${port}`,
        });
      f.url = `http://127.0.0.1:${port}`;
      fronts.push(f);
    }
    for (let i = 0; i < 6; i++) socks.push(connect(fronts[i % 2].url, "/", { transports: ["websocket"], reconnection: false }));
    await Promise.all(socks.map((s) => connected(s)));
    const ids = async () => JSON.parse((await ok(sioctl(stated.stateDir, CONFIG, "--json", "sockets"))).stdout)
      .map((x) => x.id).sort();
    assert.deepEqual(await ids(), socks.map((s) => s.id).sort());
    fronts[0].child.kill("SIGKILL");
    const left = socks.filter((_, i) => i % 2 === 1).map((s) => s.id).sort();
    // stated's housekeeping looks at every session at least once a second
    await eventually(async () => assert.deepEqual(await ids(), left), 10000, 200);
    assert.match(stated.output, /closed: transport error/);
    await sleep(1500); // another pass or more: the live front's sessions stay
    assert.deepEqual(await ids(), left);
    for (const s of socks.filter((_, i) => i % 2 === 1)) assert.ok(s.connected);
  } finally {
    for (const s of socks) s.disconnect();
    for (const f of fronts) await f.stop();
    await stated.stop();
  }
}, { timeout: 40000 });

test("SIGTERM: the front closes its sessions, deletes its reader entry, exits 0", async () => {
  const s = await connected(connect(st.url, "/", { transports: ["websocket"] }));
  const gone = once(s, "disconnect");
  const r = await st.front.stop("SIGTERM");
  assert.equal(r.code, 0, `exit ${r.code} ${r.signal}\n${st.front.output}`);
  await gone;
  assert.match(st.front.output, /stopped/);
  const socks = JSON.parse((await ok(st.sioctl("--json", "sockets"))).stdout);
  assert.deepEqual(socks, [], "sessions of a stopped front must be gone");
  const dump = await run("mdb_dump", ["-p", "-s", "readers", st.stated.stateDir]);
  if (dump.code === 0) assert.ok(!dump.stdout.includes(`front-${st.front.child.pid}`), dump.stdout);
});
