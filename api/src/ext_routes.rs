//! Plugin routes: `/ext/<slug>/<path>` for every method and path a plugin
//! registered, answered by its handler in its isolate. Not part of the
//! OpenAPI document (each tenant's plugins define their own routes).
//!
//! The tenant is named by `X-Tenant-Slug`, or by the path for callers that
//! cannot set headers (a SaaS posting to a plugin's public route):
//! `/t/<tenant-slug>/ext/<slug>/<path>`. With `Authorization: Bearer`,
//! the token must be valid for that tenant and its role is handed to the
//! engine, which checks the route's `min_role`; without one, only routes the
//! manifest marks public (and whose plugin holds `routes.public`) answer.
//! Unknown or disabled plugins and unregistered paths answer 404.
//!
//! A plugin's answer is served from the platform's origin, so the engine
//! lets through only allow-listed headers (`extensor_actors::engine::responses`)
//! and this file adds [`PLUGIN_SECURITY_HEADERS`] to every answer: a CSP that
//! sandboxes plugin HTML into an opaque origin with no scripts, `nosniff`,
//! no framing, no referrer.

use std::collections::BTreeMap;
use std::sync::Arc;

use extensor_actors::engine::{RouteRequest, RouteResponse};
use extensor_core::role::Role;
use poem::http::{HeaderName, HeaderValue, StatusCode};
use poem::{Body, IntoResponse, Request, Response, handler};
use poem_openapi::auth::Bearer;
use serde_json::Value;

use crate::auth::{BearerAuth, TENANT_HEADER};
use crate::error::{ApiError, problem_response};
use crate::ratelimit::RateClass;
use crate::state::{AppState, Feature};

/// A plugin route's request body may not exceed this.
pub const ROUTE_BODY_BYTES_MAX: usize = 1024 * 1024;
/// Request headers handed to the plugin (the rest are dropped).
const HEADERS_MAX: usize = 64;
/// Headers never shown to plugin code: credentials stay with the platform.
const HIDDEN_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];
/// The CSP on every plugin answer. `sandbox` (without `allow-scripts`,
/// `allow-same-origin` or `allow-forms`) makes a plugin's HTML or SVG an
/// opaque origin that runs no script and submits no form, so it cannot read
/// or call the API with the visitor's standing; `default-src 'none'` loads
/// nothing but inline styles and images, `frame-ancestors 'none'` stops
/// click-jacking, `base-uri`/`form-action` close the remaining redirects.
pub const PLUGIN_CSP: &str = "sandbox; default-src 'none'; style-src 'unsafe-inline'; \
img-src data: https:; font-src data: https:; frame-ancestors 'none'; base-uri 'none'; \
form-action 'none'";
/// Set on every plugin answer after the plugin's own headers (which the
/// engine's allow-list keeps from naming any of these).
pub const PLUGIN_SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", PLUGIN_CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-resource-policy", "same-origin"),
];

#[handler]
pub async fn ext_route(req: &Request, body: Body) -> Response {
    match answer(req, body).await {
        Ok(resp) => resp,
        Err(e) => problem_response(e.problem().clone()).with_retry_after(&e),
    }
}

trait RetryAfter {
    fn with_retry_after(self, e: &ApiError) -> Self;
}

impl RetryAfter for Response {
    fn with_retry_after(mut self, e: &ApiError) -> Self {
        if let ApiError::TooManyRequests(_, s) = e
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            self.headers_mut().insert("retry-after", v);
        }
        self
    }
}

async fn answer(req: &Request, body: Body) -> Result<Response, ApiError> {
    let state = req
        .data::<Arc<AppState>>()
        .ok_or_else(|| ApiError::internal("server state missing"))?;
    state.features.require(Feature::Plugins)?;
    let target = split_path(req.uri().path())?;
    let tenant_slug = tenant_slug(req, &target)?;
    let slug = target.plugin;
    let path = target.path;
    let (tenant, caller) = match (bearer(req), tenant_slug) {
        // A tenant token names its tenant; a slug, if given, must agree.
        (Some(token), slug) => {
            let auth = BearerAuth(Bearer { token });
            let ctx = state.tenant_access(&auth, &slug, Role::Viewer, RateClass::Routes)?;
            (ctx.tenant, Some(ctx.role))
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("missing header {TENANT_HEADER} (or use /t/<tenant>/ext/<slug>/…)"),
            ));
        }
        (None, Some(tenant_slug)) => {
            let t = state
                .directory
                .tenant_by_slug(&tenant_slug)
                .ok_or_else(|| ApiError::not_found("plugin", &slug))?;
            state.tenant_serves(&t)?;
            state
                .limiter
                .check(&t.id, RateClass::Routes)
                .map_err(|wait| ApiError::rate_limited(RateClass::Routes.as_str(), wait))?;
            (t.id, None)
        }
    };
    let body = read_body(req, body).await?;
    let request = RouteRequest {
        method: req.method().as_str().to_owned(),
        path,
        query: query(req),
        headers: headers(req),
        body,
        caller,
    };
    let resp = state.engine.route(&tenant, &slug, request).await?;
    Ok(respond(resp))
}

