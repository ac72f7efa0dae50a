// Loads Segment's analytics-next and RudderStack's JS SDK, unchanged, in
// Debian's Chromium (playwright-core, never a downloaded browser) on a shop
// page served from another origin (a second loopback port), pointed at
// idgraph, and prints a JSON report for server/browser_sdk_test.go, which
// checks what was stitched. No request may leave the two origins: the SDKs
// get their settings inline and their code from this package.
// Usage: node e2e.mjs  (BASE_URL, WRITE_KEY, READ_KEY, CHROMIUM)
import http from "node:http";
import { readFile } from "node:fs/promises";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const api = process.env.BASE_URL;
const writeKey = process.env.WRITE_KEY;
const readKey = process.env.READ_KEY;
const here = dirname(fileURLToPath(import.meta.url));
const report = { anonymousIds: {}, requests: [], foreign: [], errors: [] };

// The shop: its pages, and the SDKs' own files as the npm packages ship
// them (analytics-next's UMD build and the chunks it loads lazily;
// RudderStack's bundled UMD build, plugins included).
const assets = {
  "/analytics-next/bundles/": join(here, "node_modules/@segment/analytics-next/dist/umd"),
  "/rudder/": join(here, "node_modules/@rudderstack/analytics-js/dist/npm/modern/bundled/umd"),
};
const page = (body) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head><body><h1>Shop</h1>${body}</body></html>`;
const pages = {
  // analytics-next finds its chunks under the CDN URL it is given before it loads.
  "/segment.html": page(`<script>window.analytics = { _cdn: location.origin }</script><script src="/analytics-next/bundles/index.js"></script>`),
  "/rudder.html": page(`<script src="/rudder/index.js"></script>`),
  "/bye.html": page("<p>Bye</p>"),
};
const shop = http.createServer(async (req, res) => {
  const path = new URL(req.url, "http://x").pathname;
  if (path === "/favicon.ico") {
    res.writeHead(204).end();
    return;
  }
  if (pages[path]) {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(pages[path]);
    return;
  }
  for (const [prefix, dir] of Object.entries(assets)) {
    const file = normalize(join(dir, path.slice(prefix.length)));
    if (path.startsWith(prefix) && file.startsWith(dir) && file.endsWith(".js")) {
      try {
        res.writeHead(200, { "Content-Type": "text/javascript" }).end(await readFile(file));
      } catch {
        res.writeHead(404).end();
      }
      return;
    }
  }
  res.writeHead(404).end();
});
await new Promise((resolve) => shop.listen(0, "127.0.0.1", resolve));
const shopOrigin = `http://127.0.0.1:${shop.address().port}`;
const apiOrigin = new URL(api).origin;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});

// A device: a browser context of its own (its own cookies and storage, so
// its own anonymous ID), whose requests to idgraph are recorded and whose
// requests anywhere else are reported. (Requests are watched, not routed:
// Playwright answers CORS preflights itself for routed requests.)
async function device(name) {
  const context = await browser.newContext();
  const p = await context.newPage();
  p.on("request", (req) => {
    const u = new URL(req.url());
    if (u.origin !== shopOrigin && u.origin !== apiOrigin) report.foreign.push(`${name}: ${req.url()}`);
  });
  const record = (req, status) => {
    const u = new URL(req.url());
    if (u.origin !== apiOrigin) return;
    report.requests.push({ device: name, method: req.method(), path: u.pathname, type: req.resourceType(),
      contentType: req.headers()["content-type"] ?? "", status });
  };
  p.on("requestfinished", async (req) => {
    // A beacon may finish after its page closed: its answer can no longer be
    // read here (the test checks beacons in the server's metrics instead).
    let status;
    try {
      status = (await req.response())?.status() ?? 0;
    } catch {
      return;
    }
    record(req, status);
  });
  p.on("requestfailed", (req) => record(req, req.failure()?.errorText ?? "failed"));
  p.on("pageerror", (err) => report.errors.push(`${name}: ${err}`));
  p.on("console", (msg) => {
    if (msg.type() === "error") report.errors.push(`${name}: ${msg.text()} (${msg.location().url})`);
  });
  return { context, page: p };
}

// lookup reads a profile from idgraph's GraphQL API with the read key.
async function lookup(type, value) {
  const res = await fetch(api + "/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${readKey}` },
    body: JSON.stringify({
      query: `query($t: String!, $v: String!) { lookup(type: $t, value: $v) { identifiers { type value } events(first: 100) { edges { node { name } } } } }`,
      variables: { t: type, v: value },
    }),
  });
  return (await res.json()).data?.lookup ?? null;
}

