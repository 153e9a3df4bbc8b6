// stated restarts (SIGTERM and SIGKILL) lose no session, room or queued
// packet.  The stack is assembled by hand here, as the README's "gateway on a
// socket" deployment: stated, `sio-fcgi --socket`, and lighttpd pointing at
// that socket.
import net from "node:net";
import path from "node:path";
import {
  REPO, BIN, assert, test, before, after, tmpDir, freePort, startProcess, startStated, sioctl,
  connect, connected, record, eventually, eioSession, sleep, startFcgiOnSocket,
  startLighttpdOnSocket, startListen,
} from "./lib.mjs";

const CONFIG = path.join(REPO, "tests/integration/conf/core.conf");
let dir, stateDir, port, url, stated, fcgi, lighttpd;

async function startDaemon() {
  stated = await startStated({ stateDir, config: CONFIG });
  return stated;
}

before(async () => {
  dir = tmpDir("sio-restart-");
  stateDir = path.join(dir, "state");
  port = await freePort();
  url = `http://127.0.0.1:${port}`;
  await startDaemon();
  const sock = path.join(dir, "fcgi.sock");
  fcgi = await startFcgiOnSocket({ stateDir, sock });
  lighttpd = await startLighttpdOnSocket({ dir, port, sock });
});

after(async () => {
  for (const p of [lighttpd, fcgi, stated]) if (p) await p.stop();
});

const ctl = (...a) => sioctl(stateDir, undefined, ...a);

test("sessions, rooms and queued packets survive SIGTERM and SIGKILL of stated", async () => {
  const a = await connected(connect(url, "/", { transports: ["polling"] }));
  const ev = record(a);
  assert.equal((await ctl("join", "--to", a.id, "keep")).code, 0);
  // a bare session with a packet queued for it while it is not polling
  const raw = await eioSession(url);
  await raw.post("40");
  const rawId = JSON.parse((await raw.get()).body.slice(2)).sid;
  assert.equal((await ctl("emit", "--to", rawId, "queued", "1")).code, 0);

  for (const signal of ["SIGTERM", "SIGKILL"]) {
    const r = await stated.stop(signal);
    if (signal === "SIGTERM") {
      assert.equal(r.code, 0, "stated should exit 0 on SIGTERM");
      assert.match(stated.output, /stopped/);
    }
    const down = await ctl("rooms");
    assert.equal(down.code, 3, "sioctl must say the stack is down");
    await startDaemon();
    assert.match(stated.output, /[1-9]\d* session\(s\), [1-9]\d* socket\(s\)/);
    const rooms = JSON.parse((await ctl("rooms", "--json")).stdout);
    assert.deepEqual(rooms.find((x) => x.room === "keep").members, [a.id]);
    const tag = `after-${signal}`;
    assert.equal((await ctl("emit", "--to", "keep", tag)).code, 0);
    await eventually(() => assert.ok(ev.some((e) => e[0] === tag), `${tag} not received`));
    assert.ok(a.connected);
  }
  // the packet queued before both restarts is still delivered, once
  const g = await raw.get();
  assert.equal(g.status, 200);
  assert.ok(g.body.includes('42["queued",1]'), g.body);
}, { timeout: 30000 });

test("a second stated on the same state directory refuses to start", async () => {
  const p = await startProcess(path.join(BIN, "stated"), ["--state", stateDir], { name: "stated2" });
  const r = await p.exited;
  assert.equal(r.code, 1);
  assert.match(p.output, /already running/);
  assert.equal((await ctl("rooms")).code, 0, "the first stated must be unaffected");
});

// A minimal FastCGI client: one request on the gateway's socket.
function fcgiRequest(sockPath, params) {
  const rec = (type, body) => {
    const pad = (8 - (body.length % 8)) % 8;
    const h = Buffer.from([1, type, 0, 1, body.length >> 8, body.length & 255, pad, 0]);
    return Buffer.concat([h, body, Buffer.alloc(pad)]);
  };
  const nv = [];
  for (const [k, v] of Object.entries(params)) {
    const kb = Buffer.from(k), vb = Buffer.from(v);
    nv.push(Buffer.from([kb.length, vb.length]), kb, vb); // all names and values < 128 bytes
  }
  const sock = net.createConnection(sockPath);
  sock.write(Buffer.concat([
    rec(1, Buffer.from([0, 1, 0, 0, 0, 0, 0, 0])), // BEGIN_REQUEST, responder, close after
    rec(4, Buffer.concat(nv)), rec(4, Buffer.alloc(0)), rec(5, Buffer.alloc(0)),
  ]));
  return sock;
}

test("a client that drops its held GET (the FastCGI connection closes) closes its session", async () => {
  const e = await eioSession(url);
  await e.post("40");
  const id = JSON.parse((await e.get()).body.slice(2)).sid;
  const listen = await startListen(stateDir);
  const sock = fcgiRequest(path.join(dir, "fcgi.sock"), {
    REQUEST_METHOD: "GET", REQUEST_URI: "/socket.io/", QUERY_STRING: `EIO=4&transport=polling&sid=${e.sid}`,
  });
  await new Promise((r) => sock.write("", r)); // the request is with the gateway (held or not yet)
  sock.destroy();
  // closed for the dropped GET ("transport error"), before any ping timeout could
  // (pingInterval + pingTimeout = 2 s here) reap it with "ping timeout"
  await eventually(() => {
    const ev = listen.output.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
      .find((x) => x.type === "disconnect" && x.socket === id);
    assert.ok(ev, "no disconnect yet");
    assert.equal(ev.reason, "transport error");
  }, 5000);
  await listen.stop();
  const r = await e.get();
  assert.equal(r.status, 400);
  assert.deepEqual(JSON.parse(r.body), { code: 1, message: "Session ID unknown" });
});
