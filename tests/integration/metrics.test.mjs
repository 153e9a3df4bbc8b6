// Metrics: sio-front's metrics_path page fetched with curl while real
// socket.io-client clients connect, join, emit and leave, checked by
// promtool and scraped by a real Prometheus server (Debian's `prometheus`)
// started on a loopback port; `sioctl metrics` and `sioctl status --json`
// on the same stack; counters kept across a front killed with SIGKILL.
import path from "node:path";
import { writeFileSync, mkdirSync } from "node:fs";
import {
  BIN, assert, test, before, after, startStated, startProcess, freePort, writeConfig, tmpDir,
  connect, connected, once, eventually, http, sioctl, run, startFcgiOnSocket, startLighttpdOnSocket,
} from "./lib.mjs";

const CONFIG = writeConfig(`
ping_interval = 2000
ping_timeout = 2000
metrics_path = /metrics
[namespace /]
[namespace /chat]
`);

let stated, front, port, url;
const ctl = (...a) => sioctl(stated.stateDir, CONFIG, ...a);

async function startFront(config = CONFIG) {
  const p = await freePort();
  const f = await startProcess(path.join(BIN, "sio-front"),
    ["--port", String(p), "--state", stated.stateDir, "--config", config], {
      ready: /listening on http/, name: `sio-front:${p}`,
    });
  return { proc: f, port: p, url: `http://127.0.0.1:${p}` };
}

before(async () => {
  stated = await startStated({ config: CONFIG });
  const f = await startFront();
  front = f.proc;
  port = f.port;
  url = f.url;
});
after(async () => {
  await front?.stop();
  await stated?.stop();
});

// ---- the text format ---------------------------------------------------------------
// {"name{a=\"x\"}": value} of a metrics page (label order as printed).
function parse(text) {
  const m = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}
const key = (name, labels = {}) => {
  const l = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(",");
  return l ? `${name}{${l}}` : name;
};
function val(m, name, labels) {
  const k = key(name, labels);
  assert.ok(m.has(k), `no sample ${k} in the page`);
  return m.get(k);
}

async function curlMetrics(base = url) {
  const r = await run("curl", ["-sS", "-D", "-", `${base}/metrics`]);
  assert.equal(r.code, 0, `curl failed: ${r.stderr}`);
  const [head, ...rest] = r.stdout.split("\r\n\r\n");
  assert.match(head, /^HTTP\/1\.1 200/);
  assert.match(head, /content-type: text\/plain; version=0\.0\.4; charset=utf-8/i);
  return rest.join("\r\n\r\n");
}

async function promtool(text) {
  const r = await run("promtool", ["check", "metrics"], { input: text });
  assert.equal(r.code, 0, `promtool check metrics failed:\n${r.stdout}${r.stderr}`);
  assert.equal((r.stdout + r.stderr).trim(), "", `promtool lint:\n${r.stdout}${r.stderr}`);
}

test("the metrics page passes promtool and its counters move as clients connect, emit and leave", async () => {
  const m0 = parse(await curlMetrics());
  const ws = await connected(connect(url, "/", { transports: ["websocket"] }));
  const poll = await connected(connect(url, "/chat", { transports: ["polling"] }));
  let m1;
  await eventually(async () => {
    m1 = parse(await curlMetrics());
    assert.equal(val(m1, "sio_connected_clients", { transport: "websocket" }), 1);
    assert.equal(val(m1, "sio_connected_clients", { transport: "polling" }), 1);
  });
  assert.equal(val(m1, "sio_sockets", { namespace: "/" }), 1);
  assert.equal(val(m1, "sio_sockets", { namespace: "/chat" }), 1);
  for (const transport of ["websocket", "polling"])
    assert.equal(val(m1, "sio_engine_connections_total", { transport }) - val(m0, "sio_engine_connections_total", { transport }), 1, transport);
  assert.equal(val(m1, "sio_socket_connections_total") - val(m0, "sio_socket_connections_total"), 2);

  // A room, a broadcast the clients receive, and client emits.
  assert.equal((await ctl("join", "--nsp", "/chat", "--to", poll.id, "lobby")).code, 0);
  const got = [once(ws, "news"), once(poll, "news")];
  assert.equal((await ctl("emit", "news", '"hello"')).code, 0);
  assert.equal((await ctl("emit", "--nsp", "/chat", "--to", "lobby", "news", '"hi"')).code, 0);
  await Promise.all(got);
  for (let i = 0; i < 5; i++) ws.emit("ping-me", "x".repeat(100));
  poll.emit("ping-me", "y");
  let m2;
  await eventually(async () => {
    m2 = parse(await curlMetrics());
    assert.ok(val(m2, "sio_packets_received_total", { transport: "websocket" }) >= val(m1, "sio_packets_received_total", { transport: "websocket" }) + 5);
    assert.ok(val(m2, "sio_packets_received_total", { transport: "polling" }) >= val(m1, "sio_packets_received_total", { transport: "polling" }) + 1);
  });
  await promtool(await curlMetrics());
  assert.equal(val(m2, "sio_broadcasts_total") - val(m1, "sio_broadcasts_total"), 2);
  assert.equal(val(m2, "sio_rooms", { namespace: "/chat" }), 1);
  assert.ok(val(m2, "sio_received_bytes_total", { transport: "websocket" }) >= val(m1, "sio_received_bytes_total", { transport: "websocket" }) + 500);
  for (const transport of ["websocket", "polling"]) {
    assert.ok(val(m2, "sio_packets_sent_total", { transport }) > val(m1, "sio_packets_sent_total", { transport }), transport);
    assert.ok(val(m2, "sio_sent_bytes_total", { transport }) > val(m1, "sio_sent_bytes_total", { transport }), transport);
  }
  assert.ok(val(m2, "sio_packet_log_head") >= val(m1, "sio_packet_log_head") + 2);
  assert.ok(m2.has(key("sio_reader_lag", { reader: `front-${front.child.pid}`, log: "packets" })),
    `no lag of the front's reader in ${[...m2.keys()].filter((k) => k.startsWith("sio_reader_lag"))}`);
  assert.equal(val(m2, "sio_processes", { program: "sio-front" }), 1);
  assert.equal(val(m2, "sio_stated_up"), 1);
  assert.ok(val(m2, "sio_store_map_size_bytes") > 0);

  // A client that leaves its namespace, and one whose server closes it.
  const gone = [once(poll, "disconnect"), once(ws, "disconnect")];
  poll.disconnect();
  assert.equal((await ctl("disconnect", "--all", "--close")).code, 0);
  await Promise.all(gone);
  await eventually(async () => {
    const m3 = parse(await curlMetrics());
    const d = (reason) => val(m3, "sio_socket_disconnections_total", { reason }) - val(m2, "sio_socket_disconnections_total", { reason });
    assert.equal(d("client namespace disconnect"), 1);
    assert.equal(d("server namespace disconnect"), 1);
    assert.equal(val(m3, "sio_connected_clients", { transport: "websocket" }), 0);
    assert.equal(val(m3, "sio_sockets", { namespace: "/" }), 0);
    assert.ok(val(m3, "sio_engine_disconnections_total", { reason: "forced close" }) > val(m2, "sio_engine_disconnections_total", { reason: "forced close" }));
  });
});

