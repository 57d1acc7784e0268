//! The seed's audit and status promises against the real server over
//! loopback HTTP (real store, real isolates): `job.executed` in the same
//! append as the run's outcome, `route.accessed` counts that survive a
//! graceful restart without losing an access, and the `extensibility`
//! status block for a tenant and for the platform admin.

mod common;

use common::{ADMIN, Server, json_of};
use reqwest::Method;
use serde_json::{Value, json};

const MANIFEST: &str = r#"{
  "slug": "probe",
  "name": "Probe",
  "version": "1.0.0",
  "entry": "main.js",
  "routes": [
    {"method": "GET", "path": "/ok/:n"},
    {"method": "GET", "path": "/boom"}
  ],
  "jobs": [
    {"name": "tick", "schedule": "0 5 * * *", "timezone": "UTC"},
    {"name": "tock", "schedule": "0 6 * * *", "timezone": "UTC"}
  ]
}"#;

const MAIN: &str = r#"import { job, route } from "extensor:sdk";
job("tick", "0 5 * * *", async () => ({ ticked: true }));
job("tock", "0 6 * * *", async () => ({ tocked: true }));
route("GET", "/ok/:n", (req) => ({ n: req.params.n }));
route("GET", "/boom", () => { throw new Error("boom"); });
"#;

fn probe_zip() -> Vec<u8> {
    common::zip_of(&[
        ("manifest.json", MANIFEST.as_bytes()),
        ("main.js", MAIN.as_bytes()),
    ])
}

/// Uploads and enables the probe plugin in `slug`; its id.
async fn probe(s: &Server, token: &str, slug: &str) -> String {
    s.install_enabled(probe_zip(), token, slug).await
}

/// Every event of `event_type` the caller's tenant sees, oldest first.
async fn events_of(s: &Server, token: &str, slug: &str, event_type: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let path = format!("/api/events?type={event_type}&after={after}&limit=1000");
        let (status, page) = json_of(
            s.req(Method::GET, &path, Some(token), Some(slug))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let events = page["events"].as_array().unwrap().clone();
        if events.is_empty() {
            return out;
        }
        after = page["next_after"].as_u64().unwrap();
        out.extend(events);
    }
}

