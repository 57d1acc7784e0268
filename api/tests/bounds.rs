//! Plugin answers on the platform's origin, over real HTTP with a real
//! plugin: framing, hop-by-hop, cookie and origin-policy headers are
//! refused, 1xx statuses are refused, every answer carries the platform's
//! security headers (a sandboxing CSP, `nosniff`, no framing), and an
//! anonymous caller reaches only declared public routes.

mod common;

use common::*;
use extensor_api::ext_routes::PLUGIN_CSP;
use reqwest::Method;
use serde_json::{Value, json};

async fn upload(s: &Server, token: &str, slug: &str, bytes: Vec<u8>) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(bytes).file_name("plugin.zip");
    s.req(Method::POST, "/api/plugins/upload", Some(token), Some(slug))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap()
}

/// `POST /answer` answers whatever the request body says it should.
fn page_plugin() -> Vec<u8> {
    let manifest = json!({
        "slug": "page", "name": "Page", "version": "1.0.0", "entry": "main.js",
        "permissions": ["routes.public"],
        "routes": [
            {"method": "POST", "path": "/answer"},
            {"method": "GET", "path": "/html", "public": true},
            {"method": "GET", "path": "/private"},
        ]
    });
    let js = "import { route } from 'extensor:sdk';
        route('POST', '/answer', (req) => req.body);
        route('GET', '/html', () => ({ status: 200, headers: { 'content-type': 'text/html' },
          body: '<script>fetch(\"/api/tenants\").then(r => r.text()).then(alert)</script>' }));
        route('GET', '/private', () => 'members only');";
    let manifest = manifest.to_string();
    zip_of(&[
        ("manifest.json", manifest.as_bytes()),
        ("main.js", js.as_bytes()),
    ])
}

async fn served() -> (Server, String) {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    let (status, up) = json_of(upload(&s, &owner, "acme", page_plugin()).await).await;
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
    (s, owner)
}

fn security_headers_present(r: &reqwest::Response) {
    let h = r.headers();
    assert_eq!(h["content-security-policy"], PLUGIN_CSP);
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
}

#[tokio::test]
async fn plugin_html_is_sandboxed_and_cannot_script_the_origin() {
    let (s, _) = served().await;
    let r = s
        .client
        .get(format!("{}/t/acme/ext/page/html", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html");
    security_headers_present(&r);
    let csp = PLUGIN_CSP;
    assert!(csp.starts_with("sandbox;") && csp.contains("default-src 'none'"));
    assert!(!csp.contains("allow-scripts") && !csp.contains("script-src"));
    s.stop().await;
}

#[tokio::test]
async fn plugin_answers_cannot_set_framing_hop_by_hop_or_cookie_headers() {
    let (s, owner) = served().await;
    let answer = |v: Value| {
        s.req(Method::POST, "/ext/page/answer", Some(&owner), Some("acme"))
            .json(&v)
            .send()
    };
    let refused = [
        ("content-length", "0"),
        ("transfer-encoding", "chunked"),
        ("connection", "close"),
        ("keep-alive", "timeout=5"),
        ("upgrade", "websocket"),
        ("te", "trailers"),
        ("trailer", "x-a"),
        ("proxy-authenticate", "Basic"),
        ("set-cookie", "sid=attacker; Path=/"),
        ("Set-Cookie", "sid=attacker"),
        ("content-security-policy", "script-src *"),
        ("x-content-type-options", "sniff"),
        ("access-control-allow-origin", "*"),
        ("strict-transport-security", "max-age=0"),
    ];
    for (name, value) in refused {
        let r = answer(json!({"status": 200, "headers": {name: value}, "body": "x"}))
            .await
            .unwrap();
        assert!(r.headers().get("set-cookie").is_none());
        let body = expect_problem(r, 502, "plugin_failed").await;
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("headers.{name}")),
            "{name}: {detail}"
        );
    }
    // Response splitting through a value, 1xx statuses, a body on 204.
    for (v, place) in [
        (
            json!({"status": 200, "headers": {"x-a": "1\r\nset-cookie: sid=1"}, "body": "x"}),
            "headers.x-a",
        ),
        (
            json!({"status": 101, "headers": {"upgrade": "h2c"}, "body": null}),
            "status",
        ),
        (json!({"status": 100, "body": "x"}), "status"),
        (json!({"status": 204, "body": "x"}), "body"),
    ] {
        let r = answer(v.clone()).await.unwrap();
        let body = expect_problem(r, 502, "plugin_failed").await;
        assert!(
            body["detail"].as_str().unwrap().contains(place),
            "{v}: {body}"
        );
    }
    // Allowed headers pass, and the platform's own are added.
    let r = answer(json!({"status": 201, "headers": {"Cache-Control": "no-store", "X-Trace": "abc"}, "body": {"ok": true}}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-trace"], "abc");
    security_headers_present(&r);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"ok": true}));
    // 204 with no body answers no body.
    let r = answer(json!({"status": 204, "body": null})).await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    s.stop().await;
}

