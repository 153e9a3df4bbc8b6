// The demo page's live panel in a real browser (Debian's chromium driven by
// playwright-core) against the embedded stack (scripts/run-embedded, which
// runs sio-front --demo): the front pushes "demo:stats" every second to the
// page's panel socket; a real socket.io-client emits and joins a room, and the
// panel's numbers must move.  A screenshot goes to tests/out/demo-panel.png.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { REPO, assert, test, before, after, startStack, connect, connected, TIME_SCALE } from "./lib.mjs";
import { startBrowser } from "./browser.mjs";

// The panel is pushed every DEMO_PANEL_MS (1 s, gateway/front_demo.h): a wait
// for it to show something is a number of those periods.
const PERIODS = (n) => n * 1000 * TIME_SCALE;

let stack, chrome, browser;
before(async () => {
  stack = await startStack("embedded");
  chrome = await startBrowser({ viewport: { width: 1100, height: 900 } });
  browser = chrome.context;
});
after(async () => {
  if (chrome) await chrome.close();
  if (stack) await stack.stop();
});

const num = async (page, sel) => Number(await page.textContent(sel));

test("the live panel shows the server's namespaces, rooms, sockets and throughput, and they move", async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(stack.url + "/", { waitUntil: "load", timeout: 15000 });
  await page.waitForFunction(() => document.querySelector("#panel-updated").textContent.startsWith("updated"),
    null, { timeout: PERIODS(15) });
  // The page's own panel socket is the one socket of "/" so far.
  await page.waitForFunction(() => document.querySelector('#panel-nsps tr[data-nsp="/"] td:nth-child(2)')?.textContent === "1",
    null, { timeout: PERIODS(10) });
  // Every rate the panel shows from now on, kept by the page.
  await page.evaluate(() => {
    window.maxRateIn = 0;
    const el = document.querySelector("#panel-in-rate");
    new MutationObserver(() => { window.maxRateIn = Math.max(window.maxRateIn, parseFloat(el.textContent) || 0); })
      .observe(el, { childList: true, characterData: true, subtree: true });
  });
  const totalBefore = await num(page, "#panel-in-total");
  const broadcastsBefore = await num(page, "#panel-broadcasts");

  const c = await connected(connect(stack.url, "/", { transports: ["websocket"] }));
  for (let i = 0; i < 40; i++) c.emit("chatter", i);
  const r = await stack.sioctl("join", "--to", c.id, "chat");
  assert.equal(r.code, 0, r.stderr);
  const e = await stack.sioctl("emit", "--to", "chat", "news", '"hi"');
  assert.equal(e.code, 0, e.stderr);

  await page.waitForFunction((want) => Number(document.querySelector("#panel-in-total").textContent) >= want,
    totalBefore + 40, { timeout: PERIODS(15) });
  await page.waitForFunction(() => window.maxRateIn > 0, null, { timeout: PERIODS(10) });
  await page.waitForFunction(() => {
    const row = document.querySelector('#panel-nsps tr[data-nsp="/"]');
    return row && row.children[1].textContent === "2" && row.children[2].textContent === "1" &&
      row.children[3].textContent === "chat (1)";
  }, null, { timeout: PERIODS(10) });
  assert.ok(await num(page, "#panel-broadcasts") >= broadcastsBefore + 1);
  assert.match(await page.textContent("#panel-clients-split"), /\(\d+ ws, \d+ polling\)/);
  assert.ok(await num(page, "#panel-clients") >= 2);
  mkdirSync(path.join(REPO, "tests", "out"), { recursive: true });
  await page.screenshot({ path: path.join(REPO, "tests", "out", "demo-panel.png"), fullPage: true });
  c.disconnect();
  // The client left: the panel says so.
  await page.waitForFunction(() => document.querySelector('#panel-nsps tr[data-nsp="/"] td:nth-child(2)').textContent === "1",
    null, { timeout: PERIODS(10) });
  assert.deepEqual(errors, []);
}, { timeout: 90000 });
