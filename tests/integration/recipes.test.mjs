// The web-server recipes of README "Deploying behind a web server", each
// started from the file that ships (scripts/conf/, installed by make
// install), on a loopback port:
//   lighttpd                 scripts/run-lighttpd, template lighttpd.conf.in
//   Apache, mod_fcgid        scripts/run-apache, template apache.conf.in
//   nginx                    nginx.conf.example, a server block
//   Apache, mod_proxy_fcgi   apache-proxy-fcgi.conf.example, a VirtualHost
// The last two are taken verbatim but for four values the files name under
// "Adjust" (the listening address, PREFIX/share/sio, the socket's folder
// /run/sio, sio-front's address; `recipe()` below fails when one of them is
// no longer in the file), and are included from a minimal main config
// written here (what Debian's nginx.conf and apache2.conf provide: pid,
// logs, modules, the worker user www-data).  stated, sio-fcgi on the socket
// and sio-front are started as the recipes' comments say, the socket's
// folder made as they say (group www-data, 0750) and the socket given to
// the group www-data, so that the web servers' workers (www-data) reach it
// as they would once installed.
// Through each (the config has an [admin] section): the demo page, the
// Admin UI's page (/admin-ui/) and the client bundle, polling, WebSocket
// and the upgrade with the real socket.io-client, and the demo page in
// Debian's chromium (it loads the bundle from the web server, connects,
// upgrades, joins a room through /demo/join and shows an event emitted to
// the room); without `sio-front --demo`, its Join says the endpoints are off.
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  REPO, BIN, TIME_SCALE, assert, test, before, after, tmpDir, freePort, startProcess, run, startStack, startStated, makeStack,
  connect, connected, closeClients, once, eventually, http, writeConfig,
} from "./lib.mjs";
import { startBrowser } from "./browser.mjs";

const CLIENT_DIR = path.join(REPO, "tests", "node_modules", "socket.io-client", "dist");
const CLIENT = path.join(CLIENT_DIR, "socket.io.min.js");
const CONF = path.join(REPO, "scripts", "conf");
const WAIT = 15000 * TIME_SCALE;   // a bound for a hang in the browser, not a speed

// Every stack has the Admin UI on: its page goes through each recipe too.
const CONFIG = writeConfig("[admin]\nauth = none\n");
const ADMIN_UI = path.join(REPO, "tests", "node_modules", "@socket.io", "admin-ui", "ui", "dist", "index.html");

let chromium, browser;
const running = [];
before(async () => {
  if (!existsSync("/usr/sbin/nginx")) throw new Error("/usr/sbin/nginx missing: scripts/install-deps installs nginx-light");
  chromium = await startBrowser();
  browser = chromium.context;
});
after(async () => {
  for (const p of running.reverse()) await p.stop();
  if (chromium) await chromium.close();
});
async function stopAll() {
  closeClients();
  while (running.length) await running.pop().stop();
}

// The shipped file with the values its "Adjust" paragraph names replaced;
// each must be in the file.
function recipe(file, values) {
  let text = readFileSync(path.join(CONF, file), "utf8");
  for (const [from, to] of Object.entries(values)) {
    assert.ok(text.includes(from), `${file} no longer names ${from}: update this test with the recipe`);
    text = text.replaceAll(from, to);
  }
  return text;
}

// stated, sio-fcgi on a socket and sio-front, as the socket recipes start
// them; the installed files (PREFIX/share/sio: www/ and client/) copied from
// the checkout.  Returns what the recipe's values become.
async function socketBackends(kind, { demo }) {
  const dir = tmpDir(`sio-recipe-${kind}-`);
  await run("chmod", ["755", dir]);   // www-data (the web server's workers) goes through
  const share = path.join(dir, "share");
  cpSync(path.join(REPO, "www"), path.join(share, "www"), { recursive: true });
  mkdirSync(path.join(share, "client"));
  for (const f of ["socket.io.min.js", "socket.io.min.js.map"]) copyFileSync(path.join(CLIENT_DIR, f), path.join(share, "client", f));
  await run("chmod", ["-R", "a+rX", share]);
  // the recipes' step: install -d -o sio -g www-data -m 0750 /run/sio (here
  // the gateway runs as the test's user)
  const sockDir = path.join(dir, "sock");
  const made = await run("install", ["-d", "-g", "www-data", "-m", "0750", sockDir]);
  assert.equal(made.code, 0, made.stderr);
  const stateDir = path.join(dir, "state");
  // the web server goes at `first`, so that it stops last: its held polls
  // end when the gateway stops (Apache would wait on them)
  const first = running.length;
  running.push(await startStated({ stateDir, config: CONFIG }));
  running.push(await startProcess(path.join(BIN, "sio-fcgi"),
    ["--state", stateDir, "--config", CONFIG, "--socket", path.join(sockDir, "sio-fcgi.sock"), "--socket-mode", "0660", "--socket-group", "www-data"],
    { ready: /serving/, name: "sio-fcgi" }));
  const frontPort = await freePort();
  running.push(await startProcess(path.join(BIN, "sio-front"),
    ["--port", String(frontPort), "--host", "127.0.0.1", "--state", stateDir, "--config", CONFIG, ...(demo ? ["--demo"] : [])],
    { ready: /listening on/, name: "sio-front" }));
  const port = await freePort();
  return {
    dir, stateDir, port, first,
    values: {
      "127.0.0.1:8080": `127.0.0.1:${port}`,
      "/usr/local/share/sio": share,
      "/run/sio": sockDir,
      "127.0.0.1:3000": `127.0.0.1:${frontPort}`,
    },
  };
}

