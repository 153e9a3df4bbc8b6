// `make install DESTDIR=... PREFIX=/usr/local`, then everything run from the
// installed tree, never from the checkout: stated and sio-front with an
// installed example config (www/, the client bundle and handlers found from
// where the programs are), the installed sioctl, a handler and a plugin
// compiled against the installed C API with pkg-config, the systemd units
// (`systemd-analyze verify`, and their ExecStart lines run by hand, sio-fcgi
// with its listening socket on fd 0 as StandardInput=socket gives it), the
// installed run script, and --log FILE with SIGHUP reopening it (logrotate).
import { execFileSync } from "node:child_process";
import {
  readFileSync, writeFileSync, readdirSync, existsSync, renameSync, mkdirSync, readlinkSync,
} from "node:fs";
import path from "node:path";
import {
  REPO, BIN, assert, test, after, tmpDir, freePort, startProcess, run, connect, connected, record,
  eventually, once, http, startLighttpdOnSocket,
} from "./lib.mjs";

const PREFIX = "/usr/local";
const root = tmpDir("sio-install-");
const D = path.join(root, "destdir");           // DESTDIR
const P = path.join(D, PREFIX.slice(1));        // the installed PREFIX
const bin = (p) => path.join(P, "bin", p);
const SHARE = path.join(P, "share", "sio");
const UNITS = path.join(P, "lib", "systemd", "system");
const CLIENT = path.join(REPO, "tests", "node_modules", "socket.io-client", "dist", "socket.io.min.js");
const ADMIN_UI = path.join(REPO, "tests", "node_modules", "@socket.io", "admin-ui", "ui", "dist");
// Install the build under test: the ASan build when SIO_BIN points at it.
const MODE = path.resolve(BIN) === path.join(REPO, "build", "asan", "bin") ? ["MODE=asan"] : [];

const procs = [];
after(async () => { for (const p of procs) await p.stop(); });

// Every path the units name, moved into the DESTDIR and the test's state dir.
const inTree = (s, stateDir) => s
  .replaceAll(`${PREFIX}/`, `${P}/`)
  .replaceAll("/etc/sio/", `${D}/etc/sio/`)
  .replaceAll("/var/lib/sio", stateDir);
const unit = (name) => readFileSync(path.join(UNITS, name), "utf8");
const key = (text, k) => {
  const m = text.match(new RegExp(`^${k}=(.*)$`, "m"));
  assert.ok(m, `no ${k}= in:\n${text}`);
  return m[1];
};
const argv = (line) => line.trim().split(/\s+/);   // the units' ExecStart lines have no quoting

async function start(cmd, args, ready, name, env = {}) {
  const p = await startProcess(cmd, args, { ready, name, env, timeout: 30000 });
  procs.push(p);
  return p;
}
const startStated = (stateDir, config) =>
  start(bin("stated"), ["--state", stateDir, "--config", config], /notify on/, "stated");
const startFront = async (stateDir) => {
  const port = await freePort();
  const p = await start(bin("sio-front"), ["--port", String(port), "--state", stateDir], /listening on/, "sio-front");
  p.url = `http://127.0.0.1:${port}`;
  return p;
};
const sioctl = (stateDir, ...args) => run(bin("sioctl"), args, { env: { SIO_STATE_DIR: stateDir } });
const ask = (s, ev, ...args) => new Promise((resolve) => s.emit(ev, ...args, (...a) => resolve(a)));

