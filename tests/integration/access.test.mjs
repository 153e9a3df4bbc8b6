// Who may connect, and who they are: cors_origin as a list (the matching
// Origin reflected with Vary: Origin, no CORS headers for another one, as
// Node's cors middleware; WebSocket handshakes from an unlisted Origin get
// 403), the allow_request command (Node's allowRequest: exit 0 allows,
// anything else or running past allow_request_timeout is 403
// {"code":4,"message":"Forbidden"}) over polling and WebSocket, on the
// embedded front and through lighttpd + sio-fcgi; X-Forwarded-For believed
// only from trusted_proxies; handlers and allow_request inherit only the
// kept environment (no SECRET_TOKEN, PATH and LC_* kept).
import { readFileSync, existsSync } from "node:fs";
import nodeHttp from "node:http";
import {
  assert, test, before, after, startStack, connect, connected, eventually, sioctl, closeClients,
} from "./lib.mjs";
import { app, refused, WebSocket } from "./handlers_util.mjs";

const TIMEOUT = 3000; // allow_request_timeout of the config below

// allow.sh decides on the query's "deny": 1 refuses, msg refuses with a
// message, slow outlives the timeout; it keeps what it was given.
const A = app(`
cors_origin = http://good.example, http://also.example
trusted_proxies = 127.0.0.1, ::1
allow_request = sh allow.sh
allow_request_timeout = ${TIMEOUT}

[namespace /]
event.env = env > handler-env.txt; sioctl ack done
`, {
  "allow.sh": `#!/bin/sh
input=$(cat)
printf '%s' "$input" > last-request.json
{ env; echo "ARGS_TRANSPORT=$SIO_TRANSPORT"; } > allow-env.txt
case "$input" in
*'"deny":"1"'*) exit 1 ;;
*'"deny":"msg"'*) echo "not today"; exit 3 ;;
*'"deny":"slow"'*) sleep 60; exit 0 ;;
esac
exit 0
`,
});
// The same stack without trusted_proxies, cors_origin or allow_request.
const B = app(`[namespace /]\n`);

let emb, lig, plain;
const senv = { SECRET_TOKEN: "s3cret-token", LC_TIME: "C.UTF-8" };
before(async () => {
  [emb, lig, plain] = await Promise.all([
    startStack("embedded", { config: A.config, env: senv }),
    startStack("lighttpd", { config: A.config, env: senv }),
    startStack("embedded", { config: B.config }),
  ]);
});
after(async () => {
  closeClients();
  await Promise.all([emb, lig, plain].filter(Boolean).map((s) => s.stop()));
});

// A raw request (fetch may not send Origin): {status, headers, body}.
function raw(url, headers = {}, method = "GET") {
  return new Promise((resolve, reject) => {
    const req = nodeHttp.request(url, { method, headers }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

// A raw WebSocket handshake: resolves {status, body} of a refusal, or
// {open: true} (then closes it).
function wsHandshake(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on("open", () => { ws.close(); resolve({ open: true }); });
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, type: res.headers["content-type"], body }));
    });
    ws.on("error", (e) => { if (!ws._req) reject(e); });
  });
}

const hs = (base, q = "") => `${base}/socket.io/?EIO=4&transport=polling${q}`;
const wsUrl = (base, q = "") => `${base.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket${q}`;

