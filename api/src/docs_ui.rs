//! Swagger UI at `/docs`, rendering the exact document (`/openapi.json`,
//! corrected by [`crate::document`]) rather than poem-openapi's own.
//!
//! poem-openapi's `swagger_ui()` inlines *its* document into the page, so
//! the UI showed a spec without the corrections (no `additionalProperties:
//! false`, no `nullable` optionals, no unsigned ranges). Here the page is
//! ours: the Swagger UI script and stylesheet poem-openapi ships (taken
//! once from its page, which inlines them), served as files beside a page
//! and a start script that load `/openapi.json`. No inline script or style,
//! so the page gets a strict Content-Security-Policy like the console's.

use std::sync::OnceLock;

use poem::http::{HeaderValue, StatusCode};
use poem::{Response, Route, endpoint::make_sync};

/// Where the page loads the document from: the corrected one.
pub const SPEC_URL: &str = "/openapi.json";

/// Swagger UI renders with inline `style` attributes and `data:` images;
/// everything else comes from this server.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Extensor API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/start.js"></script>
</body>
</html>
"#;

/// Starts Swagger UI over [`SPEC_URL`].
const START: &str = r##"SwaggerUIBundle({
  dom_id: "#ui",
  url: "/openapi.json",
  deepLinking: true,
  validatorUrl: null,
});
"##;

/// poem-openapi's Swagger UI bundle and stylesheet.
struct Assets {
    script: String,
    style: String,
}

/// The text between `open` and the next `close` in `page`.
fn between<'a>(page: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = page.find(open)? + open.len();
    let len = page[start..].find(close)?;
    Some(&page[start..start + len])
}

fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        // An empty API is enough: only the inlined script and style are
        // kept, and the page inlines the document after both.
        let page = poem_openapi::OpenApiService::new((), "", "").swagger_ui_html();
        let script = between(&page, "<script charset=\"UTF-8\">", "</script>");
        let style = between(&page, "<style charset=\"UTF-8\">", "</style>");
        let (Some(script), Some(style)) = (script, style) else {
            panic!("poem-openapi's Swagger UI page no longer inlines its script and style");
        };
        assert!(
            script.contains("SwaggerUIBundle"),
            "not the Swagger UI bundle"
        );
        Assets {
            script: script.to_owned(),
            style: style.to_owned(),
        }
    })
}

fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .content_type(content_type)
        .body(body);
    crate::page_headers::secure(resp.headers_mut(), CONTENT_SECURITY_POLICY);
    resp.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    resp
}

/// The `/docs` routes: the page, its start script and Swagger UI's files.
pub fn endpoint() -> Route {
    Route::new()
        .at("/", make_sync(|_| file("text/html; charset=utf-8", PAGE)))
        .at(
            "/start.js",
            make_sync(|_| file("text/javascript; charset=utf-8", START)),
        )
        .at(
            "/swagger-ui-bundle.js",
            make_sync(|_| file("text/javascript; charset=utf-8", &assets().script)),
        )
        .at(
            "/swagger-ui.css",
            make_sync(|_| file("text/css; charset=utf-8", &assets().style)),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_script_loads_the_corrected_document() {
        assert!(START.contains(&format!("url: \"{SPEC_URL}\"")));
        assert!(!START.contains("spec:"), "no inlined document");
    }

    #[test]
    fn poem_openapis_swagger_ui_files_are_found() {
        let a = assets();
        assert!(a.script.len() > 100_000, "the whole bundle");
        assert!(a.style.contains(".swagger-ui"));
        assert!(!a.script.contains("let spec ="), "not the page's own start");
    }
}