test("make install DESTDIR=... PREFIX=/usr/local installs the programs, the C API, www, the client bundle, examples and units", async () => {
  const r = await run("make", ["-C", REPO, "--no-print-directory", "install", `DESTDIR=${D}`, `PREFIX=${PREFIX}`, ...MODE],
                      { timeout: 280000 });
  assert.equal(r.code, 0, `make install failed:\n${r.stdout}\n${r.stderr}`);
  for (const p of ["stated", "sio-front", "sio-fcgi", "sioctl", "sio-example-echo"])
    assert.ok(readFileSync(bin(p)).equals(readFileSync(path.join(BIN, p))), `${p} is not the build under test`);
  for (const f of ["lib/libsio.a", "include/sio/sioh.h", "lib/pkgconfig/sio.pc", "lib/sio/sio-example-echo-plugin.so",
                   "share/sio/www/index.html", "share/sio/examples/echo.c", "share/sio/examples/echo_plugin.c",
                   "share/sio/examples/echo.conf", "share/sio/examples/sio.conf.example", "share/sio/logrotate/sio",
                   "share/sio/scripts/run-embedded", "share/sio/scripts/lib-run.sh", "lib/sysusers.d/sio.conf"])
    assert.ok(existsSync(path.join(P, f)), `${f} not installed`);
  // the web-server recipes, as tested by recipes.test.mjs (they name PREFIX/share/sio)
  for (const f of ["nginx.conf.example", "apache-proxy-fcgi.conf.example", "lighttpd.conf.in", "apache.conf.in"])
    assert.equal(readFileSync(path.join(SHARE, "scripts", "conf", f), "utf8"), readFileSync(path.join(REPO, "scripts", "conf", f), "utf8"),
                 `scripts/conf/${f} not installed as tested`);
  // the bundle is a copy of the npm package's, made at install time
  assert.ok(readFileSync(path.join(SHARE, "client", "socket.io.min.js")).equals(readFileSync(CLIENT)));
  // and so is the Admin UI (without its source maps)
  assert.ok(readFileSync(path.join(SHARE, "admin-ui", "index.html")).equals(readFileSync(path.join(ADMIN_UI, "index.html"))));
  assert.deepEqual(readdirSync(path.join(SHARE, "admin-ui", "js")).sort(),
                   readdirSync(path.join(ADMIN_UI, "js")).filter((f) => !f.endsWith(".map")).sort());
  assert.deepEqual(readdirSync(UNITS).sort(),
                   ["sio-fcgi.service", "sio-fcgi.socket", "sio-front.service", "sio-stated.service"]);
  assert.match(unit("sio-stated.service"), /^ExecStart=\/usr\/local\/bin\/stated --state \/var\/lib\/sio --config \/etc\/sio\/sio.conf$/m);
  assert.match(readFileSync(path.join(P, "lib/sysusers.d/sio.conf"), "utf8"), /^u sio /m);
  // the config is the administrator's: a second install leaves it alone
  const conf = path.join(D, "etc", "sio", "sio.conf");
  writeFileSync(conf, readFileSync(conf, "utf8") + "# mine\n");
  const again = await run("make", ["-C", REPO, "--no-print-directory", "install", `DESTDIR=${D}`, `PREFIX=${PREFIX}`, ...MODE],
                          { timeout: 280000 });
  assert.equal(again.code, 0, again.stderr);
  assert.match(readFileSync(conf, "utf8"), /# mine\n$/);
}, { timeout: 600000 });

test("the installed stack: stated + sio-front + sioctl from DESTDIR with the installed echo.conf serve the demo page, the client bundle, events and handlers", async () => {
  const state = path.join(root, "state-stack");
  await startStated(state, path.join(SHARE, "examples", "echo.conf"));
  const front = await startFront(state);
  assert.match(front.output, new RegExp(`static files ${P}/share/sio/www`));
  const page = await http("GET", `${front.url}/`);
  assert.equal(page.status, 200);
  assert.equal(page.body, readFileSync(path.join(SHARE, "www", "index.html"), "utf8"));
  const js = await fetch(`${front.url}/socket.io/socket.io.js`);
  assert.equal(js.status, 200);
  assert.ok(Buffer.from(await js.arrayBuffer()).equals(readFileSync(CLIENT)), "socket.io.js is not the client bundle");

  const s = await connected(connect(front.url, "/", { transports: ["websocket"] }));
  const got = once(s, "hello", 15000);
  const r = await sioctl(state, "emit", "hello", '"from the installed sioctl"', "42");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await got, ["from the installed sioctl", 42]);
  // echo.conf's `process = sio-example-echo`: stated finds it beside itself
  const ev = record(s);
  s.emit("message", "hi", 1);
  await eventually(() => assert.deepEqual(ev.filter((e) => e[0] === "message-back"), [["message-back", "hi", 1]]), 15000);
  // an installed sioctl without SIO_STATE_DIR looks in /var/lib/sio (the service's)
  const def = await run(bin("sioctl"), ["status"], { env: { SIO_STATE_DIR: "" } });
  assert.match(def.stdout + def.stderr, /\/var\/lib\/sio/, `${def.code} ${def.stdout} ${def.stderr}`);
}, { timeout: 60000 });

