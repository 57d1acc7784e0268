// The seed's walk with the TypeScript client (openapi-fetch over the
// generated types): a tenant, its owner token (no X-Tenant-Slug from then
// on), the welcome-email plugin uploaded, enabled, given a secret, its route
// called and a test event sent; the daily-kpi job run now; the metrics
// read; a webhook applied as JSON and one signed delivery received here.
//
// tests/contract.rs compiles it with `tsc` (strict) and runs it against a
// live `extensor serve` with EXTENSOR_URL, EXTENSOR_ADMIN_TOKEN,
// WALK_WELCOME_ZIP, WALK_JOB_ZIP and WALK_WEBHOOK_DIR set.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

import { extensorClient } from "./src/index.js";

const url = env("EXTENSOR_URL");
const admin = extensorClient(url, env("EXTENSOR_ADMIN_TOKEN"));

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** The body of an answer with `status`; anything else stops the walk. */
function ok<T>(r: { data?: T; error?: unknown; response: Response }, status: number): T {
  if (r.response.status !== status || r.data === undefined) {
    throw new Error(`expected ${status}, got ${r.response.status}: ${JSON.stringify(r.error)}`);
  }
  return r.data;
}

function step(name: string): void {
  console.log(`walk: ${name}`);
}

/** A multipart body holding one ZIP file as `file`. */
function zipForm(path: string, name: string): FormData {
  const form = new FormData();
  form.append("file", new Blob([readFileSync(path)], { type: "application/zip" }), name);
  return form;
}

/** Standard Webhooks: `v1,` base64 HMAC-SHA256 of `id.timestamp.body`. */
function verified(key: string, headers: IncomingHttpHeaders, body: string): boolean {
  const secret = Buffer.from(key.replace(/^whsec_/, ""), "base64");
  const signed = `${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`;
  const expected = Buffer.from(createHmac("sha256", secret).update(signed).digest("base64"));
  return String(headers["webhook-signature"] ?? "")
    .split(" ")
    .some((s) => {
      const got = Buffer.from(s.replace(/^v1,/, ""));
      return got.length === expected.length && timingSafeEqual(got, expected);
    });
}

async function main(): Promise<void> {
  step("tenant");
  const created = ok(
    await admin.POST("/api/tenants", { body: { slug: "walk", name: "Walk" } }),
    201,
  );
  const owner = extensorClient(url, created.owner_token.token);

  step("upload, enable");
  const up = ok(
    await owner.POST("/api/plugins/upload", {
      body: { file: "" },
      bodySerializer: () => zipForm(env("WALK_WELCOME_ZIP"), "welcome-email.zip"),
    }),
    201,
  );
  const plugin = up.plugin.id;
  ok(await owner.POST("/api/plugins/{id}/enable", { params: { path: { id: plugin } } }), 200);

  step("secret");
  ok(
    await owner.POST("/api/plugins/{id}/secrets", {
      params: { path: { id: plugin } },
      body: { key: "WELCOME_EMAIL_TEMPLATE", value: "Hello {{first_name}}" },
    }),
    200,
  );

  step("route");
  const pong = await fetch(`${url}/ext/welcome-email/ping`, {
    headers: { Authorization: `Bearer ${created.owner_token.token}` },
  });
  const ping = (await pong.json()) as { status?: string };
  if (ping.status !== "ok") throw new Error(`ping: ${JSON.stringify(ping)}`);

  step("test event");
  const runs = ok(
    await owner.POST("/api/plugins/test-event", {
      body: { event_type: "auth.user.created", event_data: { user: { first_name: "Ada" } } },
    }),
    200,
  );
  if (runs.runs[0]?.slug !== "welcome-email") throw new Error(JSON.stringify(runs));

  step("job run-now");
  const kpi = ok(
    await owner.POST("/api/plugins/upload", {
      body: { file: "" },
      bodySerializer: () => zipForm(env("WALK_JOB_ZIP"), "daily-kpi.zip"),
    }),
    201,
  ).plugin.id;
  ok(await owner.POST("/api/plugins/{id}/enable", { params: { path: { id: kpi } } }), 200);
  const run = ok(
    await owner.POST("/api/plugins/{id}/jobs/{job_name}/run-now", {
      params: { path: { id: kpi, job_name: "compute_daily_kpis" }, query: { wait_ms: 60_000 } },
    }),
    200,
  );
  if (run.status !== "succeeded") throw new Error(JSON.stringify(run));

  step("metrics");
  const counted = ok(await owner.GET("/api/plugins/metrics"), 200).plugins;
  const invocations = (slug: string) => counted.find((p) => p.slug === slug)?.invocations ?? 0;
  if (invocations("welcome-email") < 2 || invocations("daily-kpi") < 1) {
    throw new Error(`plugin metrics: ${JSON.stringify(counted)}`);
  }
  const metrics = await admin.GET("/metrics", { parseAs: "text" });
  if (!String(metrics.data).includes("extensor_http_requests_total")) throw new Error("metrics");

  step("webhook apply");
  const deliveries: { headers: IncomingHttpHeaders; body: string }[] = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      deliveries.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const port = (receiver.address() as AddressInfo).port;
  const signingKey = `whsec_${randomBytes(32).toString("base64")}`;
  for (const [key, value] of [
    ["WEBHOOK_URL", `http://127.0.0.1:${port}/hook`],
    ["WEBHOOK_SIGNING_KEY", signingKey],
  ] as const) {
    ok(await owner.PUT("/api/secrets/{key}", { params: { path: { key } }, body: { value } }), 200);
  }
  const folder = env("WALK_WEBHOOK_DIR");
  const transform = "transforms/build_completed.js";
  const applied = ok(
    await owner.PUT("/api/webhooks/{name}", {
      params: { path: { name: "builds" } },
      body: {
        yaml: readFileSync(join(folder, "webhook.yaml"), "utf8"),
        files: { [transform]: readFileSync(join(folder, transform), "utf8") },
      },
    }),
    201,
  );
  if (applied.revision !== 1) throw new Error(JSON.stringify(applied));

  step("webhook delivery");
  ok(
    await owner.POST("/api/events", {
      body: { event_type: "build.completed", event_data: { build: 7, branch: "main", status: "success" } },
    }),
    201,
  );
  const deadline = Date.now() + 30_000;
  while (deliveries.length === 0) {
    if (Date.now() > deadline) throw new Error("no delivery in 30 s");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const [first] = deliveries;
  if (!first || !verified(signingKey, first.headers, first.body)) throw new Error("bad signature");
  if (!first.body.includes("Build 7 on main: success")) throw new Error(first.body);
  receiver.close();
  step("done");
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