// Up once the web server answers the page.
async function serving(url, proc) {
  await eventually(async () => {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited:\n${proc.output}`);
    const r = await fetch(url + "/");
    assert.equal(r.status, 200);
  }, 20000, 100);
}

async function startNginx({ demo = true } = {}) {
  const b = await socketBackends("nginx", { demo });
  const d = b.dir;
  writeFileSync(path.join(d, "sio.conf"), recipe("nginx.conf.example", b.values));
  // `include fastcgi_params` is relative to the main config's folder
  copyFileSync("/etc/nginx/fastcgi_params", path.join(d, "fastcgi_params"));
  mkdirSync(path.join(d, "tmp"));
  writeFileSync(path.join(d, "nginx.conf"), `
daemon off;
worker_processes 1;
user www-data;
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log ${d}/access.log;
    client_body_temp_path ${d}/tmp/body;
    proxy_temp_path ${d}/tmp/proxy;
    fastcgi_temp_path ${d}/tmp/fastcgi;
    uwsgi_temp_path ${d}/tmp/uwsgi;
    scgi_temp_path ${d}/tmp/scgi;
    include ${d}/sio.conf;
}
`);
  const args = ["-p", d, "-e", `${d}/error.log`, "-c", `${d}/nginx.conf`];
  const t = await run("/usr/sbin/nginx", ["-t", ...args]);
  assert.equal(t.code, 0, `nginx -t rejected the recipe:\n${t.stderr}`);
  const proc = await startProcess("/usr/sbin/nginx", args, { name: "nginx" });
  running.splice(b.first, 0, proc);
  const stack = makeStack({ kind: "nginx", port: b.port, stateDir: b.stateDir, env: {}, proc });
  await serving(stack.url, proc);
  stack.errorLog = () => readFileSync(`${d}/error.log`, "utf8");
  return stack;
}

async function startApacheProxyFcgi() {
  const b = await socketBackends("apache-proxy-fcgi", { demo: true });
  const d = b.dir;
  writeFileSync(path.join(d, "sio.conf"), recipe("apache-proxy-fcgi.conf.example", b.values));
  const mod = (m) => `LoadModule ${m}_module /usr/lib/apache2/modules/mod_${m}.so`;
  writeFileSync(path.join(d, "apache2.conf"), `
ServerRoot "${d}"
DefaultRuntimeDir "${d}"
PidFile "${d}/apache2.pid"
ErrorLog "${d}/error.log"
LogLevel warn
Mutex file:${d} default
ServerName 127.0.0.1
Listen 127.0.0.1:${b.port}
User www-data
Group www-data
${["mpm_event", "authz_core", "mime", "dir", "alias", "rewrite", "proxy", "proxy_fcgi", "proxy_http", "proxy_wstunnel"].map(mod).join("\n")}
TypesConfig /etc/mime.types
DirectoryIndex index.html
Include "${d}/sio.conf"
`);
  const args = ["-f", `${d}/apache2.conf`];
  const t = await run("/usr/sbin/apache2", ["-t", ...args]);
  assert.equal(t.code, 0, `apache2 -t rejected the recipe:\n${t.stderr}`);
  const proc = await startProcess("/usr/sbin/apache2", [...args, "-DFOREGROUND"], { name: "apache2" });
  running.splice(b.first, 0, proc);
  const stack = makeStack({ kind: "apache-proxy-fcgi", port: b.port, stateDir: b.stateDir, env: {}, proc });
  await serving(stack.url, proc);
  stack.errorLog = () => readFileSync(`${d}/error.log`, "utf8");
  return stack;
}

async function startScript(kind) {
  const stack = await startStack(kind, { config: CONFIG });
  running.push(stack.proc);
  return stack;
}

// An event emitted with sioctl reaches socket s (listener first).
async function reaches(stack, s, label) {
  const got = once(s, "hello", 15000);
  const r = await stack.sioctl("emit", "hello", JSON.stringify(label), "42");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await got, [label, 42]);
}

// Everything a user of the recipe relies on, through the web server.
async function checkRecipe(stack) {
  const page = await http("GET", `${stack.url}/`);
  assert.equal(page.status, 200);
  assert.equal(page.body, readFileSync(path.join(REPO, "www", "index.html"), "utf8"));
  const js = await fetch(`${stack.url}/socket.io/socket.io.js`);
  assert.equal(js.status, 200, "/socket.io/socket.io.js");
  assert.match(js.headers.get("content-type") || "", /javascript/);
  assert.ok(Buffer.from(await js.arrayBuffer()).equals(readFileSync(CLIENT)), "/socket.io/socket.io.js is not the client bundle");
  const ui = await http("GET", `${stack.url}/admin-ui/`);
  assert.equal(ui.status, 200, "/admin-ui/");
  assert.equal(ui.body, readFileSync(ADMIN_UI, "utf8"), "/admin-ui/ is not the Admin UI's page");

  const p = await connected(connect(stack.url, "/", { transports: ["polling"] }));
  await reaches(stack, p, "over polling");
  assert.equal(p.io.engine.transport.name, "polling");

  const w = await connected(connect(stack.url, "/", { transports: ["websocket"] }));
  await reaches(stack, w, "over WebSocket");
  assert.equal(w.io.engine.transport.name, "websocket");

  const u = connect(stack.url, "/");
  const upgraded = once(u.io.engine, "upgrade", 15000);
  await connected(u);
  assert.equal((await upgraded)[0].name, "websocket");
  await reaches(stack, u, "after the upgrade");

  await demoPage(stack);
}

// The demo page in chromium: the bundle from the web server, polling then
// WebSocket, Join through /demo/join, an event to the room.
async function demoPage(stack) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    await page.goto(stack.url + "/", { waitUntil: "load", timeout: WAIT });
    await page.selectOption("#transport", "auto");
    await page.click("#connect");
    await page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, { timeout: WAIT });
    const id = await page.textContent("#sid");
    await page.waitForFunction(() => document.querySelector("#tname").textContent === "websocket", null, { timeout: WAIT });
    await page.click("#join");
    // joined (the member list shows this socket), or the page said why not
    await page.waitForFunction((sid) => document.querySelector("#members").textContent.includes(sid) ||
                                        document.querySelector("#log").textContent.includes("failed"), id, { timeout: WAIT });
    assert.ok((await page.textContent("#members")).includes(id), `Join failed: ${await page.textContent("#log")}`);
    const r = await stack.sioctl("emit", "--to", "chat", "some-event", '"to the room"');
    assert.equal(r.code, 0, r.stderr);
    await page.waitForFunction(() => document.querySelector("#log").textContent.includes("some-event"), null, { timeout: WAIT });
    assert.match(await page.textContent("#log li:first-child"), /"to the room"/);
    assert.ok(!(await page.textContent("#log")).includes("failed"), await page.textContent("#log"));
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
}

test("lighttpd (scripts/run-lighttpd, lighttpd.conf.in): page, bundle, polling, WebSocket, upgrade, the demo's Join, the Admin UI page", async () => {
  await checkRecipe(await startScript("lighttpd"));
  await stopAll();
}, { timeout: 120000 });

test("Apache with mod_fcgid (scripts/run-apache, apache.conf.in): page, bundle, polling, WebSocket, upgrade, the demo's Join, the Admin UI page", async () => {
  await checkRecipe(await startScript("apache"));
  await stopAll();
}, { timeout: 120000 });

test("nginx (nginx.conf.example as shipped): page, bundle, polling, WebSocket, upgrade, the demo's Join, the Admin UI page", async () => {
  const stack = await startNginx();
  await checkRecipe(stack);
  // the bundle's source map, next to it
  const map = await fetch(`${stack.url}/socket.io/socket.io.min.js.map`);
  assert.equal(map.status, 200);
  assert.ok(Buffer.from(await map.arrayBuffer()).equals(readFileSync(CLIENT + ".map")));
  // the gateway still answers the rest of /socket.io/ (Node's errors)
  const bad = await http("GET", `${stack.url}/socket.io/?EIO=4&transport=polling&sid=nope`);
  assert.equal(bad.status, 400);
  assert.deepEqual(JSON.parse(bad.body), { code: 1, message: "Session ID unknown" });
  await stopAll();
}, { timeout: 120000 });

test("Apache with mod_proxy_fcgi (apache-proxy-fcgi.conf.example as shipped): page, bundle, polling, WebSocket, upgrade, the demo's Join, the Admin UI page", async () => {
  const stack = await startApacheProxyFcgi();
  await checkRecipe(stack);
  const map = await fetch(`${stack.url}/socket.io/socket.io.min.js.map`);
  assert.equal(map.status, 200);
  const bad = await http("GET", `${stack.url}/socket.io/?EIO=4&transport=polling&sid=nope`);
  assert.equal(bad.status, 400);
  assert.deepEqual(JSON.parse(bad.body), { code: 1, message: "Session ID unknown" });
  await stopAll();
}, { timeout: 120000 });

test("behind a recipe with sio-front started without --demo (as sio-front.service does), the demo page's Join says the room endpoints are off", async () => {
  const stack = await startNginx({ demo: false });
  const page = await browser.newPage();
  try {
    await page.goto(stack.url + "/", { waitUntil: "load", timeout: WAIT });
    await page.click("#connect");
    await page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, { timeout: WAIT });
    await page.click("#join");
    await page.waitForFunction(() => document.querySelector("#log").textContent.includes("join failed"), null, { timeout: WAIT });
    assert.match(await page.textContent("#log li:first-child"), /room endpoints are off: start sio-front with --demo/);
    assert.match(await page.textContent("#members"), /room endpoints are off/);
  } finally {
    await page.close();
  }
  await stopAll();
}, { timeout: 120000 });
