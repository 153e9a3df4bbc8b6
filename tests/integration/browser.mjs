// Headless Chromium for the browser tests: Debian's chromium (SIO_CHROMIUM
// to use another) driven by playwright-core from tests/node_modules, with a
// fresh profile directory that close() removes.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { REPO } from "./lib.mjs";

const require = createRequire(path.join(REPO, "tests", "package.json"));
export const CHROMIUM = process.env.SIO_CHROMIUM || "/usr/bin/chromium";

// Resolves {context, close()}: context is playwright's persistent context.
export async function startBrowser({ viewport = { width: 1100, height: 760 } } = {}) {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing: apt-get install -y chromium`);
  const { chromium } = require("playwright-core");
  const profile = mkdtempSync(path.join(tmpdir(), "sio-chromium-"));
  let context;
  try {
    // a fresh profile directory (playwright passes it as --user-data-dir)
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000,
      viewport,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync", "--disable-quic"],
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
