//! The ops console at `/console`: the TypeScript app in `console/` (built
//! by `console/scripts/build.sh`), embedded in the binary through the
//! generated [`crate::console_assets`], so serving it needs no Node.js and
//! no files next to the binary. The app is same-origin and calls only the
//! public API; every response carries a strict Content-Security-Policy
//! (no inline script or style, no other origin, no framing).

use poem::http::{StatusCode, header};
use poem::{IntoResponse, Request, Response, handler};

use crate::error::problem_response;

/// What every console response may load: its own scripts, styles and
/// images, and fetches to its own origin (the API). Nothing inline, no
/// plugins, no framing, no form posts, no `<base>`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One built file of the console.
pub struct Asset {
    /// Relative to `console/dist`, e.g. `assets/index-3f2a.js`.
    pub path: &'static str,
    pub content_type: &'static str,
    /// `sha256:<hex>` of `bytes` (the ETag).
    pub digest: &'static str,
    pub bytes: &'static [u8],
}

/// The asset at `path` (`""` is the app's page).
pub fn asset(path: &str) -> Option<&'static Asset> {
    let path = if path.is_empty() { "index.html" } else { path };
    crate::console_assets::ASSETS
        .iter()
        .find(|a| a.path == path)
}

/// `GET /console` and `GET /console/<file>`.
#[handler]
pub async fn console(req: &Request) -> Response {
    let path = req.uri().path();
    let rest = path
        .strip_prefix("/console")
        .unwrap_or_default()
        .trim_start_matches('/');
    let resp = match asset(rest) {
        Some(a)
            if req
                .headers()
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                == Some(etag(a).as_str()) =>
        {
            Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .finish()
        }
        Some(a) => Response::builder()
            .content_type(a.content_type)
            .header(header::ETAG, etag(a))
            .header(header::CACHE_CONTROL, cache_control(a))
            .body(a.bytes),
        None => problem_response(crate::error::Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "the console has no file `{}`",
                rest.chars().take(120).collect::<String>()
            ),
        )),
    };
    secure(resp)
}

fn etag(a: &Asset) -> String {
    format!("\"{}\"", a.digest)
}

/// Hashed build outputs never change under their name; the page is
/// revalidated so a new binary's console is picked up at once.
fn cache_control(a: &Asset) -> &'static str {
    if a.path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

fn secure(resp: Response) -> Response {
    let mut resp = resp.into_response();
    crate::page_headers::secure(resp.headers_mut(), CONTENT_SECURITY_POLICY);
    resp
}
