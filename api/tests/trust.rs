//! Trust boundaries attacked from outside: a tenant token or plugin code
//! tries to forge the kernel's events, over real HTTP against the real
//! server (restarted over the same store where a claim is about the log),
//! with plugin code in real isolates.
//!
//! Kernel-owned events: `POST /api/events`, `POST /api/plugins/test-event`
//! and `ctx.emit` refuse every reserved prefix; and every projection that
//! folds the log ignores kernel types that sit in a business stream (put
//! there straight through the store, past the API's check).

mod common;

use common::{ADMIN, Server, expect_problem, json_of};
use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
use extensor_core::kernel_events::{reserved_prefix, reserved_prefixes};
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_core::store::{EventStore, ExpectedRevision, READ_EVENTS_MAX, ReadFilter};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The token an attacker picks and tries to make the platform admin's.
const ATTACKER: &str = "attacker-chosen-token-0123456789abcdef";

fn sha256_token(t: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(t.as_bytes())))
}

const FORGER_MANIFEST: &str = r#"{
  "slug": "forger",
  "name": "Forger",
  "version": "1.0.0",
  "entry": "main.js",
  "permissions": ["events.emit"],
  "events": ["order.created"],
  "routes": [{"method": "POST", "path": "/emit"}],
  "jobs": [{"name": "tick", "schedule": "0 5 * * *", "timezone": "UTC"}]
}"#;

/// Emits the type it is given and reports what `ctx.emit` did.
const FORGER_MAIN: &str = r#"import { hook, job, route } from "extensor:sdk";
hook("order.created", async () => ({ ok: true }));
job("tick", "0 5 * * *", async () => ({ ok: true }));
route("POST", "/emit", async (req, ctx) => {
  const { type, hash } = req.body; // no body: throws (an error to count)
  try {
    const id = await ctx.emit(type, { token_hash: hash });
    return { status: 200, body: { emitted: id } };
  } catch (e) {
    return { status: 200, body: { kind: e.kind ?? null, message: String(e.message) } };
  }
});
"#;

fn forger_zip() -> Vec<u8> {
    common::zip_of(&[
        ("manifest.json", FORGER_MANIFEST.as_bytes()),
        ("main.js", FORGER_MAIN.as_bytes()),
    ])
}

async fn install_forger(s: &Server, token: &str, slug: &str) -> String {
    s.install_enabled(forger_zip(), token, slug).await
}

