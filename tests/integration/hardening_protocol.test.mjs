// Protocol errors and abusive clients, answered as the Node reference server
// (socket.io 4.x, engine.io 6.x, ws 8.x) answers them: raw requests over
// node:net (what a client library would never send), on the embedded front
// (stated + sio-front) and behind lighttpd and Apache (scripts/run-*), with
// the real socket.io-client checking that the server still serves.  Each
// test names the exact answer; README "Protocol errors: what the server
// answers" lists them, and where lws or the web server answers first.
import net from "node:net";
import path from "node:path";
import { readFileSync } from "node:fs";
import {
  BIN, assert, test, before, after, startStated, startProcess, startStack, freePort, writeConfig,
  connect, connected, record, eventually, sioctl, sleep, closeClients, startListen,
} from "./lib.mjs";

// http_timeout is read back by the slow-client tests: the front closes what
// is still in transit after it.
const HTTP_TIMEOUT = 2000;
const CONFIG = writeConfig(`
ping_interval = 5000
ping_timeout = 5000
http_timeout = ${HTTP_TIMEOUT}
[namespace /]
`);
const MAX = 1000000; // max_http_buffer_size, the default (maxPayload)

// ---- raw HTTP and WebSocket over node:net ---------------------------------------
// Sends `chunks` (strings or Buffers, `gap` ms apart) and resolves with the
// first complete response: {status, headers (lower-case names), body,
// closed, sock}; {status: 0, closed: true} when the server hung up without
// one, {status: 0, timedOut: true} when nothing came within `wait` ms.
function rawHttp(port, chunks, { gap = 0, wait = 8000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    let data = Buffer.alloc(0), done = false;
    const finish = (closed) => {
      if (done) return;
      const txt = data.toString("latin1");
      const e = txt.indexOf("\r\n\r\n");
      if (e < 0) { if (closed) { done = true; resolve({ status: 0, closed }); } return; }
      const lines = txt.slice(0, e).split("\r\n");
      const headers = {};
      for (const l of lines.slice(1)) { const i = l.indexOf(":"); headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim(); }
      let body = data.subarray(e + 4);
      if (headers["transfer-encoding"] === "chunked") {
        if (!/\r\n0\r\n\r\n$/.test(body.toString("latin1")) && !closed) return;
        let out = "", s = body.toString("latin1");
        for (;;) { const n = parseInt(s, 16); if (!n) break; const st = s.indexOf("\r\n") + 2; out += s.slice(st, st + n); s = s.slice(st + n + 2); }
        body = Buffer.from(out, "latin1");
      } else {
        const want = Number(headers["content-length"] ?? 0);
        if (body.length < want && !closed) return;
        body = body.subarray(0, want);
      }
      done = true;
      clearTimeout(t);
      resolve({ status: Number(lines[0].split(" ")[1]), headers, body: body.toString(), closed, sock });
    };
    const t = setTimeout(() => { sock.destroy(); if (!done) { done = true; resolve({ status: 0, closed: false, timedOut: true }); } }, wait);
    sock.on("connect", async () => {
      for (const c of [].concat(chunks)) { if (sock.destroyed) return; sock.write(c); if (gap) await sleep(gap); }
    });
    sock.on("data", (d) => { data = Buffer.concat([data, d]); finish(false); });
    sock.on("error", () => {});
    sock.on("close", () => { clearTimeout(t); finish(true); });
  });
}

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const upgradeReq = (port, query, extra = `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n`, method = "GET") =>
  `${method} /socket.io/?${query} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}\r\n`;

// A client frame: masked unless told, with the length written as given.
function frame(op, payload, { mask = true, fin = true, announce } = {}) {
  const data = Buffer.from(payload);
  const len = announce ?? BigInt(data.length);
  let hdr;
  if (len < 126n) hdr = Buffer.from([(fin ? 0x80 : 0) | op, (mask ? 0x80 : 0) | Number(len)]);
  else if (len < 65536n) { hdr = Buffer.alloc(4); hdr[0] = (fin ? 0x80 : 0) | op; hdr[1] = (mask ? 0x80 : 0) | 126; hdr.writeUInt16BE(Number(len), 2); }
  else { hdr = Buffer.alloc(10); hdr[0] = (fin ? 0x80 : 0) | op; hdr[1] = (mask ? 0x80 : 0) | 127; hdr.writeBigUInt64BE(len, 2); }
  if (!mask) return Buffer.concat([hdr, data]);
  const m = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const out = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ m[i & 3];
  return Buffer.concat([hdr, m, out]);
}

