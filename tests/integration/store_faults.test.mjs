// Store faults (the "Nothing lost" issue), on real stated / sio-front /
// sioctl processes and real LMDB files:
//   - a store stated cannot use (garbage, truncated, another format) is moved
//     into DIR/broken-*/ with one log line and a fresh one is created; the
//     other programs refuse it with a clear error and move nothing;
//   - a full map refuses writes cleanly (sioctl exit 6, 503 to a POST and to
//     handshakes, a WebSocket closed with 1013), keeps what is stored, and
//     stated makes room by itself;
//   - a full disk gives errors, not SIGBUS (tmpfs state directories; root).
import { execFileSync } from "node:child_process";
import {
  appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, truncateSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import {
  REPO, BIN, assert, test, tmpDir, freePort, startProcess, startStated, sioctl, connect, connected,
  record, eventually, eioSession, http, writeConfig, pauseOutsideStoreLocks,
} from "./lib.mjs";

const WebSocket = createRequire(path.join(REPO, "tests", "package.json"))("ws");

async function startFront(stateDir, config) {
  const port = await freePort();
  const proc = await startProcess(path.join(BIN, "sio-front"),
    ["--port", String(port), "--host", "127.0.0.1", "--state", stateDir, "--config", config], {
      ready: new RegExp(`listening on http://127\\.0\\.0\\.1:${port}`), name: "sio-front",
    });
  return { proc, url: `http://127.0.0.1:${port}` };
}

// The store's data file, and where stated says it moved a broken one.
const dataFile = (stateDir) => path.join(stateDir, "data.mdb");
function movedTo(output) {
  const m = output.match(/the store in \S+ cannot be used \((.*)\): moved data\.mdb and lock\.mdb to (\S+broken-\d{8}-\d{6}(?:-\d+)?) and started a new, empty store/);
  return m && { why: m[1], dir: m[2] };
}

// A received event by name (after `from` in the record).
const got = (events, name) => events.some((e) => e[0] === name);

// ---- a store stated cannot use ---------------------------------------------------

const BIG = "x".repeat(120000); // one sioctl argument (under the kernel's 128 KiB per argument)

// A store with some megabytes of packet log in it (a polling session that
// never polls keeps the log), stated stopped again.
async function storeWithData(config) {
  const stateDir = path.join(tmpDir("sio-faults-"), "state");
  const stated = await startStated({ stateDir, config });
  const { proc: front, url } = await startFront(stateDir, config);
  const keeper = await eioSession(url);
  await keeper.post("40");
  for (let i = 0; i < 8; i++) assert.equal((await sioctl(stateDir, config, "emit", "--to", "nobody", "fill", BIG, BIG)).code, 0);
  await front.stop();
  await stated.stop();
  assert.ok(statSync(dataFile(stateDir)).size > 2e6);
  return stateDir;
}

const BREAKS = {
  garbage(file) {
    const b = Buffer.alloc(256 * 1024);
    for (let i = 0; i < b.length; i++) b[i] = (i * 7919 + (i >> 8)) & 0xff;
    writeFileSync(file, b);
  },
  truncated(file) { truncateSync(file, 64 * 1024); },
  // the same file with another format string in its meta table (every copy:
  // LMDB keeps old page versions around)
  "another format"(file) {
    const b = readFileSync(file);
    const text = b.toString("latin1");
    const re = /sio-store-([0-9]+)/g;
    let m, n = 0;
    while ((m = re.exec(text))) { b.write("X".repeat(m[1].length), m.index + 10, "latin1"); n++; }
    assert.ok(n > 0, "no format string found in data.mdb");
    writeFileSync(file, b);
  },
};

for (const [kind, breakIt] of Object.entries(BREAKS)) {
  test(`a store that is ${kind}: the others refuse it, stated moves it aside and starts afresh`, async () => {
    const config = writeConfig("map_size_mb = 16\n");
    const stateDir = await storeWithData(config);
    breakIt(dataFile(stateDir));
    const broken = readFileSync(dataFile(stateDir));

    // sioctl and sio-front say what is wrong and touch nothing
    const r = await sioctl(stateDir, config, "status");
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /cannot open the store in .*: the store (is damaged|was written by another version).*stated moves it aside/);
    if (kind === "garbage") {
      await assert.rejects(startFront(stateDir, config), /exited \(1\) before ready[\s\S]*cannot open the store/);
    }
    assert.deepEqual(readFileSync(dataFile(stateDir)), broken);
    assert.ok(!readdirSync(stateDir).some((f) => f.startsWith("broken-")));

    // stated moves it aside, with one line saying why and where
    const stated = await startStated({ stateDir, config });
    try {
      const moved = movedTo(stated.output);
      assert.ok(moved, `no "moved aside" line in:\n${stated.output}`);
      assert.match(moved.why, kind === "garbage" ? /MDB_INVALID/ : kind === "truncated" ? /truncated/ : /its format is "sio-store-X+"/);
      assert.equal(path.dirname(moved.dir), stateDir);
      assert.deepEqual(readFileSync(path.join(moved.dir, "data.mdb")), broken);
      assert.ok(existsSync(path.join(moved.dir, "lock.mdb")));
      assert.match(stated.output, /0 session\(s\), 0 socket\(s\), log head 0/);

      // and the stack serves on the fresh store
      const { proc: front, url } = await startFront(stateDir, config);
      try {
        const c = await connected(connect(url, "/", { transports: ["websocket"] }));
        const ev = record(c);
        assert.equal((await sioctl(stateDir, config, "emit", "hello", "fresh")).code, 0);
        await eventually(() => assert.ok(got(ev, "hello"), "no emit after the fresh start"));
      } finally {
        await front.stop();
      }
    } finally {
      await stated.stop();
    }
  }, { timeout: 60000 });
}

