//! Tenants and tokens over HTTP: creation, slug uniqueness, tokens shown once
//! and stored as hashes, revocation, expiry, the platform-admin bootstrap.

mod common;

use common::{ADMIN, Server, expect_problem, json_of};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn tenant_creation_slug_uniqueness_and_listing() {
    let s = Server::start().await;
    let (id, owner) = s.tenant("acme").await;
    assert!(id.starts_with("ten_") && owner.starts_with("ext_"));
    let dup = s
        .req(Method::POST, "/api/tenants", Some(ADMIN), None)
        .json(&json!({"slug": "acme", "name": "Again"}))
        .send()
        .await
        .unwrap();
    expect_problem(dup, 409, "slug_taken").await;
    let bad = s
        .req(Method::POST, "/api/tenants", Some(ADMIN), None)
        .json(&json!({"slug": "Not A Slug", "name": "x"}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(bad, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["path"], "$.slug", "{body}");
    let empty_name = s
        .req(Method::POST, "/api/tenants", Some(ADMIN), None)
        .json(&json!({"slug": "blank", "name": "  "}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(empty_name, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["path"], "$.name", "{body}");
    // The refused name did not burn the slug.
    s.tenant("blank").await;
    let (status, list) = json_of(
        s.req(Method::GET, "/api/tenants", Some(ADMIN), None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let slugs: Vec<_> = list["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].clone())
        .collect();
    assert_eq!(slugs, vec![json!("acme"), json!("blank")]);
    let as_tenant = s
        .req(Method::GET, "/api/tenants", Some(&owner), None)
        .send()
        .await
        .unwrap();
    expect_problem(as_tenant, 403, "forbidden").await;
    s.stop().await;
}

#[tokio::test]
async fn concurrent_creations_of_one_slug_give_one_tenant() {
    let s = Server::start().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let req = s
            .req(Method::POST, "/api/tenants", Some(ADMIN), None)
            .json(&json!({"slug": "race", "name": format!("n{i}")}));
        tasks.push(tokio::spawn(async move {
            req.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, vec![201, 409, 409, 409, 409, 409, 409, 409]);
    s.stop().await;
}

#[tokio::test]
async fn tokens_are_shown_once_stored_as_hashes_and_revocable() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    let (dev_id, dev) = s.token("acme", &owner, "developer").await;
    let (status, list) = json_of(
        s.req(Method::GET, "/api/tokens", Some(&owner), Some("acme"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let text = list.to_string();
    assert!(
        !text.contains(&dev) && !text.contains(&owner),
        "a listing leaks a token: {text}"
    );
    assert_eq!(list["tokens"].as_array().unwrap().len(), 2);
    // The developer can read (tokens need admin: forbidden, not unauthorized).
    let r = s
        .req(Method::GET, "/api/tokens", Some(&dev), Some("acme"))
        .send()
        .await
        .unwrap();
    expect_problem(r, 403, "forbidden").await;
    // An admin cannot mint an owner token.
    let (_, admin) = s.token("acme", &owner, "admin").await;
    let r = s
        .req(Method::POST, "/api/tokens", Some(&admin), Some("acme"))
        .json(&json!({"name": "escalate", "role": "owner"}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 403, "forbidden").await;
    let r = s
        .req(
            Method::DELETE,
            &format!("/api/tokens/{dev_id}"),
            Some(&owner),
            Some("acme"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s
        .req(Method::GET, "/api/tokens", Some(&dev), Some("acme"))
        .send()
        .await
        .unwrap();
    let body = expect_problem(r, 401, "unauthorized").await;
    assert!(
        body["detail"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    // Unknown and malformed ids answer 404 alike.
    for id in ["tok_01HZZZZZZZZZZZZZZZZZZZZZZZ", "nonsense"] {
        let r = s
            .req(
                Method::DELETE,
                &format!("/api/tokens/{id}"),
                Some(&owner),
                Some("acme"),
            )
            .send()
            .await
            .unwrap();
        expect_problem(r, 404, "token_not_found").await;
    }
    let r = s
        .req(Method::POST, "/api/tokens", Some(&owner), Some("acme"))
        .json(&json!({"name": "old", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(r, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["path"], "$.expires_at");
    // Nothing in the store holds a token in clear.
    s.stop_and_grep_for(&[&dev, &owner, &admin]).await;
}

impl Server {
    async fn stop_and_grep_for(self, secrets: &[&str]) {
        let dir = self.data_dir();
        let _keep = self.stop().await;
        for entry in std::fs::read_dir(&dir).unwrap() {
            // A WAL file may vanish as the last reader closes: skip it.
            let Ok(bytes) = std::fs::read(entry.unwrap().path()) else {
                continue;
            };
            for secret in secrets {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "a token is stored in clear"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_token_only_works_in_its_own_tenant() {
    let s = Server::start().await;
    let (_, acme) = s.tenant("acme").await;
    s.tenant("globex").await;
    for slug in ["globex", "no-such-tenant"] {
        let r = s
            .req(Method::GET, "/api/tokens", Some(&acme), Some(slug))
            .send()
            .await
            .unwrap();
        expect_problem(r, 403, "wrong_tenant").await;
    }
    let r = s
        .req(Method::GET, "/api/tokens", Some("ext_nope"), Some("acme"))
        .send()
        .await
        .unwrap();
    expect_problem(r, 401, "unauthorized").await;
    let r = s
        .req(Method::GET, "/api/tokens", None, Some("acme"))
        .send()
        .await
        .unwrap();
    expect_problem(r, 401, "unauthorized").await;
    // Without X-Tenant-Slug a tenant token acts in its own tenant...
    let r = s
        .req(Method::GET, "/api/tokens", Some(&acme), None)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tokens"][0]["name"], "owner", "{body}");
    // ...and so does a plugin route.
    let r = s
        .req(Method::GET, "/ext/nothing/here", Some(&acme), None)
        .send()
        .await
        .unwrap();
    expect_problem(r, 404, "plugin_not_found").await;
    // The platform admin must say which tenant it acts in.
    let r = s
        .req(Method::GET, "/api/tokens", Some(ADMIN), None)
        .send()
        .await
        .unwrap();
    let body = expect_problem(r, 403, "tenant_required").await;
    assert!(
        body["detail"].as_str().unwrap().contains("X-Tenant-Slug"),
        "{body}"
    );
    let r = s
        .req(Method::GET, "/api/tokens", Some(ADMIN), Some("acme"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    use extensor_core::aggregate::{SnapshotPolicy, execute};
    use extensor_core::event::{EventMeta, Principal, StreamId};
    use extensor_core::ids::{TenantId, TokenId};
    use extensor_core::role::Role;
    use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
    use extensor_core::tenant::{IssueToken, Tenant, TenantCommand};

    let s = Server::start().await;
    let (tenant, _) = s.tenant("acme").await;
    let tenant: TenantId = tenant.parse().unwrap();
    // A token issued two hours ago that expired an hour ago, written by a
    // second process-like handle on the same store.
    let store =
        SqliteStore::open(SqliteConfig::new(s.data_dir(), OpenMode::CreateIfMissing)).unwrap();
    let token = "ext_expired_token_for_the_test";
    let now = chrono::Utc::now();
    let cmd = TenantCommand::IssueToken(IssueToken {
        token_id: TokenId::generate(),
        name: "old".into(),
        role: Role::Owner,
        token_hash: extensor_api::directory::token_hash(token),
        issued_at: now - chrono::Duration::hours(2),
        expires_at: Some(now - chrono::Duration::hours(1)),
    });
    execute::<Tenant>(
        &store,
        &StreamId::tenant(&tenant),
        &cmd,
        &EventMeta::new(Some(tenant.clone()), Principal::system()),
        SnapshotPolicy::NEVER,
    )
    .await
    .unwrap();
    store.close().await;
    // The server follows the log; wait until it has seen the token.
    for _ in 0..100 {
        let r = s
            .req(Method::GET, "/api/tokens", Some(token), Some("acme"))
            .send()
            .await
            .unwrap();
        let (_, body) = json_of(r).await;
        if body["detail"].as_str().unwrap_or("").contains("expired") {
            s.stop().await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the expired token was never refused as expired");
}

#[tokio::test]
async fn empty_store_generates_a_platform_admin_token_once() {
    let s = Server::start_with(|c| c.admin_token = None).await;
    // The configured test token is not the admin: one was generated instead.
    let r = s
        .req(Method::GET, "/api/tenants", Some(ADMIN), None)
        .send()
        .await
        .unwrap();
    expect_problem(r, 401, "unauthorized").await;
    s.stop().await;
}
