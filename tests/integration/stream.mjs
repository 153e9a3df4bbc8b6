// A numbered stream for the "nothing lost" tests: a stack assembled by hand
// (stated and sio-front as separate processes, so a test can kill and
// restart either), clients that record every number they get, an emitter
// that runs `sioctl emit n I` in a loop and remembers which emits were
// accepted, and the check that every client got exactly those, in order,
// once.
import path from "node:path";
import {
  REPO, BIN, assert, tmpDir, freePort, startProcess, startStated, sioctl, io, sleep, eventually,
  startFcgiOnSocket, startLighttpdOnSocket,
} from "./lib.mjs";

// stated + sio-front on a loopback port, as `make run` starts them; with
// `fcgi`, also `sio-fcgi --socket` and lighttpd in front of it on a port of
// its own (pollUrl), the README's "gateway on a socket" (polling only: the
// lighttpd config routes no upgrade).  Each of "stated", "front", "fcgi" can
// be killed and started again.
export async function handStack(config, { fcgi = false, fcgiThreads = 16 } = {}) {
  const dir = tmpDir("sio-stream-");
  const stateDir = path.join(dir, "state");
  const sock = path.join(dir, "fcgi.sock");
  const port = await freePort();
  const pollPort = fcgi ? await freePort() : null;
  const st = {
    stateDir, port, config, url: `http://127.0.0.1:${port}`,
    pollUrl: fcgi ? `http://127.0.0.1:${pollPort}` : null,
    stated: null, front: null, fcgi: null, lighttpd: null,
    sioctl: (...a) => sioctl(stateDir, config, ...a),
    async startStated() {
      st.stated = await startStated({ stateDir, config });
    },
    async startFront() {
      st.front = await startProcess(path.join(BIN, "sio-front"),
        ["--state", stateDir, "--config", config, "--port", String(port), "--host", "127.0.0.1",
          "--www", path.join(REPO, "www")],
        { ready: /listening on/, name: "sio-front" });
    },
    async startFcgi() {
      st.fcgi = await startFcgiOnSocket({ stateDir, sock, threads: fcgiThreads });
    },
    start(which) {
      return { stated: st.startStated, front: st.startFront, fcgi: st.startFcgi }[which]();
    },
    // Kills one of them with `signal` and starts it again after `downMs`.
    async restart(which, signal, downMs) {
      await st[which].stop(signal);
      await sleep(downMs);
      await st.start(which);
    },
    // Stops every process of ours (SIGTERM), then starts them again.
    async restartAll() {
      const ours = ["front", "fcgi", "stated"].filter((w) => st[w]);
      for (const w of ours) await st[w].stop("SIGTERM");
      for (const w of ours.reverse()) await st.start(w);
    },
    async stop() {
      for (const p of [st.lighttpd, st.front, st.fcgi, st.stated]) if (p) await p.stop();
    },
  };
  await st.startStated();
  await st.startFront();
  if (fcgi) {
    await st.startFcgi();
    st.lighttpd = await startLighttpdOnSocket({ dir, port: pollPort, sock });
  }
  return st;
}

// n clients (half WebSocket, half polling unless `transports` says) that
// reconnect by themselves and record the "n" events they get: each has
// .nums, .offsets, and .connects ({id, recovered} for each connect);
// .transportName is `label` or the transports.
export function streamClients(url, n, { transports, reconnectionDelay = 100, label } = {}) {
  const list = [];
  for (let i = 0; i < n; i++) {
    const t = transports ?? (i % 2 ? ["polling"] : ["websocket"]);
    const s = io(url, {
      forceNew: true, transports: t, reconnectionDelay, reconnectionDelayMax: reconnectionDelay * 4,
      timeout: 10000,
    });
    s.transportName = label ?? t.join("+");
    s.nums = [];
    s.offsets = [];
    s.connects = [];
    s.on("connect", () => s.connects.push({ id: s.id, recovered: s.recovered }));
    s.on("n", (x, offset) => {
      s.nums.push(x);
      s.offsets.push(offset);
    });
    list.push(s);
  }
  return list;
}

export async function allConnected(clients, timeout = 20000) {
  await eventually(() => {
    const down = clients.filter((c) => !c.connected);
    assert.equal(down.length, 0, `${down.length} client(s) not connected`);
  }, timeout, 50);
}

export function closeAll(clients) {
  for (const c of clients) c.disconnect();
}

