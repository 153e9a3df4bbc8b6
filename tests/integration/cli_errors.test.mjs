// Operator input that cannot misfire, and errors that say what is wrong:
// every row of README's exit-code tables (sioctl, and the programs'
// start-up errors), on the real programs.  sioctl's options are checked per
// command (an option of another command never silently widens the target);
// `make run` (scripts/run-embedded) on a busy port; sio-fcgi --socket in a
// missing folder; handler commands that do not exist; the permission cases
// run as the user nobody (setpriv), since the tests run as root.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import {
  BIN, REPO, assert, test, before, after, tmpDir, freePort, startProcess, startStated, sioctl, run,
  connect, connected, record, eventually, writeConfig, pauseOutsideStoreLocks,
} from "./lib.mjs";

const CONFIG = writeConfig("map_size_mb = 16\n[namespace /]\n[namespace /chat]\n");
let stated, front, url;

async function startFront(stateDir, config, args = []) {
  const port = await freePort();
  const proc = await startProcess(path.join(BIN, "sio-front"),
    ["--port", String(port), "--state", stateDir, "--config", config, ...args], {
      ready: new RegExp(`listening on http://127\\.0\\.0\\.1:${port}`), name: "sio-front",
    });
  return { proc, url: `http://127.0.0.1:${port}` };
}

before(async () => {
  stated = await startStated({ config: CONFIG });
  const f = await startFront(stated.stateDir, CONFIG);
  front = f.proc;
  url = f.url;
});
after(async () => {
  if (front) await front.stop();
  if (stated) await stated.stop();
});

const ctl = (...args) => sioctl(stated.stateDir, CONFIG, ...args);

