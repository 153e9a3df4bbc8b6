// The real Admin UI (@socket.io/admin-ui 0.5.1's ui/dist, served by
// sio-front at /admin-ui/) in headless Chromium (Debian's, driven by
// playwright-core): it logs in with the server URL, username and password
// of its form, lists our namespaces, sockets and rooms, and its "join a
// room" and "disconnect" buttons act on a real socket.io-client; through
// the embedded front, and through lighttpd (the UI's socket then polls
// through sio-fcgi before it upgrades at the front).
// Screenshots go to tests/out/admin-ui-*.png.
import { mkdirSync } from "node:fs";
import path from "node:path";
import {
  REPO, assert, test, before, after, startStack, connect, connected, eventually, once, run, writeConfig,
} from "./lib.mjs";
import { startBrowser } from "./browser.mjs";

const OUT = path.join(REPO, "tests", "out");

const KINDS = ["embedded", "lighttpd"];
const stacks = {};
let browser;
before(async () => {
  const h = await run("htpasswd", ["-bnBC", "5", "", "pw-ui"]);
  assert.equal(h.code, 0, h.stderr);
  const hash = h.stdout.replace(/[:\n]/g, "");
  const config = writeConfig(`[admin]\nusername = admin\npassword_hash = ${hash}\nmode = development\n`);
  for (const kind of KINDS) stacks[kind] = await startStack(kind, { config });
  browser = await startBrowser({ viewport: { width: 1200, height: 900 } });
  mkdirSync(OUT, { recursive: true });
});
after(async () => {
  if (browser) await browser.close();
  for (const kind of KINDS) if (stacks[kind]) await stacks[kind].stop();
});

// The UI's page with its connection form filled in and sent.
async function openUI(stack, password) {
  const page = await browser.context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // index.html links Google's fonts and a CDN's icons: this machine is offline
  await page.route(/fonts\.googleapis\.com|cdn\.jsdelivr\.net/, (r) => r.abort());
  await page.goto(`${stack.url}/admin-ui/`, { waitUntil: "domcontentloaded", timeout: 15000 });
  await page.getByLabel("Server URL").fill(stack.url);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: /connect/i }).click();
  return { page, errors };
}

const bodyHas = (page, text, timeout = 10000) =>
  page.waitForFunction((t) => document.body.innerText.includes(t), text, { timeout });

for (const kind of KINDS) {
  test(`${kind}: a wrong password leaves the UI disconnected with its connection form open`, async () => {
    const { page } = await openUI(stacks[kind], "wrong");
    // the UI turns the server's connect_error "invalid credentials" into its own sentence
    await page.getByText("Invalid credentials").waitFor({ timeout: 10000 });
    assert.ok((await page.locator("body").innerText()).includes("DISCONNECTED"));
    await page.close();
  }, { timeout: 60000 });

  test(`${kind}: the UI logs in, lists our namespaces, sockets and rooms; its join and disconnect buttons act on a real client`, async () => {
    const stack = stacks[kind];
    const c = await connected(connect(stack.url, "/", { query: { who: "browser-test" } }));
    const cid = c.id;
    assert.equal((await stack.sioctl("join", "--to", cid, "lobby")).code, 0);
    const { page, errors } = await openUI(stack, "pw-ui");
    await bodyHas(page, "CONNECTED");
    // the dashboard's namespaces come from server_stats (every 2 s)
    await page.waitForFunction(() => /\/admin\s+1/.test(document.body.innerText), null, { timeout: 10000 });
    await page.screenshot({ path: path.join(OUT, `admin-ui-${kind}-dashboard.png`) });

    await page.goto(`${stack.url}/admin-ui/#/sockets/`);
    await bodyHas(page, cid);
    await page.goto(`${stack.url}/admin-ui/#/rooms/`);
    await bodyHas(page, "lobby");

    // the socket's page: its handshake and rooms, then "join a room"
    await page.goto(`${stack.url}/admin-ui/#/n/%2F/sockets/${cid}`);
    await bodyHas(page, "browser-test");
    await bodyHas(page, "lobby");
    await page.getByLabel("Join a room").fill("vip");
    await page.locator("button[type=submit]:has(i.mdi-tag-plus-outline)").click(); // its icon: a tag with a plus
    await eventually(async () => {
      const socks = JSON.parse((await stack.sioctl("--json", "sockets")).stdout);
      assert.ok(socks.find((s) => s.id === cid).rooms.includes("vip"));
    });
    // the page shows it too (room_joined), and the client gets what is sent to the room
    await bodyHas(page, "vip");
    const got = once(c, "to-vip");
    assert.equal((await stack.sioctl("emit", "--to", "vip", "to-vip", "1")).code, 0);
    assert.deepEqual(await got, [1]);
    await page.screenshot({ path: path.join(OUT, `admin-ui-${kind}-socket.png`) });

    // the socket's "disconnect" button (the second Status row: Client, then Socket)
    const gone = once(c, "disconnect");
    const statusRows = page.locator("tr", { has: page.locator("td.key-column", { hasText: /^Status$/ }) });
    await statusRows.nth(1).locator("button").click();
    assert.equal((await gone)[0], "io server disconnect");
    await eventually(async () => {
      const socks = JSON.parse((await stack.sioctl("--json", "sockets")).stdout);
      assert.ok(!socks.some((s) => s.id === cid));
    });
    assert.deepEqual(errors, []);
    await page.close();
  }, { timeout: 90000 });
}