test("with [admin], the installed front serves the installed Admin UI at /admin-ui/ and the admin namespace answers", async () => {
  const config = path.join(root, "admin.conf");
  writeFileSync(config, "[admin]\nauth = none\nmode = development\n");
  const state = path.join(root, "state-admin");
  await startStated(state, config);
  const front = await startFront(state);
  assert.match(front.output, new RegExp(`the Admin UI at /admin-ui/ \\(from ${P}/share/sio/admin-ui\\)`));
  const page = await http("GET", `${front.url}/admin-ui/`);
  assert.equal(page.status, 200);
  assert.equal(page.body, readFileSync(path.join(SHARE, "admin-ui", "index.html"), "utf8"));
  const a = connect(front.url, "/admin", { transports: ["websocket"] });
  const config0 = once(a, "config", 15000);
  await connected(a);
  assert.ok((await config0)[0].supportedFeatures.includes("ALL_EVENTS"));
}, { timeout: 60000 });

test("a handler and a plugin built with `pkg-config --cflags --libs sio` against the installed headers run", async () => {
  const env = { PKG_CONFIG_PATH: path.join(P, "lib", "pkgconfig"), PKG_CONFIG_SYSROOT_DIR: D };
  const pc = (...a) => execFileSync("pkg-config", a, { env: { ...process.env, ...env }, encoding: "utf8" }).trim().split(/\s+/);
  const cflags = pc("--cflags", "sio"), libs = pc("--libs", "sio");
  assert.ok(cflags.includes(`-I${P}/include/sio`), cflags.join(" "));
  assert.ok(libs.includes(`-L${P}/lib`) && libs.includes("-lsio"), libs.join(" "));
  assert.ok(!cflags.concat(libs).some((f) => f.includes(REPO)), "pkg-config points into the checkout");
  const out = path.join(root, "built");
  mkdirSync(out);
  const handler = path.join(out, "my-echo"), plugin = path.join(out, "my-plugin.so");
  const ex = path.join(SHARE, "examples");
  // (the ASan build installs an instrumented libsio.a: a program linking it needs the runtime)
  const san = MODE.length ? ["-fsanitize=address,undefined"] : [];
  for (const [args, what] of [[["-o", handler, path.join(ex, "echo.c"), ...san, ...cflags, ...libs], "handler"],
                              [["-shared", "-fPIC", "-o", plugin, path.join(ex, "echo_plugin.c"), ...cflags], "plugin"]]) {
    const r = await run("cc", args, { timeout: 60000 });
    assert.equal(r.code, 0, `compiling the ${what}: cc ${args.join(" ")}\n${r.stderr}`);
  }
  const config = path.join(out, "sio.conf");
  writeFileSync(config, `[namespace /]\nprocess = ${handler}\n` +
                        `[namespace /built]\nplugin = ${plugin}\n` +
                        // relative: PREFIX/lib/sio for an installed program
                        `[namespace /shipped]\nplugin = sio-example-echo-plugin.so\n`);
  const state = path.join(root, "state-built");
  await startStated(state, config);
  const front = await startFront(state);
  const s = await connected(connect(front.url, "/", { transports: ["websocket"] }));
  const ev = record(s);
  s.emit("message", "to the built handler");
  await eventually(() => assert.deepEqual(ev.filter((e) => e[0] === "message-back"), [["message-back", "to the built handler"]]), 15000);
  for (const nsp of ["/built", "/shipped"]) {
    const p = await connected(connect(front.url, nsp, { transports: ["websocket"] }));
    assert.deepEqual(await ask(p, "echo", nsp, 7), [nsp, 7]);
    const [who, pid] = await ask(p, "plugin:where");
    assert.deepEqual([who, pid], ["plugin", front.child.pid], `${nsp}: not answered by the plugin inside the front`);
  }
}, { timeout: 120000 });