/// The status `GET /api/tenants` (platform admin only) answers `token`.
async fn admin_status(s: &Server, token: &str) -> u16 {
    s.req(Method::GET, "/api/tenants", Some(token), None)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn get(s: &Server, path: &str, token: &str, slug: Option<&str>) -> Value {
    let r = s
        .req(Method::GET, path, Some(token), slug)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

async fn restart(s: Server) -> Server {
    let dir = s.stop().await;
    Server::start_in(dir, |_| {}).await
}

#[tokio::test]
async fn a_developer_token_cannot_make_itself_platform_admin() {
    let s = Server::start().await;
    s.tenant("acme").await;
    let (_, owner) = s.tenant("acme2").await;
    let (_, dev) = s.token("acme2", &owner, "developer").await;
    let r = s
        .req(Method::POST, "/api/events", Some(&dev), Some("acme2"))
        .json(&json!({"event_type": "platform.admin_token_set",
            "event_data": {"token_hash": sha256_token(ATTACKER)}}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(r, 422, "validation_failed").await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("reserved prefix `platform.`"),
        "{problem}"
    );
    assert_eq!(problem["errors"][0]["path"], "$.event_type", "{problem}");
    assert_eq!(admin_status(&s, ATTACKER).await, 401);
    assert_eq!(admin_status(&s, ADMIN).await, 200);
    let s = restart(s).await;
    assert_eq!(admin_status(&s, ATTACKER).await, 401);
    assert_eq!(admin_status(&s, ADMIN).await, 200);
    s.stop().await;
}

#[tokio::test]
async fn publish_and_test_event_refuse_every_reserved_prefix() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    let (_, dev) = s.token("acme", &owner, "developer").await;
    for prefix in reserved_prefixes() {
        let upper = prefix.to_ascii_uppercase();
        for t in [format!("{prefix}forged"), format!("{upper}forged")] {
            for path in ["/api/events", "/api/plugins/test-event"] {
                let r = s
                    .req(Method::POST, path, Some(&dev), Some("acme"))
                    .json(&json!({"event_type": t, "event_data": {}}))
                    .send()
                    .await
                    .unwrap();
                let p = expect_problem(r, 422, "validation_failed").await;
                let message = p["errors"][0]["message"].as_str().unwrap();
                assert!(
                    message.contains(&format!("reserved prefix `{prefix}`")),
                    "{path} {t}: {p}"
                );
            }
        }
    }
    let page = get(&s, "/api/events?limit=1000", &owner, Some("acme")).await;
    let business: Vec<&Value> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["stream"].as_str().unwrap().starts_with("events-"))
        .collect();
    assert!(business.is_empty(), "nothing was stored: {business:?}");
    s.stop().await;
}

#[tokio::test]
async fn ctx_emit_of_a_kernel_type_throws_in_the_isolate() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    install_forger(&s, &owner, "acme").await;
    let emit = |t: &'static str| {
        s.req(Method::POST, "/ext/forger/emit", Some(&owner), Some("acme"))
            .json(&json!({"type": t, "hash": sha256_token(ATTACKER)}))
            .send()
    };
    for t in [
        "platform.admin_token_set",
        "tenant.token_issued",
        "plugin.enabled",
        "webhook.declared",
        "Platform.admin_token_set",
    ] {
        let (status, body) = json_of(emit(t).await.unwrap()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["kind"], "InvalidArgument", "{t}: {body}");
        let prefix = reserved_prefix(t).unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains(&format!("reserved prefix `{prefix}`")),
            "{t}: {body}"
        );
    }
    // The same route emits a business type: the refusal is the prefix's.
    let (status, body) = json_of(emit("order.created").await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["emitted"].as_str().unwrap().starts_with("evt_"),
        "{body}"
    );
    let s = restart(s).await;
    assert_eq!(admin_status(&s, ATTACKER).await, 401);
    assert_eq!(admin_status(&s, ADMIN).await, 200);
    s.stop().await;
}

/// A server whose `victim` tenant has a plugin (hooks and a job) and a
/// webhook, and whose `mallory` tenant's business stream holds a copy of
/// every kernel event in the log plus one forged event per reserved
/// namespace (an admin token among them), appended straight through the
/// store while the server was down. Restarted, so every projection was
/// rebuilt from that log.
struct Forged {
    s: Server,
    victim_owner: String,
    mallory: String,
    mallory_owner: String,
    before: Value,
}

async fn snapshot(s: &Server, victim_owner: &str, mallory_owner: &str) -> Value {
    json!({
        "tenants": get(s, "/api/tenants", ADMIN, None).await,
        "victim_tokens": get(s, "/api/tokens", victim_owner, Some("victim")).await,
        "mallory_tokens": get(s, "/api/tokens", mallory_owner, Some("mallory")).await,
        "victim_plugins": get(s, "/api/plugins", victim_owner, Some("victim")).await,
        "mallory_plugins": get(s, "/api/plugins", mallory_owner, Some("mallory")).await,
    })
}

async fn forged() -> Forged {
    let s = Server::start().await;
    let (_, victim_owner) = s.tenant("victim").await;
    let (mallory, mallory_owner) = s.tenant("mallory").await;
    install_forger(&s, &victim_owner, "victim").await;
    let yaml =
        "api_version: v1\non: [\"order.*\"]\ndelivery:\n  url: \"http://127.0.0.1:9/hook\"\n";
    let r = s
        .req(
            Method::PUT,
            "/api/webhooks/orders",
            Some(&victim_owner),
            Some("victim"),
        )
        .header("content-type", "application/yaml")
        .body(yaml)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert!(status == 200 || status == 201, "{status} {body}");
    // Both snapshots are of a directory rebuilt from the log (one written
    // live stamps `created_at` with the writer's clock, not the store's).
    let s = restart(s).await;
    let before = snapshot(&s, &victim_owner, &mallory_owner).await;
    let dir = s.stop().await;
    forge_into_business_stream(&dir.path().join("data"), &mallory).await;
    let s = Server::start_in(dir, |_| {}).await;
    Forged {
        s,
        victim_owner,
        mallory,
        mallory_owner,
        before,
    }
}

