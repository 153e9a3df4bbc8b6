// Integration test harness: a tiny registry (test/before/after per file),
// helpers that start real stacks (stated + gateway behind lighttpd or Apache,
// or the embedded front) on loopback ports with a temp state directory, run
// bin/sioctl against them, and drive the real socket.io-client.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync, readFileSync, readdirSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import assert from "node:assert/strict";
export { default as assert } from "node:assert/strict";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = process.env.SIO_BIN || path.join(REPO, "bin");
const require = createRequire(path.join(REPO, "tests", "package.json"));
export const { io } = require("socket.io-client");

// ---- registry ---------------------------------------------------------------
export const registry = [];
let current = null;
export function _file(name) {
  current = { name, tests: [], before: [], after: [] };
  registry.push(current);
}
// Every time limit below is a bound for a hang, never a claim about speed:
// SIO_TIME_SCALE (make test-asan sets 3) stretches them all for slower
// builds.
export const TIME_SCALE = Math.max(1, Number(process.env.SIO_TIME_SCALE) || 1);
const scaled = (ms) => ms * TIME_SCALE;
export function test(name, fn, opts = {}) {
  current.tests.push({ name, fn, timeout: scaled(opts.timeout ?? 20000) });
}
export function before(fn) { current.before.push(fn); }
export function after(fn) { current.after.push(fn); }

// ---- processes ----------------------------------------------------------------
const children = new Set();
const tmpdirs = [];
export function cleanup() {
  for (const c of children) {
    try { process.kill(-c.pid, "SIGKILL"); } catch {}
  }
  children.clear();
  for (const d of tmpdirs) { try { rmSync(d, { recursive: true, force: true }); } catch {} }
  tmpdirs.length = 0;
}
process.on("exit", cleanup);

export function tmpDir(prefix = "sio-test-") {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  tmpdirs.push(d);
  return d;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- pausing a process of the stack ---------------------------------------------
// The thread ids that hold the store's two locks (0: none): LMDB's reader
// table mutex at byte 8 of lock.mdb (after the magic 0xbeefc0de and the
// format), taken for every new read transaction, and its writer mutex at
// byte 64 (the second cache line).  A glibc robust mutex holds its owner's
// thread id in its first word.
export function storeLockHolders(stateDir) {
  const b = readFileSync(path.join(stateDir, "lock.mdb")).subarray(0, 68);
  if (b.readUInt32LE(0) !== 0xbeefc0de) throw new Error(`${stateDir}/lock.mdb: not an LMDB lock file`);
  return [b.readUInt32LE(8) & 0x3fffffff, b.readUInt32LE(64) & 0x3fffffff];
}

const threadsOf = (pid) => readdirSync(`/proc/${pid}/task`).map(Number);
const stoppedState = (pid, tid) => /^\d+ \(.*\) ([Tt])/.test(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8"));

// Stops a process (SIGSTOP) at a moment when none of its threads holds one
// of the store's locks: a process stopped holding one would stop every
// other process of the store too (sioctl waits on the lock for as long).
// Resolves once all of its threads are stopped; SIGCONT resumes it.
export async function pauseOutsideStoreLocks(pid, stateDir) {
  for (;;) {
    process.kill(pid, "SIGSTOP");
    while (!threadsOf(pid).every((tid) => stoppedState(pid, tid))) await sleep(1);
    const tids = threadsOf(pid);
    if (!storeLockHolders(stateDir).some((t) => tids.includes(t))) return;
    process.kill(pid, "SIGCONT");
    await sleep(5);
  }
}

// Starts a long-running process in its own process group; resolves when a line
// of its output matches `ready` (a RegExp), rejects on exit or timeout.
export function startProcess(cmd, args, { env = {}, ready, timeout = 20000, name = cmd } = {}) {
  timeout = scaled(timeout);
  const child = spawn(cmd, args, {
    env: { ...process.env, ...env },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let output = "";
  const proc = {
    child,
    name,
    get output() { return output; },
    exited: new Promise((resolve) => child.on("exit", (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    })),
    async stop(signal = "SIGTERM", wait = 8000) {
      if (child.exitCode !== null || child.signalCode !== null) return proc.exited;
      try { process.kill(-child.pid, signal); } catch {}
      const t = setTimeout(() => { try { process.kill(-child.pid, "SIGKILL"); } catch {} }, wait);
      const r = await proc.exited;
      clearTimeout(t);
      proc.checkSanitizers();
      return r;
    },
    // Throws when a sanitizer (make test-asan) reported anything.
    checkSanitizers() {
      const m = output.match(/(ERROR: (Address|Leak)Sanitizer|runtime error:)[^\n]*/);
      if (m) throw new Error(`${name}: sanitizer report: ${m[0]}\n${output.slice(output.indexOf(m[0]), output.indexOf(m[0]) + 3000)}`);
    },
  };
  const onData = (d) => { output += d.toString(); if (process.env.SIO_TEST_VERBOSE) process.stderr.write(`[${name}] ${d}`); };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  if (!ready) return Promise.resolve(proc);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${name} not ready after ${timeout} ms; output:\n${output}`));
    }, timeout);
    const check = () => {
      if (ready.test(output)) {
        clearTimeout(timer);
        child.stdout.off("data", check);
        child.stderr.off("data", check);
        resolve(proc);
      }
    };
    child.stdout.on("data", check);
    child.stderr.on("data", check);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before ready; output:\n${output}`));
    });
  });
}