for (const kind of ["embedded", "lighttpd"]) {
  const stack = () => (kind === "embedded" ? emb : lig);

  test(`${kind}: cors_origin list: a listed Origin is reflected with Vary: Origin, another gets no CORS headers`, async () => {
    for (const o of ["http://good.example", "http://also.example"]) {
      const r = await raw(hs(stack().url), { Origin: o });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.headers["access-control-allow-origin"], o);
      assert.equal(r.headers["access-control-allow-credentials"], "true");
      assert.match(r.headers.vary || "", /Origin/);
    }
    const bad = await raw(hs(stack().url), { Origin: "http://evil.example" });
    assert.equal(bad.status, 200, "polling is still answered (the browser enforces CORS), as Node");
    assert.equal(bad.headers["access-control-allow-origin"], undefined);
    assert.equal(bad.headers["access-control-allow-credentials"], undefined);
    const pre = await raw(hs(stack().url), { Origin: "http://good.example", "Access-Control-Request-Method": "POST" }, "OPTIONS");
    assert.equal(pre.status, 204);
    assert.equal(pre.headers["access-control-allow-origin"], "http://good.example");
    const preBad = await raw(hs(stack().url), { Origin: "http://evil.example" }, "OPTIONS");
    assert.equal(preBad.headers["access-control-allow-origin"], undefined);
  });

  test(`${kind}: a listed Origin's CORS headers come with GETs answered after waiting, not only with the handshake`, async () => {
    const o = { Origin: "http://good.example" };
    const h = await raw(hs(stack().url), o);
    assert.equal(h.status, 200, h.body);
    const sid = JSON.parse(h.body.slice(1)).sid;
    const cors = (r, what) => {
      assert.equal(r.status, 200, `${what}: ${r.body}`);
      assert.equal(r.headers["access-control-allow-origin"], "http://good.example", what);
      assert.equal(r.headers["access-control-allow-credentials"], "true", what);
      assert.match(r.headers.vary || "", /Origin/, what);
    };
    const post = (body) => new Promise((resolve, reject) => {
      const req = nodeHttp.request(hs(stack().url, `&sid=${sid}`), { method: "POST", headers: { ...o, "Content-Type": "text/plain;charset=UTF-8" } }, (res) => {
        let b = "";
        res.on("data", (d) => (b += d));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: b }));
      });
      req.on("error", reject);
      req.end(body);
    });
    cors(await post("40"), "the POST");
    const first = await raw(hs(stack().url, `&sid=${sid}`), o); // the CONNECT answer is queued: answered at once
    assert.match(first.body, /^40\{"sid":/);
    cors(first, "a GET answered at once");
    const held = raw(hs(stack().url, `&sid=${sid}`), o); // nothing queued: it waits
    cors(await post("1"), "the closing POST");
    const closed = await held; // the close answers it ('6', or '1')
    assert.match(closed.body, /^[16]$/);
    cors(closed, "a GET answered after waiting");
  });

  test(`${kind}: allow_request allows (exit 0) and refuses (403 {"code":4,"message":"Forbidden"}) polling handshakes`, async () => {
    const ok = await raw(hs(stack().url), { Origin: "http://good.example" });
    assert.equal(ok.status, 200);
    const seen = JSON.parse(readFileSync(A.file("last-request.json"), "utf8"));
    assert.equal(seen.headers.origin, "http://good.example");
    assert.equal(seen.query.transport, "polling");
    assert.match(seen.url, /^\/socket\.io\/\?EIO=4&transport=polling/);
    assert.ok(seen.address, "the client's address is given");
    const no = await raw(hs(stack().url, "&deny=1"));
    assert.equal(no.status, 403);
    assert.match(no.headers["content-type"], /application\/json/);
    assert.deepEqual(JSON.parse(no.body), { code: 4, message: "Forbidden" });
    const msg = await raw(hs(stack().url, "&deny=msg"));
    assert.equal(msg.status, 403);
    assert.deepEqual(JSON.parse(msg.body), { code: 4, message: "not today" });
    // the real client is refused with connect_error
    const e = await refused(connect(stack().url, "/", { query: { deny: "1" }, transports: ["polling"] }));
    assert.match(String(e.message), /xhr poll error|403/i);
    await connected(connect(stack().url, "/", { transports: ["polling"] }));
  });

  test(`${kind}: allow_request past allow_request_timeout refuses`, async () => {
    const r = await raw(hs(stack().url, "&deny=slow"));
    assert.equal(r.status, 403);
    assert.deepEqual(JSON.parse(r.body), { code: 4, message: "Forbidden" });
    await eventually(() => assert.match(stack().proc.output, /allow_request timed out \(allow_request_timeout\) a polling handshake/), 5000);
  });

  test(`${kind}: X-Forwarded-For from a trusted proxy (127.0.0.1) is the client's address`, async () => {
    const r = await raw(hs(stack().url), { "X-Forwarded-For": "203.0.113.7, 127.0.0.1" });
    assert.equal(r.status, 200);
    const seen = JSON.parse(readFileSync(A.file("last-request.json"), "utf8"));
    assert.equal(seen.address, "203.0.113.7", "allow_request sees the forwarded address");
    const s = await connected(connect(stack().url, "/", { transports: ["polling"], extraHeaders: { "X-Forwarded-For": "198.51.100.9" } }));
    const out = await sioctl(stack().stateDir, A.config, "--json", "sockets");
    const me = JSON.parse(out.stdout).find((x) => x.id === s.id);
    assert.equal(me.address, "198.51.100.9");
  });
}