/// Copies every kernel event of the log into `events-<mallory>`, then adds
/// one forged event per reserved namespace, through the store itself.
async fn forge_into_business_stream(data: &std::path::Path, mallory: &str) {
    let store = SqliteStore::open(SqliteConfig::new(data, OpenMode::CreateIfMissing)).unwrap();
    let tenant: extensor_core::ids::TenantId = mallory.parse().unwrap();
    let meta = || EventMeta::new(Some(tenant.clone()), Principal::system());
    let mut forged = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .read_all(after, ReadFilter::default(), READ_EVENTS_MAX)
            .await
            .unwrap();
        for ev in &page {
            if reserved_prefix(&ev.event_type).is_some() {
                let data: Value = serde_json::from_str(ev.payload.get()).unwrap();
                forged
                    .push(NewEvent::new(&ev.event_type, ev.schema_version, meta(), &data).unwrap());
            }
        }
        match page.last() {
            Some(last) if page.len() == READ_EVENTS_MAX => after = last.position,
            _ => break,
        }
    }
    for t in [
        "platform.admin_token_set",
        "platform.forged",
        "tenant.forged",
        "plugin.forged",
        "hook.executed",
        "job.run_started",
        "webhook.declared",
        "email.sent",
        "route.forged",
        "extensor.forged",
    ] {
        forged.push(
            NewEvent::new(t, 1, meta(), &json!({"token_hash": sha256_token(ATTACKER)})).unwrap(),
        );
    }
    for prefix in reserved_prefixes() {
        assert!(
            forged.iter().any(|e| e.event_type.starts_with(prefix)),
            "a forged event in {prefix}"
        );
    }
    let stream = StreamId::business_events(&tenant);
    store
        .append(stream, ExpectedRevision::Any, forged)
        .await
        .unwrap();
    store.close().await;
}

