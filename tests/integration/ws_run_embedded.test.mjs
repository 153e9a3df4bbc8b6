// scripts/run-embedded: starts stated + sio-front, says "listening on ...",
// stops both on SIGINT/SIGTERM (exit 0), restarts either when it dies (a
// client reconnects and gets sioctl emit again), gives up on a crash loop
// (exit non-zero), and leaves no process behind.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import {
  assert, test, startStack, http, connect, connected, once, record, eventually, sleep, writeConfig,
} from "./lib.mjs";

// The script's restart policy (scripts/lib-run.sh): first restart after
// SIO_RESTART_MIN (0.2 s), doubling; 5 deaths in a row, each within 5 s of
// the start, end it.  Deaths are seen within a 0.5 s tick.  START is what
// a process may take to come up on a busy box: every deadline below is
// built from these, never from how fast things usually go.
const TICK = 500, FIRST_DELAY = 200, QUICK = 5000, TRIES = 5, START = 15000;
const RESTARTED = TICK + FIRST_DELAY + START;
// Reconnecting clients: a first try after 100 ms, then at most 1 s apart.
const RECONNECT = { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 1000 };
const WS = { transports: ["websocket"] };

// Live (non-zombie) processes whose command line mentions `needle`.
function procsWith(needle) {
  const out = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").join(" ");
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (cmd.includes(needle) && state !== "Z") out.push({ pid: Number(d), cmd });
    } catch {}
  }
  return out;
}
const find = (stack, what) => procsWith(stack.stateDir).filter((p) => p.cmd.includes(what));

const waitExit = (proc, ms) => Promise.race([proc.exited, sleep(ms).then(() => null)]);

// Waits until the script's output (from `from` on) matches re; returns the match.
async function logged(stack, re, ms, from = 0) {
  return eventually(() => {
    const m = stack.proc.output.slice(from).match(re);
    assert.ok(m, `no ${re} in the script's output within ${ms} ms:\n${stack.proc.output.slice(from)}`);
    return m;
  }, ms, 50);
}

async function ok(p) {
  const r = await p;
  assert.equal(r.code, 0, `sioctl failed (${r.code}): ${r.stderr}`);
  return r;
}

test("SIGINT stops stated and sio-front cleanly (exit 0, nothing left)", async () => {
  const stack = await startStack("embedded");
  assert.equal((await http("GET", `${stack.url}/`)).status, 200);
  const s = await connected(connect(stack.url, "/", WS));
  const procs = procsWith(stack.stateDir);
  assert.ok(procs.some((p) => p.cmd.includes("sio-front")), JSON.stringify(procs));
  assert.ok(procs.some((p) => p.cmd.includes("stated")), JSON.stringify(procs));
  process.kill(stack.proc.child.pid, "SIGINT"); // the script only, as a terminal's Ctrl-C would reach it
  const r = await waitExit(stack.proc, 15000);
  assert.ok(r, "run-embedded did not exit");
  assert.equal(r.code, 0, stack.proc.output);
  assert.deepEqual(procsWith(stack.stateDir), []);
  assert.match(stack.proc.output, /sio-front\[\d+\] info: stopped/);
  assert.match(stack.proc.output, /stated\[\d+\] info: stopped/);
  s.disconnect();
}, { timeout: 40000 });

test("kill -9 of sio-front: the script logs it and restarts it on the same port; a client reconnects and gets sioctl emit", async () => {
  const stack = await startStack("embedded");
  try {
    const s = await connected(connect(stack.url, "/", { ...WS, ...RECONNECT }));
    const ev = record(s);
    const [front] = find(stack, "sio-front");
    assert.ok(front);
    const reconnected = once(s, "connect", RESTARTED + 10000); // the next one
    const from = stack.proc.output.length;
    process.kill(front.pid, "SIGKILL");
    await logged(stack, new RegExp(`run-embedded: sio-front \\(pid ${front.pid}\\) died \\(SIGKILL\\) [\\d.]+ s after its start; restarting it in 0\\.2 s`), TICK + 5000, from);
    const m = await logged(stack, /run-embedded: sio-front restarted \(pid (\d+)\)/, RESTARTED, from);
    const pid = Number(m[1]);
    assert.notEqual(pid, front.pid);
    assert.deepEqual(find(stack, "sio-front").map((p) => p.pid), [pid]);
    assert.match(find(stack, "sio-front")[0].cmd, new RegExp(`--port ${stack.port} `));
    assert.equal(stack.proc.child.exitCode, null, "the script exited");
    assert.equal((await http("GET", `${stack.url}/`)).status, 200);
    await reconnected;
    assert.ok(s.connected);
    await ok(stack.sioctl("emit", "--to", s.id, "after-restart", '"x"'));
    await eventually(() => assert.deepEqual(ev, [["after-restart", "x"]]));
  } finally {
    const r = await stack.stop();
    assert.equal(r.code, 0, stack.proc.output);
    assert.deepEqual(procsWith(stack.stateDir), []);
  }
}, { timeout: RESTARTED + 40000 });

