//! Tenant controls over HTTP: a platform admin suspends a tenant, which
//! then serves nothing (management, publishes, private and public routes,
//! filters, test events: `403 tenant_suspended`) and runs nothing (hooks
//! and webhooks pause, across a restart too); resuming brings every one of
//! them back, and an event that arrived during the pause is not lost.

mod common;

use common::{ADMIN, Server, expect_problem, json_of};
use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_core::store::{EventStore, ExpectedRevision};
use reqwest::Method;
use serde_json::{Value, json};

fn plugin() -> Vec<u8> {
    let manifest = json!({
        "slug": "inbox", "name": "Inbox", "version": "1.0.0", "entry": "main.js",
        "permissions": ["routes.public"],
        "events": ["order.created"],
        "llm_filters": ["shout"],
        "routes": [
            {"method": "GET", "path": "/open", "public": true},
            {"method": "GET", "path": "/private"},
        ]
    })
    .to_string();
    let js = "import { hook, route, llmFilter } from 'extensor:sdk';
        hook('order.created', (e) => ({ seen: e.id }));
        llmFilter('shout', (input) => String(input).toUpperCase());
        route('GET', '/open', () => 'open');
        route('GET', '/private', () => 'members only');";
    common::zip_of(&[
        ("manifest.json", manifest.as_bytes()),
        ("main.js", js.as_bytes()),
    ])
}

