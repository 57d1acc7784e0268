//! Walks every operation × every kind of caller against the RBAC matrix in
//! docs/API.md (parsed from the document itself, so the two cannot drift),
//! and fails when an operation of the OpenAPI document is missing from it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};

use common::{ADMIN, Server};
use reqwest::Method;
use serde_json::{Value, json};

/// The matrix's columns, in order.
const ROLES: [&str; 5] = ["viewer", "developer", "admin", "owner", "platform admin"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Public,
    Allowed,
    Refused,
}

fn matrix() -> BTreeMap<String, Vec<Expect>> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/API.md"))
        .expect("docs/API.md");
    let section = doc
        .split("## RBAC matrix")
        .nth(1)
        .expect("an `## RBAC matrix` section");
    let mut rows = BTreeMap::new();
    for line in section.lines().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(op) = cells
            .get(1)
            .and_then(|c| c.strip_prefix('`'))
            .and_then(|c| c.strip_suffix('`'))
        else {
            continue;
        };
        let expects = cells[3..3 + ROLES.len()]
            .iter()
            .map(|c| match *c {
                "public" => Expect::Public,
                "yes" => Expect::Allowed,
                "no" => Expect::Refused,
                other => panic!("matrix row {op}: unknown cell `{other}`"),
            })
            .collect();
        rows.insert(op.to_owned(), expects);
    }
    rows
}

/// Whether an operation needs `X-Tenant-Slug` (tenant-scoped).
fn tenant_scoped(op: &str) -> bool {
    !matches!(
        op,
        "healthz"
            | "metrics"
            | "createTenant"
            | "listTenants"
            | "opsTree"
            | "opsCluster"
            | "restartActor"
            | "stopTenant"
            | "resumeTenant"
            | "streamOpsTree"
            | "faultDrill"
            | "suspendTenant"
            | "unsuspendTenant"
    )
}

static COUNTER: AtomicU32 = AtomicU32::new(0);
/// Well-formed ids that name nothing.
const NO_PLUGIN: &str = "ins_01HZZZZZZZZZZZZZZZZZZZZZZZ";
const NO_TENANT: &str = "ten_01HZZZZZZZZZZZZZZZZZZZZZZZ";
const NO_DELIVERY: &str = "msg_01HZZZZZZZZZZZZZZZZZZZZZZZ";