// A raw WebSocket session: {sock, messages, next(pred), closeCode, closed}.
// Answers pings ('2') and the server's close frame (then hangs up).
function rawWs(port, query = "EIO=4&transport=websocket") {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0), up = false;
    const c = {
      sock, messages: [], waiters: [], closeCode: null,
      send: (text) => sock.write(frame(1, text)),
      next(pred = () => true, timeout = 8000) {
        const i = c.messages.findIndex(pred);
        if (i >= 0) return Promise.resolve(c.messages.splice(i, 1)[0]);
        return new Promise((res, rej) => {
          const w = { pred, res };
          const t = setTimeout(() => rej(new Error(`no matching message within ${timeout} ms`)), timeout);
          w.res = (m) => { clearTimeout(t); res(m); };
          c.waiters.push(w);
        });
      },
    };
    c.closed = new Promise((res) => sock.on("close", () => res(c.closeCode ?? 1006)));
    sock.on("error", () => {});
    sock.on("connect", () => sock.write(upgradeReq(port, query)));
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (!up) {
        const e = buf.indexOf("\r\n\r\n");
        if (e < 0) return;
        if (!buf.subarray(0, e).toString().startsWith("HTTP/1.1 101")) return reject(new Error(buf.toString()));
        up = true;
        buf = buf.subarray(e + 4);
        resolve(c);
      }
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 0x7f, off = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
        else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
        if (buf.length < off + len) return;
        const op = buf[0] & 15, p = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (op === 8) {
          c.closeCode = p.length >= 2 ? p.readUInt16BE(0) : 1005;
          sock.write(frame(8, p.subarray(0, 2)), () => sock.end());
          continue;
        }
        const m = p.toString();
        if (m === "2") { c.send("3"); continue; }
        const w = c.waiters.find((x) => x.pred(m));
        if (w) { c.waiters.splice(c.waiters.indexOf(w), 1); w.res(m); } else c.messages.push(m);
      }
    });
  });
}

// A raw WebSocket session connected to "/": c.sid (Engine.IO), c.id (socket).
async function wsConnected(port) {
  const c = await rawWs(port);
  c.sid = JSON.parse((await c.next()).slice(1)).sid;
  c.send("40");
  c.id = JSON.parse((await c.next((m) => m.startsWith("40"))).slice(2)).sid;
  return c;
}

// A polling session connected to "/": {sid, id, url, get(), post(body)}.
async function pollConnected(base) {
  const hs = await (await fetch(`${base}/socket.io/?EIO=4&transport=polling`)).text();
  const sid = JSON.parse(hs.slice(1)).sid;
  const url = `${base}/socket.io/?EIO=4&transport=polling&sid=${sid}`;
  const s = {
    sid, url,
    get: async () => { const r = await fetch(url); return { status: r.status, body: await r.text() }; },
    post: async (body, headers = {}) => { const r = await fetch(url, { method: "POST", body, headers: { "content-type": "text/plain;charset=UTF-8", ...headers } }); return { status: r.status, body: await r.text() }; },
  };
  assert.deepEqual(await s.post("40"), { status: 200, body: "ok" });
  const g = await s.get();
  s.id = JSON.parse(g.body.slice(2)).sid;
  return s;
}