#[tokio::test]
async fn anonymous_callers_reach_only_declared_public_routes() {
    let (s, owner) = served().await;
    for (method, path) in [
        (Method::GET, "/t/acme/ext/page/private"),
        (Method::POST, "/t/acme/ext/page/answer"),
        (Method::GET, "/t/acme/ext/page/undeclared"),
        (Method::POST, "/t/acme/ext/page/html"),
    ] {
        let r = s
            .client
            .request(method.clone(), format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        expect_problem(r, 401, "unauthorized").await;
    }
    let r = s
        .req(Method::GET, "/ext/page/private", Some(&owner), Some("acme"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!("members only"));
    s.stop().await;
}

/// Generated hostile bodies for `POST /api/events` over real HTTP: random
/// bytes, wrong shapes and types, hostile event types and payloads. Every
/// answer is a success or a problem naming what is wrong; never a 500.
#[tokio::test]
async fn generated_event_bodies_get_problems_never_500s() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngSeed, TestRunner};
    const CASES: usize = 96;
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    let (_, dev) = s.token("acme", &owner, "developer").await;
    let text = prop_oneof![
        ".{0,16}",
        "[a-z]{1,8}(\\.[a-z]{1,8}){0,3}",
        Just("platform.admin_token_set".to_owned()),
        (100usize..300).prop_map(|n| "a.".repeat(n)),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(|n| json!(n)),
        text.clone().prop_map(Value::String),
    ];
    let data = leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (text, data.clone()).prop_map(|(t, d)| json!({"event_type": t, "event_data": d})
            .to_string()
            .into_bytes()),
        data.clone()
            .prop_map(|d| json!({"event_type": d}).to_string().into_bytes()),
        data.prop_map(|d| d.to_string().into_bytes()),
    ];
    let mut runner = TestRunner::new(Config {
        rng_seed: RngSeed::Fixed(0x5eed_0013),
        ..Config::default()
    });
    let mut bodies: Vec<Vec<u8>> = (0..CASES)
        .map(|_| body.new_tree(&mut runner).unwrap().current())
        .collect();
    bodies.push(
        json!({"event_type": "big.one", "event_data": "x".repeat(1024 * 1024)})
            .to_string()
            .into_bytes(),
    );
    let mut statuses = std::collections::BTreeMap::new();
    for b in bodies {
        let r = s
            .req(Method::POST, "/api/events", Some(&dev), Some("acme"))
            .header("content-type", "application/json")
            .body(b.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        *statuses.entry(status).or_insert(0) += 1;
        let text = r.text().await.unwrap();
        assert!(
            status < 500,
            "{status} for {}: {text}",
            String::from_utf8_lossy(&b)
        );
        if status >= 400 {
            let p: Value = serde_json::from_str(&text).unwrap();
            assert!(!p["detail"].as_str().unwrap_or("").is_empty(), "{text}");
        }
    }
    // The generator reached both sides.
    assert!(
        statuses.keys().any(|s| *s == 201) && statuses.keys().any(|s| *s >= 400),
        "{statuses:?}"
    );
    s.stop().await;
}

/// docs/PLUGINS.md shows the header policy the engine and the API enforce.
#[test]
fn the_documented_header_policy_is_the_enforced_one() {
    use extensor_actors::engine::responses::{ALLOWED_HEADERS, PLATFORM_X_HEADERS};
    use extensor_api::ext_routes::PLUGIN_SECURITY_HEADERS;
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PLUGINS.md"))
        .unwrap();
    let listed = ALLOWED_HEADERS
        .iter()
        .chain(PLATFORM_X_HEADERS)
        .filter(|h| !h.starts_with("x-forwarded-"));
    for h in listed {
        assert!(
            doc.contains(&format!("`{h}`")),
            "{h} is not in docs/PLUGINS.md"
        );
    }
    for (name, value) in PLUGIN_SECURITY_HEADERS {
        let row = format!("| `{name}` | `{value}` |");
        assert!(doc.contains(&row), "{row} is not in docs/PLUGINS.md");
    }
}