// Runs a program as the user nobody (the tests run as root).
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));
function asNobody(cmd, args, opts) {
  assert.ok(SETPRIV, "setpriv (util-linux) is needed to run as nobody");
  return run(SETPRIV, ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", cmd, ...args], opts);
}

// One exit code and a stderr that names the program.
function failsWith(r, code, re) {
  assert.doesNotMatch(r.stderr, /ERROR: (Address|Leak)Sanitizer|runtime error:/); // make test-asan
  assert.equal(r.code, code, `exit ${r.code}, wanted ${code}; stderr: ${r.stderr}`);
  assert.match(r.stderr, re);
}

// A client that records its events; `marker` emits resolve in order after
// anything sent before them, so "nothing else arrived" can be checked.
async function recorded(nsp = "/") {
  const s = await connected(connect(url, nsp, { transports: ["websocket"] }));
  return { s, ev: record(s) };
}
async function marker(clients, name) {
  const r = await ctl("emit", "--all", name);
  assert.equal(r.code, 0, r.stderr);
  await eventually(() => { for (const c of clients) assert.ok(c.ev.some((e) => e[0] === name), `no ${name}`); });
}

// ---- sioctl ------------------------------------------------------------------------

test("sioctl exit 0: a command that works", async () => {
  const r = await ctl("sockets", "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Array.isArray(JSON.parse(r.stdout)));
});

test("sioctl exit 2: an option of another command is refused, naming the command, the option and what it takes; nothing is sent", async () => {
  const a = await recorded(), b = await recorded();
  assert.equal((await ctl("join", "--to", a.s.id, "chat")).code, 0);
  failsWith(await ctl("emit", "--room", "chat", "hello"), 2,
    /^sioctl: emit: unknown option --room \(emit takes: --nsp --to .*--json; see sioctl --help\)\n$/);
  failsWith(await ctl("disconnect", "--room", "chat"), 2, /^sioctl: disconnect: unknown option --room \(disconnect takes: /);
  failsWith(await ctl("rooms", "--to", "chat"), 2, /^sioctl: rooms: unknown option --to /);
  failsWith(await ctl("status", "--nsp", "/"), 2, /^sioctl: status: unknown option --nsp \(status takes: --json;/);
  await marker([a, b], "after-refusals");
  assert.deepEqual(a.ev.map((e) => e[0]), ["after-refusals"], "a refused emit reached a client");
  assert.deepEqual(b.ev.map((e) => e[0]), ["after-refusals"]);
  assert.ok(a.s.connected && b.s.connected, "a refused disconnect disconnected");
});

test("sioctl exit 2: other usage errors name what is wrong", async () => {
  failsWith(await ctl("frobnicate"), 2, /^sioctl: unknown command 'frobnicate'/);
  failsWith(await ctl("emit", "--to"), 2, /^sioctl: emit: option --to needs a value\n$/);
  failsWith(await ctl("--bogus", "status"), 2, /^sioctl: unknown option --bogus before the command/);
  failsWith(await ctl("--state", "", "status"), 2, /^sioctl: --state: empty directory name/);
  failsWith(await ctl("emit", "--nsp", "/nope", "x"), 2, /^sioctl: unknown namespace '\/nope'/);
  failsWith(await ctl("emit", "x", "{bad json"), 2, /^sioctl: argument 1 is /);
  failsWith(await ctl("emit", "--timeout", "soon", "--ack", "x"), 2, /^sioctl: bad --timeout 'soon'/);
  failsWith(await ctl(), 2, /^usage: sioctl /);
});

test("sioctl exit 2: --socket naming no socket (or one of another --nsp) is refused, naming it; nothing is sent", async () => {
  const a = await recorded();
  for (const cmd of [["emit", "--socket", "NOSUCH", "hello"], ["join", "--socket", "AAAAAAAAAAAAAAAAAAAA", "r"],
    ["disconnect", "--socket", "NOSUCH"], ["ack", "--socket", "NOSUCH", "--id", "1", "x"]])
    failsWith(await ctl(...cmd), 2, new RegExp(`^sioctl: ${cmd[0]}: no socket '${cmd[2]}' \\(--socket; `));
  failsWith(await ctl("emit", "--socket", a.s.id, "--nsp", "/chat", "hello"), 2,
    new RegExp(`^sioctl: emit: socket '${a.s.id}' is in namespace '/', not '/chat' \\(--nsp\\)`));
  // inside a handler, SIO_SOCKET of a socket that is gone is no error (a disconnect handler)
  const gone = await run(path.join(BIN, "sioctl"), ["emit", "x"],
    { env: { SIO_STATE_DIR: stated.stateDir, SIO_SOCKET: "AAAAAAAAAAAAAAAAAAAA" } });
  assert.equal(gone.code, 0, gone.stderr);
  await marker([a], "after-nosuch");
  assert.deepEqual(a.ev.map((e) => e[0]), ["after-nosuch"]);
  // the socket that exists works
  assert.equal((await ctl("emit", "--socket", a.s.id, "to-me")).code, 0);
  await eventually(() => assert.ok(a.ev.some((e) => e[0] === "to-me")));
});

test("sioctl exit 2: a config file (SIO_CONFIG) that cannot be read is named", async () => {
  const missing = path.join(tmpDir(), "nope.conf");
  failsWith(await sioctl(stated.stateDir, missing, "status"), 2,
    new RegExp(`^sioctl: cannot read config ${missing}: No such file or directory\\n$`));
  const bad = writeConfig("ping_interval = soon\n");
  failsWith(await sioctl(stated.stateDir, bad, "status"), 2, new RegExp(`^sioctl: config ${bad}: line 1: ping_interval must be`));
});

test("sioctl exit 3: no store, or stated not running, names the real state directory", async () => {
  const none = path.join(tmpDir(), "state");
  failsWith(await sioctl(none, undefined, "emit", "x"), 3,
    new RegExp(`^sioctl: no store in ${none}: is stated running\\? \\(start it with: stated --state ${none}\\)\\n$`));
  // a store whose stated has stopped
  const st = await startStated({ config: CONFIG });
  await st.stop();
  const dir = st.stateDir;
  failsWith(await sioctl(dir, undefined, "emit", "x"), 3,
    new RegExp(`^sioctl: stated is not running for ${dir} \\(no answer on ${dir}/notify\\.sock: No such file or directory\\)\\n$`));
  // the state directory from SIO_STATE_DIR, not --state
  const r = await run(path.join(BIN, "sioctl"), ["status"], { env: { SIO_STATE_DIR: dir } });
  failsWith(r, 3, new RegExp(`for ${dir} `));
});

test("sioctl exit 4: emit --ack before every targeted client answered", async () => {
  const a = await recorded(); // no listener for "noack": the client never acknowledges
  const r = await ctl("emit", "--ack", "--timeout", "300", "--to", a.s.id, "noack");
  failsWith(r, 4, /^sioctl: timeout: 0 of 1 client\(s\) acknowledged within 300 ms/);
});

test("sioctl exit 5: a --cluster command without a cluster", async () => {
  failsWith(await ctl("emit", "--ack", "--cluster", "x"), 5, /^sioctl: .*redis_url/);
  failsWith(await ctl("rooms", "--cluster"), 5, /^sioctl: .*redis_url/);
});

test("sioctl exit 6: a full store refuses the write, naming the store", async () => {
  const config = writeConfig("map_size_mb = 16\n");
  const st = await startStated({ config });
  // stated makes room within a second: paused while the map is filled
  await pauseOutsideStoreLocks(st.child.pid, st.stateDir);
  try {
    const big = "y".repeat(120000);
    let r;
    for (let i = 0; i < 400; i++) {
      r = await sioctl(st.stateDir, config, "emit", "fill", big, big, big, big);
      if (r.code !== 0) break;
    }
    failsWith(r, 6, new RegExp(`^sioctl: the store is full: no room left in its map \\(map_size_mb = 16, in ${st.stateDir}\\)`));
  } finally {
    process.kill(st.child.pid, "SIGCONT");
    await st.stop();
  }
}, { timeout: 60000 });

test("sioctl exit 7: permission denied on the state directory is not 'not running'", async () => {
  // the temp tree is root's, mode 0700: nobody cannot reach the store
  const r = await asNobody(path.join(BIN, "sioctl"), ["--state", stated.stateDir, "emit", "x"]);
  failsWith(r, 7, new RegExp(`^sioctl: permission denied: cannot use the state directory ${stated.stateDir}: Permission denied \\(run as the user that owns it`));
  assert.doesNotMatch(r.stderr, /not running|no store/);
});

// ---- make run (scripts/run-embedded) ---------------------------------------------------

test("make run on a busy port fails naming the port, and never says 'listening'", async () => {
  const port = await freePort();
  const squatter = createServer((c) => c.end());
  await new Promise((res, rej) => { squatter.once("error", rej); squatter.listen(port, "127.0.0.1", res); });
  try {
    const dir = tmpDir("sio-busy-");
    const r = await run(path.join(REPO, "scripts", "run-embedded"), [String(port)],
      { env: { SIO_BIN: BIN, SIO_STATE_DIR: path.join(dir, "state") }, timeout: 60000 });
    const out = r.stdout + r.stderr;
    assert.notEqual(r.code, 0, out);
    assert.match(r.stderr, new RegExp(`^run-embedded: port ${port} on 127\\.0\\.0\\.1 is in use by another program: `, "m"));
    assert.doesNotMatch(out, /listening/);
    assert.ok(!existsSync(path.join(dir, "state")), "it started something anyway");
    // and if the port is taken between that check and sio-front's start, the
    // script waits for sio-front's own listener, not for any answer on the port
    const owns = (pid) => run("bash", ["-c",
      `ME=t; . "${REPO}/scripts/lib-run.sh"; p=$1; [ "$p" = self ] && p=$$; owns_listener "$p" ${port}`, "t", pid]);
    assert.equal((await owns(String(process.pid))).code, 0, "this process holds the port");
    assert.equal((await owns("self")).code, 1, "a shell that does not hold it");
    assert.equal((await owns(String(process.pid))).code, 0);
  } finally {
    squatter.close();
  }
}, { timeout: 70000 });

// ---- sio-fcgi ----------------------------------------------------------------------------

test("sio-fcgi --socket in a missing folder (or one that is a file) names the program, the path and the folder", async () => {
  const dir = tmpDir();
  const sock = path.join(dir, "no", "such", "gw.sock");
  let r = await run(path.join(BIN, "sio-fcgi"), ["--socket", sock, "--state", stated.stateDir]);
  failsWith(r, 1, new RegExp(`sio-fcgi\\[\\d+\\] error: cannot listen on ${sock}: the folder ${path.dirname(sock)} does not exist\\n$`));
  assert.doesNotMatch(r.stderr, /bind\/listen/);
  writeFileSync(path.join(dir, "file"), "");
  const inFile = path.join(dir, "file", "gw.sock");
  r = await run(path.join(BIN, "sio-fcgi"), ["--socket", inFile, "--state", stated.stateDir]);
  failsWith(r, 1, new RegExp(`sio-fcgi\\[\\d+\\] error: cannot listen on ${inFile}: ${path.join(dir, "file")} is not a folder`));
  r = await run(path.join(BIN, "sio-fcgi"), ["--socket", path.join(dir, "file"), "--state", stated.stateDir]);
  failsWith(r, 1, /error: cannot listen on \S+\/file: a file that is not a socket is there/);
  // and in a folder that exists it serves, replacing a stale socket
  const ok = path.join(dir, "gw.sock");
  for (let i = 0; i < 2; i++) {
    const gw = await startProcess(path.join(BIN, "sio-fcgi"), ["--socket", ok, "--threads", "2", "--state", stated.stateDir],
      { ready: /serving/, name: "sio-fcgi" });
    await gw.stop("SIGKILL"); // leaves the socket file behind
  }
});

// ---- handler commands ---------------------------------------------------------------------

test("stated refuses a handler command that does not exist or is not executable, naming the config, line and command", async () => {
  const dir = tmpDir("sio-handlers-");
  mkdirSync(path.join(dir, "h"));
  writeFileSync(path.join(dir, "h", "ok.sh"), "#!/bin/sh\nexit 0\n");
  chmodSync(path.join(dir, "h", "ok.sh"), 0o755);
  writeFileSync(path.join(dir, "h", "plain.sh"), "exit 0\n"); // not executable
  const head = "map_size_mb = 16\n[namespace /]\nconnection = sioctl join lobby\nevent.a = ./h/ok.sh\n" +
    "event.b = sh h/plain.sh\nevent.c = FOO=1 exec h/ok.sh arg\nany = echo \"$SIO_EVENT\" >/dev/null\n";
  const cases = [
    ["event.x = ./h/nosuch.sh", `${dir}/h/nosuch.sh does not exist`],
    ["event.x = ./h/plain.sh", `${dir}/h/plain.sh is not executable`],
    ["process = no-such-program --flag", "no-such-program is not found in PATH \\("],
    ["disconnect = sh h/gone.sh", `${dir}/h/gone.sh does not exist`],
    ["auth = ./h", `${dir}/h is a folder`],
  ];
  const conf = path.join(dir, "sio.conf");
  writeFileSync(conf, head);
  const good = await startStated({ config: conf }); // all of head resolves
  await good.stop();
  for (const [line, why] of cases) {
    writeFileSync(conf, head + line + "\n");
    const r = await run(path.join(BIN, "stated"), ["--state", path.join(dir, "state"), "--config", conf]);
    const esc = line.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    failsWith(r, 1, new RegExp(`stated\\[\\d+\\] error: config ${conf}: line 8: ${esc}: ${why}`));
  }
}, { timeout: 40000 });

// ---- start-up errors of stated, sio-front, sio-fcgi -------------------------------------------

test("start-up errors name the program and the path or value at fault, and exit non-zero", async () => {
  const dir = tmpDir("sio-startup-");
  const missing = path.join(dir, "missing.conf");
  const bad = writeConfig("ping_interval = 25000\nbogus_key = 1\n");
  const st = path.join(dir, "state");
  const expect = async (prog, args, code, re) => failsWith(await run(path.join(BIN, prog), args), code, re);
  // stated
  await expect("stated", ["--state", st, "--config", missing], 1,
    new RegExp(`stated\\[\\d+\\] error: cannot read config ${missing}: No such file or directory`));
  await expect("stated", ["--state", st, "--config", bad], 1,
    new RegExp(`stated\\[\\d+\\] error: config ${bad}: line 2: unknown setting 'bogus_key'`));
  await expect("stated", ["--bogus"], 2, /^stated: unknown option --bogus\nusage: stated /);
  await expect("stated", ["--state"], 2, /^stated: a value is needed after --state\n/);
  // a state directory this user cannot write (nobody; the temp tree is root's)
  const r = await asNobody(path.join(BIN, "stated"), ["--state", st]);
  failsWith(r, 1, new RegExp(`stated\\[\\d+\\] error: cannot open ${st}/stated\\.lock: Permission denied`));
  // sio-front
  await expect("sio-front", ["--port", "1", "--state", stated.stateDir, "--config", missing], 1,
    new RegExp(`sio-front\\[\\d+\\] error: cannot read config ${missing}: No such file or directory`));
  await expect("sio-front", ["--port", "1", "--state", stated.stateDir, "--config", bad], 1,
    new RegExp(`sio-front\\[\\d+\\] error: config ${bad}: line 2: unknown setting 'bogus_key'`));
  await expect("sio-front", ["--port", "1", "--state", st], 1,
    new RegExp(`sio-front\\[\\d+\\] error: no store in ${st}: is stated running\\?`));
  await expect("sio-front", ["--port", "1", "--www", path.join(dir, "nowww"), "--state", stated.stateDir], 1,
    new RegExp(`sio-front\\[\\d+\\] error: static directory ${dir}/nowww: No such file or directory`));
  const denied = `error: permission denied: cannot use the state directory ${stated.stateDir}: Permission denied \\(run as the user that owns it`;
  failsWith(await asNobody(path.join(BIN, "sio-front"), ["--port", "1", "--state", stated.stateDir]), 1,
    new RegExp(`sio-front\\[\\d+\\] ${denied}`));
  await expect("sio-front", ["--port", "http"], 2, /^sio-front: bad port 'http'/);
  await expect("sio-front", ["--state", st], 2, /^sio-front: --port is required\n/);
  await expect("sio-front", ["--demo", "--frob"], 2, /^sio-front: unknown option --frob\n/);
  const busy = Number(new URL(url).port);
  await expect("sio-front", ["--port", String(busy), "--state", stated.stateDir], 1,
    new RegExp(`sio-front\\[\\d+\\] error: cannot listen on 127\\.0\\.0\\.1:${busy}: Address already in use\\n`));
  // sio-fcgi
  const sock = path.join(dir, "gw.sock");
  await expect("sio-fcgi", ["--socket", sock, "--state", stated.stateDir, "--config", missing], 1,
    new RegExp(`sio-fcgi\\[\\d+\\] error: cannot read config ${missing}: No such file or directory`));
  await expect("sio-fcgi", ["--socket", sock, "--state", st], 1,
    new RegExp(`sio-fcgi\\[\\d+\\] error: no store in ${st}: is stated running\\?`));
  assert.ok(!existsSync(sock), "sio-fcgi left its socket behind");
  const open = path.join("/tmp", `sio-cli-errors-${process.pid}.sock`); // in /tmp, where nobody may create it
  failsWith(await asNobody(path.join(BIN, "sio-fcgi"), ["--socket", open, "--state", stated.stateDir]), 1,
    new RegExp(`sio-fcgi\\[\\d+\\] ${denied}`));
  assert.ok(!existsSync(open), "sio-fcgi left its socket behind");
  await expect("sio-fcgi", ["--socket", sock, "--threads", "0", "--state", stated.stateDir], 2,
    /sio-fcgi\[\d+\] error: bad thread count '0' \(1\.\.10000\)/);
  await expect("sio-fcgi", ["--sockett", sock], 2, /^sio-fcgi: unknown option --sockett\n/);
}, { timeout: 60000 });
