// End-to-end tests of the console in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core; no browser download)
// against a real `extensor serve`. Started by tests/console.rs, which
// builds the binary, starts the server, makes the fixtures and passes:
//
//   EXTENSOR_URL, ADMIN_TOKEN, OWNER_TOKEN, TENANT_SLUG,
//   PLUGIN_ZIP (a plugin with a hook, a job, a route),
//   BAD_ZIP (a plugin with several problems), SCREENSHOTS (a directory),
//   CHROMIUM (the browser binary).
//
// Each scenario is a named test; every page visited is screenshotted and
// checked with axe-core (no serious or critical violation), and any
// Content-Security-Policy violation or page error fails the run. Prints
// "N passed, M failed" and exits non-zero on any failure.
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (tests/console.rs sets it)`);
  return v;
};
const URL_ = env("EXTENSOR_URL");
const ADMIN = env("ADMIN_TOKEN");
const OWNER = env("OWNER_TOKEN");
const SLUG = env("TENANT_SLUG");
const SHOTS = env("SCREENSHOTS");
const WAIT = 30_000; // generous: CI machines are shared and slow
mkdirSync(SHOTS, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

// ---- a webhook receiver on loopback that fails until told otherwise ----
let receiverOk = false;
// While holding, answers wait in `held` until release() (a slow receiver).
let holding = false;
const held = [];
const received = [];
const receiver = createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    received.push({ headers: req.headers, body });
    const answer = () => {
      res.writeHead(receiverOk ? 200 : 500, { "content-type": "text/plain" });
      res.end(receiverOk ? "thanks" : "receiver down for the test");
    };
    if (holding) held.push(answer);
    else answer();
  });
});
function release() {
  holding = false;
  for (const answer of held.splice(0)) answer();
}
/** Polls `check` until it holds (the receiver is in this process, so its
 * state has no page to wait on). */
async function until(what, check) {
  const deadline = Date.now() + WAIT;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
const receiverUrl = `http://127.0.0.1:${receiver.address().port}/hook`;

// ---- the API, directly (setup, and proving the server refuses) ----
async function call(method, path, { token = OWNER, slug = SLUG, body, type = "application/json" } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (slug) headers["X-Tenant-Slug"] = slug;
  if (body !== undefined) headers["Content-Type"] = type;
  const r = await fetch(URL_ + path, {
    method,
    headers,
    body: body === undefined ? undefined : type === "application/json" ? JSON.stringify(body) : body,
  });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, json, text };
}

// ---- the browser ----
const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const results = [];
const problems = []; // CSP violations and page errors, any page