async fn tree_paths(s: &Server) -> Vec<String> {
    get(s, "/api/ops/tree", ADMIN, None).await["actors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn token_directory_ignores_kernel_types_in_a_business_stream() {
    let f = forged().await;
    assert_eq!(admin_status(&f.s, ATTACKER).await, 401);
    assert_eq!(admin_status(&f.s, ADMIN).await, 200);
    let after = snapshot(&f.s, &f.victim_owner, &f.mallory_owner).await;
    assert_eq!(after["tenants"], f.before["tenants"]);
    assert_eq!(after["victim_tokens"], f.before["victim_tokens"]);
    assert_eq!(after["mallory_tokens"], f.before["mallory_tokens"]);
    f.s.stop().await;
}

#[tokio::test]
async fn installation_index_ignores_kernel_types_in_a_business_stream() {
    let f = forged().await;
    let after = snapshot(&f.s, &f.victim_owner, &f.mallory_owner).await;
    assert_eq!(after["victim_plugins"], f.before["victim_plugins"]);
    assert_eq!(after["mallory_plugins"], f.before["mallory_plugins"]);
    assert_eq!(after["mallory_plugins"]["plugins"], json!([]), "{after}");
    // A route of the copied plugin is not reachable in mallory.
    let r =
        f.s.req(
            Method::POST,
            "/ext/forger/emit",
            Some(&f.mallory_owner),
            Some("mallory"),
        )
        .json(&json!({"type": "order.created"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    f.s.stop().await;
}

#[tokio::test]
async fn webhook_discovery_ignores_kernel_types_in_a_business_stream() {
    let f = forged().await;
    let paths = tree_paths(&f.s).await;
    let victim_has = paths.iter().any(|p| p.ends_with("/webhooks"));
    assert!(victim_has, "the victim's dispatcher resumed: {paths:?}");
    let mallory_webhooks = format!("/tenants/{}/webhooks", f.mallory);
    assert!(!paths.contains(&mallory_webhooks), "{paths:?}");
    let list = get(&f.s, "/api/webhooks", &f.mallory_owner, Some("mallory")).await;
    assert_eq!(list["webhooks"], json!([]), "{list}");
    f.s.stop().await;
}

#[tokio::test]
async fn scheduler_ignores_kernel_types_in_a_business_stream() {
    let f = forged().await;
    let paths = tree_paths(&f.s).await;
    assert!(
        paths.iter().any(|p| p.ends_with("/scheduler")),
        "the victim's scheduler resumed: {paths:?}"
    );
    let mallory_scheduler = format!("/tenants/{}/scheduler", f.mallory);
    assert!(!paths.contains(&mallory_scheduler), "{paths:?}");
    f.s.stop().await;
}

#[tokio::test]
async fn plugin_metrics_count_the_callers_tenant_only() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    let (_, other) = s.tenant("other").await;
    let (_, viewer) = s.token("acme", &owner, "viewer").await;
    let id = install_forger(&s, &owner, "acme").await;
    install_forger(&s, &other, "other").await;
    for t in ["order.shipped", "platform.x", "order.paid"] {
        let r = s
            .req(Method::POST, "/ext/forger/emit", Some(&owner), Some("acme"))
            .json(&json!({"type": t}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    // A route whose handler throws counts as an error.
    let r = s
        .req(Method::POST, "/ext/forger/emit", Some(&owner), Some("acme"))
        .send()
        .await
        .unwrap();
    assert!(r.status().as_u16() >= 400);
    let m = get(&s, "/api/plugins/metrics", &viewer, Some("acme")).await;
    let plugins = m["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), 1, "{m}");
    assert_eq!(plugins[0]["id"], id.as_str());
    assert_eq!(plugins[0]["slug"], "forger");
    assert_eq!(plugins[0]["invocations"], 4, "{m}");
    assert_eq!(plugins[0]["errors"], 1, "{m}");
    let p = |k: &str| plugins[0][k].as_u64().unwrap();
    assert!(p("p50_us") > 0 && p("p50_us") <= p("p95_us"), "{m}");
    assert!(
        p("p95_us") <= p("p99_us") && p("p99_us") <= p("max_us"),
        "{m}"
    );
    let o = get(&s, "/api/plugins/metrics", &other, Some("other")).await;
    assert_eq!(o["plugins"][0]["invocations"], 0, "{o}");
    let r = s
        .req(
            Method::GET,
            "/api/plugins/metrics",
            Some(&owner),
            Some("other"),
        )
        .send()
        .await
        .unwrap();
    expect_problem(r, 403, "wrong_tenant").await;
    s.stop().await;
}

#[tokio::test]
async fn every_actor_the_ops_tree_shows_can_be_restarted_by_its_path() {
    let f = forged().await;
    // A command starts the installation's actor, so the tree shows one.
    let plugins = get(&f.s, "/api/plugins", &f.victim_owner, Some("victim")).await;
    let id = plugins["plugins"][0]["id"].as_str().unwrap().to_owned();
    for action in ["disable", "enable"] {
        let r =
            f.s.req(
                Method::POST,
                &format!("/api/plugins/{id}/{action}"),
                Some(&f.victim_owner),
                Some("victim"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let paths = tree_paths(&f.s).await;
    for service in ["/dispatcher", "/webhooks", "/scheduler", "/installations/"] {
        assert!(
            paths.iter().any(|p| p.contains(service)),
            "{service} in {paths:?}"
        );
    }
    // Slugs beside ids: the operator finds "victim / forger" directly.
    let tree = get(&f.s, "/api/ops/tree", ADMIN, None).await;
    for a in tree["actors"].as_array().unwrap() {
        let victim = a["tenant_slug"] == "victim";
        assert!(victim || a["tenant_slug"] == "mallory", "{a}");
        if a["path"].as_str().unwrap().contains("/installations/") {
            assert_eq!(a["plugin_slug"], "forger", "{a}");
        } else {
            assert!(a["plugin_slug"].is_null(), "{a}");
        }
    }
    for path in &paths {
        let encoded = path.replace('/', "%2F");
        let r =
            f.s.req(
                Method::POST,
                &format!("/api/ops/actors/{encoded}/restart"),
                Some(ADMIN),
                None,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            204,
            "{path}: {}",
            r.text().await.unwrap()
        );
    }
    for bad in [
        "/tenants/nope",
        "/tenants/ten_00000000000000000000000000/bogus",
        "/tenants/ten_00000000000000000000000000",
        "/",
    ] {
        let encoded = bad.replace('/', "%2F");
        let r =
            f.s.req(
                Method::POST,
                &format!("/api/ops/actors/{encoded}/restart"),
                Some(ADMIN),
                None,
            )
            .send()
            .await
            .unwrap();
        expect_problem(r, 404, "actor_not_found").await;
    }
    f.s.stop().await;
}