test("systemd units: systemd-analyze verify passes (and fails on a broken unit), systemd-sysusers accepts the user; their ExecStart lines serve clients", async () => {
  const state = path.join(root, "state-units");
  const udir = path.join(root, "units");
  mkdirSync(udir);
  for (const u of readdirSync(UNITS)) writeFileSync(path.join(udir, u), inTree(unit(u), state));
  const verify = (...files) => run("systemd-analyze", ["verify", "--man=no", ...files], { timeout: 60000 });
  const ok = await verify(...readdirSync(udir).map((u) => path.join(udir, u)));
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal((ok.stdout + ok.stderr).trim(), "", `systemd-analyze verify complained:\n${ok.stdout}${ok.stderr}`);
  // the check can fail: a unit with a wrong key and a missing program
  const bad = path.join(root, "bad.service");
  writeFileSync(bad, unit("sio-front.service").replace("Restart=", "Restrt=").replace(/^ExecStart=\S+/m, "ExecStart=/nonexistent/sio-front"));
  const ko = await verify(bad);
  assert.match(ko.stdout + ko.stderr, /Restrt/);
  assert.match(ko.stdout + ko.stderr, /nonexistent/);

  // the user: systemd-sysusers reads the installed sysusers.d file and would create sio
  const users = await run("systemd-sysusers", ["--root", D, "--dry-run", path.join(P, "lib", "sysusers.d", "sio.conf")]);
  assert.equal(users.code, 0, users.stderr);
  assert.match(users.stdout + users.stderr, /Creating user 'sio'/);

  const stated = unit("sio-stated.service"), front = unit("sio-front.service");
  const sock = unit("sio-fcgi.socket"), fcgi = unit("sio-fcgi.service");
  for (const [name, text] of [["sio-stated", stated], ["sio-front", front], ["sio-fcgi", fcgi]]) {
    assert.equal(key(text, "User"), "sio", name);
    assert.equal(key(text, "StateDirectory"), "sio", name);
    assert.equal(key(text, "Restart"), "on-failure", name);
  }
  assert.equal(key(fcgi, "StandardInput"), "socket");
  assert.equal(key(fcgi, "StandardOutput"), "journal");
  const listen = key(sock, "ListenStream");
  assert.match(listen, /^\/run\/sio\/sio-fcgi\.sock$/);

  // By hand, as systemd would run them (the state dir made first, as StateDirectory= does).
  mkdirSync(state);
  // Type=notify: stated sends READY=1 to $NOTIFY_SOCKET once its store and notify.sock exist.
  assert.equal(key(stated, "Type"), "notify");
  const [sCmd, ...sArgs] = argv(inTree(key(stated, "ExecStart"), state));
  const notifySock = path.join(root, "notify");
  const manager = "import os, socket, subprocess, sys\n" +
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\n" +
    "p = subprocess.Popen(sys.argv[3:], env=dict(os.environ, NOTIFY_SOCKET=sys.argv[1]))\n" +
    "msg = s.recv(4096).decode()\n" +
    "print('sd_notify: %s; store %s' % (msg, os.path.exists(os.path.join(sys.argv[2], 'data.mdb')) and " +
    "os.path.exists(os.path.join(sys.argv[2], 'notify.sock'))), flush=True)\n" +
    "sys.exit(p.wait())\n";
  const sd = await startProcess("python3", ["-c", manager, notifySock, state, sCmd, ...sArgs],
                                { ready: /sd_notify: /, name: "stated (unit)", timeout: 30000 });
  procs.push(sd);
  assert.match(sd.output, /sd_notify: READY=1; store True/);
  const port = await freePort();
  const [fCmd, ...fArgs] = argv(inTree(key(front, "ExecStart"), state).replace("--port 3000", `--port ${port}`));
  assert.notEqual(fArgs.indexOf(String(port)), -1, "sio-front's ExecStart has no --port 3000");
  procs.push(await startProcess(fCmd, fArgs, { ready: /listening on/, name: "sio-front (unit)", timeout: 30000 }));
  // sio-fcgi.socket + StandardInput=socket: the listening socket on fd 0
  const fcgiSock = path.join(root, "sio-fcgi.sock");
  const [gCmd, ...gArgs] = argv(inTree(key(fcgi, "ExecStart"), state));
  const activate = "import os, socket, sys\n" +
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\ns.bind(sys.argv[1])\ns.listen(128)\n" +
    "os.dup2(s.fileno(), 0)\nos.execv(sys.argv[2], sys.argv[2:])\n";
  procs.push(await startProcess("python3", ["-c", activate, fcgiSock, gCmd, ...gArgs],
                                { ready: /serving/, name: "sio-fcgi (unit)", timeout: 30000 }));
  const webPort = await freePort();
  procs.push(await startLighttpdOnSocket({ dir: path.join(root, "lighttpd"), port: webPort, sock: fcgiSock }));

  const ws = await connected(connect(`http://127.0.0.1:${port}`, "/", { transports: ["websocket"] }));
  const poll = await connected(connect(`http://127.0.0.1:${webPort}`, "/", { transports: ["polling"] }));
  const got = [once(ws, "units", 15000), once(poll, "units", 15000)];
  const r = await sioctl(state, "emit", "units", '"up"');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await Promise.all(got), [["up"], ["up"]]);
}, { timeout: 120000 });

