// A numbered stream for the "nothing lost" tests: a stack assembled by hand
// (stated and sio-front as separate processes, so a test can kill and
// restart either), clients that record every number they get, an emitter
// that runs `sioctl emit n I` in a loop and remembers which emits were
// accepted, and the check that every client got exactly those, in order,
// once.
import path from "node:path";
import {
  REPO, BIN, assert, tmpDir, freePort, startProcess, startStated, sioctl, io, sleep, eventually,
} from "./lib.mjs";

// stated + sio-front on a loopback port, as `make run` starts them.
export async function handStack(config) {
  const stateDir = path.join(tmpDir("sio-stream-"), "state");
  const port = await freePort();
  const st = {
    stateDir, port, config, url: `http://127.0.0.1:${port}`, stated: null, front: null,
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
    // Kills one of them with `signal` and starts it again after `downMs`.
    async restart(which, signal, downMs) {
      await st[which].stop(signal);
      await sleep(downMs);
      await (which === "stated" ? st.startStated() : st.startFront());
    },
    async stop() {
      for (const p of [st.front, st.stated]) if (p) await p.stop();
    },
  };
  await st.startStated();
  await st.startFront();
  return st;
}

// n clients (half WebSocket, half polling unless `transports` says) that
// reconnect by themselves and record the "n" events they get.  Each has
// .nums, .offsets, .connects (with .recovered) and .dups/.disorder counts.
export function streamClients(url, n, { transports, reconnectionDelay = 100 } = {}) {
  const list = [];
  for (let i = 0; i < n; i++) {
    const t = transports ?? (i % 2 ? ["polling"] : ["websocket"]);
    const s = io(url, {
      forceNew: true, transports: t, reconnectionDelay, reconnectionDelayMax: reconnectionDelay * 4,
      timeout: 10000,
    });
    s.transportName = t.join("+");
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

// Runs `sioctl emit n I` for I = 1, 2, ... every `everyMs` (start to start,
// one at a time) until stop(); accepted() is the list of I that sioctl
// accepted (exit 0), refused() the others with their exit codes.
export function emitter(stack, everyMs = 10) {
  let i = 0, stopping = false;
  const ok = [], bad = [];
  const done = (async () => {
    while (!stopping) {
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
    async stop() {
      stopping = true;
      await done;
    },
  };
}

// Every client got exactly `accepted`, in order, once; a short report of
// the first clients that did not.
export function checkStream(clients, accepted) {
  const want = accepted.join(",");
  const bad = [];
  let lost = 0, extra = 0;
  for (const c of clients) {
    if (c.nums.join(",") === want) continue;
    const got = new Set(c.nums);
    const missing = accepted.filter((x) => !got.has(x));
    const dup = c.nums.length - got.size;
    const unknown = c.nums.filter((x) => !accepted.includes(x));
    lost += missing.length;
    extra += dup + unknown.length;
    if (bad.length < 5)
      bad.push(`${c.transportName} client ${c.id ?? "(none)"}: ${missing.length} missing (first ${missing.slice(0, 5)}), ` +
        `${dup} duplicated, ${unknown.length} never accepted, connects ${JSON.stringify(c.connects)}`);
  }
  const total = clients.length * accepted.length;
  assert.equal(bad.length, 0,
    `${lost} of ${total} deliveries lost, ${extra} extra or out of order:\n  ${bad.join("\n  ")}`);
}

// Waits until every client has the last accepted number.
export async function drained(clients, accepted, timeout) {
  const last = accepted[accepted.length - 1];
  await eventually(() => {
    const behind = clients.filter((c) => c.nums[c.nums.length - 1] !== last);
    assert.equal(behind.length, 0, `${behind.length} client(s) did not get ${last} yet`);
  }, timeout, 100);
}