async function newPage() {
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) problems.push(`CSP: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  return page;
}

async function signIn(page, token, slug) {
  await page.goto(`${URL_}/console/`);
  await page.getByLabel("Token").fill(token);
  await page.getByLabel(/Tenant slug/).fill(slug ?? "");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("who").waitFor();
}

/** Screenshot + axe-core: no serious or critical violation. */
async function look(page, name) {
  await page.waitForTimeout(150); // let a just-arrived live update paint
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
  await page.evaluate(axeSource);
  const res = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 3) }));
  });
  const bad = res.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad, [], `axe on ${name}: ${JSON.stringify(bad, null, 1)}`);
}

async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
  }
}

let pluginId = null;

await test("the console is served with a strict CSP and no inline script", async () => {
  const r = await fetch(`${URL_}/console/`);
  assert.equal(r.status, 200);
  const csp = r.headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(r.headers.get("x-frame-options"), "DENY");
  const html = await r.text();
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, "an inline <script>");
  assert.doesNotMatch(html, /<style|style=/, "inline style");
  const missing = await fetch(`${URL_}/console/assets/nope.js`);
  assert.equal(missing.status, 404);
});

await test("sign-in refuses a bad token and keeps a good one for the tab only", async () => {
  const page = await newPage();
  await page.goto(`${URL_}/console/`);
  await look(page, "01-sign-in");
  await page.getByLabel("Token").fill("not-a-token");
  await page.getByLabel(/Tenant slug/).fill(SLUG);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "unknown token" }).waitFor();
  await signIn(page, OWNER, SLUG);
  await page.getByRole("heading", { name: "Plugins" }).waitFor();
  const stored = await page.evaluate(() => ({ s: sessionStorage.length, l: localStorage.length, c: document.cookie }));
  assert.deepEqual(stored, { s: 1, l: 0, c: "" });
  await page.context().close();
});

await test("a rejected upload shows every problem with its location", async () => {
  const page = await newPage();
  await signIn(page, OWNER, SLUG);
  await page.getByTestId("upload-file").setInputFiles(env("BAD_ZIP"));
  await page.getByTestId("upload-submit").click();
  const alert = page.getByRole("region", { name: "Upload a plugin" }).getByRole("alert");
  await alert.waitFor();
  const items = alert.locator(".problems li");
  await items.first().waitFor();
  const texts = await items.allTextContents();
  assert.ok(texts.length >= 2, `expected several problems, got ${JSON.stringify(texts)}`);
  assert.ok(texts.some((t) => t.startsWith("$.slug")), JSON.stringify(texts));
  assert.ok(texts.some((t) => t.startsWith("$.version")), JSON.stringify(texts));
  await look(page, "02-upload-rejected");
  await page.context().close();
});

await test("upload and enable a plugin, then see its hook run after a publish", async () => {
  const page = await newPage();
  await signIn(page, OWNER, SLUG);
  await page.getByTestId("upload-file").setInputFiles(env("PLUGIN_ZIP"));
  await page.getByTestId("upload-submit").click();
  await page.getByRole("heading", { name: /Order notes/ }).waitFor();
  pluginId = decodeURIComponent(page.url().split("/").pop());
  await page.getByTestId("enable").click();
  await page.getByTestId("disable").waitFor();
  await page.getByTestId("logs-state").filter({ hasText: "live" }).waitFor();
  const pub = await call("POST", "/api/events", { body: { event_type: "order.created", event_data: { order: "o-42" } } });
  assert.equal(pub.status, 201, pub.text);
  await page.getByTestId("logs").filter({ hasText: "hook ran for o-42" }).waitFor();
  await page.getByRole("img", { name: /Latency percentiles/ }).waitFor();
  await look(page, "03-plugin");
  await page.goto(`${URL_}/console/#/plugins`);
  const row = page.getByTestId("plugin-order-notes");
  await row.filter({ hasText: "enabled" }).waitFor();
  // The error rate comes from GET /api/plugins/metrics: the hook ran once, fine.
  await row.getByTestId("error-rate").filter({ hasText: /^0% \(0 of [1-9]\d*\)$/ }).waitFor();
  await look(page, "04-plugins");
  await page.context().close();
});

await test("a failing webhook delivery is redelivered to success", async () => {
  const secret = await call("PUT", "/api/secrets/SIGNING_KEY", { body: { value: "whsec_" + Buffer.from("console-e2e-signing-key-32-bytes").toString("base64") } });
  assert.ok(secret.status < 300, secret.text);
  const yaml = [
    "api_version: v1",
    'description: "Orders to the warehouse"',
    'on: ["order.*"]',
    "delivery:",
    `  url: "${receiverUrl}"`,
    '  signing: {alg: "HMAC-SHA256", secret: "${SECRET:SIGNING_KEY}"}',
    "retry: {max_attempts: 1}",
    "",
  ].join("\n");
  const applied = await call("PUT", "/api/webhooks/orders", { body: yaml, type: "application/yaml" });
  assert.ok(applied.status < 300, applied.text);
  const pub = await call("POST", "/api/events", { body: { event_type: "order.shipped", event_data: { order: "o-7" } } });
  assert.equal(pub.status, 201, pub.text);
  const page = await newPage();
  await signIn(page, OWNER, SLUG);
  await page.goto(`${URL_}/console/#/webhooks`);
  await page.getByTestId("webhook-orders").waitFor();
  await look(page, "05-webhooks");
  await page.getByRole("link", { name: "orders" }).click();
  await page.getByTestId("filter-status").selectOption("failed");
  const failed = page.locator("tr[data-testid^=delivery-]").filter({ hasText: "order.shipped" }).first();
  await failed.waitFor();
  await failed.getByRole("link").click();
  await page.getByTestId("attempts").filter({ hasText: "HTTP 500" }).waitFor();
  await look(page, "06-webhook-failed-delivery");
  receiverOk = true;
  await page.getByTestId("redeliver").click();
  await page.getByTestId("filter-status").selectOption("delivered");
  await page.getByTestId("attempts").filter({ hasText: "HTTP 200" }).waitFor();
  await page.locator("tr[data-testid^=delivery-]").filter({ hasText: "redelivery of" }).waitFor();
  await look(page, "07-webhook-redelivered");
  assert.ok(received.some((r) => r.headers["webhook-signature"]), "signed deliveries reached the receiver");
  await page.context().close();
});