// Runs a short command; resolves {code, stdout, stderr}.
export function run(cmd, args, { env = {}, input, timeout = 15000 } = {}) {
  timeout = scaled(timeout);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const t = setTimeout(() => { child.kill("SIGKILL"); reject(new Error(`${cmd} ${args.join(" ")} timed out`)); }, timeout);
    child.on("error", reject);
    child.on("exit", (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
    if (input !== undefined) child.stdin.end(input); else child.stdin.end();
  });
}

// ---- stacks -------------------------------------------------------------------
// kind: "lighttpd" | "apache" | "embedded" (scripts/run-<kind> PORT).
export async function startStack(kind, { config, env = {} } = {}) {
  const port = await freePort();
  const dir = tmpDir(`sio-${kind}-`);
  const stateDir = path.join(dir, "state");
  const runDir = path.join(dir, "run");
  const senv = {
    SIO_STATE_DIR: stateDir,
    SIO_RUN_DIR: runDir,
    SIO_BIN: BIN,
    ...(config ? { SIO_CONFIG: config } : {}),
    ...env,
  };
  if (kind === "apache") {
    // Apache's children run as www-data: the temp tree, and the config's
    // folder, must be reachable.
    await run("chmod", ["755", dir, ...(config ? [path.dirname(config)] : [])]);
  }
  const proc = await startProcess(path.join(REPO, "scripts", `run-${kind}`), [String(port)], {
    env: senv, ready: new RegExp(`listening on http://127\\.0\\.0\\.1:${port} `), name: `${kind}:${port}`, timeout: 30000,
  });
  return makeStack({ kind, port, stateDir, env: senv, proc });
}

// stated alone (for sioctl-level tests or hand-built stacks).
export async function startStated({ stateDir, config } = {}) {
  stateDir ??= path.join(tmpDir("sio-stated-"), "state");
  const proc = await startProcess(path.join(BIN, "stated"), ["--state", stateDir, ...(config ? ["--config", config] : [])], {
    ready: /notify on/, name: "stated",
  });
  proc.stateDir = stateDir;
  return proc;
}

// `sio-fcgi --socket sock` on stateDir (the config comes from the store).
export function startFcgiOnSocket({ stateDir, sock, threads = 16 }) {
  return startProcess(path.join(BIN, "sio-fcgi"), ["--socket", sock, "--threads", String(threads)], {
    env: { SIO_STATE_DIR: stateDir }, ready: /serving/, name: "sio-fcgi",
  });
}

