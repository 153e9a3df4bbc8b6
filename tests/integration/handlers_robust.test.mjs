// The dispatcher under bad handlers and load: a command that crashes, one
// that hangs (killed at its timeout, other sockets unaffected), one that
// prints garbage; 100 clients at once (each socket's events in order, none
// lost); binary arguments through a command; a process handler that prints
// garbage and dies (restarted); a stated restart in the middle of a backlog
// (nothing lost, nothing handled twice).
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  REPO, BIN, assert, test, before, after, startStack, startProcess, startStated, freePort,
  connect, connected, record, eventually, sleep, tmpDir, startListen,
} from "./lib.mjs";
import { app, next, logMatch } from "./handlers_util.mjs";

const A = app(`
[namespace /]
event.crash = kill -SEGV $$
event.hang = sleep 30
event.garbage = head -c 20000 /dev/urandom; head -c 3000 /dev/urandom >&2; exit 7
event.ping = sioctl emit pong "$SIO_EVENT"
event.bin = sh bin.sh
any = sioctl emit unknown-event "$SIO_EVENT"
timeout = 600

# 500 commands at once on a busy box: no tight per-command timeout here
[namespace /seq]
event.seq = sh seq.sh

[namespace /proc]
process = sh proc.sh
event.cmd-too = sioctl emit cmd-ran

[namespace /stuck]
# never reads its input
process = exec sleep 1000
event.ping = sioctl emit pong stuck
timeout = 500
`, {
  // records "<socket> <n>" after a random pause: events of one socket must
  // still land in order
  "seq.sh": `#!/bin/sh
n=$(sh @JGET@ args.0)
sleep 0.0$(( $$ % 4 ))
echo "$SIO_SOCKET $n" >>"@DIR@/order.log"
`,
  "bin.sh": `#!/bin/sh
ev=$(cat)
exec sioctl emit bin-back "$(printf '%s' "$ev" | sh @JGET@ args.0)" "$(printf '%s' "$ev" | sh @JGET@ args.1)"
`,
  // a process handler in shell: garbage first, then one action per "hello"
  "proc.sh": `#!/bin/sh
echo "this line is not JSON"
echo '{"no":"action"}'
echo "started $$" >&2
while IFS= read -r line; do
  ev=$(printf '%s' "$line" | sh @JGET@ -r event) || continue
  sock=$(printf '%s' "$line" | sh @JGET@ -r socket)
  case $ev in
  hello) printf '{"action":"emit","socket":"%s","event":"hello-back","args":[%s,%s]}\\n' \\
           "$sock" "$(printf '%s' "$line" | sh @JGET@ args.0)" "$$" ;;
  die) exit 3 ;;
  esac
done
`,
});

let stack;
before(async () => { stack = await startStack("embedded", { config: A.config }); });
after(async () => { if (stack) await stack.stop(); });

const ws = { transports: ["websocket"] };

test("a crashing command is logged and the socket's next event is handled", async () => {
  const s = await connected(connect(stack.url, "/", ws));
  const pong = next(s, "pong");
  s.emit("crash");
  s.emit("ping");
  assert.deepEqual(await pong, ["ping"]);
  await logMatch(stack, new RegExp(`event\\.crash \\(socket ${s.id}\\): killed by signal 11`));
});

test("a hanging command is killed at its timeout; other sockets are not delayed", async () => {
  const [a, b] = await Promise.all([0, 1].map(() => connected(connect(stack.url, "/", ws))));
  const aPong = next(a, "pong", 5000);
  const t0 = Date.now();
  a.emit("hang");
  a.emit("ping"); // must wait for the hanging command: one socket, one order
  await sleep(100);
  const bPong = next(b, "pong", 5000);
  b.emit("ping");
  // b is answered while a's command still hangs (until its 600 ms timeout)
  assert.equal(await Promise.race([bPong.then(() => "b"), aPong.then(() => "a")]), "b");
  await aPong;
  const took = Date.now() - t0;
  assert.ok(took >= 550 && took < 3000, `a's ping answered after ${took} ms (timeout 600)`);
  await logMatch(stack, new RegExp(`event\\.hang \\(socket ${a.id}\\): killed after 600 ms \\(timeout\\)`));
});

test("garbage on stdout and stderr is drained, escaped in the log, and harmless", async () => {
  const s = await connected(connect(stack.url, "/", ws));
  const pong = next(s, "pong");
  s.emit("garbage");
  s.emit("ping");
  await pong;
  await logMatch(stack, new RegExp(`event\\.garbage \\(socket ${s.id}\\): exit status 7`));
  const lines = stack.proc.output.split("\n").filter((l) => l.includes(`event.garbage (socket ${s.id}) stderr`));
  assert.ok(lines.length > 0, "stderr not logged");
  for (const l of lines) assert.doesNotMatch(l, /[\x00-\x08\x0b-\x1f\x7f]/, "unescaped byte in the log");
});