await test("a replay of a time range shows its progress until every delivery has finished", async () => {
  const page = await newPage();
  await signIn(page, OWNER, SLUG);
  await page.goto(`${URL_}/console/#/webhooks/orders`);
  const replay = page.getByRole("region", { name: "Replay a time range" });
  await replay.getByTestId("replay").waitFor();
  // The last hour up to a minute from now, as the browser's local time.
  const [from, to] = await page.evaluate(() => {
    const local = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
    return [local(Date.now() - 3_600_000), local(Date.now() + 60_000)];
  });
  await replay.getByLabel("From").fill(from);
  await replay.getByLabel("To").fill(to);
  holding = true;
  try {
    const receivedBefore = received.length;
    const replayed = page.waitForResponse((r) => r.url().endsWith("/api/webhooks/orders/replay"));
    await replay.getByTestId("replay").click();
    const answer = await (await replayed).json();
    const total = answer.deliveries;
    assert.ok(total >= 2, `order.created and order.shipped are in the range: ${JSON.stringify(answer)}`);
    const progress = page.getByTestId("replay-progress");
    await progress.filter({ hasText: new RegExp(`\\b0 of ${total} replayed deliveries finished`) }).waitFor();
    // The receiver holds the first replayed delivery; the console's next look
    // at the deliveries still finds none finished.
    await until("a replayed delivery at the receiver", () => held.length > 0);
    const polled = (r) => r.url().includes("/api/webhooks/orders/deliveries?") && r.url().includes("status=pending");
    await page.waitForResponse(polled);
    await page.waitForTimeout(50); // the answer rendered
    assert.match(await progress.textContent(), new RegExp(`\\b0 of ${total} replayed`));
    await look(page, "08a-webhook-replay-in-progress");
    release();
    await progress.filter({ hasText: new RegExp(`\\b${total} of ${total} replayed deliveries finished`) }).waitFor();
    const bar = progress.locator("progress");
    assert.equal(await bar.getAttribute("value"), String(total));
    assert.equal(await bar.getAttribute("max"), String(total));
    await until(`${total} replayed deliveries at the receiver`, () => received.length - receivedBefore >= total);
    await page.getByTestId("filter-status").selectOption("delivered");
    await page.locator("tr[data-testid^=delivery-]").filter({ hasText: "replay" }).first().waitFor();
    await look(page, "08b-webhook-replayed");
  } finally {
    release(); // a failure here must not leave the receiver holding
  }
  await page.context().close();
});

await test("a job run now appears in the history with its logs and result", async () => {
  const page = await newPage();
  await signIn(page, OWNER, SLUG);
  await page.goto(`${URL_}/console/#/jobs/${encodeURIComponent(pluginId)}`);
  const row = page.getByTestId("job-tally");
  await row.waitFor();
  await row.filter({ hasText: "Europe/Paris" }).waitFor();
  await page.getByTestId("run-now-tally").click();
  const run = page.locator("tr[data-testid^=run-]").filter({ hasText: "succeeded" }).first();
  await run.waitFor();
  await page.getByTestId("run-detail").filter({ hasText: "tally ran" }).waitFor();
  await page.getByTestId("run-detail").filter({ hasText: '"counted": 1' }).waitFor();
  await look(page, "08-jobs");
  await page.context().close();
});