// waitFor polls idgraph until the anonymous ID is stitched to the user and
// its profile holds the named events; after ten seconds it reports what it saw.
async function waitFor(anonymousId, userId, events) {
  let ids = [], names = [];
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    const p = await lookup("anonymous_id", anonymousId);
    ids = p?.identifiers.map((i) => `${i.type}:${i.value}`) ?? [];
    names = p?.events.edges.map((e) => e.node.name) ?? [];
    if (ids.includes(`user_id:${userId}`) && events.every((e) => names.includes(e))) return;
  }
  report.errors.push(`${anonymousId} not stitched to ${userId} with ${events} after 10 s: ${ids}, events ${names}`);
}

// Segment's analytics-next, with the settings its CDN would send given
// inline and the Segment.io destination pointed at idgraph.
async function segment(name, deliveryStrategy, steps) {
  const { context, page: p } = await device(name);
  await p.goto(shopOrigin + "/segment.html");
  const anonymousId = await p.evaluate(async ({ writeKey, apiHost, deliveryStrategy, steps }) => {
    const settings = { apiKey: writeKey, apiHost, protocol: "http", deliveryStrategy };
    const [analytics] = await window.AnalyticsNext.AnalyticsBrowser.load(
      { writeKey, cdnSettings: { integrations: { "Segment.io": settings } } },
      { integrations: { "Segment.io": settings } });
    for (const [call, ...args] of steps) await analytics[call](...args);
    return analytics.user().anonymousId();
  }, { writeKey, apiHost: new URL(api).host + "/v1", deliveryStrategy, steps });
  report.anonymousIds[name] = anonymousId;
  return { context, page: p, anonymousId };
}

// RudderStack's JS SDK, its source configuration given inline.
async function rudder(name, loadOptions, steps) {
  const { context, page: p } = await device(name);
  await p.goto(shopOrigin + "/rudder.html");
  const anonymousId = await p.evaluate(async ({ writeKey, api, loadOptions, steps }) => {
    const ra = new window.rudderanalytics.RudderAnalytics();
    await new Promise((resolve) => {
      ra.load(writeKey, api, {
        ...loadOptions,
        getSourceConfig: () => ({ source: { id: "shop", name: "Shop", workspaceId: "shop", enabled: true, config: {}, destinations: [] } }),
        onLoaded: resolve,
      });
    });
    for (const [call, ...args] of steps) ra[call](...args);
    return ra.getAnonymousId();
  }, { writeKey, api, loadOptions, steps });
  report.anonymousIds[name] = anonymousId;
  return { context, page: p, anonymousId };
}

try {
  // Alice on her laptop: each call its own keepalive fetch, then a beacon
  // as a page sends when it closes.
  const laptop = await segment("alice-laptop", { strategy: "standard", config: { keepalive: true } }, [
    ["page", "Home"],
    ["track", "Product Viewed", { sku: "A-1" }],
    ["identify", "as-alice", { email: "Alice.As@Example-Mail.io", firstName: "Alice" }],
  ]);
  await laptop.page.evaluate(({ url, writeKey, anonymousId }) =>
    navigator.sendBeacon(url, JSON.stringify({ writeKey, anonymousId, type: "track", event: "Beacon Sent" })),
  { url: api + "/v1/t", writeKey, anonymousId: laptop.anonymousId });
  await waitFor(laptop.anonymousId, "as-alice", ["Home", "Product Viewed", "Beacon Sent"]);

  // Alice signs in on her phone: batched, and the batch goes out as the page
  // is left (a keepalive fetch on pagehide).
  const phone = await segment("alice-phone", { strategy: "batching", config: { size: 10, timeout: 60_000 } }, [
    ["page", "Pricing"],
    ["identify", "as-alice"],
  ]);
  await phone.page.goto(shopOrigin + "/bye.html");
  await waitFor(phone.anonymousId, "as-alice", ["Pricing"]);

  // Bob, on the default delivery.
  const bob = await segment("bob", undefined, [
    ["page", "Home"],
    ["identify", "as-bob", { email: "bob.as@example-mail.io" }],
    ["track", "Signed Up"],
  ]);
  await waitFor(bob.anonymousId, "as-bob", ["Home", "Signed Up"]);

  // Carol with RudderStack's SDK: on her laptop (XHR, one call a request)
  // and her phone (sendBeacon batches).
  const carol = await rudder("carol-laptop", {}, [
    ["page", "Shop", "Home"],
    ["identify", "rj-carol", { email: "Carol.Rj@Example-Mail.io" }],
    ["track", "Added To Cart", { sku: "C-3" }],
  ]);
  await waitFor(carol.anonymousId, "rj-carol", ["Shop Home", "Added To Cart"]);
  const carolPhone = await rudder("carol-phone", { useBeacon: true, beaconQueueOptions: { flushQueueInterval: 200 } }, [
    ["page", "Shop", "Deals"],
    ["identify", "rj-carol"],
  ]);
  await waitFor(carolPhone.anonymousId, "rj-carol", ["Shop Deals"]);
} catch (err) {
  report.errors.push(`e2e.mjs: ${err.stack ?? err}`);
} finally {
  await browser.close();
  shop.close();
}
console.log(JSON.stringify(report));