// ---- the stacks -----------------------------------------------------------------------
let front, lighttpd, apache;
async function startFront() {
  const stated = await startStated({ config: CONFIG });
  const port = await freePort();
  const proc = await startProcess(path.join(BIN, "sio-front"),
    ["--port", String(port), "--state", stated.stateDir, "--config", CONFIG], { ready: /listening on http/, name: `sio-front:${port}` });
  return {
    kind: "embedded", port, proc, stated, url: `http://127.0.0.1:${port}`, stateDir: stated.stateDir,
    sioctl: (...a) => sioctl(stated.stateDir, CONFIG, ...a),
    async stop() { await proc.stop(); await stated.stop(); },
  };
}
before(async () => {
  front = await startFront();
  lighttpd = await startStack("lighttpd", { config: CONFIG });
  apache = await startStack("apache", { config: CONFIG });
});
after(async () => {
  closeClients();
  for (const s of [front, lighttpd, apache]) if (s) await s.stop();
});
const stacks = () => [front, lighttpd, apache];

const UNKNOWN = '{"code":1,"message":"Session ID unknown"}';

// ---- 1. an ACK for an id that does not fit 64 bits -------------------------------
test("1. an ACK whose id does not fit 64 bits is ignored, the session stays open (polling and WebSocket)", async () => {
  const huge = "184467440737095516161844674407370955161";
  for (const st of stacks()) {
    const p = await pollConnected(st.url);
    assert.deepEqual(await p.post(`43${huge}["late"]`), { status: 200, body: "ok" }, st.kind);
    assert.equal((await st.sioctl("emit", "--to", p.id, "after", "1")).code, 0);
    assert.deepEqual(await p.get(), { status: 200, body: '42["after",1]' }, st.kind);
  }
  for (const st of [front, lighttpd]) { // WebSocket: the front, direct and through a web server
    const c = await wsConnected(st.port);
    c.send(`43${huge}["late"]`);
    c.send(`461-${huge}[{"_placeholder":true,"num":0}]`);
    c.sock.write(frame(2, Buffer.from([1, 2, 3])));
    assert.equal((await st.sioctl("emit", "--to", c.id, "after", "2")).code, 0);
    assert.equal(await c.next((m) => m.startsWith("42")), '42["after",2]', st.kind);
    c.sock.destroy();
  }
});

// ---- 2. maxPayload exactly, and one byte more ------------------------------------------
test("2. a WebSocket message of exactly maxPayload is delivered; one byte more gets close 1009", async () => {
  const c = await wsConnected(front.port);
  const listen = await startListen(front.stateDir, ["--from-start", "big"]);
  try {
    const text = (n) => `42["big","${"a".repeat(n)}"]`; // n + 12 bytes
    assert.equal(Buffer.byteLength(text(MAX - 12)), MAX);
    c.sock.write(frame(1, text(MAX - 12)));
    const whole = `"big","args":["${"a".repeat(MAX - 12)}"]`;
    await eventually(() => assert.ok(listen.output.includes(whole), "the whole message arrived"), 15000);
    const d = await wsConnected(front.port);
    d.sock.write(frame(1, text(MAX - 11)));
    assert.equal(await d.closed, 1009);
    c.sock.destroy();
  } finally { await listen.stop(); }
}, { timeout: 60000 });

