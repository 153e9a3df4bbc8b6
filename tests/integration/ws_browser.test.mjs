// The demo page in a real browser: Debian's chromium driven by
// playwright-core, against the embedded stack (scripts/run-embedded).
// Two pages join room "chat"; `sioctl emit --to chat` must show up in both;
// a screenshot goes to tests/out/demo.png.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { REPO, assert, test, before, after, startStack } from "./lib.mjs";
import { startBrowser } from "./browser.mjs";

let stack, chrome, browser;
before(async () => {
  stack = await startStack("embedded");
  chrome = await startBrowser();
  browser = chrome.context;
});
after(async () => {
  if (chrome) await chrome.close();
  if (stack) await stack.stop();
});

async function openDemo(transport) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(stack.url + "/", { waitUntil: "load", timeout: 15000 });
  await page.selectOption("#transport", transport);
  await page.click("#connect");
  await page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, { timeout: 10000 });
  const id = await page.textContent("#sid");
  assert.match(id, /^[A-Za-z0-9_-]{20}$/);
  await page.click("#join");
  await page.waitForFunction((sid) => document.querySelector("#members").textContent.includes(sid), id, { timeout: 10000 });
  return { page, id, errors };
}

test("two demo pages join 'chat' and both show an event sent with sioctl", async () => {
  const a = await openDemo("auto");
  const b = await openDemo("websocket");
  // each page lists both members (the list refreshes every 2 s)
  for (const p of [a, b])
    await p.page.waitForFunction(([x, y]) => {
      const t = document.querySelector("#members").textContent;
      return t.includes(x) && t.includes(y);
    }, [a.id, b.id], { timeout: 10000 });
  assert.equal(await a.page.textContent("#count"), "2");
  // the first page went polling -> WebSocket
  await a.page.waitForFunction(() => document.querySelector("#tname").textContent === "websocket", null, { timeout: 10000 });
  const r = await stack.sioctl("emit", "--to", "chat", "some-event", '"hello from sioctl"', '{"n":42}');
  assert.equal(r.code, 0, r.stderr);
  for (const p of [a, b]) {
    await p.page.waitForFunction(() => document.querySelector("#log").textContent.includes("some-event"), null, { timeout: 10000 });
    const row = await p.page.textContent("#log li:first-child");
    assert.match(row, /some-event/);
    assert.match(row, /"hello from sioctl", \{"n":42\}/);
  }
  // only the room: a socket outside it gets nothing
  const r2 = await stack.sioctl("emit", "--to", "elsewhere", "other-event", "1");
  assert.equal(r2.code, 0, r2.stderr);
  await a.page.waitForTimeout(300);
  assert.ok(!(await a.page.textContent("#log")).includes("other-event"));
  mkdirSync(path.join(REPO, "tests", "out"), { recursive: true });
  await a.page.screenshot({ path: path.join(REPO, "tests", "out", "demo.png"), fullPage: true });
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
}, { timeout: 60000 });
