// A frontend app reads its visitor with a personalisation token, in
// Chromium, from pages of other origins than idgraph's (served by
// server/personalisation_browser_test.go), and prints a JSON report for it.
// Each case opens its page and runs the page's own readMe(api, token): a
// cross-origin fetch of `me` with the token as a bearer, which makes
// Chromium send a CORS preflight first.
// Usage: node personalisation.mjs  (BASE_URL, CHROMIUM, CASES: JSON [{name, page, token}])
import { chromium } from "playwright-core";

const api = process.env.BASE_URL;
const cases = JSON.parse(process.env.CASES);
const report = { results: {}, errors: [] };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  for (const c of cases) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const console = [];
    page.on("console", (m) => console.push(m.text()));
    await page.goto(c.page);
    const result = await page.evaluate(([a, t]) => window.readMe(a, t), [api, c.token]);
    result.origin = new URL(page.url()).origin;
    result.console = console;
    report.results[c.name] = result;
    await context.close();
  }
} catch (e) {
  report.errors.push(String(e && e.stack || e));
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report));