async fn get(s: &Server, path: &str, token: &str, slug: Option<&str>) -> Value {
    let (status, body) = json_of(
        s.req(Method::GET, path, Some(token), slug)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn a_job_run_is_recorded_as_job_executed_in_the_same_append_as_its_outcome() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    let id = probe(&s, &owner, "acme").await;
    let run_now = format!("/api/plugins/{id}/jobs/tick/run-now");
    let (status, run) = json_of(
        s.req(Method::POST, &run_now, Some(&owner), Some("acme"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &run["status"]),
        (200, &json!("succeeded")),
        "{run}"
    );

    let executed = events_of(&s, &owner, "acme", "job.executed").await;
    assert_eq!(executed.len(), 1, "{executed:?}");
    let e = &executed[0];
    assert_eq!(e["schema_version"], 1);
    assert_eq!(e["data"]["run_id"], run["run_id"]);
    assert_eq!(e["data"]["installation"], id.as_str());
    assert_eq!(e["data"]["job"], "tick");
    assert_eq!(e["data"]["status"], "succeeded");
    assert_eq!(e["data"]["trigger"], "run_now");
    assert!(e["data"]["duration_ms"].is_u64(), "{e}");
    // The outcome record is the one right before it in the same stream:
    // one append, so neither exists without the other.
    let outcome = events_of(&s, &owner, "acme", "job.run_succeeded").await;
    assert_eq!(outcome.len(), 1);
    assert_eq!(outcome[0]["stream"], e["stream"]);
    assert_eq!(
        outcome[0]["position"].as_u64().unwrap() + 1,
        e["position"].as_u64().unwrap()
    );
    assert_eq!(
        outcome[0]["revision"].as_u64().unwrap() + 1,
        e["revision"].as_u64().unwrap()
    );
    s.stop().await;
}

/// Calls the probe's routes: `ok` good ones and `boom` failing ones.
async fn traffic(s: &Server, owner: &str, ok: usize, boom: usize) {
    for n in 0..ok {
        let r = s
            .req(
                Method::GET,
                &format!("/ext/probe/ok/{n}"),
                Some(owner),
                Some("acme"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    for _ in 0..boom {
        let r = s
            .req(Method::GET, "/ext/probe/boom", Some(owner), Some("acme"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_server_error() || r.status().is_client_error());
    }
}

/// (count, errors) summed per route over every `route.accessed` record.
async fn route_totals(s: &Server, owner: &str) -> std::collections::BTreeMap<String, (u64, u64)> {
    let mut out = std::collections::BTreeMap::new();
    for e in events_of(s, owner, "acme", "route.accessed").await {
        assert_eq!(e["schema_version"], 1);
        assert!(
            e["stream"].as_str().unwrap().starts_with("route_access-"),
            "{e}"
        );
        let d = &e["data"];
        assert_eq!(d["plugin"], "probe", "{e}");
        assert!(d["duration_p50_us"].as_u64().unwrap() <= d["duration_p99_us"].as_u64().unwrap());
        assert!(
            d["interval_start"].as_str() <= d["interval_end"].as_str(),
            "{e}"
        );
        let t: &mut (u64, u64) = out
            .entry(d["route"].as_str().unwrap().to_owned())
            .or_default();
        t.0 += d["count"].as_u64().unwrap();
        t.1 += d["errors"].as_u64().unwrap();
    }
    out
}

#[tokio::test]
async fn no_route_access_is_lost_from_the_counts_across_graceful_restarts() {
    // The default flush interval (a minute) never ticks in this test: every
    // record here is written by the flushers stopping with the server.
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    probe(&s, &owner, "acme").await;
    traffic(&s, &owner, 30, 7).await;
    let dir = s.stop().await;

    let s = Server::start_in(dir, |_| {}).await;
    let first = route_totals(&s, &owner).await;
    assert_eq!(first.get("GET /ok/:n"), Some(&(30, 0)), "{first:?}");
    assert_eq!(first.get("GET /boom"), Some(&(7, 7)), "{first:?}");
    traffic(&s, &owner, 12, 1).await;
    let dir = s.stop().await;

    let s = Server::start_in(dir, |_| {}).await;
    let totals = route_totals(&s, &owner).await;
    assert_eq!(totals.get("GET /ok/:n"), Some(&(42, 0)), "{totals:?}");
    assert_eq!(totals.get("GET /boom"), Some(&(8, 8)), "{totals:?}");
    assert_eq!(totals.len(), 2, "{totals:?}");
    s.stop().await;
}

#[tokio::test]
async fn route_records_are_written_on_the_flush_interval_while_serving() {
    let s = Server::start_with(|c| c.engine.route_access_flush_ms = Some(200)).await;
    let (_, owner) = s.tenant("acme").await;
    probe(&s, &owner, "acme").await;
    traffic(&s, &owner, 3, 0).await;
    // Positive marker: the record appears without any stop.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let totals = route_totals(&s, &owner).await;
        if totals.get("GET /ok/:n") == Some(&(3, 0)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no flush: {totals:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    s.stop().await;
}

const HOOK_YAML: &str =
    "api_version: v1\non: [\"order.*\"]\ndelivery:\n  url: \"https://example.com/hook\"\n";

async fn webhook(s: &Server, owner: &str, slug: &str, name: &str) {
    let r = s
        .req(
            Method::PUT,
            &format!("/api/webhooks/{name}"),
            Some(owner),
            Some(slug),
        )
        .header("content-type", "application/yaml")
        .body(HOOK_YAML)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert!(
        status == 200 || status == 201,
        "{}",
        r.text().await.unwrap()
    );
}

/// Tenants for the status test: acme with the probe enabled (two jobs)
/// and webhooks `one` (active) and `two` (disabled); globex with the probe
/// installed and disabled and webhook `three`. (acme's and globex's
/// owner tokens, and globex's plugin id.)
async fn two_tenants(s: &Server) -> (String, String, String) {
    let (_, acme) = s.tenant("acme").await;
    let (_, globex) = s.tenant("globex").await;
    probe(s, &acme, "acme").await;
    webhook(s, &acme, "acme", "one").await;
    webhook(s, &acme, "acme", "two").await;
    let r = s
        .req(
            Method::POST,
            "/api/webhooks/two/disable",
            Some(&acme),
            Some("acme"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    probe(s, &globex, "globex").await;
    webhook(s, &globex, "globex", "three").await;
    // globex's plugin is then disabled: loaded, not enabled, no jobs.
    let id = get(s, "/api/plugins", &globex, Some("globex")).await["plugins"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .req(
            Method::POST,
            &format!("/api/plugins/{id}/disable"),
            Some(&globex),
            Some("globex"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    (acme, globex, id)
}

#[tokio::test]
async fn the_status_block_is_live_per_tenant_and_platform_wide_for_the_admin() {
    let s = Server::start().await;
    let (acme, globex, id) = two_tenants(&s).await;

    let tenant = get(&s, "/api/status", &acme, None).await;
    assert_eq!(
        (&tenant["scope"], &tenant["tenant"]),
        (&json!("tenant"), &json!("acme"))
    );
    let x = &tenant["extensibility"];
    assert_eq!(x["plugins_loaded"], 1, "{tenant}");
    assert_eq!(x["enabled_plugins"], json!(["probe"]));
    assert_eq!(x["enabled_plugins_count"], 1);
    assert_eq!(x["webhooks_active"], 1, "{tenant}");
    assert_eq!(x["jobs_scheduled"], 2, "{tenant}");
    assert!(x["sandbox"]["heap_bytes_max"].as_u64().unwrap() > 0);
    assert!(x.get("http_allowlist").is_some(), "{tenant}");

    let other = get(&s, "/api/status", &globex, None).await;
    let x = &other["extensibility"];
    assert_eq!(
        (&x["plugins_loaded"], &x["enabled_plugins_count"]),
        (&json!(1), &json!(0))
    );
    assert_eq!(
        (&x["webhooks_active"], &x["jobs_scheduled"]),
        (&json!(1), &json!(0))
    );

    // The admin naming a tenant sees that tenant; without a name, all.
    let named = get(&s, "/api/status", ADMIN, Some("acme")).await;
    assert_eq!(named["extensibility"], tenant["extensibility"]);
    let platform = get(&s, "/api/status", ADMIN, None).await;
    assert_eq!(
        (&platform["scope"], &platform["tenant"]),
        (&json!("platform"), &Value::Null)
    );
    let x = &platform["extensibility"];
    assert_eq!(x["plugins_loaded"], 2, "{platform}");
    assert_eq!(x["enabled_plugins"], json!(["probe"]));
    assert_eq!(x["enabled_plugins_count"], 1);
    assert_eq!(x["webhooks_active"], 2, "{platform}");
    assert_eq!(x["jobs_scheduled"], 2, "{platform}");

    // Live: enabling globex's plugin shows at once.
    let r = s
        .req(
            Method::POST,
            &format!("/api/plugins/{id}/enable"),
            Some(&globex),
            Some("globex"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let platform = get(&s, "/api/status", ADMIN, None).await;
    assert_eq!(platform["extensibility"]["jobs_scheduled"], 4, "{platform}");
    assert_eq!(platform["extensibility"]["enabled_plugins_count"], 2);
    s.stop().await;
}