test("the installed run-embedded runs the installed programs on the installed www and client bundle", async () => {
  const port = await freePort();
  const state = path.join(root, "state-run");
  const p = await startProcess(path.join(SHARE, "scripts", "run-embedded"), [String(port)], {
    env: { SIO_STATE_DIR: state, SIO_BIN: "", SIO_CONFIG: "" },
    ready: new RegExp(`listening on http://127\\.0\\.0\\.1:${port} `), name: "run-embedded (installed)", timeout: 30000,
  });
  procs.push(p);
  for (const prog of ["stated", "sio-front"]) {
    const pid = p.output.match(new RegExp(`${prog} pid (\\d+)`));
    assert.ok(pid, p.output);
    assert.equal(readlinkSync(`/proc/${pid[1]}/exe`), bin(prog));
  }
  assert.equal((await http("GET", `http://127.0.0.1:${port}/`)).status, 200);
  const js = await fetch(`http://127.0.0.1:${port}/socket.io/socket.io.js`);
  assert.ok(Buffer.from(await js.arrayBuffer()).equals(readFileSync(CLIENT)));
  const s = await connected(connect(`http://127.0.0.1:${port}`));
  const got = once(s, "run", 15000);
  assert.equal((await sioctl(state, "emit", "run", "1")).code, 0);
  assert.deepEqual(await got, [1]);
}, { timeout: 60000 });

const read = (f) => (existsSync(f) ? readFileSync(f, "utf8") : "");

// stated, sio-front and sio-fcgi from the DESTDIR, each with --log logs/NAME.log.
async function startLogged(tag) {
  const state = path.join(root, `state-${tag}`);
  const logs = path.join(root, `${tag}-logs`);
  mkdirSync(logs);
  const log = (n) => path.join(logs, `${n}.log`);
  const port = await freePort();
  const started = {};
  const specs = {
    stated: [bin("stated"), ["--state", state, "--log", log("stated")], /notify on/],
    "sio-front": [bin("sio-front"), ["--port", String(port), "--state", state, "--log", log("sio-front")], /listening on/],
    "sio-fcgi": [bin("sio-fcgi"), ["--socket", path.join(root, `${tag}-fcgi.sock`), "--state", state, "--log", log("sio-fcgi")], /serving/],
  };
  for (const [name, [cmd, args, ready]] of Object.entries(specs)) {
    const p = await startProcess(cmd, args, { name });
    procs.push(p);
    started[name] = p;
    // the log goes to the file, not to stderr
    await eventually(() => assert.match(read(log(name)), ready), 30000);
    assert.equal(p.output, "", `${name} wrote to stderr: ${p.output}`);
  }
  return { state, logs, log, port, started };
}