// ---- a full map -----------------------------------------------------------------

// Emits of `args` arguments of `size` bytes until sioctl fails; the failure.
async function emitUntilFull(stateDir, config, size, args) {
  const a = "y".repeat(size);
  for (let i = 0; i < 2000; i++) {
    const r = await sioctl(stateDir, config, "emit", "--to", "nobody", "fill", ...Array(args).fill(a));
    if (r.code !== 0) return { ...r, emits: i };
  }
  throw new Error(`still no full store after 2000 emits of ${args} x ${size} bytes`);
}

// Free bytes in the store's map (pages past the last one used, and on the
// free list), by LMDB's own mdb_stat.
function mapFree(stateDir) {
  const out = execFileSync("mdb_stat", ["-ef", stateDir], { encoding: "utf8" });
  const n = (re) => Number(out.match(re)[1]);
  return (n(/Max pages: (\d+)/) - n(/Number of pages used: (\d+)/) + n(/Free pages: (\d+)/)) * n(/Page size: (\d+)/);
}

test("a full map refuses writes cleanly, keeps what is stored, and stated makes room", async () => {
  // No session may expire meanwhile; the map is LMDB's smallest we allow.
  const config = writeConfig("map_size_mb = 16\nping_interval = 60000\nping_timeout = 60000\nconnect_timeout = 60000\n");
  const stateDir = path.join(tmpDir("sio-full-"), "state");
  const stated = await startStated({ stateDir, config });
  const { proc: front, url } = await startFront(stateDir, config);
  try {
    const opts = { transports: ["websocket"], reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 };
    const a = await connected(connect(url, "/", opts));
    const b = await connected(connect(url, "/", opts));
    const evA = record(a), evB = record(b);
    const bClosed = new Promise((resolve) => b.once("disconnect", (reason, details) => resolve({ reason, details })));
    assert.equal((await sioctl(stateDir, config, "join", "--to", a.id, "keep")).code, 0);
    // a polling session that never polls: a reader the log cannot be trimmed under
    const paused = await eioSession(url);
    assert.equal((await paused.post("40")).status, 200);

    // stated makes room within a second: it is paused while the store is
    // filled and checked (a stalled reaper), so that the full store can be seen
    await pauseOutsideStoreLocks(stated.child.pid, stateDir);
    let full;
    try {
      full = await emitUntilFull(stateDir, config, 120000, 4);
      assert.ok(full.emits > 5, `full after ${full.emits} emits`);
      assert.equal(full.code, 6, full.stderr);
      assert.match(full.stderr, /^sioctl: the store is full: no room left in its map \(map_size_mb = 16, in .*\); nothing was written\..*raise map_size_mb/);
      for (const size of [12000, 1200, 120]) assert.equal((await emitUntilFull(stateDir, config, size, 1)).code, 6);
      // what the others may not take: the last 1/16 of the map (at most
      // 8 MB, 1 MB here) stays for stated, which needs pages even to
      // delete; a write that starts just above it may still take the pages
      // of one emit (120 kB of text here, a few B-tree pages more)
      const left = mapFree(stateDir);
      assert.ok(left >= (1 << 20) / 2, `${left} bytes free in a 16 MB map`);

      // a client's POST: 503 with a body like Node's error bodies
      const post = await paused.post(`42["big","${"z".repeat(100000)}"]`);
      assert.equal(post.status, 503);
      assert.equal(post.headers.get("content-type"), "application/json");
      assert.deepEqual(JSON.parse(post.body), { code: 4, message: "Store full" });
      // a WebSocket message: the connection is closed with 1013 (Try Again Later)
      b.emit("big", "z".repeat(100000));
      const closed = await bClosed;
      assert.equal(closed.reason, "transport close");
      assert.equal(closed.details.context.code, 1013);
      assert.equal(closed.details.context.reason.toString(), "Store full");
      // new sessions: 503 as for max_sessions, over polling and WebSocket
      let hs;
      for (let i = 0; i < 100; i++) {
        hs = await http("GET", `${url}/socket.io/?EIO=4&transport=polling`);
        if (hs.status !== 200) break;
      }
      assert.equal(hs.status, 503, hs.body);
      assert.deepEqual(JSON.parse(hs.body), { code: 4, message: "Store full" });
      const wsStatus = await new Promise((resolve, reject) => {
        const ws = new WebSocket(`${url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`);
        ws.on("unexpected-response", (req, res) => { resolve(res.statusCode); req.destroy(); });
        ws.on("open", () => { ws.close(); reject(new Error("a WebSocket handshake was accepted")); });
        ws.on("error", () => {});
      });
      assert.equal(wsStatus, 503);

      // nothing already stored was damaged: sessions, the socket, its rooms
      const socks = JSON.parse((await sioctl(stateDir, config, "sockets", "--json")).stdout);
      const sa = socks.find((s) => s.id === a.id);
      assert.ok(sa, `socket ${a.id} missing from ${JSON.stringify(socks)}`);
      assert.ok(sa.rooms.includes("keep"));
      const rooms = JSON.parse((await sioctl(stateDir, config, "rooms", "--json")).stdout);
      assert.deepEqual(rooms.find((r) => r.room === "keep").members, [a.id]);
      assert.ok(a.connected);
      assert.match((await sioctl(stateDir, config, "status")).stdout, /sessions +[1-9]\d* polling, [1-9]\d* websocket/);
    } finally {
      process.kill(stated.child.pid, "SIGCONT");
    }

    // stated makes room (the paused reader's records go: it is left behind)
    // and service resumes by itself: emits work and reach the clients again,
    // the closed client is back, the end of its first session is written
    await eventually(() => assert.match(stated.output, /made room in the store: dropped the \d+ oldest packet-log records/), 10000);
    assert.match(stated.output, /warn: the store is (nearly )?full \(\d+ of 16 MB free, map_size_mb\): dropping the oldest packet-log records/);
    let n = 0;
    await eventually(async () => {
      const tag = `after-${n++}`;
      const r = await sioctl(stateDir, config, "emit", tag);
      assert.equal(r.code, 0, r.stderr);
      await eventually(() => assert.ok(got(evA, tag) && got(evB, tag), `${tag} not received by both`), 1000);
    }, 15000);
    assert.ok(a.connected && b.connected);
    await eventually(() => assert.match(front.output, /session \S+: its end is written now/), 5000);
    assert.equal((await paused.get()).body, "1"); // behind the trimmed log: closed
  } finally {
    await front.stop();
    await stated.stop();
  }
}, { timeout: 90000 });

