//! Hostile and malformed requests: every answer is a problem document with
//! a 4xx status naming the problem; nothing answers 500.

mod common;

use common::{ADMIN, Server, expect_problem};
use reqwest::Method;

#[tokio::test]
async fn malformed_bodies_headers_and_paths_get_problems_not_500s() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    let post = |body: &'static str, ct: &'static str| {
        s.req(Method::POST, "/api/tokens", Some(&owner), Some("acme"))
            .header("content-type", ct)
            .body(body)
    };
    let r = post("{not json", "application/json").send().await.unwrap();
    expect_problem(r, 400, "invalid_request").await;
    let r = post(r#"{"name": ["x"], "role": "viewer"}"#, "application/json")
        .send()
        .await
        .unwrap();
    expect_problem(r, 400, "invalid_request").await;
    let r = post(r#"{"name": "x", "role": "root"}"#, "application/json")
        .send()
        .await
        .unwrap();
    let body = expect_problem(r, 400, "invalid_request").await;
    assert!(body["detail"].as_str().unwrap().contains("root"), "{body}");
    let r = post(r#"{"name": "x", "role": "viewer"}"#, "text/plain")
        .send()
        .await
        .unwrap();
    expect_problem(r, 415, "unsupported_media_type").await;
    let r = post("", "application/json").send().await.unwrap();
    expect_problem(r, 400, "invalid_request").await;
    let long_name = format!(r#"{{"name": "{}", "role": "viewer"}}"#, "n".repeat(5_000));
    let r = s
        .req(Method::POST, "/api/tokens", Some(&owner), Some("acme"))
        .header("content-type", "application/json")
        .body(long_name)
        .send()
        .await
        .unwrap();
    let body = expect_problem(r, 422, "validation_failed").await;
    assert!(body["detail"].as_str().unwrap().len() < 2_000);

    let r = s
        .req(Method::GET, "/api/nope", Some(&owner), Some("acme"))
        .send()
        .await
        .unwrap();
    expect_problem(r, 404, "route_not_found").await;
    let r = s
        .req(Method::PUT, "/api/tenants", Some(ADMIN), None)
        .send()
        .await
        .unwrap();
    expect_problem(r, 405, "method_not_allowed").await;
    let r = s
        .req(Method::GET, "/api/tokens", None, Some("acme"))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    expect_problem(r, 401, "unauthorized").await;
    let r = s
        .req(
            Method::GET,
            "/api/tokens",
            Some(&"x".repeat(8_000)),
            Some("acme"),
        )
        .send()
        .await
        .unwrap();
    expect_problem(r, 401, "unauthorized").await;
    let r = s
        .req(Method::GET, "/api/tokens", Some(&owner), None)
        .header(
            "X-Tenant-Slug",
            reqwest::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    expect_problem(r, 400, "invalid_request").await;
    let r = s
        .req(
            Method::GET,
            "/api/tokens",
            Some(&owner),
            Some(&"a".repeat(4_000)),
        )
        .send()
        .await
        .unwrap();
    let body = expect_problem(r, 403, "wrong_tenant").await;
    assert!(
        body["detail"].as_str().unwrap().len() < 300,
        "echoes hostile input whole"
    );
    let r = s
        .req(
            Method::DELETE,
            "/api/tokens/%2e%2e%2f%00",
            Some(&owner),
            Some("acme"),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().as_u16() == 404, "{}", r.status());
    let huge = vec![b'x'; (extensor_api::observe::BODY_BYTES_MAX + 1) as usize];
    let r = s
        .req(Method::POST, "/api/tokens", Some(&owner), Some("acme"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    expect_problem(r, 413, "payload_too_large").await;
    s.stop().await;
}