test("sioctl metrics prints the same page, and promtool accepts it", async () => {
  const r = await ctl("metrics");
  assert.equal(r.code, 0, r.stderr);
  await promtool(r.stdout);
  const names = (t) => [...t.matchAll(/^# TYPE (\S+)/gm)].map((x) => x[1]);
  assert.deepEqual(names(r.stdout), names(await curlMetrics()));
});

test("sioctl status --json: stated, the processes, sessions, rooms, readers, store and settings", async () => {
  const c = await connected(connect(url, "/chat", { transports: ["websocket"] }));
  assert.equal((await ctl("join", "--nsp", "/chat", "--to", c.id, "room-a", "room-b")).code, 0);
  const r = await ctl("status", "--json");
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.deepEqual(s.stated, { running: true, pid: stated.child.pid });
  assert.ok(s.processes.some((p) => p.program === "sio-front" && p.pid === front.child.pid), JSON.stringify(s.processes));
  assert.ok(!s.processes.some((p) => p.program === "sioctl"), "sioctl lists itself");
  assert.equal(s.sessions.websocket, 1);
  assert.equal(s.namespaces["/chat"], 1);
  assert.equal(s.rooms["/chat"], 2);
  assert.ok(s.readers.some((x) => x.name === `front-${front.child.pid}` && x.alive && x.behind >= 0), JSON.stringify(s.readers));
  assert.ok(s.store.map_bytes > 0 && s.store.used_bytes > 0 && s.store.used_bytes <= s.store.map_bytes);
  assert.equal(s.settings.metrics_path, "/metrics");
  assert.equal(s.settings.ping_interval, 2000);
  assert.deepEqual(s.settings.namespaces, ["/", "/chat"]);
  assert.ok(s.counters.handshakes.websocket >= 1);
  assert.equal(s.cluster, null);
  const h = await ctl("status");
  assert.match(h.stdout, new RegExp(`^state +.* \\(stated running, pid ${stated.child.pid}\\)$`, "m"));
  assert.match(h.stdout, new RegExp(`^processes .*sio-front ${front.child.pid}`, "m"));
  assert.match(h.stdout, /^sockets +\/chat: 1 \(2 rooms\)$/m);
  assert.match(h.stdout, /^store +[\d.]+ MB of \d+ MB used/m);
  assert.match(h.stdout, /^settings .*metrics at \/metrics$/m);
  c.disconnect();
});

test("metrics_path answers GET only; without metrics_path there is no page", async () => {
  const p = await http("POST", `${url}/metrics`, "x");
  assert.equal(p.status, 405);
  assert.equal(p.headers.get("allow"), "GET, HEAD");
  const q = await http("GET", `${url}/metrics?x=1`);
  assert.equal(q.status, 200);
  const plain = writeConfig("[namespace /]\n[namespace /chat]\n");
  const other = await startFront(plain);
  try {
    assert.equal((await http("GET", `${other.url}/metrics`)).status, 404);
  } finally {
    await other.proc.stop();
  }
  const bad = writeConfig("metrics_path = metrics\n");
  const r = await sioctl(stated.stateDir, bad, "status");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /line 1: metrics_path must start with '\/'/);
});

test("counters survive a front killed with SIGKILL: its slot is folded, nothing goes down", async () => {
  const c = await connected(connect(url, "/", { transports: ["websocket"] }));
  c.emit("x", 1);
  let before;
  await eventually(async () => {
    before = parse((await ctl("metrics")).stdout);
    assert.ok(val(before, "sio_packets_received_total", { transport: "websocket" }) > 0);
  });
  const died = once(c, "disconnect");
  front.child.kill("SIGKILL");
  await front.exited;
  await died;
  const f = await startFront();
  front = f.proc;
  port = f.port;
  url = f.url;
  const after_ = parse((await ctl("metrics")).stdout);
  for (const [k, v] of before) {
    if (!/_total(\{|$)/.test(k)) continue;
    assert.ok(after_.get(k) >= v, `${k} went down: ${v} -> ${after_.get(k)}`);
  }
  const s = JSON.parse((await ctl("status", "--json")).stdout);
  assert.deepEqual(s.processes.filter((p) => p.program === "sio-front").map((p) => p.pid), [front.child.pid]);
});

test("behind lighttpd, sio-fcgi serves metrics_path too and counts the polls it answers", async () => {
  const dir = tmpDir("sio-metrics-lighttpd-");
  const sock = path.join(dir, "fcgi.sock");
  const webPort = await freePort();
  const fcgi = await startFcgiOnSocket({ stateDir: stated.stateDir, sock, threads: 4 });
  const web = await startLighttpdOnSocket({ dir, port: webPort, sock, paths: ["/socket.io/", "/metrics"] });
  const base = `http://127.0.0.1:${webPort}`;
  try {
    await eventually(async () => assert.equal((await http("GET", `${base}/metrics`)).status, 200));
    const m0 = parse(await curlMetrics(base));
    assert.equal(val(m0, "sio_processes", { program: "sio-fcgi" }), 1);
    const c = await connected(connect(base, "/chat", { transports: ["polling"] }));
    c.emit("hello", 1);
    c.emit("hello", 2);
    await eventually(async () => {
      const m1 = parse(await curlMetrics(base));
      assert.ok(val(m1, "sio_engine_connections_total", { transport: "polling" }) > val(m0, "sio_engine_connections_total", { transport: "polling" }));
      assert.ok(val(m1, "sio_packets_received_total", { transport: "polling" }) >= val(m0, "sio_packets_received_total", { transport: "polling" }) + 3);
      assert.equal(val(m1, "sio_sockets", { namespace: "/chat" }), 1);
    });
    await promtool(await curlMetrics(base));
    c.disconnect();
  } finally {
    await web.stop();
    await fcgi.stop();
  }
});

test("a real Prometheus server scrapes the front's metrics_path", async () => {
  const dir = tmpDir("sio-prom-");
  const promPort = await freePort();
  const interval = 1; // seconds
  const conf = path.join(dir, "prometheus.yml");
  writeFileSync(conf, `global:
  scrape_interval: ${interval}s
  scrape_timeout: ${interval}s
scrape_configs:
  - job_name: sio
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:${port}"]
`);
  mkdirSync(path.join(dir, "data"));
  const c = await connected(connect(url, "/chat", { transports: ["websocket"] }));
  const prom = await startProcess("/usr/bin/prometheus", [
    `--config.file=${conf}`, `--storage.tsdb.path=${path.join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${promPort}`, "--log.level=info",
  ], { ready: /Server is ready to receive web requests/, name: "prometheus", timeout: 60000 });
  try {
    const query = async (q) => {
      const r = await http("GET", `http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
      assert.equal(r.status, 200, r.body);
      const j = JSON.parse(r.body);
      assert.equal(j.status, "success");
      return j.data.result;
    };
    // A scrape every `interval`: a few of them (and the machine's load) bound the wait.
    await eventually(async () => {
      const up = await query('up{job="sio"}');
      assert.equal(up.length, 1, "not scraped yet");
      if (up[0].value[1] !== "1") {
        const t = await http("GET", `http://127.0.0.1:${promPort}/api/v1/targets`);
        assert.fail(`the scrape failed: ${t.body}`);
      }
      const socks = await query('sio_sockets{job="sio",namespace="/chat"}');
      assert.equal(socks.length, 1, "no sio_sockets series yet");
      assert.equal(socks[0].value[1], "1");
    }, 20 * interval * 1000 + 10000, 250);
    const hs = await query('sio_engine_connections_total{job="sio"}');
    assert.deepEqual(hs.map((x) => x.metric.transport).sort(), ["polling", "websocket"]);
    const reasons = await query('sio_socket_disconnections_total{job="sio"}');
    assert.ok(reasons.some((x) => x.metric.reason === "client namespace disconnect" && Number(x.value[1]) >= 1));
  } finally {
    c.disconnect();
    await prom.stop();
  }
}, { timeout: 120000 });