// lighttpd in the foreground on 127.0.0.1:port, answering /socket.io/ (and
// any other of `paths`) from a gateway that listens on the Unix socket `sock`
// (`sio-fcgi --socket`, the README's "gateway on a socket"); its config and
// error log go to dir.
export async function startLighttpdOnSocket({ dir, port, sock, paths = ["/socket.io/"] }) {
  mkdirSync(path.join(dir, "www"), { recursive: true });
  const conf = path.join(dir, "lighttpd.conf");
  writeFileSync(conf, `
server.document-root = "${dir}/www"
server.bind = "127.0.0.1"
server.port = ${port}
server.errorlog = "${dir}/error.log"
server.modules = ("mod_fastcgi")
server.max-request-size = 1100
fastcgi.server = (${paths.map((p) => `"${p}" => (("socket" => "${sock}", "check-local" => "disable"))`).join(", ")})
`);
  const proc = await startProcess("/usr/sbin/lighttpd", ["-D", "-f", conf], { name: "lighttpd" });
  await eventually(async () => { await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`); });
  return proc;
}

export function makeStack({ kind, port, stateDir, env, proc }) {
  return {
    kind, port, stateDir, proc,
    url: `http://127.0.0.1:${port}`,
    sioctl: (...args) => sioctl(stateDir, env.SIO_CONFIG, ...args),
    stop: () => proc.stop(),
  };
}

export function sioctl(stateDir, config, ...args) {
  const env = { SIO_STATE_DIR: stateDir };
  if (config) env.SIO_CONFIG = config;
  return run(path.join(BIN, "sioctl"), args, { env });
}

// Writes a config file into a temp dir and returns its path.
export function writeConfig(text) {
  const p = path.join(tmpDir("sio-conf-"), "sio.conf");
  writeFileSync(p, text);
  return p;
}

// ---- clients ------------------------------------------------------------------
const clients = new Set();
export function connect(url, nsp = "/", opts = {}) {
  const s = io(url + nsp, { forceNew: true, reconnection: false, timeout: 10000, ...opts });
  // Why a socket went away, for failure messages (see whyGone).
  s.on("disconnect", (reason, details) => {
    s.goneWhy = `${reason}${details && details.description ? ` (${details.description.message || details.description})` : ""}`;
  });
  clients.add(s);
  return s;
}
export function closeClients() {
  for (const s of clients) s.disconnect();
  clients.clear();
}

// "" while connected; otherwise why the socket disconnected, for messages.
export function whyGone(socket) {
  return socket.connected ? "" : ` [disconnected: ${socket.goneWhy || "never connected"}]`;
}

// Resolves with the args of the next `event` (rejects on timeout).
export function once(emitter, event, timeout = 8000) {
  timeout = scaled(timeout);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no '${event}' within ${timeout} ms`)), timeout);
    emitter.once(event, (...args) => { clearTimeout(t); resolve(args); });
  });
}

export async function connected(socket, timeout = 10000) {
  if (socket.connected) return socket;
  timeout = scaled(timeout);
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("connect timeout")), timeout);
    socket.once("connect", () => { clearTimeout(t); resolve(); });
    socket.once("connect_error", (e) => { clearTimeout(t); reject(e); });
  });
  return socket;
}

// Records every event a socket receives, in order.
export function record(socket) {
  const events = [];
  socket.onAny((event, ...args) => events.push([event, ...args]));
  return events;
}

// Starts `sioctl listen ARGS...` on stateDir and resolves once `sioctl
// status` shows it registered as an inbox reader.  From then on stated
// cannot trim what it has not read; before, a record may be handled and
// trimmed away (or, without --from-start, pass by) before it looks.
export async function startListen(stateDir, args = [], { env = {}, name = "sioctl listen" } = {}) {
  const l = await startProcess(path.join(BIN, "sioctl"), ["listen", ...args], { env: { SIO_STATE_DIR: stateDir, ...env }, name });
  try {
    await eventually(async () => {
      const r = await sioctl(stateDir, env.SIO_CONFIG, "status", "--json");
      const readers = JSON.parse(r.stdout).readers;
      assert.ok(readers.some((x) => x.name === `in:listen-${l.child.pid}`), `${name} is not registered yet`);
    }, 10000, 50);
  } catch (e) {
    await l.stop("SIGKILL");
    throw e;
  }
  return l;
}

// Retries fn until it stops throwing.
export async function eventually(fn, timeout = 8000, every = 50) {
  const end = Date.now() + scaled(timeout);
  for (;;) {
    try { return await fn(); } catch (e) {
      if (Date.now() > end) throw e;
      await sleep(every);
    }
  }
}

// Raw HTTP (no client library): {status, headers, body}.
export async function http(method, url, body, headers = {}) {
  const r = await fetch(url, { method, body, headers });
  return { status: r.status, headers: r.headers, body: await r.text() };
}

// A bare Engine.IO polling session: returns {sid, get(), post(body)}.
export async function eioSession(base) {
  const h = await http("GET", `${base}/socket.io/?EIO=4&transport=polling`);
  if (h.status !== 200 || h.body[0] !== "0") throw new Error(`handshake failed: ${h.status} ${h.body}`);
  const sid = JSON.parse(h.body.slice(1)).sid;
  const u = `${base}/socket.io/?EIO=4&transport=polling&sid=${sid}`;
  return {
    sid, url: u,
    get: (signal) => fetch(u, { signal }).then(async (r) => ({ status: r.status, body: await r.text() })),
    post: (body, headers = {}) => http("POST", u, body, { "content-type": "text/plain;charset=UTF-8", ...headers }),
  };
}
