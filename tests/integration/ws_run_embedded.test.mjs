// scripts/run-embedded: starts stated + sio-front, says "listening on ...",
// stops both on SIGINT/SIGTERM (exit 0) and stops the other one and exits
// non-zero when either dies.  Leaves no process behind.
import { readdirSync, readFileSync } from "node:fs";
import { assert, test, startStack, http, connect, connected, eventually, sleep } from "./lib.mjs";

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

const waitExit = (proc, ms) => Promise.race([proc.exited, sleep(ms).then(() => null)]);

test("SIGINT stops stated and sio-front cleanly (exit 0, nothing left)", async () => {
  const stack = await startStack("embedded");
  assert.equal((await http("GET", `${stack.url}/`)).status, 200);
  const s = await connected(connect(stack.url, "/", { transports: ["websocket"] }));
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

test("if sio-front dies, the script stops stated and exits non-zero", async () => {
  const stack = await startStack("embedded");
  const front = procsWith(stack.stateDir).find((p) => p.cmd.includes("sio-front"));
  assert.ok(front);
  process.kill(front.pid, "SIGKILL");
  const r = await waitExit(stack.proc, 20000);
  assert.ok(r, "run-embedded did not exit");
  assert.notEqual(r.code, 0);
  assert.match(stack.proc.output, /sio-front exited/);
  await eventually(() => assert.deepEqual(procsWith(stack.stateDir), []), 5000);
}, { timeout: 40000 });

test("if stated dies, the script stops sio-front and exits non-zero", async () => {
  const stack = await startStack("embedded");
  const stated = procsWith(stack.stateDir).find((p) => p.cmd.includes("stated"));
  assert.ok(stated);
  process.kill(stated.pid, "SIGKILL");
  const r = await waitExit(stack.proc, 20000);
  assert.ok(r, "run-embedded did not exit");
  assert.notEqual(r.code, 0);
  assert.match(stack.proc.output, /stated exited/);
  await eventually(() => assert.deepEqual(procsWith(stack.stateDir), []), 5000);
}, { timeout: 40000 });