// ---- a full disk ------------------------------------------------------------------

// A tmpfs of `mb` MiB as the state directory (root only), removed by stop().
function tmpfsState(mb) {
  if (process.getuid() !== 0) return { skip: "not root: cannot mount a tmpfs" };
  const dir = path.join(tmpDir("sio-disk-"), "state");
  mkdirSync(dir);
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${mb}m`, "tmpfs", dir], { stdio: "pipe" });
  } catch (e) {
    return { skip: `cannot mount a tmpfs: ${String(e.stderr || e.message).trim()}` };
  }
  return { dir, stop: () => { try { execFileSync("umount", [dir], { stdio: "pipe" }); } catch { execFileSync("umount", ["-l", dir]); } } };
}

// Writes a filler file until the disk says ENOSPC.
function fillDisk(dir) {
  const file = path.join(dir, "filler");
  const chunk = Buffer.alloc(64 * 1024, 1);
  for (;;) {
    try { appendFileSync(file, chunk); } catch (e) {
      if (e.code !== "ENOSPC") throw e;
      break;
    }
  }
  // down to the last bytes
  for (const size of [4096, 512, 1]) {
    try { for (;;) appendFileSync(file, chunk.subarray(0, size)); } catch (e) { if (e.code !== "ENOSPC") throw e; }
  }
  return file;
}

// stated, sio-front, a WebSocket client (its events recorded) and a polling
// session that never polls (it keeps every record: new pages each time) on
// a tmpfs of `mb` MiB with a 16 MiB map; check(stack) runs with them, then
// everything is stopped and the tmpfs unmounted.
async function onTmpfs(mb, check) {
  const fs = tmpfsState(mb);
  if (fs.skip) { console.log(`  skipped: ${fs.skip}`); return; }
  const config = writeConfig("map_size_mb = 16\nping_interval = 60000\nping_timeout = 60000\nconnect_timeout = 60000\n");
  let stated, front;
  try {
    stated = await startStated({ stateDir: fs.dir, config });
    front = await startFront(fs.dir, config);
    const a = await connected(connect(front.url, "/", { transports: ["websocket"] }));
    const paused = await eioSession(front.url);
    await paused.post("40");
    await check({ dir: fs.dir, config, stated, front, a, ev: record(a), paused });
    assert.ok(a.connected);
    assert.equal(stated.child.exitCode, null);
    assert.equal(front.proc.child.exitCode, null);
  } finally {
    if (front) await front.proc.stop();
    if (stated) await stated.stop();
    fs.stop();
  }
}

test("a full disk under a reserved map: the store keeps working, nothing crashes", () => onTmpfs(48, async (t) => {
  assert.doesNotMatch(t.stated.output, /without the shared map/);
  assert.ok(statSync(dataFile(t.dir)).blocks * 512 >= 16 << 20, "the map is not reserved");
  fillDisk(t.dir);
  // about 10 MB written into pages never written before, on a full disk:
  // a sparse map would take a SIGBUS here
  for (let i = 0; i < 20; i++) {
    const r = await sioctl(t.dir, t.config, "emit", "--to", "nobody", "fill", BIG, BIG, BIG, BIG);
    assert.equal(r.code, 0, r.stderr);
  }
  assert.equal((await sioctl(t.dir, t.config, "emit", "hello", "disk")).code, 0);
  await eventually(() => assert.ok(got(t.ev, "hello")));
}), { timeout: 60000 });

test("a full disk without room to reserve the map: errors (sioctl exit 6, 503), no crash, and back when freed", () => onTmpfs(12, async (t) => {
  assert.match(t.stated.output, /warn: durability = fast without the shared map .*: reserving map_size_mb \(16 MB\) in .* needs \d+ MB more of disk/);
  const filler = fillDisk(t.dir);
  const r = await emitUntilFull(t.dir, t.config, 120000, 4);
  assert.equal(r.code, 6, r.stderr);
  assert.match(r.stderr, /^sioctl: the disk under the store \(.*\) is full: No space left on device; nothing was written/);
  const post = await t.paused.post(`42["big","${"z".repeat(100000)}"]`);
  assert.equal(post.status, 503);
  assert.deepEqual(JSON.parse(post.body), { code: 4, message: "Store full" });
  rmSync(filler);
  await eventually(async () => assert.equal((await sioctl(t.dir, t.config, "emit", "hello", "freed")).code, 0));
  await eventually(() => assert.ok(got(t.ev, "hello")));
}), { timeout: 60000 });