test("embedded: WebSocket handshakes: an unlisted Origin gets 403, a listed one or none connects; allow_request applies", async () => {
  const bad = await wsHandshake(wsUrl(emb.url), { Origin: "http://evil.example" });
  assert.equal(bad.status, 403);
  assert.match(bad.type, /application\/json/);
  assert.deepEqual(JSON.parse(bad.body), { code: 4, message: "Forbidden" });
  assert.deepEqual(await wsHandshake(wsUrl(emb.url), { Origin: "http://good.example" }), { open: true });
  assert.deepEqual(await wsHandshake(wsUrl(emb.url)), { open: true }, "no Origin: not a browser, allowed");
  const denied = await wsHandshake(wsUrl(emb.url, "&deny=1"), { Origin: "http://good.example" });
  assert.equal(denied.status, 403);
  assert.deepEqual(JSON.parse(denied.body), { code: 4, message: "Forbidden" });
  assert.equal(readFileSync(A.file("allow-env.txt"), "utf8").match(/^SIO_TRANSPORT=(.*)$/m)[1], "websocket");
  // the real client over WebSocket only
  await refused(connect(emb.url, "/", { transports: ["websocket"], extraHeaders: { Origin: "http://evil.example" } }));
  await refused(connect(emb.url, "/", { transports: ["websocket"], query: { deny: "1" } }));
  const s = await connected(connect(emb.url, "/", { transports: ["websocket"], extraHeaders: { Origin: "http://good.example" } }));
  assert.equal(s.io.engine.transport.name, "websocket");
  // an upgrade of an allowed polling session is not a handshake: no new check
  const up = await connected(connect(emb.url, "/", { extraHeaders: { Origin: "http://good.example" } }));
  await eventually(() => assert.equal(up.io.engine.transport.name, "websocket"));
});

test("lighttpd: WebSocket through the proxy: an unlisted Origin gets 403, allow_request refuses, a listed Origin connects", async () => {
  const bad = await wsHandshake(wsUrl(lig.url), { Origin: "http://evil.example" });
  assert.equal(bad.status, 403);
  const denied = await wsHandshake(wsUrl(lig.url, "&deny=1"));
  assert.equal(denied.status, 403);
  assert.deepEqual(JSON.parse(denied.body), { code: 4, message: "Forbidden" });
  assert.deepEqual(await wsHandshake(wsUrl(lig.url), { Origin: "http://also.example" }), { open: true });
});

test("without trusted_proxies X-Forwarded-For is ignored; without cors_origin no CORS headers", async () => {
  const s = await connected(connect(plain.url, "/", { transports: ["polling"], extraHeaders: { "X-Forwarded-For": "198.51.100.9" } }));
  const out = await sioctl(plain.stateDir, B.config, "--json", "sockets");
  const me = JSON.parse(out.stdout).find((x) => x.id === s.id);
  assert.equal(me.address, "127.0.0.1");
  const r = await raw(hs(plain.url), { Origin: "http://evil.example", "X-Forwarded-For": "203.0.113.7" });
  assert.equal(r.status, 200);
  assert.equal(r.headers["access-control-allow-origin"], undefined);
  // the trusted stack: a forwarded chain whose hop is not trusted stops there
  const w = await connected(connect(emb.url, "/", { transports: ["websocket"], extraHeaders: { "X-Forwarded-For": "198.51.100.1, 192.0.2.50" } }));
  const o2 = await sioctl(emb.stateDir, A.config, "--json", "sockets");
  assert.equal(JSON.parse(o2.stdout).find((x) => x.id === w.id).address, "192.0.2.50",
    "192.0.2.50 is not a trusted proxy: what it forwarded is not believed");
});

test("handlers and allow_request get a scrubbed environment: SECRET_TOKEN dropped, PATH and LC_* kept", async () => {
  const s = await connected(connect(emb.url, "/", { transports: ["websocket"] }));
  assert.equal(await s.timeout(10000).emitWithAck("env"), "done");
  const henv = readFileSync(A.file("handler-env.txt"), "utf8");
  assert.ok(existsSync(A.file("allow-env.txt")));
  for (const [what, text] of [["handler", henv], ["allow_request", readFileSync(A.file("allow-env.txt"), "utf8")]]) {
    assert.doesNotMatch(text, /SECRET_TOKEN/, `${what} must not see SECRET_TOKEN`);
    assert.match(text, /^PATH=/m, `${what} keeps PATH`);
    assert.match(text, /^LC_TIME=C\.UTF-8$/m, `${what} keeps LC_*`);
    assert.match(text, /^SIO_STATE_DIR=/m);
  }
  assert.match(henv, new RegExp(`^SIO_SOCKET=${s.id}$`, "m"));
});
