//! The security headers on every page the server serves itself (the ops
//! console, the API docs): one list, so a header added for one page is not
//! forgotten on the other. Each page brings its own Content-Security-Policy
//! (Swagger UI needs inline styles; the console needs none). Plugin answers
//! have their own, stricter list ([`crate::ext_routes::PLUGIN_SECURITY_HEADERS`]).

use poem::http::{HeaderMap, HeaderValue};

/// Sets the shared headers and `content_security_policy` on `headers`:
/// no MIME sniffing, no referrer, no framing, and no other origin may open
/// or embed the page.
pub fn secure(headers: &mut HeaderMap, content_security_policy: &'static str) {
    for (name, value) in [
        ("content-security-policy", content_security_policy),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}