// ---- 3. chunked POST bodies ---------------------------------------------------------------
const chunkedPost = (port, url, parts) => rawHttp(port, [
  `POST ${url} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n`,
  ...parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`), "0\r\n\r\n"], { gap: 30 });
test("3. a chunked polling POST: read whole behind lighttpd and Apache (a CONNECT connects); the front answers 411 and keeps the session", async () => {
  for (const st of [lighttpd, apache]) {
    const hs = await (await fetch(`${st.url}/socket.io/?EIO=4&transport=polling`)).text();
    const sid = JSON.parse(hs.slice(1)).sid;
    const u = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    const r = await chunkedPost(st.port, u, ["4", "0"]);
    assert.deepEqual([r.status, r.body], [200, "ok"], st.kind);
    const g = await (await fetch(st.url + u)).text();
    assert.match(g, /^40\{"sid":"[^"]+"\}$/, st.kind);
  }
  const hs = await (await fetch(`${front.url}/socket.io/?EIO=4&transport=polling`)).text();
  const sid = JSON.parse(hs.slice(1)).sid;
  const u = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
  const r = await chunkedPost(front.port, u, ["4", "0"]);
  assert.deepEqual([r.status, r.body], [411, "Length Required\n"]);
  const ok = await fetch(front.url + u, { method: "POST", body: "40", headers: { "content-type": "text/plain" } });
  assert.equal(await ok.text(), "ok"); // the session is still there
});

// ---- 4. unknown sids that are long or unusual ------------------------------------------------
test("4. unknown sid, long (10 KB) or unusual (%2e%2e%2f, %FF, ../): 400 Session ID unknown (GET, POST, WebSocket)", async () => {
  const sids = ["A".repeat(10240), "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%FF%FE", "../../x"];
  for (const st of stacks()) {
    for (const sid of sids) {
      if (st === lighttpd && sid === "%FF%FE") continue; // lighttpd refuses it first (README)
      const q = `EIO=4&transport=polling&sid=${sid}`;
      const get = await rawHttp(st.port, `GET /socket.io/?${q} HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.deepEqual([get.status, get.headers["content-type"], get.body], [400, "application/json", UNKNOWN], `${st.kind} GET ${sid.slice(0, 20)}`);
      const post = await rawHttp(st.port, `POST /socket.io/?${q} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n40`);
      assert.deepEqual([post.status, post.body], [400, UNKNOWN], `${st.kind} POST ${sid.slice(0, 20)}`);
      const ws = await rawHttp(st.port, upgradeReq(st.port, `EIO=4&transport=websocket&sid=${sid}`));
      assert.deepEqual([ws.status, ws.body], [400, "Session ID unknown"], `${st.kind} WebSocket ${sid.slice(0, 20)}`);
    }
  }
});