// After a rotation: each program reopened its file (the line is in the new
// one only), still serves, and logs its stop in the new file.
async function checkRotated({ state, log, port, started }) {
  for (const name of Object.keys(started)) {
    await eventually(() => assert.match(read(log(name)), /SIGHUP: log file .* reopened/), 15000);
    assert.doesNotMatch(read(`${log(name)}.1`), /reopened/);
  }
  const s = await connected(connect(`http://127.0.0.1:${port}`, "/", { transports: ["websocket"] }));
  const got = once(s, "after-rotation", 15000);
  assert.equal((await sioctl(state, "emit", "after-rotation")).code, 0);
  await got;
  for (const [name, p] of Object.entries(started)) {
    assert.equal(p.child.exitCode, null, `${name} exited after SIGHUP`);
    assert.deepEqual(await p.stop(), { code: 0, signal: null }, name);
    assert.match(read(log(name)), /stopping/, `${name}: the stop was not logged in the new file`);
    const sanitizer = (read(log(name)) + read(`${log(name)}.1`)).match(/(ERROR: (Address|Leak)Sanitizer|runtime error:)[^\n]*/);
    assert.equal(sanitizer, null, `${name}: ${sanitizer && sanitizer[0]}`);
  }
}

test("--log FILE: SIGHUP makes stated, sio-front and sio-fcgi reopen their renamed log file and keep running; without --log it stops stated", async () => {
  const L = await startLogged("log");
  for (const [name, p] of Object.entries(L.started)) {
    renameSync(L.log(name), `${L.log(name)}.1`);                // what logrotate does
    process.kill(p.child.pid, "SIGHUP");
  }
  await checkRotated(L);
  // without --log, SIGHUP still stops stated (a hangup of its terminal)
  const plain = await startProcess(bin("stated"), ["--state", L.state], { ready: /notify on/, name: "stated (no --log)" });
  procs.push(plain);
  process.kill(plain.child.pid, "SIGHUP");
  assert.deepEqual(await plain.exited, { code: 0, signal: null });
  assert.match(plain.output, /signal 1: stopping/);
}, { timeout: 90000 });

test("the installed logrotate rule rotates the --log files, and its SIGHUP reaches only the programs started with --log", async () => {
  const L = await startLogged("logrotate");
  // a stated without --log (it would stop on SIGHUP) must not get it
  const bystander = await startProcess(bin("stated"), ["--state", path.join(root, "state-bystander")],
                                       { ready: /notify on/, name: "stated (bystander)" });
  procs.push(bystander);
  const conf = path.join(root, "logrotate.conf");
  writeFileSync(conf, readFileSync(path.join(SHARE, "logrotate", "sio"), "utf8").replaceAll("/var/log/sio/", `${L.logs}/`));
  const r = await run("logrotate", ["-v", "-f", "-s", path.join(root, "logrotate.status"), conf], { timeout: 60000 });
  assert.equal(r.code, 0, `logrotate failed:\n${r.stdout}${r.stderr}`);
  for (const name of Object.keys(L.started)) assert.ok(existsSync(`${L.log(name)}.1`), `${name}.log was not rotated`);
  await checkRotated(L);
  assert.equal(bystander.child.exitCode, null, `a stated without --log got the SIGHUP:\n${bystander.output}`);
  assert.doesNotMatch(bystander.output, /signal/);
}, { timeout: 90000 });

test("make uninstall removes what make install put in place, but the config", async () => {
  const r = await run("make", ["-C", REPO, "--no-print-directory", "uninstall", `DESTDIR=${D}`, `PREFIX=${PREFIX}`, ...MODE],
                      { timeout: 60000 });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const left = [];
  const walk = (d) => { for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) walk(p); else left.push(path.relative(D, p));
  } };
  walk(D);
  assert.deepEqual(left, ["etc/sio/sio.conf"]);
}, { timeout: 90000 });
