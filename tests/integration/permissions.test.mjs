// Users and permissions, with real Unix users (created here when absent): a
// gateway user (as a web server's www-data) runs sio-fcgi behind lighttpd,
// an application user runs stated (and so its handlers) and sioctl; both
// are in a shared group named by `state_group`.  The state directory is
// 2770 and every store file 0660 of that group, sio-fcgi's socket has the
// mode and group given on its command line, the client receives what the
// application user emits, and a third user outside the group is refused
// with an error that says whose directory it is.
import { mkdirSync, statSync, readdirSync, writeFileSync, chmodSync } from "node:fs";
import path from "node:path";
import {
  BIN, assert, test, before, after, startProcess, startLighttpdOnSocket, freePort, tmpDir, run,
  connect, connected, once, closeClients,
} from "./lib.mjs";

const SHARE = "siotest-share", GW = "siotest-gw", APP = "siotest-app", OTHER = "siotest-other";

async function ensureUsers() {
  if ((await run("getent", ["group", SHARE])).code !== 0) {
    const r = await run("groupadd", [SHARE]);
    assert.equal(r.code, 0, r.stderr);
  }
  for (const u of [GW, APP, OTHER]) {
    if ((await run("id", [u])).code !== 0) {
      const r = await run("useradd", ["--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", u]);
      assert.equal(r.code, 0, r.stderr);
    }
  }
  for (const u of [GW, APP]) assert.equal((await run("usermod", ["-aG", SHARE, u])).code, 0);
  // OTHER stays outside the group (in case an earlier run added it)
  await run("gpasswd", ["-d", OTHER, SHARE]);
}
const gid = async (g) => Number((await run("getent", ["group", g])).stdout.split(":")[2]);
const as = (user, cmd, ...args) => ["setpriv", [`--reuid=${user}`, `--regid=${user}`, "--init-groups", "--", cmd, ...args]];

let base, stateDir, conf, sock, stated, fcgi, lighttpd, port;
before(async () => {
  await ensureUsers();
  base = tmpDir("sio-perm-");
  chmodSync(base, 0o755);
  stateDir = path.join(base, "state");
  mkdirSync(stateDir);
  await run("chown", [`${APP}:${APP}`, stateDir]);
  const appDir = path.join(base, "app");
  mkdirSync(appDir, { mode: 0o755 });
  conf = path.join(appDir, "sio.conf");
  writeFileSync(conf, `state_group = ${SHARE}\n[namespace /]\nevent.ping = sioctl ack "\\"$(id -un)\\""\n`, { mode: 0o644 });
  const runDir = path.join(base, "run");
  mkdirSync(runDir, { mode: 0o755 });
  await run("chown", [`${GW}:${GW}`, runDir]);
  sock = path.join(runDir, "fcgi.sock");
  stated = await startProcess(...as(APP, path.join(BIN, "stated"), "--state", stateDir, "--config", conf),
    { ready: /notify on/, name: "stated" });
  fcgi = await startProcess(...as(GW, path.join(BIN, "sio-fcgi"), "--socket", sock, "--socket-mode", "0660",
    "--socket-group", GW, "--threads", "8"), { env: { SIO_STATE_DIR: stateDir }, ready: /serving/, name: "sio-fcgi" });
  port = await freePort();
  const lt = path.join(base, "lighttpd");
  mkdirSync(lt);
  lighttpd = await startLighttpdOnSocket({ dir: lt, port, sock });
});
after(async () => {
  closeClients();
  for (const p of [lighttpd, fcgi, stated]) if (p) await p.stop();
});

test("the state directory is 2770 and every file in it 0660, of state_group; nothing for others", async () => {
  const share = await gid(SHARE);
  const d = statSync(stateDir);
  assert.equal((d.mode & 0o7777).toString(8), "2770");
  assert.equal(d.gid, share);
  const names = readdirSync(stateDir);
  for (const n of ["data.mdb", "lock.mdb", "notify.sock", "stated.lock"]) assert.ok(names.includes(n), `${n} exists`);
  for (const n of names) {
    const st = statSync(path.join(stateDir, n));
    assert.equal(st.gid, share, `${n} is the group's`);
    assert.equal(st.mode & 0o007, 0, `${n}: nothing for others (mode ${(st.mode & 0o777).toString(8)})`);
    if (!st.isDirectory()) assert.equal((st.mode & 0o777).toString(8), "660", n);
  }
  const s = statSync(sock);
  assert.ok(s.isSocket());
  assert.equal((s.mode & 0o777).toString(8), "660", "sio-fcgi --socket-mode 0660");
  assert.equal(s.gid, await gid(GW), "sio-fcgi --socket-group");
});

test("the gateway user serves, the application user's sioctl emit reaches the client, handlers run as the application user", async () => {
  const s = await connected(connect(`http://127.0.0.1:${port}`, "/", { transports: ["polling"] }));
  const got = once(s, "hello", 10000);
  const r = await run(...as(APP, path.join(BIN, "sioctl"), "emit", "hello", '"from the app"'), { env: { SIO_STATE_DIR: stateDir } });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await got, ["from the app"]);
  assert.equal(await s.timeout(10000).emitWithAck("ping"), APP);
  const rooms = await run(...as(GW, path.join(BIN, "sioctl"), "sockets"), { env: { SIO_STATE_DIR: stateDir } });
  assert.equal(rooms.code, 0, "the gateway user is in the group too: " + rooms.stderr);
});

test("a user outside the group is refused with a clear error (sioctl exit 7, sio-fcgi does not start)", async () => {
  const r = await run(...as(OTHER, path.join(BIN, "sioctl"), "emit", "hello", "x"), { env: { SIO_STATE_DIR: stateDir } });
  assert.equal(r.code, 7, r.stderr);
  assert.match(r.stderr, new RegExp(`permission denied: the state directory ${stateDir} belongs to group ${SHARE} \\(mode 2770\\).*run as a member of group ${SHARE}`));
  const od = path.join(base, "other");
  mkdirSync(od);
  await run("chown", [OTHER, od]);
  const f = await run(...as(OTHER, path.join(BIN, "sio-fcgi"), "--socket", path.join(od, "fcgi.sock")),
    { env: { SIO_STATE_DIR: stateDir } }).catch((e) => ({ code: -1, stderr: String(e) }));
  assert.notEqual(f.code, 0);
  assert.match(f.stderr, /permission denied: the state directory .* belongs to group/);
});

test("an older state directory open to others is closed at stated's start; sio-fcgi's socket is 0660 by default", async () => {
  await stated.stop();
  chmodSync(stateDir, 0o777);
  chmodSync(path.join(stateDir, "data.mdb"), 0o666);
  chmodSync(path.join(stateDir, "lock.mdb"), 0o644);
  stated = await startProcess(...as(APP, path.join(BIN, "stated"), "--state", stateDir, "--config", conf),
    { ready: /notify on/, name: "stated" });
  assert.equal((statSync(stateDir).mode & 0o7777).toString(8), "2770");
  for (const n of ["data.mdb", "lock.mdb", "notify.sock"])
    assert.equal((statSync(path.join(stateDir, n)).mode & 0o777).toString(8), "660", n);
  const od = tmpDir("sio-perm-sock-");
  const other = await startProcess(path.join(BIN, "sio-fcgi"), ["--socket", path.join(od, "s.sock"), "--threads", "2"],
    { env: { SIO_STATE_DIR: stateDir }, ready: /serving/, name: "sio-fcgi-default" });
  try {
    assert.equal((statSync(path.join(od, "s.sock")).mode & 0o777).toString(8), "660");
  } finally {
    await other.stop();
  }
});