test("an event with no event.NAME command goes to `any`", async () => {
  const s = await connected(connect(stack.url, "/", ws));
  const got = next(s, "unknown-event");
  s.emit("what is this", 1);
  assert.deepEqual(await got, ["what is this"]);
});

test("100 clients at once: every event handled, each socket's in order", async () => {
  const N = 100, K = 5;
  const clients = await Promise.all(Array.from({ length: N }, (_, i) =>
    connected(connect(stack.url, "/seq", { transports: [i % 2 ? "websocket" : "polling"] }), 20000)));
  for (let k = 0; k < K; k++) for (const c of clients) c.emit("seq", k);
  let rows;
  await eventually(() => {
    rows = A.read("order.log").trim().split("\n").filter(Boolean);
    assert.equal(rows.length, N * K, `${rows.length} of ${N * K} events handled`);
  }, 150000, 200); // 500 shells, 32 at a time: a bound for a hang (a loaded box took over 40 s)
  const per = new Map();
  for (const r of rows) {
    const [id, n] = r.split(" ");
    if (!per.has(id)) per.set(id, []);
    per.get(id).push(Number(n));
  }
  assert.equal(per.size, N);
  for (const c of clients) assert.deepEqual(per.get(c.id), [0, 1, 2, 3, 4], `order of ${c.id}`);
}, { timeout: 180000 });

test("binary arguments go through a command and come back as binary", async () => {
  for (const transport of ["websocket", "polling"]) {
    const s = await connected(connect(stack.url, "/", { transports: [transport] }));
    const got = next(s, "bin-back");
    // (a command line argument is limited to 128 KiB by the kernel: stay below)
    const big = Buffer.alloc(60000, 7);
    s.emit("bin", Buffer.from([0, 1, 2, 255]), { nested: [big], text: "t" });
    const [a, b] = await got;
    assert.ok(Buffer.isBuffer(a) || a instanceof ArrayBuffer, `not binary: ${typeof a}`);
    assert.deepEqual([...Buffer.from(a)], [0, 1, 2, 255]);
    assert.equal(b.text, "t");
    assert.ok(Buffer.from(b.nested[0]).equals(big), `${transport}: nested buffer differs`);
  }
});

test("a process handler: garbage lines skipped, actions applied, restarted when it dies", async () => {
  const s = await connected(connect(stack.url, "/proc", ws));
  const ev = record(s);
  s.emit("hello", 1);
  await eventually(() => assert.ok(ev.some((e) => e[0] === "hello-back" && e[1] === 1)));
  const pid1 = ev.find((e) => e[0] === "hello-back")[2];
  await logMatch(stack, /\/proc process: not an action line, skipped: this line is not JSON/);
  await logMatch(stack, /\/proc process: not an action line, skipped: \{"no":"action"\}/);
  // both the process and the per-event command see the event
  s.emit("cmd-too");
  await eventually(() => assert.ok(ev.some((e) => e[0] === "cmd-ran")));
  s.emit("die");
  await logMatch(stack, /\/proc process: pid \d+ exited with status 3; restarting/);
  // events may be lost while it is down; it comes back and answers again
  let n = 100;
  await eventually(() => {
    s.emit("hello", ++n);
    const back = ev.filter((e) => e[0] === "hello-back" && e[1] > 100);
    assert.ok(back.length > 0, "no answer from the restarted process");
    assert.notEqual(back[0][2], pid1, "same pid: it was not restarted");
  }, 8000, 300);
});

test("a process handler that does not read its input holds nothing back", async () => {
  const s = await connected(connect(stack.url, "/stuck", ws));
  const pad = "x".repeat(400);
  for (let i = 0; i < 600; i++) s.emit("fill", i, pad); // far more than a pipe holds
  await logMatch(stack, /\/stuck process: it has not read its input for a while; \d+ queued record\(s\) no longer hold the inbox cursor/, 8000);
  // the namespace's commands still run meanwhile
  const pong = next(s, "pong", 8000);
  s.emit("ping");
  assert.deepEqual(await pong, ["stuck"]);
});

// ---- the inbox is trimmed -------------------------------------------------------------

