//! `/console` over real HTTP: the embedded files with their media types,
//! the strict Content-Security-Policy on every answer (404s included),
//! ETags and caching, and hostile paths answered 404, never a file from
//! elsewhere.

mod common;

use common::Server;
use extensor_api::console::CONTENT_SECURITY_POLICY;
use reqwest::Method;

async fn get(s: &Server, path: &str) -> reqwest::Response {
    s.req(Method::GET, path, None, None).send().await.unwrap()
}

fn csp(r: &reqwest::Response) -> &str {
    r.headers()["content-security-policy"].to_str().unwrap()
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_the_csp() {
    let s = Server::start().await;
    for path in ["/console", "/console/", "/console/index.html"] {
        let r = get(&s, path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(csp(&r), CONTENT_SECURITY_POLICY);
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert_eq!(r.headers()["cache-control"], "no-cache");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = r.text().await.unwrap();
        assert!(html.contains("<div id=\"app\">"), "{html}");
    }
    // Every asset the page names is served, hashed names cached for good.
    let html = get(&s, "/console/").await.text().await.unwrap();
    let assets: Vec<&str> = html
        .split('"')
        .filter(|p| p.starts_with("/console/assets/"))
        .collect();
    assert!(assets.len() >= 2, "{html}");
    for a in assets {
        let r = get(&s, a).await;
        assert_eq!(r.status(), 200, "{a}");
        assert_eq!(csp(&r), CONTENT_SECURITY_POLICY);
        assert!(
            r.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            (a.ends_with(".js") && ct.starts_with("text/javascript"))
                || (a.ends_with(".css") && ct.starts_with("text/css")),
            "{a}: {ct}"
        );
        // Revalidation with the ETag costs no body.
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        let again = s
            .req(Method::GET, a, None, None)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
    }
    s.stop().await;
}

#[tokio::test]
async fn unknown_and_hostile_paths_are_404_with_the_csp() {
    let s = Server::start().await;
    let long = format!("/console/{}", "a".repeat(4000));
    for path in [
        "/console/nope.js",
        "/console/assets/",
        // (`%2e%2e/` is resolved to `..` by the client itself, per the URL
        // standard, so it never reaches the server as such.)
        "/console/..%2f..%2fCargo.toml",
        "/console/assets/..%2findex.html",
        "/console/index.html%00",
        "/console//etc/passwd",
        long.as_str(),
    ] {
        let r = get(&s, path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(csp(&r), CONTENT_SECURITY_POLICY, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains("\"not_found\""), "{path}: {body}");
        assert!(body.len() < 1_000, "{path}: the path is quoted cut short");
    }
    s.stop().await;
}
