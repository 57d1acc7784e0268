//! What a plugin route may answer on the platform's origin.
//!
//! A route handler's value is untrusted: plugin code runs for one tenant but
//! its answer is served from the platform's own host name, beside the API.
//! So the header policy is an **allow-list**: framing, hop-by-hop, cookie,
//! CORS, CSP, HSTS and any header the platform did not think of are
//! refused, not passed on. An answer that breaks the policy is an
//! `InvalidResult` naming the problem and where (`headers.set-cookie`), so
//! the plugin's author sees it at once instead of a silently changed
//! response. The API adds its own security headers (CSP, `nosniff`, …) to
//! every plugin answer; see api/src/ext_routes.rs and docs/PLUGINS.md.

use std::collections::BTreeMap;

use serde_json::Value;

use super::invoke::RouteResponse;

/// Headers a plugin route may set, besides any `x-…` header not in
/// [`PLATFORM_X_HEADERS`]. Each describes the body or its caching; none
/// changes framing, the connection, cookies or the origin's security policy.
pub const ALLOWED_HEADERS: &[&str] = &[
    "cache-control",
    "content-disposition",
    "content-language",
    "content-type",
    "etag",
    "expires",
    "last-modified",
    "location",
    "retry-after",
    "vary",
];
/// `x-` headers that are the platform's own (security headers it sets, the
/// request id it logs): a plugin may not set or replace them.
pub const PLATFORM_X_HEADERS: &[&str] = &[
    "x-content-type-options",
    "x-frame-options",
    "x-xss-protection",
    "x-request-id",
    "x-permitted-cross-domain-policies",
    "x-dns-prefetch-control",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
];
/// Headers in one plugin answer: more is a bug or an attack on the proxy.
pub const RESPONSE_HEADERS_MAX: usize = 64;
/// Bytes of one header value (proxies commonly refuse 8 KiB lines).
pub const RESPONSE_HEADER_VALUE_BYTES_MAX: usize = 4 * 1024;
/// Bytes of one header name.
pub const RESPONSE_HEADER_NAME_BYTES_MAX: usize = 128;

/// Reads a handler's value as a route answer. `{status, body, headers?}`
/// with an integer `status` in 100..=599 is an explicit answer (1xx are
/// refused: the platform owns the connection); any other value is a 200
/// with that value as JSON. `Err` names what is wrong and where.
pub fn route_response(value: Value) -> Result<RouteResponse, String> {
    let explicit = value
        .get("status")
        .and_then(Value::as_u64)
        .filter(|s| (100..=599).contains(s))
        .filter(|_| value.get("body").is_some());
    let Some(status) = explicit else {
        return Ok(RouteResponse {
            status: 200,
            headers: BTreeMap::new(),
            body: value,
        });
    };
    if status < 200 {
        return Err(format!(
            "status: {status} is informational (1xx); a route answers 200 to 599"
        ));
    }
    let body = value.get("body").cloned().unwrap_or(Value::Null);
    if matches!(status, 204 | 205 | 304) && !body.is_null() {
        return Err(format!("body: status {status} has no body; use null"));
    }
    let headers = match value.get("headers") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(h)) => headers(h)?,
        Some(_) => return Err("headers: must be an object of strings".into()),
    };
    Ok(RouteResponse {
        status: status as u16,
        headers,
        body,
    })
}

fn headers(h: &serde_json::Map<String, Value>) -> Result<BTreeMap<String, String>, String> {
    if h.len() > RESPONSE_HEADERS_MAX {
        return Err(format!(
            "headers: {} headers; at most {RESPONSE_HEADERS_MAX}",
            h.len()
        ));
    }
    let mut out = BTreeMap::new();
    for (name, v) in h {
        let at = format!("headers.{}", crate_cut(name));
        let lower = name.to_ascii_lowercase();
        check_name(&lower).map_err(|why| format!("{at}: {why}"))?;
        let Some(text) = v.as_str() else {
            return Err(format!("{at}: the value must be a string"));
        };
        check_value(text).map_err(|why| format!("{at}: {why}"))?;
        if out.insert(lower, text.to_owned()).is_some() {
            return Err(format!("{at}: given twice (names are case-insensitive)"));
        }
    }
    Ok(out)
}