async fn call(
    s: &Server,
    m: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let slug = (token != ADMIN).then_some("acme");
    let mut r = s.req(m, path, Some(token), slug);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

/// Every kind of request a tenant serves, each expected to be refused with
/// `status` and `code`.
async fn all_refused(s: &Server, owner: &str, status: u16, code: &str) {
    let requests: [(Method, &str, Option<Value>); 6] = [
        (Method::GET, "/api/plugins", None),
        (
            Method::POST,
            "/api/events",
            Some(json!({"event_type": "order.created", "event_data": {}})),
        ),
        (
            Method::POST,
            "/api/plugins/test-event",
            Some(json!({"event_type": "order.created", "event_data": {}})),
        ),
        (
            Method::POST,
            "/api/filters/shout/apply",
            Some(json!({"input": "x"})),
        ),
        (Method::GET, "/ext/inbox/private", None),
        (Method::GET, "/api/webhooks", None),
    ];
    for (m, path, body) in requests {
        let r = call(s, m.clone(), path, owner, body).await;
        let p = expect_problem(r, status, code).await;
        assert!(
            p["detail"].as_str().unwrap().contains("acme"),
            "{m} {path}: {p}"
        );
    }
    let r = s
        .client
        .get(format!("{}/t/acme/ext/inbox/open", s.base))
        .send()
        .await
        .unwrap();
    expect_problem(r, status, code).await;
}

async fn hook_records(s: &Server, owner: &str) -> Vec<Value> {
    let r = call(
        s,
        Method::GET,
        "/api/events?type=hook.executed&limit=1000",
        owner,
        None,
    )
    .await;
    let (status, body) = json_of(r).await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

/// Waits (polling, bounded) until the hook recorded a run for `event_id`.
async fn hook_ran_for(s: &Server, owner: &str, event_id: &str) {
    for _ in 0..400 {
        let runs = hook_records(s, owner).await;
        if runs.iter().any(|r| r["causation_id"] == event_id) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no hook run for {event_id}");
}

async fn delivery_for(s: &Server, owner: &str, event_id: &str) {
    for _ in 0..400 {
        let r = call(
            s,
            Method::GET,
            "/api/webhooks/orders/deliveries",
            owner,
            None,
        )
        .await;
        let (_, body) = json_of(r).await;
        if body["deliveries"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["event_id"] == event_id))
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no webhook delivery for {event_id}");
}

#[tokio::test]
async fn a_suspended_tenant_serves_and_runs_nothing_until_resumed() {
    let s = Server::start().await;
    let (tenant, owner) = s.tenant("acme").await;
    let part = reqwest::multipart::Part::bytes(plugin()).file_name("inbox.zip");
    let r = s
        .req(
            Method::POST,
            "/api/plugins/upload",
            Some(&owner),
            Some("acme"),
        )
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let (status, up) = json_of(r).await;
    assert_eq!(status, 201, "{up}");
    let id = up["plugin"]["id"].as_str().unwrap().to_owned();
    let r = call(
        &s,
        Method::POST,
        &format!("/api/plugins/{id}/enable"),
        &owner,
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let yaml =
        "api_version: v1\non: [\"order.*\"]\ndelivery:\n  url: \"http://127.0.0.1:9/hook\"\n";
    let r = s
        .req(
            Method::PUT,
            "/api/webhooks/orders",
            Some(&owner),
            Some("acme"),
        )
        .header("content-type", "application/yaml")
        .body(yaml)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = call(
        &s,
        Method::POST,
        "/api/events",
        &owner,
        Some(json!({"event_type": "order.created", "event_data": {"n": 1}})),
    )
    .await;
    let (_, first) = json_of(r).await;
    let first = first["id"].as_str().unwrap().to_owned();
    hook_ran_for(&s, &owner, &first).await;

    // Only the platform admin suspends; a reason is required.
    let suspend = format!("/api/tenants/{tenant}/suspend");
    let r = call(
        &s,
        Method::POST,
        &suspend,
        &owner,
        Some(json!({"reason": "x"})),
    )
    .await;
    expect_problem(r, 403, "forbidden").await;
    let r = call(
        &s,
        Method::POST,
        &suspend,
        ADMIN,
        Some(json!({"reason": " "})),
    )
    .await;
    assert!(matches!(r.status().as_u16(), 400 | 422), "{}", r.status());
    let r = call(
        &s,
        Method::POST,
        "/api/tenants/ten_00000000000000000000000000/suspend",
        ADMIN,
        Some(json!({"reason": "x"})),
    )
    .await;
    expect_problem(r, 404, "tenant_not_found").await;
    let r = call(
        &s,
        Method::POST,
        &suspend,
        ADMIN,
        Some(json!({"reason": "unpaid"})),
    )
    .await;
    let (status, view) = json_of(r).await;
    assert_eq!(
        (status, view["status"].as_str()),
        (200, Some("suspended")),
        "{view}"
    );
    let r = call(
        &s,
        Method::POST,
        &suspend,
        ADMIN,
        Some(json!({"reason": "again"})),
    )
    .await;
    assert_eq!(r.status().as_u16(), 409);
    all_refused(&s, &owner, 403, "tenant_suspended").await;
    // The ops resume of a stopped tenant does not lift a suspension.
    let r = call(
        &s,
        Method::POST,
        &format!("/api/ops/tenants/{tenant}/resume"),
        ADMIN,
        None,
    )
    .await;
    expect_problem(r, 409, "tenant_suspended").await;

    // An event arrives while it is suspended (straight into the store, as
    // another process would append it), and the server restarts.
    let dir = s.stop().await;
    let store = SqliteStore::open(SqliteConfig::new(
        dir.path().join("data"),
        OpenMode::CreateIfMissing,
    ))
    .unwrap();
    let t: extensor_core::ids::TenantId = tenant.parse().unwrap();
    let ev = NewEvent::new(
        "order.created",
        1,
        EventMeta::new(Some(t.clone()), Principal::system()),
        &json!({"n": 2}),
    )
    .unwrap();
    let second = ev.event_id.to_string();
    store
        .append(
            StreamId::business_events(&t),
            ExpectedRevision::Any,
            vec![ev],
        )
        .await
        .unwrap();
    store.close().await;
    let s = Server::start_in(dir, |_| {}).await;
    let tree = call(&s, Method::GET, "/api/ops/tree", ADMIN, None).await;
    let (_, tree) = json_of(tree).await;
    let mine: Vec<&Value> = tree["actors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["path"].as_str().unwrap().contains(&tenant))
        .collect();
    assert_eq!(mine.len(), 1, "only the stopped supervisor: {mine:?}");
    assert_eq!(mine[0]["status"], "stopped", "{mine:?}");
    all_refused(&s, &owner, 403, "tenant_suspended").await;
    let r = s
        .req(Method::GET, "/api/tenants", Some(ADMIN), None)
        .send()
        .await
        .unwrap();
    let (_, list) = json_of(r).await;
    assert_eq!(list["tenants"][0]["status"], "suspended");

    let resume = format!("/api/tenants/{tenant}/resume");
    let r = call(&s, Method::POST, &resume, ADMIN, None).await;
    let (status, view) = json_of(r).await;
    assert_eq!(
        (status, view["status"].as_str()),
        (200, Some("active")),
        "{view}"
    );
    let r = call(&s, Method::POST, &resume, ADMIN, None).await;
    assert_eq!(r.status().as_u16(), 409);
    // Nothing that arrived during the pause is lost.
    hook_ran_for(&s, &owner, &second).await;
    delivery_for(&s, &owner, &second).await;
    let r = call(&s, Method::GET, "/ext/inbox/private", &owner, None).await;
    assert_eq!(r.status().as_u16(), 200);
    let r = s
        .client
        .get(format!("{}/t/acme/ext/inbox/open", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = call(&s, Method::GET, "/api/plugins", &owner, None).await;
    assert_eq!(r.status().as_u16(), 200);
    s.stop().await;
}

#[tokio::test]
async fn an_operator_stopped_tenant_is_refused_with_tenant_stopped() {
    let s = Server::start().await;
    let (tenant, owner) = s.tenant("acme").await;
    let part = reqwest::multipart::Part::bytes(plugin()).file_name("inbox.zip");
    let r = s
        .req(
            Method::POST,
            "/api/plugins/upload",
            Some(&owner),
            Some("acme"),
        )
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let (_, up) = json_of(r).await;
    let id = up["plugin"]["id"].as_str().unwrap().to_owned();
    call(
        &s,
        Method::POST,
        &format!("/api/plugins/{id}/enable"),
        &owner,
        None,
    )
    .await;
    let r = call(
        &s,
        Method::POST,
        &format!("/api/ops/tenants/{tenant}/stop"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 204);
    all_refused(&s, &owner, 503, "tenant_stopped").await;
    let r = call(
        &s,
        Method::POST,
        &format!("/api/ops/tenants/{tenant}/resume"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 204);
    let r = call(&s, Method::GET, "/ext/inbox/private", &owner, None).await;
    assert_eq!(r.status().as_u16(), 200);
    s.stop().await;
}