/// What the request path names: the tenant (path form only), the plugin,
/// and the path inside the plugin (always starting with `/`).
#[derive(Debug, PartialEq)]
struct Target {
    tenant: Option<String>,
    plugin: String,
    path: String,
}

/// `/ext/<slug>/<path>` or `/t/<tenant>/ext/<slug>/<path>`.
fn split_path(full: &str) -> Result<Target, ApiError> {
    let (tenant, rest) = match full.strip_prefix("/t/") {
        Some(after) => {
            let (tenant, rest) = after.split_once('/').unwrap_or((after, ""));
            (Some(tenant.to_owned()), format!("/{rest}"))
        }
        None => (None, full.to_owned()),
    };
    let rest = rest.strip_prefix("/ext/").unwrap_or("");
    let (slug, path) = rest.split_once('/').unwrap_or((rest, ""));
    if slug.is_empty() || tenant.as_deref() == Some("") {
        return Err(ApiError::not_found("plugin", slug));
    }
    Ok(Target {
        tenant,
        plugin: slug.to_owned(),
        path: format!("/{path}"),
    })
}

/// The tenant from the path or the header, if either names one; both may be
/// given only if they agree, so a proxy's header can never silently
/// redirect a call.
fn tenant_slug(req: &Request, target: &Target) -> Result<Option<String>, ApiError> {
    let header = match req.headers().get(TENANT_HEADER) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::bad_request(
                "invalid_request",
                format!("header {TENANT_HEADER} is not visible ASCII"),
            )
        })?),
    };
    match (target.tenant.as_deref(), header) {
        (Some(p), Some(h)) if p != h => Err(ApiError::bad_request(
            "tenant_mismatch",
            format!("the path names tenant `{p}` but {TENANT_HEADER} names `{h}`"),
        )),
        (Some(p), _) => Ok(Some(p.to_owned())),
        (None, h) => Ok(h.map(str::to_owned)),
    }
}

fn bearer(req: &Request) -> Option<String> {
    let v = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The query string as a map (`+` and percent escapes decoded; invalid
/// UTF-8 replaced rather than refused; a repeated key keeps its last value).
fn query(req: &Request) -> BTreeMap<String, String> {
    let q = req.uri().query().unwrap_or("");
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn headers(req: &Request) -> BTreeMap<String, String> {
    req.headers()
        .iter()
        .filter(|(k, _)| !HIDDEN_HEADERS.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .take(HEADERS_MAX)
        .collect()
}

async fn read_body(req: &Request, body: Body) -> Result<Value, ApiError> {
    let bytes = body
        .into_bytes_limit(ROUTE_BODY_BYTES_MAX)
        .await
        .map_err(|_| {
            ApiError::too_large(format!(
                "route bodies are limited to {ROUTE_BODY_BYTES_MAX} bytes"
            ))
        })?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let is_json = req
        .content_type()
        .is_some_and(|c| c.starts_with("application/json") || c.contains("+json"));
    if is_json {
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(
                "invalid_request",
                format!("the JSON body does not parse: {e}"),
            )
        })
    } else {
        Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

fn respond(r: RouteResponse) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let has_type = r
        .headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("content-type"));
    let mut resp = match (&r.body, has_type) {
        (Value::String(s), true) => Response::builder().status(status).body(s.clone()),
        (Value::Null, _) if matches!(status.as_u16(), 204 | 205 | 304) => {
            Response::builder().status(status).finish()
        }
        (v, _) => Response::builder()
            .status(status)
            .content_type("application/json")
            .body(v.to_string()),
    };
    for (k, v) in &r.headers {
        // The engine checked names and values (token names, visible ASCII
        // values); a pair that still does not convert is left out.
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v))
        {
            resp.headers_mut().insert(name, value);
        }
    }
    for (name, value) in PLUGIN_SECURITY_HEADERS {
        resp.headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    resp.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(tenant: Option<&str>, plugin: &str, path: &str) -> Target {
        Target {
            tenant: tenant.map(str::to_owned),
            plugin: plugin.into(),
            path: path.into(),
        }
    }

    #[test]
    fn both_path_forms_split() {
        let cases = [
            ("/ext/shop", target(None, "shop", "/")),
            ("/ext/shop/", target(None, "shop", "/")),
            ("/ext/shop/items/1", target(None, "shop", "/items/1")),
            (
                "/t/acme/ext/shop/items/1",
                target(Some("acme"), "shop", "/items/1"),
            ),
            ("/t/acme/ext/shop", target(Some("acme"), "shop", "/")),
        ];
        for (path, want) in cases {
            assert_eq!(split_path(path).unwrap(), want, "{path}");
        }
    }

    #[test]
    fn malformed_paths_name_no_plugin() {
        for path in [
            "/ext/",
            "/ext",
            "/t//ext/shop",
            "/t/acme",
            "/t/acme/",
            "/t/acme/ext/",
            "/t/acme/x/shop",
        ] {
            let err = split_path(path).unwrap_err();
            assert_eq!(err.problem().status, 404, "{path}");
        }
    }
}
