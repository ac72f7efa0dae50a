// Drives the console in Debian's Chromium (playwright-core, never a
// downloaded browser) and prints a JSON report for
// server/console_e2e_test.go, which seeds the server and checks the report.
// Usage: node e2e.mjs  (BASE_URL, READ_KEY, STEWARD_KEY, WRITE_KEY, CHROMIUM)
import { base, report, browser, newPage, check, signIn } from "./lib.mjs";

try {
  // Sign-in page; the write key is refused.
  const agent = await newPage();
  await agent.goto(base + "/console/review");
  await check(agent, "login");
  report.steps.push({ step: "signed-out redirect", url: new URL(agent.url()).pathname });
  await signIn(agent, process.env.WRITE_KEY);
  report.steps.push({ step: "write key", text: await agent.locator("[role=alert]").innerText() });
  await check(agent, "login refused");

  // Support agent: a phone in another format opens the profile and says so.
  await signIn(agent, process.env.READ_KEY);
  await agent.goto(base + "/console/search");
  await check(agent, "search");
  await agent.getByLabel(/Email, phone/).fill("415.555.0134");
  await Promise.all([agent.waitForURL(/\/console\/profiles\//), agent.keyboard.press("Enter")]);
  report.steps.push({ step: "phone lookup", h1: await agent.locator("h1").innerText(),
    notice: await agent.locator("[role=status]").first().innerText() });
  await check(agent, "profile");
  await agent.goto(base + "/console/search?q=lee");
  await check(agent, "search results");
  const doc = await agent.goto(base + "/console/search");
  report.steps.push({ step: "headers", csp: doc.headers()["content-security-policy"] || "", frame: doc.headers()["x-frame-options"] || "" });
  await agent.goto(base + "/console/review");
  report.steps.push({ step: "read-only queue", approveButtons: await agent.getByRole("button", { name: "Approve" }).count(),
    items: await agent.locator("section.item").count() });
  await check(agent, "review (read key)");

  // Two stewards decide the family-tablet item at the same moment: one
  // outcome, and the other is told.
  const steward = await newPage();
  const other = await newPage();
  await signIn(steward, process.env.STEWARD_KEY);
  await signIn(other, process.env.STEWARD_KEY);
  await steward.goto(base + "/console/review?reason=merge_protection");
  await other.goto(base + "/console/review?reason=merge_protection");
  await check(steward, "review (steward)");
  await Promise.all([
    Promise.all([steward.waitForNavigation(), steward.getByRole("button", { name: "Reject", exact: true }).first().click()]),
    Promise.all([other.waitForNavigation(), other.getByRole("button", { name: "Reject", exact: true }).first().click()]),
  ]);
  report.steps.push({ step: "concurrent", notices: [await steward.locator("[role=status]").first().innerText(),
    await other.locator("[role=status]").first().innerText()] });

  // The rejection sticks: the same evidence sent again is not proposed again.
  const sent = await fetch(`${base}/v1/identify`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Basic " + Buffer.from(process.env.WRITE_KEY + ":").toString("base64") },
    body: JSON.stringify({ userId: "bob", anonymousId: "tablet", traits: { name: "Bob Lee" }, messageId: "again-1" }),
  });
  await steward.goto(base + "/console/review?reason=merge_protection");
  report.steps.push({ step: "rejection sticks", sent: sent.status, items: await steward.locator("section.item").count() });

  // Approve a scored match, keyboard only, after reading its waterfall:
  // the bars must add up to the total and the probability follow from it.
  await steward.goto(base + "/console/review?reason=review");
  const rows = await steward.locator("table.waterfall tbody tr td:nth-child(5)").allInnerTexts();
  const total = Number(await steward.locator("table.waterfall tfoot td:nth-child(3)").innerText());
  const shownProb = await steward.locator("table.waterfall tfoot td:nth-child(2)").innerText();
  const sum = rows.reduce((a, x) => a + Number(x), 0);
  report.steps.push({ step: "waterfall", bars: rows.length, sum, total,
    shownProb, prob: `probability ${(100 / (1 + 2 ** -total)).toFixed(1)}%` });
  await steward.keyboard.press("j");
  const focused = await steward.evaluate(() => document.activeElement && document.activeElement.tagName);
  const start = Date.now();
  await Promise.all([steward.waitForNavigation(), steward.keyboard.press("a")]);
  report.timings.nextItemMs = Date.now() - start;
  report.steps.push({ step: "keyboard approve", focused, notice: await steward.locator("[role=status]").first().innerText(),
    items: await steward.locator("section.item").count() });
  await check(steward, "review after decision");
  // u offers to undo that approval: its preview, then Confirm.
  await Promise.all([steward.waitForNavigation(), steward.keyboard.press("u")]);
  const undoPreview = await steward.locator("ul.preview").innerText();
  await Promise.all([steward.waitForNavigation(), steward.getByRole("button", { name: "Confirm" }).click()]);
  report.steps.push({ step: "keyboard undo", preview: undoPreview, notice: await steward.locator("[role=status]").first().innerText() });
  // A merged profile ID opens the survivor with a banner; a deep link
  // survives signing in.
  if (process.env.ABSORBED_ID) {
    const deep = await newPage();
    await deep.goto(`${base}/console/profiles/${process.env.ABSORBED_ID}`);
    await deep.getByLabel("API key").fill(process.env.READ_KEY);
    await Promise.all([deep.waitForNavigation(), deep.getByRole("button", { name: "Sign in" }).click()]);
    report.steps.push({ step: "merged redirect", url: new URL(deep.url()).pathname, h1: await deep.locator("h1").innerText(),
      banner: await deep.locator("[role=status]").first().innerText() });
    await check(deep, "merged redirect");
    await deep.context().close();
    // Something web-9 does after the merge stays on web-9's side after the undo.
    await fetch(`${base}/v1/track`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Basic " + Buffer.from(process.env.WRITE_KEY + ":").toString("base64") },
      body: JSON.stringify({ anonymousId: "web-9", event: "Since", messageId: "since-1" }),
    });
    // Undo that merge from the history, through its preview.
    await steward.goto(`${base}/console/profiles/${process.env.ABSORBED_ID}`);
    await Promise.all([steward.waitForNavigation(), steward.getByRole("button", { name: /^Undo merge/ }).first().click()]);
    const preview = await steward.locator("ul.preview").innerText();
    await check(steward, "undo preview");
    await Promise.all([steward.waitForNavigation(), steward.getByRole("button", { name: "Confirm" }).click()]);
    report.steps.push({ step: "undo merge", preview, url: new URL(steward.url()).pathname,
      notice: await steward.locator("[role=status]").first().innerText() });
    // Split Ann's phone out, through its preview.
    await steward.goto(`${base}/console/profiles/${process.env.ANN_ID}`);
    await steward.getByLabel(/^Split phone/).check();
    await Promise.all([steward.waitForNavigation(), steward.getByRole("button", { name: /Split selected/ }).click()]);
    await Promise.all([steward.waitForNavigation(), steward.getByRole("button", { name: "Confirm" }).click()]);
    report.steps.push({ step: "split", url: new URL(steward.url()).pathname, notice: await steward.locator("[role=status]").first().innerText() });
    await check(steward, "after split");
    await steward.goto(`${base}/console/profiles/${process.env.ANN_ID}/graph`);
    await Promise.all([steward.waitForNavigation(), steward.getByRole("link", { name: "Why" }).first().click()]);
    report.steps.push({ step: "edge page", h1: await steward.locator("h1").innerText() });
    await check(steward, "edge");
    await steward.goto(`${base}/console/profiles/${process.env.ANN_ID}/history`);
    report.steps.push({ step: "history", entries: await steward.locator("section.item").count() });
    await check(steward, "history");
  }
  await steward.goto(base + "/console/audit");
  report.steps.push({ step: "audit", rows: await steward.locator("tbody tr").count(),
    first: await steward.locator("tbody tr").first().innerText(), all: await steward.locator("tbody").innerText() });
  await check(steward, "audit");
  // The graph island on a 1,000-identifier profile: time to the first
  // frame and the longest main-thread task; then the aggregated view.
  for (const [name, id] of [["graph 1000", process.env.BIG_PROFILE], ["graph aggregated", process.env.HUGE_PROFILE]]) {
    if (!id) continue;
    const gp = await newPage();
    await gp.addInitScript(() => {
      window.__longest = 0;
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__longest = Math.max(window.__longest, e.duration);
      }).observe({ type: "longtask", buffered: true });
    });
    await signIn(gp, process.env.READ_KEY);
    const start = Date.now();
    await gp.goto(`${base}/console/profiles/${id}/graph`);
    await gp.waitForSelector('#graph-canvas[data-ready="true"]', { timeout: 30000 });
    await gp.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    report.timings[name + " first frame ms"] = Date.now() - start;
    report.timings[name + " longest task ms"] = Math.round(await gp.evaluate(() => window.__longest));
    report.steps.push({ step: name, rows: await gp.locator("tbody tr").count(), summary: await gp.locator("#graph-summary").innerText() });
    await check(gp, name);
    if (name === "graph 1000") {
      // Keyboard: focus the drawing, step to an edge, Enter opens its explanation.
      await gp.locator("#graph-canvas").focus();
      await gp.keyboard.press("ArrowRight");
      const announced = await gp.locator("#graph-live").innerText();
      await Promise.all([gp.waitForNavigation(), gp.keyboard.press("Enter")]);
      report.steps.push({ step: "graph keyboard", announced, url: new URL(gp.url()).pathname });
    }
    await gp.context().close();
  }
  const notFound = await steward.goto(base + "/console/no/such/page");
  report.steps.push({ step: "not found", status: notFound.status(), h1: await steward.locator("h1").innerText() });
  await check(steward, "not found");
  const missing = await steward.goto(base + "/console/assets/nope.js");
  report.steps.push({ step: "missing asset", status: missing.status() });
} catch (err) {
  report.errors.push(String(err && err.stack || err));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