// Runs `sioctl emit n I` for I = first, first + 1, ... every `everyMs` (start
// to start, one at a time) until stop(), or until `count` were accepted; accepted()
// is the list of I that sioctl accepted (exit 0), refused() the others with
// their exit codes; reached(n, timeout) waits until n were accepted; next()
// is the number the next emit would have.
export function emitter(stack, everyMs = 10, { count = Infinity, first = 1 } = {}) {
  let i = first - 1, stopping = false;
  const ok = [], bad = [];
  const done = (async () => {
    while (!stopping && ok.length < count) {
      const start = Date.now();
      i++;
      const r = await stack.sioctl("emit", "n", String(i));
      if (r.code === 0) ok.push(i);
      else bad.push({ i, code: r.code, err: r.stderr.trim() });
      const wait = everyMs - (Date.now() - start);
      if (wait > 0) await sleep(wait);
    }
  })();
  return {
    accepted: () => ok,
    refused: () => bad,
    next: () => i + 1,
    done,
    reached: (n, timeout) => eventually(() => {
      assert.ok(ok.length >= n, `${ok.length} of ${n} emits accepted so far (${bad.length} refused)`);
    }, timeout, 10),
    async stop() {
      stopping = true;
      await done;
    },
  };
}

// What the clients got against `accepted`: deliveries expected, and how many
// of them were lost, duplicated, reordered (arrived after a later one), or
// never accepted at all; bad: a line for each of the first clients that did
// not get exactly `accepted`, in order, once.
export function streamReport(clients, accepted) {
  const want = accepted.join(",");
  const rank = new Map(accepted.map((x, k) => [x, k]));
  const r = { deliveries: clients.length * accepted.length, lost: 0, duplicated: 0, reordered: 0, unknown: 0, bad: [] };
  for (const c of clients) {
    if (c.nums.join(",") === want) continue;
    const seen = new Set();
    let dup = 0, reordered = 0, unknown = 0, top = -1;
    for (const x of c.nums) {
      if (!rank.has(x)) { unknown++; continue; }
      if (seen.has(x)) { dup++; continue; }
      seen.add(x);
      if (rank.get(x) < top) reordered++;
      else top = rank.get(x);
    }
    const missing = accepted.filter((x) => !seen.has(x));
    r.lost += missing.length;
    r.duplicated += dup;
    r.reordered += reordered;
    r.unknown += unknown;
    if (r.bad.length < 5)
      r.bad.push(`${c.transportName} client ${c.id ?? "(none)"}: ${missing.length} missing (first ${missing.slice(0, 5)}), ` +
        `${dup} duplicated, ${reordered} out of order, ${unknown} never accepted, connects ${JSON.stringify(c.connects)}`);
  }
  r.text = `${r.deliveries} deliveries: ${r.lost} lost, ${r.duplicated} duplicated, ${r.reordered} reordered, ` +
    `${r.unknown} never accepted`;
  return r;
}

// Every client got exactly `accepted`, in order, once; the report.
export function checkStream(clients, accepted) {
  const r = streamReport(clients, accepted);
  assert.equal(r.bad.length, 0, `${r.text}:\n  ${r.bad.join("\n  ")}`);
  return r;
}

// Every client connected once and then came back `breaks` times (a number,
// or a function of the client), each time with its socket recovered (same id).
export function checkRecovered(clients, breaks) {
  const want = (c) => (typeof breaks === "function" ? breaks(c) : breaks) + 1;
  const bad = clients.filter((c) => c.connects.length !== want(c) || c.connects[0].recovered ||
    c.connects.some((x, k) => k > 0 && (!x.recovered || x.id !== c.connects[0].id)));
  assert.equal(bad.length, 0, `${bad.length} client(s) not connected once and then recovered each time:\n  ` +
    bad.slice(0, 5).map((c) => `${c.transportName}, ${want(c)} connect(s) expected: ${JSON.stringify(c.connects)}`)
      .join("\n  "));
}

// Waits until every client has the last accepted number.
export async function drained(clients, accepted, timeout) {
  const last = accepted[accepted.length - 1];
  await eventually(() => {
    const behind = clients.filter((c) => c.nums[c.nums.length - 1] !== last);
    assert.equal(behind.length, 0, `${behind.length} client(s) did not get ${last} yet`);
  }, timeout, 100);
}
