// The conformance app (tests/conformance/sio.conf, handler
// scripts/examples/echo.c) checked packet by packet, without a client
// library: what the official Socket.IO suite's server must do (auth echoed
// on connection in / and /custom, message -> message-back, message-with-ack
// -> ack, binary kept, unknown namespace refused) over raw WebSocket and raw
// long-polling, and the bare Engine.IO echo at /engine.io/.
// tests/conformance/run-official runs the official suites themselves.
import path from "node:path";
import { REPO, assert, test, before, after, startStack, eioSession, http, sleep } from "./lib.mjs";
import { WebSocket } from "./handlers_util.mjs";

const CONFIG = path.join(REPO, "tests/conformance/sio.conf");
const stacks = {};
before(async () => {
  stacks.embedded = await startStack("embedded", { config: CONFIG });
  stacks.lighttpd = await startStack("lighttpd", { config: CONFIG });
});
after(async () => { for (const s of Object.values(stacks)) await s.stop(); });

// ---- a raw WebSocket that buffers every frame ------------------------------------
function rawWs(url) {
  const ws = new WebSocket(url);
  ws.binaryType = "nodebuffer";
  const frames = [], waiters = [];
  let closed = false;
  const push = () => { while (waiters.length && (frames.length || closed)) waiters.shift()(); };
  ws.on("message", (data, isBinary) => { frames.push(isBinary ? Buffer.from(data) : data.toString()); push(); });
  ws.on("close", () => { closed = true; push(); });
  ws.on("error", () => {});
  const api = {
    send: (d) => ws.send(d),
    close: () => ws.close(),
    get closed() { return closed; },
    // next frame that is not a ping (pings are answered)
    async next(timeout = 3000, { pings = false } = {}) {
      const end = Date.now() + timeout;
      for (;;) {
        if (!frames.length) {
          if (closed) throw new Error("closed");
          const left = end - Date.now();
          if (left <= 0) throw new Error("no frame in time");
          await new Promise((r) => { const t = setTimeout(r, left); waiters.push(() => { clearTimeout(t); r(); }); });
          continue;
        }
        const f = frames.shift();
        if (f === "2" && !pings) { ws.send("3"); continue; }
        return f;
      }
    },
    async waitClose(timeout = 3000) {
      const end = Date.now() + timeout;
      while (!closed && Date.now() < end) { frames.length = 0; await sleep(20); }
      return closed;
    },
  };
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(api));
    ws.once("error", reject);
    ws.once("unexpected-response", (_, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

async function sioWs(stack, nspPacket = "40") {
  const ws = await rawWs(`ws://127.0.0.1:${stack.port}/socket.io/?EIO=4&transport=websocket`);
  const open = await ws.next();
  assert.equal(open[0], "0");
  ws.send(nspPacket);
  return ws;
}

const PH = (n) => ({ _placeholder: true, num: n });

test("websocket: CONNECT to / answers {sid} only, then auth {} from the handler", async () => {
  const ws = await sioWs(stacks.embedded);
  const c = await ws.next();
  assert.match(c, /^40\{/);
  const body = JSON.parse(c.slice(2));
  assert.deepEqual(Object.keys(body), ["sid"]);
  assert.match(body.sid, /^[A-Za-z0-9_-]{20}$/);
  assert.equal(await ws.next(), '42["auth",{}]');
  ws.close();
});

test("websocket: the CONNECT payload is echoed in / and /custom", async () => {
  for (const [pkt, want] of [
    ['40{"token":"123"}', '42["auth",{"token":"123"}]'],
    ["40/custom,", '42/custom,["auth",{}]'],
    ['40/custom,{"token":"abc","n":[1,{"x":null}]}', '42/custom,["auth",{"token":"abc","n":[1,{"x":null}]}]'],
  ]) {
    const ws = await sioWs(stacks.embedded, pkt);
    const c = await ws.next();
    assert.ok(c.startsWith(pkt.startsWith("40/custom") ? "40/custom,{" : "40{"), c);
    assert.equal(await ws.next(), want);
    ws.close();
  }
});

test("websocket: an unknown namespace is refused and the connection stays usable", async () => {
  const ws = await sioWs(stacks.embedded, "40/random");
  assert.equal(await ws.next(), '44/random,{"message":"Invalid namespace"}');
  ws.send("40");
  assert.match(await ws.next(), /^40\{"sid":/);
  assert.equal(await ws.next(), '42["auth",{}]');
  ws.close();
});

test("websocket: message -> message-back with the same arguments", async () => {
  const ws = await sioWs(stacks.embedded);
  await ws.next(); await ws.next();
  ws.send('42["message",1,"2",{"3":[true]},null,-0.5,"\\u00e9\\n"]');
  assert.equal(await ws.next(), '42["message-back",1,"2",{"3":[true]},null,-0.5,"é\\n"]');
  ws.close();
});

test("websocket: binary attachments come back as attachments", async () => {
  const ws = await sioWs(stacks.embedded);
  await ws.next(); await ws.next();
  ws.send(`452-["message",${JSON.stringify(PH(0))},{"deep":[${JSON.stringify(PH(1))}]}]`);
  ws.send(Buffer.from([1, 2, 3]));
  ws.send(Buffer.from([]));
  assert.equal(await ws.next(), `452-["message-back",${JSON.stringify(PH(0))},{"deep":[${JSON.stringify(PH(1))}]}]`);
  assert.deepEqual([...(await ws.next())], [1, 2, 3]);
  assert.deepEqual([...(await ws.next())], []);
  ws.close();
});

test("websocket: message-with-ack is acknowledged with the same arguments (text and binary)", async () => {
  const ws = await sioWs(stacks.embedded);
  await ws.next(); await ws.next();
  ws.send('42456["message-with-ack",1,"2",{"3":[false]}]');
  assert.equal(await ws.next(), '43456[1,"2",{"3":[false]}]');
  ws.send(`452-789["message-with-ack",${JSON.stringify(PH(0))},${JSON.stringify(PH(1))}]`);
  ws.send(Buffer.from([4, 5, 6]));
  ws.send(Buffer.from([7]));
  assert.equal(await ws.next(), `462-789[${JSON.stringify(PH(0))},${JSON.stringify(PH(1))}]`);
  assert.deepEqual([...(await ws.next())], [4, 5, 6]);
  assert.deepEqual([...(await ws.next())], [7]);
  ws.close();
});

test("websocket: disconnecting a namespace sends nothing back; another keeps working", async () => {
  const ws = await sioWs(stacks.embedded);
  await ws.next(); await ws.next();
  ws.send("40/custom,");
  await ws.next(); await ws.next();
  ws.send("41/custom,");
  ws.send('42["message","still here"]');
  assert.equal(await ws.next(), '42["message-back","still here"]');
  ws.send("41");
  assert.equal(await ws.next(2000, { pings: true }), "2", "after 41 the next frame must be a ping");
  ws.close();
});

test("websocket: malformed packets close the connection", async () => {
  for (const bad of ["4abc", "42{}", '42abc["message-with-ack",1]', "45-[]"]) {
    const ws = await sioWs(stacks.embedded);
    await ws.next(); await ws.next();
    ws.send(bad);
    assert.ok(await ws.waitClose(3000), `not closed after ${bad}`);
  }
});

test("websocket: no CONNECT within connect_timeout closes the connection", async () => {
  const ws = await rawWs(`ws://127.0.0.1:${stacks.embedded.port}/socket.io/?EIO=4&transport=websocket`);
  const t0 = Date.now();
  assert.ok(await ws.waitClose(2500), "still open");
  assert.ok(Date.now() - t0 >= 400, "closed too early");
});

// ---- polling (both stacks) ---------------------------------------------------------

// Reads polling payloads until `count` packets other than pings arrived.
async function pollPackets(s, count, timeout = 4000) {
  const got = [];
  const end = Date.now() + timeout;
  while (got.length < count) {
    if (Date.now() > end) throw new Error(`got only ${JSON.stringify(got)}`);
    const r = await s.get();
    assert.equal(r.status, 200, r.body);
    for (const p of r.body.split("\x1e")) {
      if (p === "2") { await s.post("3"); continue; }
      if (p === "6") continue;
      got.push(p);
    }
  }
  return got;
}

for (const kind of ["embedded", "lighttpd"]) {
  test(`${kind}/polling: connect, auth echo, message-back and acks with binary`, async () => {
    const stack = stacks[kind];
    const s = await eioSession(stack.url);
    assert.equal((await s.post('40{"token":"p"}')).status, 200);
    const [c, auth] = await pollPackets(s, 2);
    assert.match(c, /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
    assert.equal(auth, '42["auth",{"token":"p"}]');
    await s.post(`451-["message",${JSON.stringify(PH(0))},"x"]\x1ebAQIDBA==`);
    assert.deepEqual(await pollPackets(s, 2), [`451-["message-back",${JSON.stringify(PH(0))},"x"]`, "bAQIDBA=="]);
    await s.post('4212["message-with-ack",{"a":[1]}]');
    assert.deepEqual(await pollPackets(s, 1), ['4312[{"a":[1]}]']);
    await s.post("40/random");
    assert.deepEqual(await pollPackets(s, 1), ['44/random,{"message":"Invalid namespace"}']);
  });
}

// ---- the bare Engine.IO endpoint (engine_path = /engine.io/) -------------------------

test("engine: /engine.io/ echoes text and binary over WebSocket", async () => {
  const ws = await rawWs(`ws://127.0.0.1:${stacks.embedded.port}/engine.io/?EIO=4&transport=websocket`);
  const open = await ws.next();
  assert.equal(open[0], "0");
  const hs = JSON.parse(open.slice(1));
  assert.deepEqual([hs.pingInterval, hs.pingTimeout, hs.maxPayload], [300, 200, 1000000]);
  ws.send("4hello");
  assert.equal(await ws.next(), "4hello");
  ws.send(Buffer.from([1, 2, 3, 4]));
  assert.deepEqual([...(await ws.next())], [1, 2, 3, 4]);
  ws.send('4{"é":"\\u0001"}');
  assert.equal(await ws.next(), '4{"é":"\\u0001"}');
  ws.close();
});

for (const kind of ["embedded", "lighttpd"]) {
  test(`${kind}: /engine.io/ echoes a polling payload of text and binary in one GET`, async () => {
    const base = stacks[kind].url;
    const h = await http("GET", `${base}/engine.io/?EIO=4&transport=polling`);
    assert.equal(h.status, 200, `handshake at /engine.io/: ${h.status} ${h.body}`);
    const sid = JSON.parse(h.body.slice(1)).sid;
    const u = `${base}/engine.io/?EIO=4&transport=polling&sid=${sid}`;
    assert.equal((await http("POST", u, "4hello\x1ebAQIDBA==\x1e4two", { "content-type": "text/plain" })).status, 200);
    let body = "";
    const end = Date.now() + 3000;
    while (body.split("\x1e").filter((p) => p !== "2").length < 3 && Date.now() < end) {
      const g = await http("GET", u);
      assert.equal(g.status, 200);
      body += (body ? "\x1e" : "") + g.body;
    }
    assert.equal(body.split("\x1e").filter((p) => p !== "2").join("\x1e"), "4hello\x1ebAQIDBA==\x1e4two");
  });
}