await test("events: the newest first from one bounded read, older pages on demand", async () => {
  // More events than one page, after everything the tenant did so far.
  for (let n = 0; n < 230; n++) {
    const r = await call("POST", "/api/events", { body: { event_type: "bulk.item", event_data: { n } } });
    assert.equal(r.status, 201, r.text);
  }
  const page = await newPage();
  const reads = []; // the log's reads, answered (time travel reads one stream: not counted)
  page.on("response", async (r) => {
    const u = new URL(r.url());
    if (r.request().method() === "GET" && u.pathname === "/api/events" && !u.searchParams.has("stream")) {
      reads.push({ query: u.searchParams, page: await r.json() });
    }
  });
  await signIn(page, OWNER, SLUG);
  await page.goto(`${URL_}/console/#/events`);
  await page.getByTestId("events-live").filter({ hasText: "live" }).waitFor();
  await until("the first read", () => reads.length > 0);
  // The truth, oldest first, up to the top of that read (the kernel's own
  // events, such as a webhook's saved cursor, may come and go meanwhile).
  const first = reads[0];
  const truth = [];
  for (let after = 0; ; ) {
    const r = await call("GET", `/api/events?after=${after}&limit=1000`);
    const fresh = r.json.events.map((e) => e.position).filter((p) => p <= first.page.next_after);
    truth.push(...fresh);
    if (fresh.length < r.json.events.length || r.json.events.length < 1000) break;
    after = r.json.next_after;
  }
  const newest = truth.slice(-100).reverse();
  assert.equal(first.query.get("order"), "desc");
  assert.equal(first.query.get("limit"), "100");
  assert.ok(!first.query.has("after") && !first.query.has("before"), String(first.query));
  assert.deepEqual(first.page.events.map((e) => e.position), newest, "the newest 100, newest first");
  const rows = page.locator("table.events tbody tr");
  const shownPositions = async () => (await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.testid))).map((id) => Number(id.slice("event-".length)));
  await page.getByTestId(`event-${newest[99]}`).waitFor();
  let shown = await shownPositions();
  const live = shown.slice(0, shown.length - 100);
  assert.ok(live.every((p) => p > first.page.next_after), `only live events above the read: ${live}`);
  assert.deepEqual(shown.slice(live.length), newest);
  assert.equal(reads.length, 1, "one read, nothing paged from the start of the log");
  await look(page, "09a-events-newest-first");
  await page.getByTestId("events-older").click();
  await until("the older page", () => reads.length > 1);
  assert.equal(reads[1].query.get("before"), String(newest[99]), "the cursor is the oldest row shown");
  const older = truth.slice(-200, -100).reverse();
  assert.deepEqual(reads[1].page.events.map((e) => e.position), older);
  await page.getByTestId(`event-${older[99]}`).waitFor();
  shown = await shownPositions();
  assert.deepEqual(shown.slice(-200), [...newest, ...older], "older rows below, newest first, no repeats");
  await page.getByTestId("events-shown").filter({ hasText: /^\d+ events shown, newest first$/ }).waitFor();
  await page.context().close();
});

await test("events: live log, an envelope with hashes, the chain check, time travel", async () => {
  const page = await newPage();
  await signIn(page, OWNER, SLUG);
  await page.goto(`${URL_}/console/#/events`);
  await page.getByTestId("events-live").filter({ hasText: "live" }).waitFor();
  const pub = await call("POST", "/api/events", { body: { event_type: "order.live", event_data: { n: 1 } } });
  assert.equal(pub.status, 201, pub.text);
  const row = page.getByTestId(`event-${pub.json.position}`);
  await row.waitFor();
  await row.getByRole("button").click();
  await page.getByTestId("envelope").filter({ hasText: pub.json.hash }).waitFor();
  await page.getByTestId("verify").click();
  await page.getByTestId("verify-result").filter({ hasText: "Intact" }).waitFor();
  // Time travel: the installation at its first event was installed but not yet enabled.
  const state = page.getByTestId("tt-state");
  await state.filter({ hasText: '"Enabled"' }).waitFor();
  await page.getByTestId("tt-slider").fill("0");
  await state.filter({ hasText: '"Disabled"' }).waitFor();
  assert.ok(!(await state.textContent()).includes('"Enabled"'));
  await look(page, "09-events");
  await page.context().close();
});