/// The request that exercises `op`. Ids in paths are well-formed but
/// unknown: an admitted caller gets 404, a refused one 401/403.
fn request_for(op: &str) -> (Method, String, Option<Value>) {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let unknown_token = "tok_01HZZZZZZZZZZZZZZZZZZZZZZZ";
    match op {
        "healthz" => (Method::GET, "/healthz".into(), None),
        "metrics" => (Method::GET, "/metrics".into(), None),
        "createTenant" => (
            Method::POST,
            "/api/tenants".into(),
            Some(json!({"slug": format!("t{n}"), "name": "T"})),
        ),
        "listTenants" => (Method::GET, "/api/tenants".into(), None),
        "createToken" => (
            Method::POST,
            "/api/tokens".into(),
            Some(json!({"name": "walk", "role": "viewer"})),
        ),
        "listTokens" => (Method::GET, "/api/tokens".into(), None),
        "revokeToken" => (Method::DELETE, format!("/api/tokens/{unknown_token}"), None),
        "listEvents" => (Method::GET, "/api/events?limit=5".into(), None),
        "auditState" => (
            Method::GET,
            "/api/audit/state/installation/ins_01HZZZZZZZZZZZZZZZZZZZZZZZ".into(),
            None,
        ),
        "auditVerify" => (Method::GET, "/api/audit/verify".into(), None),
        "publishEvent" => (
            Method::POST,
            "/api/events".into(),
            Some(json!({"event_type": "rbac.walked", "event_data": {"n": n}})),
        ),
        "uploadPlugin" => (Method::POST, "/api/plugins/upload".into(), None),
        "listPlugins" => (Method::GET, "/api/plugins".into(), None),
        "getPluginMetrics" => (Method::GET, "/api/plugins/metrics".into(), None),
        "getPlugin" => (Method::GET, format!("/api/plugins/{NO_PLUGIN}"), None),
        "runJobNow" => (
            Method::POST,
            format!("/api/plugins/{NO_PLUGIN}/jobs/daily/run-now"),
            None,
        ),
        "listOutbox" => (Method::GET, "/api/outbox?limit=5".into(), None),
        "listJobs" => (Method::GET, format!("/api/plugins/{NO_PLUGIN}/jobs"), None),
        "listJobRuns" => (Method::GET, format!("/api/plugins/{NO_PLUGIN}/runs"), None),
        "getJobRun" => (
            Method::GET,
            format!("/api/plugins/{NO_PLUGIN}/runs/run_01HZZZZZZZZZZZZZZZZZZZZZZZ"),
            None,
        ),
        "enablePlugin" => (
            Method::POST,
            format!("/api/plugins/{NO_PLUGIN}/enable"),
            None,
        ),
        "disablePlugin" => (
            Method::POST,
            format!("/api/plugins/{NO_PLUGIN}/disable"),
            None,
        ),
        "rollBackPlugin" => (
            Method::POST,
            format!("/api/plugins/{NO_PLUGIN}/roll-back"),
            None,
        ),
        "uninstallPlugin" => (Method::DELETE, format!("/api/plugins/{NO_PLUGIN}"), None),
        "pluginLogs" => (Method::GET, format!("/api/plugins/{NO_PLUGIN}/logs"), None),
        "setPluginSecret" => (
            Method::POST,
            format!("/api/plugins/{NO_PLUGIN}/secrets"),
            Some(json!({"key": "K", "value": "v"})),
        ),
        "listPluginSecrets" => (
            Method::GET,
            format!("/api/plugins/{NO_PLUGIN}/secrets"),
            None,
        ),
        "removePluginSecret" => (
            Method::DELETE,
            format!("/api/plugins/{NO_PLUGIN}/secrets/K"),
            None,
        ),
        "testEvent" => (
            Method::POST,
            "/api/plugins/test-event".into(),
            Some(json!({"event_type": "rbac.walked", "event_data": {}})),
        ),
        "applyFilters" => (
            Method::POST,
            "/api/filters/reply/apply".into(),
            Some(json!({"input": "x"})),
        ),
        "runGeneratorHooks" => (
            Method::POST,
            "/api/generator-hooks/page/run".into(),
            Some(json!({"state": {}})),
        ),
        "applyWebhook" => (Method::PUT, "/api/webhooks/nope".into(), None),
        "listWebhooks" => (Method::GET, "/api/webhooks".into(), None),
        "getWebhook" => (Method::GET, "/api/webhooks/nope".into(), None),
        "deleteWebhook" => (Method::DELETE, "/api/webhooks/nope".into(), None),
        "enableWebhook" => (Method::POST, "/api/webhooks/nope/enable".into(), None),
        "disableWebhook" => (Method::POST, "/api/webhooks/nope/disable".into(), None),
        "listWebhookDeliveries" => (Method::GET, "/api/webhooks/nope/deliveries".into(), None),
        "getWebhookDelivery" => (
            Method::GET,
            format!("/api/webhooks/nope/deliveries/{NO_DELIVERY}"),
            None,
        ),
        "redeliverWebhookDelivery" => (
            Method::POST,
            format!("/api/webhooks/nope/deliveries/{NO_DELIVERY}/redeliver"),
            None,
        ),
        "replayWebhook" => (
            Method::POST,
            "/api/webhooks/nope/replay".into(),
            Some(json!({"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"})),
        ),
        "testWebhook" => (Method::POST, "/api/webhooks/nope/test".into(), None),
        "setTenantSecret" => (
            Method::PUT,
            format!("/api/secrets/RBAC_{n}"),
            Some(json!({"value": "v"})),
        ),
        "listTenantSecrets" => (Method::GET, "/api/secrets".into(), None),
        "removeTenantSecret" => (Method::DELETE, "/api/secrets/NOPE".into(), None),
        "opsTree" => (Method::GET, "/api/ops/tree".into(), None),
        "opsCluster" => (Method::GET, "/api/ops/cluster".into(), None),
        "status" => (Method::GET, "/api/status".into(), None),
        "restartActor" => (Method::POST, "/api/ops/actors/%2Fnope/restart".into(), None),
        "stopTenant" => (
            Method::POST,
            format!("/api/ops/tenants/{NO_TENANT}/stop"),
            None,
        ),
        "resumeTenant" => (
            Method::POST,
            format!("/api/ops/tenants/{NO_TENANT}/resume"),
            None,
        ),
        // The streams answer 200 with their headers at once; the walk reads
        // only the status and drops the connection.
        "streamEvents" => (Method::GET, "/api/events/stream".into(), None),
        "streamPluginLogs" => (
            Method::GET,
            format!("/api/plugins/{NO_PLUGIN}/logs/stream"),
            None,
        ),
        "streamOpsTree" => (Method::GET, "/api/ops/tree/stream".into(), None),
        "getSession" => (Method::GET, "/api/session".into(), None),
        // Drills are off in the walk's server: admitted callers get 404.
        "faultDrill" => (
            Method::POST,
            "/api/ops/actors/%2Fnope/fault-drill".into(),
            None,
        ),
        "suspendTenant" => (
            Method::POST,
            format!("/api/tenants/{NO_TENANT}/suspend"),
            Some(json!({"reason": "rbac walk"})),
        ),
        "unsuspendTenant" => (
            Method::POST,
            format!("/api/tenants/{NO_TENANT}/resume"),
            None,
        ),
        other => panic!("rbac walk has no request for operation `{other}`: add one"),
    }
}

