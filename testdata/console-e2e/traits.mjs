// Drives the console's computed trait pages in Chromium and prints a JSON
// report for server/console_traits_test.go (TestConsoleTraitsInChromium).
// Usage: node traits.mjs  (BASE_URL, STEWARD_KEY, CHROMIUM, PROFILE_ID, OTHER_ID)
import { base, report, browser, newPage, check, signIn } from "./lib.mjs";

try {
  const steward = await newPage();
  await signIn(steward, process.env.STEWARD_KEY);
  const step = async (name, extra = {}) => {
    report.steps.push({ step: name, status: 200, url: new URL(steward.url()).pathname, h1: await steward.locator("h1").innerText(), ...extra });
    await check(steward, name);
  };

  // The editor: an example, a type error announced as it is typed (a
  // computed trait needs one value, not a list of events), a preview of
  // values, then save.
  await steward.goto(base + "/console/traits/new?example=frequency");
  await step("trait editor");
  const area = steward.getByLabel("Definition");
  const status = steward.locator("#seg-status");
  await area.fill("");
  await area.pressSequentially('events("Order Completed")');
  await status.filter({ hasText: "TYPE" }).waitFor({ timeout: 10000 });
  await step("trait editor with an error", { text: await status.innerText() });
  await area.fill('events("Order Completed").max(prop("revenue"))');
  await status.filter({ hasText: "Valid" }).waitFor({ timeout: 10000 });
  await steward.getByLabel("Key").fill("top_order");
  await Promise.all([steward.waitForNavigation(), steward.getByRole("button", { name: "Preview" }).click()]);
  await step("trait preview", { text: await steward.locator("#seg-preview").innerText() });
  await Promise.all([steward.waitForNavigation(), steward.getByRole("button", { name: "Save" }).click()]);
  await step("trait saved", { notice: await steward.locator('[role="status"]').first().innerText() });

  // Disable, by keyboard, and enable again.
  await steward.getByRole("button", { name: "Disable" }).focus();
  await Promise.all([steward.waitForNavigation(), steward.keyboard.press("Enter")]);
  await step("trait disabled", { state: await steward.locator("dd").first().innerText() });
  await Promise.all([steward.waitForNavigation(), steward.getByRole("button", { name: "Enable" }).click()]);
  report.steps.push({ step: "trait enabled", status: 200, state: await steward.locator("dd").first().innerText() });

  // A profile's computed traits, and why, reached by keyboard.
  await steward.goto(base + `/console/profiles/${process.env.PROFILE_ID}/segments`);
  await step("profile traits");
  await steward.getByRole("link", { name: "why (orders)" }).focus();
  await Promise.all([steward.waitForNavigation(), steward.keyboard.press("Enter")]);
  await step("trait why");
  await steward.goto(base + `/console/profiles/${process.env.OTHER_ID}/traits/top_order`);
  await step("trait why no value");
} catch (err) {
  report.errors.push(String(err && err.stack || err));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
