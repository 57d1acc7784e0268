//! The seed's lists, held in one place and checked against a live
//! `extensor serve` (real HTTP over loopback, real store and isolates, a
//! loopback webhook receiver): every audit event name it promises is in
//! the log after exercising the path that writes it (and in `events
//! export`), every field of its `extensibility` status block is in
//! `GET /api/status`, and every metric family it promises, as well as
//! every family docs/OPERATIONS.md lists, is in `GET /metrics`. The test
//! fails on the first list with something missing and names all of it.

#[path = "common/api.rs"]
mod api;
#[path = "common/served.rs"]
mod served;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use api::Api;

const ADMIN: &str = "seed-list-platform-admin-token-0123456789";

/// The seed's audit event names ("Analytics Events").
const SEED_AUDIT_EVENTS: [&str; 9] = [
    "plugin.installed",
    "plugin.enabled",
    "plugin.disabled",
    "plugin.uninstalled",
    "hook.executed",
    "route.accessed",
    "job.executed",
    "webhook.delivered",
    "webhook.failed",
];

/// The seed's `extensibility` status block.
const SEED_STATUS_FIELDS: [&str; 6] = [
    "plugins_loaded",
    "enabled_plugins",
    "sandbox",
    "http_allowlist",
    "webhooks_active",
    "jobs_scheduled",
];

/// The seed's monitoring promises (execution time, memory usage, error
/// rates per plugin) and issue 18's list, as metric families.
const SEED_METRIC_FAMILIES: [&str; 11] = [
    "extensor_plugin_invocation_seconds",
    "extensor_plugin_invocations_total",
    "extensor_plugin_invocation_errors_total",
    "extensor_isolate_heap_bytes",
    "extensor_isolate_heap_peak_bytes",
    "extensor_webhook_deliveries_total",
    "extensor_job_runs_total",
    "extensor_email_outbox_pending",
    "extensor_store_append_seconds",
    "extensor_actor_mailbox_messages",
    "extensor_actor_mailbox_messages_max",
];

/// The invocation error kinds the seed-list plugin causes, one route each.
const ERROR_KINDS: [&str; 5] = ["timeout", "heap", "stack", "thrown", "permission"];

const MANIFEST: &str = r#"{
  "slug": "seed",
  "name": "Seed",
  "version": "1.0.0",
  "entry": "main.js",
  "events": ["order.created"],
  "routes": true,
  "jobs": [
    {"name": "tick", "schedule": "0 5 * * *", "timezone": "UTC"},
    {"name": "second", "schedule": "* * * * * *", "timezone": "UTC"}
  ],
  "limits": {"timeout_ms": 500, "memory_mb": 32}
}"#;

const MAIN: &str = r#"import { hook, job, route } from "extensor:sdk";
hook("order.created", async (e) => ({ seen: e.id }));
job("tick", "0 5 * * *", async () => ({ ticked: true }));
job("second", "* * * * * *", async () => ({ second: true }));
route("GET", "/ok", () => ({ ok: true }));
route("GET", "/thrown", () => { throw new Error("thrown on purpose"); });
route("GET", "/timeout", () => { for (;;) {} });
route("GET", "/heap", () => { const a = []; for (;;) { a.push(new Array(1 << 16).fill(7)); } });
route("GET", "/stack", () => { const f = (n) => f(n + 1) + 1; return f(0); });
route("GET", "/permission", async (req, ctx) => ctx.email.send({ to: "a@example.com", subject: "s", text: "t" }));
"#;

/// A loopback HTTP receiver: `/ok` answers 200, anything else 500.
fn receiver() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = vec![0u8; 64 * 1024];
            let n = c.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let status = if head.starts_with("POST /ok") {
                "200 OK"
            } else {
                "500 Oops"
            };
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    port
}

impl Api {
    async fn upload(&self, slug: &str) -> String {
        let manifest = MANIFEST.replace("\"seed\"", &format!("\"{slug}\""));
        let zip = served::zip_of(&[("manifest.json", &manifest), ("main.js", MAIN)]);
        self.upload_zip("seed.zip", zip).await
    }

    async fn webhook(&self, name: &str, url: &str) {
        let yaml = format!(
            "api_version: v1\non: [\"order.*\"]\ndelivery:\n  url: \"{url}\"\nretry: {{max_attempts: 1}}\n"
        );
        let r = self
            .req(Method::PUT, &format!("/api/webhooks/{name}"))
            .header("content-type", "application/yaml")
            .body(yaml)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(
            status < 300,
            "webhook {name}: {status} {}",
            r.text().await.unwrap()
        );
    }

    async fn events_of(&self, event_type: &str) -> Vec<Value> {
        let page = self
            .call(
                Method::GET,
                &format!("/api/events?type={event_type}&limit=1000"),
                None,
            )
            .await;
        page["events"].as_array().cloned().unwrap_or_default()
    }
}

/// Every path that writes a seed audit event, once.
async fn exercise(api: &Api, receiver_port: u16) {
    let id = api.upload("seed").await;
    api.call(Method::POST, &format!("/api/plugins/{id}/enable"), None)
        .await;
    let gone = api.upload("gone").await;
    api.call(Method::POST, &format!("/api/plugins/{gone}/enable"), None)
        .await;
    api.call(Method::POST, &format!("/api/plugins/{gone}/disable"), None)
        .await;
    api.call(Method::DELETE, &format!("/api/plugins/{gone}"), None)
        .await;
    api.webhook("good", &format!("http://127.0.0.1:{receiver_port}/ok"))
        .await;
    api.webhook("bad", &format!("http://127.0.0.1:{receiver_port}/fail"))
        .await;
    api.call(
        Method::POST,
        "/api/events",
        Some(json!({"event_type": "order.created", "event_data": {"n": 1}})),
    )
    .await;
    api.call(
        Method::POST,
        &format!("/api/plugins/{id}/jobs/tick/run-now"),
        None,
    )
    .await;
    let ok = api.req(Method::GET, "/ext/seed/ok").send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    for kind in ERROR_KINDS {
        let r = api
            .req(Method::GET, &format!("/ext/seed/{kind}"))
            .send()
            .await
            .unwrap();
        assert!(!r.status().is_success(), "{kind}: {}", r.status());
    }
}