#[tokio::test]
async fn every_operation_times_every_caller_matches_the_matrix() {
    let s = Server::start().await;
    let matrix = matrix();
    let spec: Value = serde_json::from_str(extensor_api::document::json()).unwrap();
    let mut in_spec = BTreeSet::new();
    for ops in spec["paths"].as_object().unwrap().values() {
        for op in ops.as_object().unwrap().values() {
            in_spec.insert(op["operationId"].as_str().unwrap().to_owned());
        }
    }
    let in_matrix: BTreeSet<String> = matrix.keys().cloned().collect();
    assert_eq!(
        in_spec, in_matrix,
        "docs/API.md's matrix and the OpenAPI operations differ"
    );

    let (_, owner) = s.tenant("acme").await;
    let (_, other_owner) = s.tenant("globex").await;
    let mut tokens = BTreeMap::new();
    for role in ["viewer", "developer", "admin"] {
        tokens.insert(role, s.token("acme", &owner, role).await.1);
    }
    tokens.insert("owner", owner.clone());
    tokens.insert("platform admin", ADMIN.to_owned());
    let (revoked_id, revoked) = s.token("acme", &owner, "owner").await;
    let r = s
        .req(
            Method::DELETE,
            &format!("/api/tokens/{revoked_id}"),
            Some(&owner),
            Some("acme"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let mut checked = 0;
    for (op, expects) in &matrix {
        let slug = tenant_scoped(op).then_some("acme");
        for (role, expect) in ROLES.iter().zip(expects) {
            let status = call(&s, op, Some(&tokens[role]), slug).await;
            let ok = match expect {
                Expect::Public | Expect::Allowed => status != 401 && status != 403,
                Expect::Refused => status == 403,
            };
            assert!(ok, "{op} as {role}: expected {expect:?}, got {status}");
            checked += 1;
        }
        let public = expects[0] == Expect::Public;
        let outsiders = [
            ("no token", None, 401),
            ("unknown token", Some("ext_unknown"), 401),
            ("revoked token", Some(revoked.as_str()), 401),
            ("other tenant's owner", Some(other_owner.as_str()), 403),
        ];
        for (who, token, refused_with) in outsiders {
            let status = call(&s, op, token, slug).await;
            if public {
                assert!(status < 400, "{op} ({who}): public, got {status}");
            } else {
                assert_eq!(status, refused_with, "{op} as {who}");
            }
            checked += 1;
        }
    }
    assert!(checked >= matrix.len() * 9);
    s.stop().await;
}

async fn call(s: &Server, op: &str, token: Option<&str>, slug: Option<&str>) -> u16 {
    let (method, path, body) = request_for(op);
    let mut req = s.req(method, &path, token, slug);
    if let Some(b) = body {
        req = req.json(&b);
    }
    if op == "applyWebhook" {
        // A well-typed body, so admission (not body parsing) decides.
        req = req
            .header("content-type", "application/yaml")
            .body("api_version: v1\n");
    }
    if op == "uploadPlugin" {
        let part = reqwest::multipart::Part::bytes(b"not a zip".to_vec()).file_name("p.zip");
        req = req.multipart(reqwest::multipart::Form::new().part("file", part));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    assert_ne!(
        status,
        500,
        "{op}: 500 {}",
        resp.text().await.unwrap_or_default()
    );
    status
}