test("4b. a %00 in the sid: 400 Session ID unknown on the front and through Apache; lighttpd refuses it first (400, README)", async () => {
  const q = "EIO=4&transport=polling&sid=ab%00cd";
  for (const st of [front, apache]) {
    const get = await rawHttp(st.port, `GET /socket.io/?${q} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.deepEqual([get.status, get.body], [400, UNKNOWN], st.kind);
  }
  const ws = await rawHttp(front.port, upgradeReq(front.port, "EIO=4&transport=websocket&sid=ab%00cd"));
  assert.deepEqual([ws.status, ws.body], [400, "Session ID unknown"]);
  const bad = await rawHttp(front.port, `GET /socket.io/?EIO=4&transport=polling&sid=%zz%4 HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.deepEqual([bad.status, bad.body], [400, UNKNOWN], "malformed escapes");
  const l = await rawHttp(lighttpd.port, `GET /socket.io/?${q} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal(l.status, 400);
});

test("4c. a request head over 16 KB: 431, as Node (front)", async () => {
  const r = await rawHttp(front.port, `GET /socket.io/?EIO=4&transport=polling&sid=${"A".repeat(17000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal(r.status, 431);
});

// ---- 5. the WebSocket handshake -----------------------------------------------------------------
test("5. WebSocket handshake: bad key or version 400, POST 400 Bad handshake method, Upgrade other 400 (as Node's ws)", async () => {
  const q = "EIO=4&transport=websocket";
  const KEYMSG = "Missing or invalid Sec-WebSocket-Key header", VERMSG = "Missing or invalid Sec-WebSocket-Version header";
  for (const st of stacks()) {
    const cases = [
      [`Sec-WebSocket-Version: 13\r\n`, 400, KEYMSG],
      [`Sec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n`, 400, KEYMSG],
      [`Sec-WebSocket-Key: ${KEY}\r\n`, 400, VERMSG],
      [`Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 12\r\n`, 400, VERMSG],
      [`Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: abc\r\n`, 400, VERMSG],
    ];
    for (const [hdrs, status, body] of cases) {
      const r = await rawHttp(st.port, upgradeReq(st.port, q, hdrs));
      assert.deepEqual([r.status, r.body], [status, body], `${st.kind}: ${JSON.stringify(hdrs)}`);
      if (body === VERMSG) assert.equal(r.headers["sec-websocket-version"], "13, 8");
    }
    const v8 = await rawHttp(st.port, upgradeReq(st.port, q, `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 8\r\n`));
    assert.equal(v8.status, 101, `${st.kind}: version 8 is accepted, as ws does`);
    v8.sock?.destroy();
    const post = await rawHttp(st.port, upgradeReq(st.port, q, `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n`, "POST"));
    assert.deepEqual([post.status, post.body], [400, "Bad handshake method"], st.kind);
  }
  // Apache passes neither Upgrade nor Connection to FastCGI: sio-fcgi sees
  // plain polling there (README)
  for (const st of [front, lighttpd]) {
    for (const t of ["websocket", "polling"]) {
      const r = await rawHttp(st.port, `GET /socket.io/?EIO=4&transport=${t} HTTP/1.1\r\nHost: x\r\nUpgrade: something-else\r\nConnection: Upgrade\r\n\r\n`);
      assert.deepEqual([r.status, r.body], [400, "Invalid Upgrade header"], `${st.kind} ${t}`);
    }
  }
  // without "Connection: upgrade" Node serves a plain request: so does the front
  const plain = await rawHttp(front.port, `GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nUpgrade: something-else\r\n\r\n`);
  assert.equal(plain.status, 200);
  assert.match(plain.body, /^0\{"sid"/);
});

// ---- 6. WebSocket framing --------------------------------------------------------------------------
test("6. WebSocket framing: protocol errors close 1002, a 2^62-byte frame 1009 at once, each followed by the server's FIN", async () => {
  const cases = [
    ["unmasked", frame(1, "4hello", { mask: false }), 1002],
    ["2^62 bytes announced (header only)", frame(1, "", { announce: 1n << 62n }).subarray(0, 14), 1009],
    ["1,000,001 bytes announced (header only)", frame(2, "", { announce: 1000001n }).subarray(0, 14), 1009],
    ["ping of 126 bytes", frame(9, Buffer.alloc(126, 97)), 1002],
    ["close with a 1-byte payload", frame(8, Buffer.from([3])), 1002],
    ["fragmented ping", frame(9, "x", { fin: false }), 1002],
    ["RSV1 without permessage-deflate", Buffer.concat([Buffer.from([0xc1]), frame(1, "4x").subarray(1)]), 1002],
    ["opcode 3", frame(3, "4x"), 1002],
    ["continuation without a message", frame(0, "4x"), 1002],
  ];
  for (const [name, bytes, code] of cases) {
    const c = await wsConnected(front.port);
    let ended = false;
    c.sock.on("end", () => { ended = true; });
    c.sock.write(bytes);
    assert.equal(await c.closed, code, name);
    assert.ok(ended, `${name}: the server ended the connection`);
  }
  const s = await connected(connect(front.url, "/", { transports: ["websocket"] }));
  const ev = record(s);
  assert.equal((await front.sioctl("emit", "--to", s.id, "still", "1")).code, 0);
  await eventually(() => assert.deepEqual(ev, [["still", 1]]));
});

// ---- 7. overlapping and broken-off POSTs --------------------------------------------------------------
test("7. a second POST while one is arriving: 400 and the session closes (transport error); a POST broken off closes it too", async () => {
  const s = await connected(connect(front.url, "/", { transports: ["polling"] }));
  const gone = new Promise((r) => s.on("disconnect", r));
  const sid = s.io.engine.id;
  const u = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
  const first = net.connect(front.port, "127.0.0.1");
  first.on("error", () => {});
  await new Promise((r) => first.on("connect", r));
  let firstData = "";
  first.on("data", (d) => { firstData += d; });
  first.write(`POST ${u} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\n42["x",`);
  await sleep(300); // the first body is being read (the front has its head by now)
  const second = await rawHttp(front.port, `POST ${u} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\n42["y",1]`);
  assert.deepEqual([second.status, second.body], [400, ""]);
  assert.ok(["transport close", "transport error"].includes(await gone), `disconnect reason ${await gone}`);
  first.write('"aaaaaaaaaaaaa"]'.slice(0, 13));
  await eventually(() => assert.match(firstData, /^HTTP\/1.1 200/));
  const after = await rawHttp(front.port, `GET ${u} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.deepEqual([after.status, after.body], [400, UNKNOWN]);
  first.destroy();

  const p = await pollConnected(front.url);
  const c = net.connect(front.port, "127.0.0.1");
  c.on("error", () => {});
  await new Promise((r) => c.on("connect", r));
  c.write(`POST /socket.io/?EIO=4&transport=polling&sid=${p.sid} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\n42["x",`);
  await sleep(200);
  c.destroy();
  await eventually(async () => assert.deepEqual(await p.get(), { status: 400, body: UNKNOWN }));
});

// ---- 8. slow and abusive clients ----------------------------------------------------------------------
const rss = (pid) => Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]); // KB
async function servedMeanwhile(st) {
  const s = await connected(connect(st.url, "/", { transports: ["websocket"] }));
  const ev = record(s);
  assert.equal((await st.sioctl("emit", "--to", s.id, "meanwhile", "1")).code, 0);
  await eventually(() => assert.deepEqual(ev, [["meanwhile", 1]]));
  s.disconnect();
}

test("8a. a head that never ends and a body that trickles (1 byte / 300 ms) are closed after http_timeout; others are served meanwhile", async () => {
  const t0 = Date.now();
  const head = rawHttp(front.port, ["GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n", ...Array(100).fill("X-Slow: y\r\n")], { gap: 300, wait: 4 * HTTP_TIMEOUT + 10000 });
  const p = await pollConnected(front.url);
  const body = rawHttp(front.port, [`POST /socket.io/?EIO=4&transport=polling&sid=${p.sid} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n4`, ...Array(200).fill("a")], { gap: 300, wait: 4 * HTTP_TIMEOUT + 10000 });
  await servedMeanwhile(front);
  const [h, b] = await Promise.all([head, body]);
  const took = Date.now() - t0;
  assert.deepEqual([h.status, h.closed, b.status, b.closed], [0, true, 0, true]);
  assert.ok(took >= HTTP_TIMEOUT - 1000, `closed after ${took} ms, http_timeout ${HTTP_TIMEOUT}`);
  assert.ok(took < 100 * 300, `closed by the server after ${took} ms, before the client was done`);
  assert.deepEqual(await p.get(), { status: 400, body: UNKNOWN }); // the broken-off POST closed its session
}, { timeout: 60000 });

test("8b. 2000 half-open connections: RSS bounded, all closed after http_timeout, a client is served meanwhile", async () => {
  const N = 2000;
  const pid = front.proc.child.pid;
  const before = rss(pid);
  const socks = [];
  const closed = [];
  for (let i = 0; i < N; i++) {
    const s = net.connect(front.port, "127.0.0.1");
    s.on("error", () => {});
    closed.push(new Promise((r) => s.on("close", r)));
    s.on("connect", () => s.write(i % 2 ? "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n" : ""));
    socks.push(s);
    if (i % 200 === 199) await sleep(20);
  }
  await servedMeanwhile(front);
  const during = rss(pid);
  assert.ok(during - before < 64 * 1024, `RSS grew ${during - before} KB for ${N} half-open connections`);
  await Promise.race([Promise.all(closed), sleep(4 * HTTP_TIMEOUT + 20000).then(() => { throw new Error("not all closed"); })]);
  await servedMeanwhile(front);
}, { timeout: 60000 });

test("8c. a flood of 2000 CONNECTs to unknown namespaces: each gets its CONNECT_ERROR, RSS bounded, others served", async () => {
  const pid = front.proc.child.pid;
  const c = await rawWs(front.port);
  await c.next();
  const before = rss(pid);
  const N = 2000;
  let got = 0;
  for (let i = 0; i < N; i++) c.send(`40/nope${i},`);
  await eventually(async () => {
    while (c.messages.length) { if (c.messages.shift().startsWith("44/nope")) got++; }
    assert.equal(got, N);
  }, 30000);
  await servedMeanwhile(front);
  assert.ok(rss(pid) - before < 32 * 1024, `RSS grew ${rss(pid) - before} KB`);
  c.sock.destroy();
}, { timeout: 60000 });