/// Polls until every seed audit event is in the log (the webhook outcomes
/// and the route records come a moment later); the names still missing.
async fn audit_events_missing(api: &Api) -> Vec<&'static str> {
    let mut missing = Vec::new();
    for _ in 0..300 {
        missing.clear();
        for name in SEED_AUDIT_EVENTS {
            let found = api.events_of(name).await;
            if !found
                .iter()
                .any(|e| e["type"] == name && e["schema_version"].is_u64())
            {
                missing.push(name);
            }
        }
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    missing
}

/// Families in a Prometheus text exposition (from `# TYPE` lines), and the
/// `kind` values of the invocation error series.
fn families(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let names = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let kinds = text
        .lines()
        .filter(|l| l.starts_with("extensor_plugin_invocation_errors_total{"))
        .filter_map(|l| l.split("kind=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect();
    (names, kinds)
}

/// The first column of OPERATIONS.md's metrics table.
fn documented_families() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/OPERATIONS.md"),
    )
    .unwrap();
    let table = doc.split("<!-- table:metrics -->").nth(1).unwrap();
    table
        .lines()
        .skip(3)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('`').nth(1))
        .map(str::to_owned)
        .collect()
}

/// Starts `extensor serve` (route records every second, loopback webhook
/// receivers admitted) and creates tenant `acme` over HTTP.
async fn start(data: &std::path::Path) -> (served::Server, Api) {
    let server = served::serve_with(
        data,
        ADMIN,
        &[
            ("EXTENSOR_ROUTE_ACCESS_FLUSH_SECS", "1"),
            ("EXTENSOR_ALLOW_PRIVATE_NETWORKS", "true"),
        ],
    );
    let api = Api::create_tenant(&server.url, ADMIN).await;
    (server, api)
}

/// The seed's status fields missing for a tenant caller or the platform.
async fn status_fields_missing(api: &Api) -> Vec<String> {
    let mut missing = Vec::new();
    for (who, token, slug) in [
        ("tenant", api.token.as_str(), Some("acme")),
        ("platform", ADMIN, None),
    ] {
        let mut r = api
            .http
            .get(format!("{}/api/status", api.base))
            .bearer_auth(token);
        if let Some(s) = slug {
            r = r.header("X-Tenant-Slug", s);
        }
        let body: Value = r.send().await.unwrap().json().await.unwrap();
        for field in SEED_STATUS_FIELDS {
            if body["extensibility"].get(field).is_none() {
                missing.push(format!("{who}: {field}"));
            }
        }
    }
    missing
}

/// Scrapes `/metrics`: the seed's families, every documented family and
/// every error kind must be there.
async fn check_metrics(api: &Api) {
    let text = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (found, kinds) = families(&text);
    let seed_missing: Vec<_> = SEED_METRIC_FAMILIES
        .iter()
        .filter(|f| !found.contains(**f))
        .collect();
    assert!(
        seed_missing.is_empty(),
        "seed metric families missing: {seed_missing:?}\n{text}"
    );
    let documented = documented_families();
    assert!(
        documented.len() >= SEED_METRIC_FAMILIES.len(),
        "{documented:?}"
    );
    let doc_missing: Vec<_> = documented.difference(&found).collect();
    assert!(
        doc_missing.is_empty(),
        "documented families not served: {doc_missing:?}\n{text}"
    );
    let kinds_missing: Vec<_> = ERROR_KINDS
        .iter()
        .filter(|k| !kinds.contains(**k))
        .collect();
    assert!(
        kinds_missing.is_empty(),
        "error kinds missing: {kinds_missing:?} (have {kinds:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seed_list_is_complete_on_a_live_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = receiver();
    let (server, api) = start(&data).await;
    exercise(&api, port).await;

    let missing = audit_events_missing(&api).await;
    assert!(
        missing.is_empty(),
        "seed audit events missing from GET /api/events: {missing:?}"
    );
    let status_missing = status_fields_missing(&api).await;
    assert!(
        status_missing.is_empty(),
        "status fields missing: {status_missing:?}"
    );
    check_metrics(&api).await;
    drop(server);

    // `events export` (the store read offline) shows them too.
    let export = served::extensor(&data, &["events", "export"]);
    assert!(export.status.success(), "{}", served::text(&export));
    let out = String::from_utf8_lossy(&export.stdout);
    let absent: Vec<_> = SEED_AUDIT_EVENTS
        .iter()
        .filter(|n| !out.contains(&format!("\"{n}\"")))
        .collect();
    assert!(
        absent.is_empty(),
        "missing from `events export`: {absent:?}"
    );
}

#[test]
fn a_bad_route_access_flush_interval_is_refused_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["0", "-5", "soon", "86401"] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_extensor"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("EXTENSOR_DATA_DIR", dir.path().join("data"))
            .env("EXTENSOR_ROUTE_ACCESS_FLUSH_SECS", bad)
            .output()
            .unwrap();
        let text = served::text(&o);
        assert!(!o.status.success(), "{bad}: {text}");
        assert!(text.contains("route-access-flush-secs"), "{bad}: {text}");
    }
}
