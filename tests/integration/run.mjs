// Runs every tests/integration/*.test.mjs (or the files named on the command
// line), one test at a time, each with its time limit, and prints
// "integration: N passed, N failed".
import { readdirSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import * as lib from "./lib.mjs";

const dir = path.dirname(new URL(import.meta.url).pathname);
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".test.mjs"))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms); }),
  ]);
}

let passed = 0, failed = 0;
const failures = [];
for (const f of files) {
  lib._file(f);
  await import(pathToFileURL(path.join(dir, f)).href);
  const file = lib.registry[lib.registry.length - 1];
  console.log(`# ${f}`);
  let setupError = null;
  for (const b of file.before) {
    try { await withTimeout(Promise.resolve().then(b), 60000 * lib.TIME_SCALE, "before"); } catch (e) { setupError = e; break; }
  }
  for (const t of file.tests) {
    const start = Date.now();
    if (setupError) {
      failed++;
      failures.push(`${f}: ${t.name}: setup failed: ${setupError.message}`);
      console.log(`FAIL ${t.name}: setup failed: ${setupError.message}`);
      continue;
    }
    try {
      await withTimeout(Promise.resolve().then(t.fn), t.timeout, t.name);
      passed++;
      console.log(`ok   ${t.name} (${Date.now() - start} ms)`);
    } catch (e) {
      failed++;
      failures.push(`${f}: ${t.name}: ${e && e.stack ? e.stack : e}`);
      console.log(`FAIL ${t.name} (${Date.now() - start} ms): ${e && e.message ? e.message : e}`);
    } finally {
      lib.closeClients();
    }
  }
  for (const a of file.after) {
    try {
      await withTimeout(Promise.resolve().then(a), 30000 * lib.TIME_SCALE, "after");
    } catch (e) {
      failed++;
      failures.push(`${f}: after: ${e && e.stack ? e.stack : e}`);
      console.log(`FAIL ${f} teardown: ${e.message}`);
    }
  }
  // What the file left: its processes, and its temp dirs (stated reserves
  // map_size_mb of disk for each state directory).
  lib.cleanup();
}
lib.cleanup();
if (failures.length) {
  console.log("\n# failures:");
  for (const x of failures) console.log(x + "\n");
}
console.log(`integration: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
