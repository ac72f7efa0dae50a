// Drives the console's segments pages in Chromium and prints a JSON report
// for server/console_e2e_test.go (TestConsoleSegmentsInChromium).
// Usage: node segments.mjs  (BASE_URL, READ_KEY, STEWARD_KEY, CHROMIUM, PROFILE_ID, OTHER_ID)
import { base, report, browser, newPage, check, signIn } from "./lib.mjs";

try {
  const agent = await newPage();
  await signIn(agent, process.env.READ_KEY);
  const visit = async (name, path) => {
    const resp = await agent.goto(base + path);
    report.steps.push({ step: name, status: resp.status(), h1: await agent.locator("h1").innerText() });
    await check(agent, name);
  };
  await visit("segments", "/console/segments");
  await visit("segment", "/console/segments/buyer");
  await visit("profile segments", `/console/profiles/${process.env.PROFILE_ID}/segments`);
  await visit("why", `/console/profiles/${process.env.PROFILE_ID}/segments/buyer`);
  await visit("why not", `/console/profiles/${process.env.OTHER_ID}/segments/buyer`);
  // Keyboard: from the list, Tab to the segment's link and open it.
  await agent.goto(base + "/console/segments");
  await agent.locator('a[href="/console/segments/buyer"]').focus();
  await Promise.all([agent.waitForNavigation(), agent.keyboard.press("Enter")]);
  report.steps.push({ step: "keyboard", url: new URL(agent.url()).pathname });

  // A steward's editor: an example, an error announced as it is typed,
  // then a preview.
  const steward = await newPage();
  await signIn(steward, process.env.STEWARD_KEY);
  await steward.goto(base + "/console/segments/new?example=recency");
  await check(steward, "editor");
  const area = steward.getByLabel("Definition");
  await area.fill("");
  await area.pressSequentially('events("Order Completed").within(0d).exists()');
  const status = steward.locator("#seg-status");
  await status.filter({ hasText: "BAD_WINDOW" }).waitFor({ timeout: 10000 });
  report.steps.push({ step: "typed error", status: 200, text: await status.innerText() });
  await check(steward, "editor with an error");
  await area.fill('events("Order Completed").within(30d).exists()');
  await status.filter({ hasText: "Valid" }).waitFor({ timeout: 10000 });
  await steward.getByLabel("Key").fill("buyers");
  await Promise.all([steward.waitForNavigation(), steward.getByRole("button", { name: "Preview" }).click()]);
  report.steps.push({ step: "preview", status: 200, text: await steward.locator("#seg-preview").innerText() });
  await check(steward, "editor preview");
} catch (err) {
  report.errors.push(String(err && err.stack || err));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