await test("an operator creates, suspends and resumes a tenant, and restarts a failed actor from the live tree", async () => {
  const page = await newPage();
  await signIn(page, ADMIN, "");
  await page.getByRole("heading", { name: "Operators" }).waitFor();
  await page.getByLabel("Slug", { exact: true }).fill("globex");
  await page.getByLabel("Name", { exact: true }).fill("Globex");
  await page.getByRole("button", { name: "Create tenant" }).click();
  await page.getByRole("status").filter({ hasText: "globex" }).waitFor();
  const globex = page.getByTestId("tenant-globex");
  await globex.waitFor();
  page.once("dialog", (d) => d.accept("console e2e: unpaid invoice"));
  await page.getByTestId("suspend-globex").click();
  await globex.filter({ hasText: "suspended" }).waitFor();
  await page.getByTestId("resume-globex").click();
  await globex.filter({ hasText: "active" }).waitFor();
  await page.getByTestId("tree-live").filter({ hasText: "live" }).waitFor();
  // Make the plugin's installation actor crash-loop until it is marked
  // failed: the fault drill (EXTENSOR_FAULT_DRILLS=true in this test only).
  const tenants = await call("GET", "/api/tenants", { token: ADMIN, slug: null });
  const acme = tenants.json.tenants.find((t) => t.slug === SLUG);
  const path = `/tenants/${acme.id}/installations/${pluginId}`;
  const row = page.getByTestId(`actor-${path}`);
  await row.waitFor();
  // Each drill panics the actor once; the supervisor restarts it with
  // backoff until the RestartPolicy gives up and marks it failed.
  for (let i = 0; i < 40; i++) {
    const drill = await call("POST", `/api/ops/actors/${encodeURIComponent(path)}/fault-drill`, { token: ADMIN, slug: null });
    if (drill.status === 503 && drill.json?.code === "actor_failed") break;
    assert.ok([204, 503].includes(drill.status), drill.text);
    await page.waitForTimeout(250);
  }
  await row.filter({ hasText: "failed" }).waitFor();
  await look(page, "10-ops-failed-actor");
  await page.getByTestId(`restart-${path}`).click();
  await row.filter({ hasText: "running" }).waitFor();
  await look(page, "11-ops");
  await page.context().close();
});

await test("a viewer sees no write actions, and the server refuses them anyway", async () => {
  const issued = await call("POST", "/api/tokens", { body: { name: "console-viewer", role: "viewer" } });
  assert.equal(issued.status, 201, issued.text);
  const viewer = issued.json.token;
  const page = await newPage();
  await signIn(page, viewer, SLUG);
  await page.getByTestId("plugin-order-notes").waitFor();
  assert.equal(await page.getByTestId("upload-file").count(), 0);
  await page.getByRole("link", { name: "Order notes" }).click();
  await page.getByRole("heading", { name: /Order notes/ }).waitFor();
  await page.getByText("Live logs").waitFor();
  for (const id of ["enable", "disable", "roll-back", "uninstall"]) {
    assert.equal(await page.getByTestId(id).count(), 0, `viewer sees ${id}`);
  }
  assert.equal(await page.getByRole("button", { name: "Set secret" }).count(), 0);
  await look(page, "12-viewer-plugin");
  await page.goto(`${URL_}/console/#/webhooks/orders`);
  await page.getByRole("heading", { name: /orders/ }).waitFor();
  for (const id of ["redeliver", "replay", "webhook-test", "webhook-disable"]) {
    assert.equal(await page.getByTestId(id).count(), 0, `viewer sees ${id}`);
  }
  await page.goto(`${URL_}/console/#/jobs`);
  await page.getByTestId("job-tally").waitFor();
  assert.equal(await page.getByTestId("run-now-tally").count(), 0);
  // The same calls from the page itself, with the viewer's token: refused.
  const statuses = await page.evaluate(
    async ({ id, token, slug }) => {
      const h = { Authorization: `Bearer ${token}`, "X-Tenant-Slug": slug };
      const post = (p) => fetch(p, { method: "POST", headers: h }).then((r) => r.status);
      return [
        await post(`/api/plugins/${id}/disable`),
        await post(`/api/plugins/${id}/jobs/tally/run-now`),
        await post(`/api/webhooks/orders/test`),
        await fetch(`/api/plugins/${id}`, { method: "DELETE", headers: h }).then((r) => r.status),
      ];
    },
    { id: pluginId, token: viewer, slug: SLUG },
  );
  assert.deepEqual(statuses, [403, 403, 403, 403]);
  await page.context().close();
});

await test("Swagger UI at /docs loads the exact document, /openapi.json", async () => {
  const page = await newPage();
  const specs = [];
  page.on("request", (r) => {
    const path = new URL(r.url()).pathname;
    if (/openapi|spec/.test(path)) specs.push(path);
  });
  await page.goto(`${URL_}/docs`);
  await page.locator("#operations-Webhooks-applyWebhook").waitFor();
  await page.locator("#operations-Events-listEvents").waitFor();
  assert.deepEqual(specs, ["/openapi.json"]);
  await page.screenshot({ path: `${SHOTS}/13-api-docs.png`, fullPage: false });
  await page.context().close();
});

await test("no page broke the Content-Security-Policy or threw", async () => {
  assert.deepEqual(problems, []);
});

await browser.close();
receiver.close();
const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