/// Why a (lower-cased) header name may not be set by a plugin, if it may not.
pub fn check_name(lower: &str) -> Result<(), String> {
    if lower.is_empty() || lower.len() > RESPONSE_HEADER_NAME_BYTES_MAX {
        return Err(format!(
            "a header name is 1 to {RESPONSE_HEADER_NAME_BYTES_MAX} bytes"
        ));
    }
    if !lower.bytes().all(is_token_byte) {
        return Err("not a valid header name (RFC 9110 token characters only)".into());
    }
    let allowed = ALLOWED_HEADERS.contains(&lower)
        || (lower.starts_with("x-") && !PLATFORM_X_HEADERS.contains(&lower));
    if !allowed {
        return Err(format!(
            "`{lower}` may not be set by a plugin on the platform's origin \
             (allowed: {}, and x-… headers)",
            ALLOWED_HEADERS.join(", ")
        ));
    }
    Ok(())
}

fn check_value(v: &str) -> Result<(), String> {
    if v.len() > RESPONSE_HEADER_VALUE_BYTES_MAX {
        return Err(format!(
            "the value is {} bytes; at most {RESPONSE_HEADER_VALUE_BYTES_MAX}",
            v.len()
        ));
    }
    // Visible ASCII, space and tab: no CR/LF (response splitting), no NUL,
    // no bytes a proxy might read differently.
    if !v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        return Err("the value may hold only visible ASCII, space and tab".into());
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn crate_cut(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_values_are_200_json() {
        let plain = route_response(json!({"ok": true})).unwrap();
        assert_eq!(plain.status, 200);
        assert_eq!(plain.body, json!({"ok": true}));
        // A "status" that is not an HTTP status is just data.
        let data = route_response(json!({"status": 9000, "body": 1})).unwrap();
        assert_eq!(data.status, 200);
    }

    #[test]
    fn explicit_answers_keep_allowed_headers() {
        let r = route_response(json!({"status": 201, "headers": {"X-A": "b", "Content-Type": "text/plain"}, "body": "made"}))
            .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.headers["x-a"], "b");
        assert_eq!(r.headers["content-type"], "text/plain");
        assert_eq!(r.body, json!("made"));
    }

    #[test]
    fn framing_hop_by_hop_cookies_and_origin_policy_are_refused() {
        for name in [
            "content-length",
            "Transfer-Encoding",
            "connection",
            "keep-alive",
            "upgrade",
            "te",
            "trailer",
            "proxy-authenticate",
            "proxy-connection",
            "set-cookie",
            "Set-Cookie2",
            "content-security-policy",
            "strict-transport-security",
            "access-control-allow-origin",
            "access-control-allow-credentials",
            "x-content-type-options",
            "x-frame-options",
            "x-request-id",
            "clear-site-data",
            "alt-svc",
            "www-authenticate",
            "content-encoding",
            "date",
            "server",
        ] {
            let err = route_response(json!({"status": 200, "headers": {name: "v"}, "body": "x"}))
                .unwrap_err();
            assert!(
                err.starts_with(&format!("headers.{name}:")),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn bad_statuses_values_and_shapes_are_refused_with_their_place() {
        let cases = [
            (json!({"status": 101, "body": null}), "status:"),
            (json!({"status": 100, "body": "x"}), "status:"),
            (json!({"status": 204, "body": "x"}), "body:"),
            (
                json!({"status": 200, "headers": {"x-a": "a\r\nset-cookie: s=1"}, "body": 1}),
                "headers.x-a:",
            ),
            (
                json!({"status": 200, "headers": {"x-a": 1}, "body": 1}),
                "headers.x-a:",
            ),
            (
                json!({"status": 200, "headers": {"x a": "1"}, "body": 1}),
                "headers.x a:",
            ),
            (
                json!({"status": 200, "headers": {"x-é": "1"}, "body": 1}),
                "headers.x-é:",
            ),
            (
                json!({"status": 200, "headers": {"x-a": "1", "X-A": "2"}, "body": 1}),
                "headers.",
            ),
            (json!({"status": 200, "headers": [], "body": 1}), "headers:"),
            (
                json!({"status": 200, "headers": {"x-a": "é"}, "body": 1}),
                "headers.x-a:",
            ),
        ];
        for (value, at) in cases {
            let err = route_response(value.clone()).unwrap_err();
            assert!(err.starts_with(at), "{value}: {err}");
        }
    }

    mod generated {
        use super::*;
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngSeed};

        fn header_name() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(ALLOWED_HEADERS.to_vec()).prop_map(str::to_owned),
                prop::sample::select(PLATFORM_X_HEADERS.to_vec()).prop_map(str::to_owned),
                prop::sample::select(vec![
                    "content-length",
                    "transfer-encoding",
                    "connection",
                    "set-cookie",
                    "upgrade",
                    "te",
                    "trailer",
                    "keep-alive",
                    "proxy-authorization",
                ])
                .prop_map(str::to_owned),
                "x-[a-z0-9-]{0,20}",
                ".{0,16}",
            ]
        }

        fn header_value() -> impl Strategy<Value = Value> {
            prop_oneof![
                "[ -~]{0,32}".prop_map(Value::String),
                ".{0,32}".prop_map(Value::String),
                (4000usize..5000).prop_map(|n| Value::String("v".repeat(n))),
                any::<i64>().prop_map(|n| json!(n)),
                Just(Value::Null),
            ]
        }

        fn answer() -> impl Strategy<Value = Value> {
            let status = prop_oneof![
                (0u64..1000).prop_map(|n| json!(n)),
                any::<i64>().prop_map(|n| json!(n)),
                Just(json!("200")),
                Just(json!(200.5)),
            ];
            let headers = prop_oneof![
                prop::collection::btree_map(header_name(), header_value(), 0..80)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                Just(json!([])),
                Just(json!("x")),
            ];
            let body = prop_oneof![
                Just(Value::Null),
                ".{0,16}".prop_map(Value::String),
                Just(json!({"a": 1}))
            ];
            (status, prop::option::of(headers), prop::option::of(body)).prop_map(|(s, h, b)| {
                let mut v = json!({"status": s});
                if let Some(h) = h {
                    v["headers"] = h;
                }
                if let Some(b) = b {
                    v["body"] = b;
                }
                v
            })
        }

        proptest! {
            #![proptest_config(Config {
                cases: 512,
                rng_seed: RngSeed::Fixed(0x5eed_0013),
                failure_persistence: None,
                ..Config::default()
            })]

            /// Whatever a handler returns: no panic; an accepted answer has
            /// a final status and only allowed, well-formed headers; a
            /// refused one names the field.
            #[test]
            fn generated_answers_are_accepted_only_within_the_policy(v in answer()) {
                match route_response(v.clone()) {
                    Ok(r) => {
                        prop_assert!((200..=599).contains(&r.status), "{v}");
                        prop_assert!(r.headers.len() <= RESPONSE_HEADERS_MAX);
                        for (name, value) in &r.headers {
                            prop_assert!(check_name(name).is_ok(), "{name}");
                            prop_assert!(check_value(value).is_ok(), "{name}: {value}");
                        }
                    }
                    Err(why) => {
                        let located = ["status:", "body:", "headers:", "headers."]
                            .iter()
                            .any(|p| why.starts_with(p));
                        prop_assert!(located, "{why}");
                    }
                }
            }
        }
    }
}
