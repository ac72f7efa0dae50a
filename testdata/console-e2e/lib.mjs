// What the console's browser tests share: Chromium (playwright-core,
// never a downloaded browser), pages that record foreign requests, bytes
// and errors, axe on each page state, and the JSON report.
import { chromium } from "playwright-core";
import { AxeBuilder } from "@axe-core/playwright";

export const base = process.env.BASE_URL;
const origin = new URL(base).origin;
export const report = { steps: [], axe: {}, bytes: {}, foreign: [], errors: [], timings: {}, island: 0 };

export const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--enable-unsafe-swiftshader"],
});

// A page that records every request's origin and the bytes each page load
// transfers (bodies as received).
export async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  page.bytes = 0;
  page.on("request", (req) => {
    const u = new URL(req.url());
    if (u.protocol !== "data:" && u.origin !== origin) report.foreign.push(req.url());
  });
  // Bytes as transferred (encoded bodies plus headers); the graph island
  // is counted on its own.
  page.on("requestfinished", async (req) => {
    let s;
    try {
      s = await req.sizes();
    } catch {
      return; // finished after its page closed: nothing to count on a page
    }
    const n = s.responseBodySize + s.responseHeadersSize;
    if (req.url().endsWith("/graph.js")) report.island = n;
    else page.bytes += n;
  });
  page.on("pageerror", (err) => report.errors.push(String(err)));
  page.on("console", (msg) => {
    // Expected HTTP errors (a refused sign-in, a missing asset) are logged
    // by the browser too; anything else is a script error.
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) report.errors.push(msg.text());
  });
  return page;
}

// visit loads a page state, runs axe on it and records its weight.
export async function check(page, name) {
  const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]).analyze();
  report.axe[name] = results.violations.map((v) => `${v.id}: ${v.nodes.length} (${v.help})`);
  if (process.env.SCREENSHOTS) {
    await page.screenshot({ path: `${process.env.SCREENSHOTS}/${name.replace(/[^a-z0-9]+/gi, "-").replace(/-$/, "")}.png` });
  }
  report.bytes[name] = page.bytes;
  page.bytes = 0;
}

export async function signIn(page, key) {
  await page.goto(base + "/console/login");
  await page.getByLabel("API key").fill(key);
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Sign in" }).click()]);
}

