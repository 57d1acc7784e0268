//! `openapi.yaml` is generated from the code and committed; this test fails
//! when they differ (regenerate with `cargo run -- openapi > openapi.yaml`),
//! and checks that every operation is complete enough to generate clients.

mod common;

use serde_json::Value;

/// Operations anyone may call: no security scheme.
const PUBLIC_OPERATIONS: &[&str] = &["healthz", "metrics"];

#[test]
fn committed_openapi_yaml_is_the_generated_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
    let committed = std::fs::read_to_string(path).expect("openapi.yaml at the repository root");
    let generated = extensor_api::openapi_yaml();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or(
                committed.lines().count().min(generated.lines().count()),
                |i| i,
            );
        panic!(
            "openapi.yaml is stale from line {} on; regenerate it with \
             `cargo run -- openapi > openapi.yaml`",
            line + 1
        );
    }
}

#[test]
fn every_operation_is_complete() {
    let spec: Value = serde_json::from_str(extensor_api::document::json()).unwrap();
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer", "{schemes}");
    let mut ids = std::collections::HashSet::new();
    let mut count = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            count += 1;
            let where_ = format!("{method} {path}");
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{where_}: no operationId"));
            assert!(
                ids.insert(id.to_owned()),
                "{where_}: duplicate operationId {id}"
            );
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{where_}: no tag"
            );
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{where_}: no summary"
            );
            let public = PUBLIC_OPERATIONS.contains(&id);
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(secured, !public, "{where_}: security scheme");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{where_}: no success response"
            );
            if !public {
                for status in ["400", "401", "403", "404", "429"] {
                    let problem =
                        &responses[status]["content"]["application/problem+json"]["schema"];
                    assert_eq!(
                        problem["$ref"], "#/components/schemas/Problem",
                        "{where_} {status}"
                    );
                }
            }
            for (status, r) in responses {
                if status != "204" {
                    assert!(
                        r["content"].is_object(),
                        "{where_} {status}: no content schema"
                    );
                }
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["name"] == "X-Tenant-Slug" {
                    assert!(
                        p["description"].is_string(),
                        "{where_}: X-Tenant-Slug undocumented"
                    );
                }
            }
        }
    }
    assert!(count >= 6, "only {count} operations");
}

/// Swagger UI at `/docs` renders the exact document: the page inlines no
/// script (so no document of its own), and the start script it loads points
/// Swagger UI at the served, corrected `/openapi.json` (poem-openapi's own
/// page inlined its uncorrected document, without `additionalProperties`).
#[tokio::test]
async fn swagger_ui_renders_the_corrected_document() {
    let server = common::Server::start().await;
    let get = |path: String| {
        let url = format!("{}{path}", server.base);
        let client = server.client.clone();
        async move {
            let resp = client.get(url).send().await.unwrap();
            let csp = resp
                .headers()
                .get("content-security-policy")
                .map(|v| v.to_str().unwrap().to_owned());
            (resp.status().as_u16(), csp, resp.text().await.unwrap())
        }
    };
    for page in ["/docs", "/docs/"] {
        let (status, csp, html) = get(page.into()).await;
        assert_eq!(status, 200, "{page}");
        let csp = csp.unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{page}: {csp}");
        assert!(!csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
        let scripts: Vec<&str> = html.split("<script").skip(1).collect();
        assert!(!scripts.is_empty(), "{html}");
        let mut spec_urls = Vec::new();
        for tag in scripts {
            let src = tag
                .strip_prefix(" src=\"")
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("{page}: an inline script: <script{}", &tag[..80]));
            let (status, _, js) = get(src.to_owned()).await;
            assert_eq!(status, 200, "{src}");
            if let Some(rest) = js.split("url: \"").nth(1) {
                spec_urls.push(rest.split('"').next().unwrap().to_owned());
            }
        }
        assert_eq!(
            spec_urls,
            ["/openapi.json"],
            "{page}: what Swagger UI loads"
        );
        let (status, _, spec) = get(spec_urls[0].clone()).await;
        assert_eq!(status, 200);
        assert_eq!(spec, extensor_api::document::json());
        let spec: Value = serde_json::from_str(&spec).unwrap();
        assert_eq!(
            spec["components"]["schemas"]["WebhookJson"]["additionalProperties"], false,
            "a correction document.rs makes"
        );
    }
    let (status, _, css) = get("/docs/swagger-ui.css".into()).await;
    assert_eq!((status, css.contains(".swagger-ui")), (200, true));
    server.stop().await;
}