test("kill -9 of stated: the script restarts it, and sioctl emit reaches a client again", async () => {
  const stack = await startStack("embedded");
  try {
    const s = await connected(connect(stack.url, "/", { ...WS, ...RECONNECT }));
    const ev = record(s);
    const [stated] = find(stack, "stated");
    assert.ok(stated);
    const from = stack.proc.output.length;
    process.kill(stated.pid, "SIGKILL");
    await logged(stack, new RegExp(`run-embedded: stated \\(pid ${stated.pid}\\) died \\(SIGKILL\\) [\\d.]+ s after its start; restarting it in 0\\.2 s`), TICK + 5000, from);
    const m = await logged(stack, /run-embedded: stated restarted \(pid (\d+)\)/, RESTARTED, from);
    assert.notEqual(Number(m[1]), stated.pid);
    assert.deepEqual(find(stack, "stated").map((p) => p.pid), [Number(m[1])]);
    // The front kept running, and the client stays (or comes back) connected.
    assert.equal(find(stack, "sio-front").length, 1);
    await eventually(() => assert.ok(s.connected, "client not connected"), RESTARTED);
    await ok(stack.sioctl("emit", "--to", s.id, "after-stated", "1"));
    await eventually(() => assert.deepEqual(ev, [["after-stated", 1]]));
  } finally {
    const r = await stack.stop();
    assert.equal(r.code, 0, stack.proc.output);
    assert.deepEqual(procsWith(stack.stateDir), []);
  }
}, { timeout: RESTARTED + 40000 });

test("a crash loop (a config broken after the start) makes the script give up: exit 1, nothing left", async () => {
  const config = writeConfig("ping_interval = 25000\n");
  const stack = await startStack("embedded", { config });
  const [front] = find(stack, "sio-front");
  writeFileSync(config, "ping_interval = not-a-number\n");
  process.kill(front.pid, "SIGKILL");
  // 5 deaths, each within QUICK of its start, 0.2 + 0.4 + 0.8 + 1.6 s apart.
  const delays = Array.from({ length: TRIES - 1 }, (_, i) => FIRST_DELAY << i).reduce((a, b) => a + b);
  const r = await waitExit(stack.proc, delays + TRIES * (QUICK + TICK) + 15000);
  assert.ok(r, `run-embedded did not give up:\n${stack.proc.output}`);
  assert.equal(r.code, 1, stack.proc.output);
  const died = [...stack.proc.output.matchAll(/run-embedded: sio-front \(pid \d+\) died \((\w+ ?\d*)\)/g)].map((x) => x[1]);
  assert.deepEqual(died, ["SIGKILL", "status 1", "status 1", "status 1", "status 1"], stack.proc.output);
  assert.match(stack.proc.output, /restarting it in 0\.2 s[^]*restarting it in 0\.4 s[^]*restarting it in 0\.8 s[^]*restarting it in 1\.6 s/);
  assert.match(stack.proc.output, /the 5th time in a row within 5 s: giving up/);
  assert.match(stack.proc.output, /ping_interval must be an integer/);
  assert.match(stack.proc.output, /stated\[\d+\] info: stopped/);
  await eventually(() => assert.deepEqual(procsWith(stack.stateDir), []), 5000);
}, { timeout: 90000 });

test("SIGINT while a restart is pending stops everything at once (exit 0, nothing left)", async () => {
  // A first restart 60 s away: the script must exit long before.
  const PENDING = 60000;
  const stack = await startStack("embedded", { env: { SIO_RESTART_MIN: String(PENDING / 1000) } });
  const [front] = find(stack, "sio-front");
  const from = stack.proc.output.length;
  process.kill(front.pid, "SIGKILL");
  await logged(stack, /sio-front \(pid \d+\) died \(SIGKILL\) [\d.]+ s after its start; restarting it in 60\.0 s/, TICK + 5000, from);
  const t0 = Date.now();
  process.kill(stack.proc.child.pid, "SIGINT");
  const r = await waitExit(stack.proc, PENDING / 2);
  assert.ok(r, "run-embedded did not stop while a restart was pending");
  assert.ok(Date.now() - t0 < PENDING / 2);
  assert.equal(r.code, 0, stack.proc.output);
  assert.match(stack.proc.output.slice(from), /got SIGINT, stopping/);
  assert.doesNotMatch(stack.proc.output.slice(from), /sio-front pid \d+/, "a new sio-front was started");
  assert.match(stack.proc.output, /stated\[\d+\] info: stopped/);
  assert.deepEqual(procsWith(stack.stateDir), []);
}, { timeout: 60000 });
