//! The seed's manual verification walk, over HTTP only: zip
//! `examples/plugins/welcome-email`, upload, enable, set a secret, call
//! `/ext/welcome-email/ping`, send a test event, read metrics. Plus plugin
//! isolation between tenants, write-only secrets (the plaintext is in no
//! response, no database file and no captured log) and malformed uploads.

mod common;

use std::io::Write;

use common::{ADMIN, Server, expect_problem, json_of, zip_dir, zip_of};
use reqwest::Method;
use serde_json::json;

const SECRET_PLAINTEXT: &str = "plaintext-template-7c1e9d-never-stored";

fn example() -> Vec<u8> {
    zip_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plugins/welcome-email"),
    )
}

async fn upload(s: &Server, token: &str, slug: &str, bytes: Vec<u8>) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(bytes).file_name("plugin.zip");
    s.req(Method::POST, "/api/plugins/upload", Some(token), Some(slug))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_seed_walk_over_http() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    let (_, dev) = s.token("acme", &owner, "developer").await;
    let (status, up) = json_of(upload(&s, &dev, "acme", example()).await).await;
    assert_eq!(status, 201, "{up}");
    assert_eq!(up["action"], "installed");
    assert_eq!(up["plugin"]["status"], "disabled");
    let id = up["plugin"]["id"].as_str().unwrap().to_owned();
    // Disabled: its routes answer 404.
    let ping = |tok: Option<&str>| {
        s.req(Method::GET, "/ext/welcome-email/ping", tok, Some("acme"))
            .send()
    };
    expect_problem(ping(Some(&dev)).await.unwrap(), 404, "plugin_not_found").await;
    let r = s
        .req(
            Method::POST,
            &format!("/api/plugins/{id}/enable"),
            Some(&dev),
            Some("acme"),
        )
        .send()
        .await
        .unwrap();
    let (status, enabled) = json_of(r).await;
    assert_eq!(
        (status, enabled["status"].as_str()),
        (200, Some("enabled")),
        "{enabled}"
    );
    // Secrets: developers cannot write them; admins can; nobody reads them.
    let set = |tok: &str| {
        s.req(
            Method::POST,
            &format!("/api/plugins/{id}/secrets"),
            Some(tok),
            Some("acme"),
        )
        .json(&json!({"key": "WELCOME_EMAIL_TEMPLATE", "value": SECRET_PLAINTEXT}))
        .send()
    };
    expect_problem(set(&dev).await.unwrap(), 403, "forbidden").await;
    let (status, info) = json_of(set(&owner).await.unwrap()).await;
    assert_eq!(status, 200, "{info}");
    assert!(!info.to_string().contains(SECRET_PLAINTEXT));
    let (_, keys) = json_of(
        s.req(
            Method::GET,
            &format!("/api/plugins/{id}/secrets"),
            Some(&dev),
            Some("acme"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        keys["secrets"][0]["key"], "WELCOME_EMAIL_TEMPLATE",
        "{keys}"
    );
    // The route.
    let (status, pong) = json_of(ping(Some(&dev)).await.unwrap()).await;
    assert_eq!(
        (status, pong),
        (200, json!({"status": "ok", "plugin": "welcome-email"}))
    );
    // A test event runs the hook and reports it.
    let r = s
        .req(Method::POST, "/api/plugins/test-event", Some(&dev), Some("acme"))
        .json(&json!({"event_type": "auth.user.created", "event_data": {"user": {"first_name": "Ada"}}}))
        .send()
        .await
        .unwrap();
    let (status, runs) = json_of(r).await;
    assert_eq!(status, 200, "{runs}");
    assert_eq!(runs["runs"][0]["slug"], "welcome-email", "{runs}");
    assert_eq!(
        runs["runs"][0]["outcome"]["sent"], false,
        "no email in the event: {runs}"
    );
    // Publishing is durable and idempotent.
    let publish = || {
        s.req(Method::POST, "/api/events", Some(&dev), Some("acme"))
            .header("Idempotency-Key", "signup-42")
            .json(&json!({"event_type": "auth.user.created", "event_data": {"user": {}}}))
            .send()
    };
    let (first, ev) = json_of(publish().await.unwrap()).await;
    let (again, ev2) = json_of(publish().await.unwrap()).await;
    assert_eq!((first, again), (201, 200), "{ev} {ev2}");
    assert_eq!(ev["id"], ev2["id"]);
    // Upgrading keeps secrets; the plugin's logs and the listing never show values.
    let (_, logs) = json_of(
        s.req(
            Method::GET,
            &format!("/api/plugins/{id}/logs"),
            Some(&dev),
            Some("acme"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert!(logs["logs"].is_array(), "{logs}");
    let (_, list) = json_of(
        s.req(Method::GET, "/api/plugins", Some(&dev), Some("acme"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["plugins"].as_array().unwrap().len(), 1);
    for text in [logs.to_string(), list.to_string()] {
        assert!(!text.contains(SECRET_PLAINTEXT));
    }
    // Metrics in Prometheus text.
    let metrics = s
        .req(Method::GET, "/metrics", None, None)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("extensor_http_requests_total"),
        "{metrics}"
    );
    // Another tenant sees none of it.
    let (_, other) = s.tenant("globex").await;
    for (m, path) in [
        (Method::GET, format!("/api/plugins/{id}")),
        (Method::POST, format!("/api/plugins/{id}/disable")),
        (Method::GET, format!("/api/plugins/{id}/secrets")),
        (Method::DELETE, format!("/api/plugins/{id}")),
    ] {
        let r = s
            .req(m, &path, Some(&other), Some("globex"))
            .send()
            .await
            .unwrap();
        expect_problem(r, 404, "plugin_not_found").await;
    }
    expect_problem(
        s.req(
            Method::GET,
            "/ext/welcome-email/ping",
            Some(&other),
            Some("globex"),
        )
        .send()
        .await
        .unwrap(),
        404,
        "plugin_not_found",
    )
    .await;
    // Uninstall, then the plaintext is nowhere on disk.
    let r = s
        .req(
            Method::DELETE,
            &format!("/api/plugins/{id}"),
            Some(&owner),
            Some("acme"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s
        .req(Method::GET, "/api/ops/tree", Some(ADMIN), None)
        .send()
        .await
        .unwrap();
    let (status, tree) = json_of(r).await;
    assert_eq!(status, 200, "{tree}");
    assert!(tree["actors"].is_array());
    let dir = s.data_dir();
    let _keep = s.stop().await;
    assert_nowhere(&dir, SECRET_PLAINTEXT);
}

fn assert_nowhere(dir: &std::path::Path, needle: &str) {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                files += 1;
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "the secret's plaintext is in {}",
                    path.display()
                );
            }
        }
    }
    assert!(files > 0, "nothing to search in {}", dir.display());
}

#[tokio::test]
async fn malformed_uploads_are_refused_with_every_problem_and_nothing_stored() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    let body = expect_problem(
        upload(&s, &owner, "acme", b"not a zip at all".to_vec()).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(!body["errors"].as_array().unwrap().is_empty(), "{body}");
    // A ZIP without manifest.json.
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    zip.start_file("main.js", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"export default 1;").unwrap();
    zip.finish().unwrap();
    let body = expect_problem(
        upload(&s, &owner, "acme", out.into_inner()).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(body.to_string().contains("manifest.json"), "{body}");
    // A bad manifest: every problem with its JSON path.
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    zip.start_file("manifest.json", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(br#"{"slug": "Bad Slug", "name": "x", "version": "one", "entry": "main.js", "permissions": ["root"]}"#).unwrap();
    zip.start_file("main.js", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"").unwrap();
    zip.finish().unwrap();
    let body = expect_problem(
        upload(&s, &owner, "acme", out.into_inner()).await,
        422,
        "validation_failed",
    )
    .await;
    let paths: Vec<String> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(paths.len() >= 3, "{body}");
    // Not multipart at all.
    let r = s
        .req(
            Method::POST,
            "/api/plugins/upload",
            Some(&owner),
            Some("acme"),
        )
        .json(&json!({"file": "x"}))
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 400 | 415), "{}", r.status());
    let (_, list) = json_of(
        s.req(Method::GET, "/api/plugins", Some(&owner), Some("acme"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        list["plugins"].as_array().unwrap().len(),
        0,
        "a refused upload stored something"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_switched_off_capability_answers_feature_disabled_and_status_says_so() {
    let s = Server::start_with(|c| c.features.plugins = false).await;
    let (_, owner) = s.tenant("acme").await;
    let r = s
        .req(Method::GET, "/api/plugins", Some(&owner), Some("acme"))
        .send()
        .await
        .unwrap();
    expect_problem(r, 404, "feature_disabled").await;
    let r = s
        .req(
            Method::GET,
            "/ext/welcome-email/ping",
            Some(&owner),
            Some("acme"),
        )
        .send()
        .await
        .unwrap();
    expect_problem(r, 404, "feature_disabled").await;
    let (status, body) = json_of(
        s.req(Method::GET, "/api/status", Some(&owner), Some("acme"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["features"]["plugins"], false);
    assert_eq!(body["features"]["webhooks_as_code"], true);
    assert_eq!(body["extensibility"]["plugins_loaded"], 0);
    s.stop().await;
}

/// A plugin with one public route and one for signed-in callers, as a ZIP.
fn public_route_plugin() -> Vec<u8> {
    let manifest = json!({
        "slug": "inbox", "name": "Inbox", "version": "1.0.0", "entry": "main.js",
        "permissions": ["routes.public"],
        "routes": [
            {"method": "POST", "path": "/hook", "public": true},
            {"method": "GET", "path": "/private"},
        ]
    });
    let js = "import { route } from 'extensor:sdk';
        route('POST', '/hook', (req) => ({ got: req.body, q: req.query }));
        route('GET', '/private', () => 'members only');";
    let manifest = manifest.to_string();
    zip_of(&[
        ("manifest.json", manifest.as_bytes()),
        ("main.js", js.as_bytes()),
    ])
}

#[tokio::test]
async fn the_tenant_can_be_named_in_the_path_for_callers_without_headers() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    s.tenant("globex").await;
    let (status, up) = json_of(upload(&s, &owner, "acme", public_route_plugin()).await).await;
    assert_eq!(status, 201, "{up}");
    let id = up["plugin"]["id"].as_str().unwrap().to_owned();
    let r = s
        .req(
            Method::POST,
            &format!("/api/plugins/{id}/enable"),
            Some(&owner),
            Some("acme"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let http = reqwest::Client::new();
    // No header, no token: the path names the tenant; query decoded.
    let r = http
        .post(format!("{}/t/acme/ext/inbox/hook?a=b%20c&x=1+2", s.base))
        .json(&json!({"n": 1}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"got": {"n": 1}, "q": {"a": "b c", "x": "1 2"}})
    );
    // The path form still checks roles: a private route needs a token.
    let r = http
        .get(format!("{}/t/acme/ext/inbox/private", s.base))
        .send()
        .await
        .unwrap();
    expect_problem(r, 401, "unauthorized").await;
    let r = http
        .get(format!("{}/t/acme/ext/inbox/private", s.base))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!("members only")
    );
    // Another tenant has no such plugin; an unknown tenant looks the same.
    for tenant in ["globex", "no-such-tenant"] {
        let r = http
            .post(format!("{}/t/{tenant}/ext/inbox/hook", s.base))
            .send()
            .await
            .unwrap();
        expect_problem(r, 404, "plugin_not_found").await;
    }
    // Path and header must agree.
    let r = http
        .post(format!("{}/t/acme/ext/inbox/hook", s.base))
        .header("X-Tenant-Slug", "globex")
        .send()
        .await
        .unwrap();
    expect_problem(r, 400, "tenant_mismatch").await;
    // Malformed path forms are 404s, never 500s.
    for path in [
        "/t//ext/inbox/hook",
        "/t/acme/ext/",
        "/t/acme/nope/inbox/hook",
        "/t/acme",
    ] {
        let r = http.post(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    s.stop().await;
}

/// Plugin secrets carry a revision; `If-Match` with the one read makes a
/// change conditional, and of writers racing from the same revision exactly
/// one wins while the others get 412.
#[tokio::test]
async fn plugin_secrets_change_only_at_the_revision_read() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    let (status, up) = json_of(upload(&s, &owner, "acme", example()).await).await;
    assert_eq!(status, 201, "{up}");
    let id = up["plugin"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/plugins/{id}/secrets");
    // No X-Tenant-Slug: the owner token names its tenant.
    let set = |value: &str, if_match: Option<&str>| {
        let mut r = s
            .req(Method::POST, &path, Some(&owner), None)
            .json(&json!({"key": "API_KEY", "value": value}));
        if let Some(m) = if_match {
            r = r.header("If-Match", m);
        }
        r.send()
    };
    let (status, v) = json_of(set("one", None).await.unwrap()).await;
    assert_eq!((status, v["revision"].as_u64()), (200, Some(1)), "{v}");
    let (status, v) = json_of(set("two", Some("\"1\"")).await.unwrap()).await;
    assert_eq!((status, v["revision"].as_u64()), (200, Some(2)), "{v}");
    expect_problem(
        set("three", Some("1")).await.unwrap(),
        412,
        "precondition_failed",
    )
    .await;
    let (_, list) = json_of(
        s.req(Method::GET, &path, Some(&owner), None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["secrets"][0]["revision"], 2, "{list}");
    // Eight writers race from revision 2.
    let racers = (0..8).map(|i| set(if i % 2 == 0 { "even" } else { "odd" }, Some("2")));
    let mut codes: Vec<u16> = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    codes.sort_unstable();
    assert_eq!(codes, [200, 412, 412, 412, 412, 412, 412, 412]);
    let (_, list) = json_of(
        s.req(Method::GET, &path, Some(&owner), None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["secrets"][0]["revision"], 3, "{list}");
    // Removal is conditional too.
    let remove = |m: &str| {
        s.req(
            Method::DELETE,
            &format!("{path}/API_KEY"),
            Some(&owner),
            None,
        )
        .header("If-Match", m)
        .send()
    };
    expect_problem(remove("2").await.unwrap(), 412, "precondition_failed").await;
    assert_eq!(remove("3").await.unwrap().status(), 204);
    s.stop().await;
}