test("readers of dead `sioctl listen` processes are dropped and handled records trimmed", async () => {
  const env = { SIO_STATE_DIR: stack.stateDir };
  const s = await connected(connect(stack.url, "/", ws));
  const l = await startListen(stack.stateDir, [], { name: "listen" });
  s.emit("ping");
  await eventually(() => assert.match(l.output, new RegExp(`"socket":"${s.id}"`)));
  const pid = l.child.pid;
  await l.stop("SIGKILL");
  await logMatch(stack, new RegExp(`removed the inbox reader in:listen-${pid} \\(its process is gone\\)`), 5000);
  // once nobody needs them, handled records are trimmed: a listener starting
  // from the oldest stored record no longer sees this socket's events
  await eventually(async () => {
    const l2 = await startProcess(path.join(BIN, "sioctl"), ["listen", "--from-start"], { env, name: "listen2" });
    await sleep(300);
    await l2.stop();
    assert.doesNotMatch(l2.output, new RegExp(`"socket":"${s.id}"`));
  }, 5000, 300);
});

// ---- stated restart -------------------------------------------------------------

// stated and sio-front on a fresh state directory with app B's config,
// started by hand so that a test can stop and start stated alone.
async function handStack(B, prefix) {
  const dir = tmpDir(prefix);
  const stateDir = path.join(dir, "state");
  const port = await freePort();
  const www = path.join(dir, "www");
  mkdirSync(www);
  const st = { stateDir, url: `http://127.0.0.1:${port}` };
  st.stated = await startStated({ stateDir, config: B.config });
  st.front = await startProcess(path.join(BIN, "sio-front"),
    ["--port", String(port), "--host", "127.0.0.1", "--www", www, "--state", stateDir, "--config", B.config],
    { ready: /listening on/, name: "sio-front" });
  st.restartStated = async () => (st.stated = await startStated({ stateDir, config: B.config }));
  st.stop = async () => { await st.front.stop(); await st.stated.stop(); };
  return st;
}

test("stated restarts in the middle of a backlog: no event lost, none handled twice", async () => {
  const B = app(`
[namespace /]
event.slow = sh slow.sh
`, {
    "slow.sh": `#!/bin/sh
n=$(sh @JGET@ args.0)
sleep 0.1
echo "$n" >>"@DIR@/done.log"
`,
  });
  const st = await handStack(B, "sio-hrestart-");
  try {
    const s = await connected(connect(st.url, "/", { transports: ["websocket"], reconnection: true }));
    for (let i = 0; i < 20; i++) s.emit("slow", i);
    await eventually(() => assert.ok(B.read("done.log").split("\n").filter(Boolean).length >= 3), 8000, 20);
    const r = await st.stated.stop("SIGTERM");
    assert.equal(r.code, 0, "stated should exit 0");
    assert.match(st.stated.output, /dispatcher: stopped \(cursor \d+\)/);
    const before = B.read("done.log").split("\n").filter(Boolean).length;
    assert.ok(before < 20, "the backlog was already done: nothing tested");
    await st.restartStated();
    await eventually(() => assert.match(st.stated.output, /dispatcher: \d+ inbox record\(s\) waiting since the last run/));
    await eventually(() => {
      const lines = B.read("done.log").split("\n").filter(Boolean);
      assert.equal(lines.length, 20, `handled: ${lines.join(" ")}`);
    }, 15000, 100);
    await sleep(300);
    const done = B.read("done.log").split("\n").filter(Boolean).map(Number);
    assert.deepEqual(done, Array.from({ length: 20 }, (_, i) => i));
  } finally {
    await st.stop();
  }
}, { timeout: 40000 });

test("a command killed because stated stops runs again at the next start", async () => {
  // The first run outlasts the dispatcher's grace time at shutdown (it
  // waits for a file that only exists after the restart); the next run sees
  // the file and finishes.
  const B = app(`
[namespace /]
event.wait = sh wait.sh
timeout = 60000
`, {
    "wait.sh": `#!/bin/sh
n=$(sh @JGET@ args.0)
echo "start $n" >>"@DIR@/runs.log"
while [ ! -e "@DIR@/go" ]; do sleep 0.05; done
echo "done $n" >>"@DIR@/runs.log"
`,
  });
  const st = await handStack(B, "sio-hstop-");
  try {
    const s = await connected(connect(st.url, "/", { transports: ["websocket"] }));
    s.emit("wait", 7);
    await eventually(() => assert.match(B.read("runs.log"), /start 7/), 8000, 20);
    const r = await st.stated.stop("SIGTERM");
    assert.equal(r.code, 0, "stated should exit 0");
    assert.match(st.stated.output, /still running at shutdown: killed \(it runs again at the next start\)/);
    assert.doesNotMatch(B.read("runs.log"), /done/);
    writeFileSync(B.file("go"), "");
    await st.restartStated();
    await eventually(() => assert.match(B.read("runs.log"), /done 7/), 15000, 50);
    assert.deepEqual(B.read("runs.log").split("\n").filter(Boolean), ["start 7", "start 7", "done 7"]);
  } finally {
    await st.stop();
  }
}, { timeout: 40000 });
