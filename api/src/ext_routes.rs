//! Plugin routes: `/ext/<slug>/<path>` for every method and path a plugin
//! registered, answered by its handler in its isolate. Not part of the
//! OpenAPI document (each tenant's plugins define their own routes).
//!
//! The tenant is named by `X-Tenant-Slug`. With `Authorization: Bearer`,
//! the token must be valid for that tenant and its role is handed to the
//! engine, which checks the route's `min_role`; without one, only routes the
//! manifest marks public (and whose plugin holds `routes.public`) answer.
//! Unknown or disabled plugins and unregistered paths answer 404.

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
    let (slug, path) = split_path(req)?;
    let tenant_slug = req
        .headers()
        .get(TENANT_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::bad_request("invalid_request", format!("missing header {TENANT_HEADER}"))
        })?;
    let (tenant, caller) = match bearer(req) {
        Some(token) => {
            let auth = BearerAuth(Bearer { token });
            let ctx = state.tenant_access(&auth, tenant_slug, Role::Viewer, RateClass::Routes)?;
            (ctx.tenant, Some(ctx.role))
        }
        None => {
            let t = state
                .directory
                .tenant_by_slug(tenant_slug)
                .ok_or_else(|| ApiError::not_found("plugin", &slug))?;
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

fn split_path(req: &Request) -> Result<(String, String), ApiError> {
    let rest = req.uri().path().strip_prefix("/ext/").unwrap_or("");
    let (slug, path) = rest.split_once('/').unwrap_or((rest, ""));
    if slug.is_empty() {
        return Err(ApiError::not_found("plugin", ""));
    }
    Ok((slug.to_owned(), format!("/{path}")))
}

fn bearer(req: &Request) -> Option<String> {
    let v = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn query(req: &Request) -> BTreeMap<String, String> {
    req.uri()
        .query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Percent-decodes a query component (`+` is a space); invalid UTF-8 is
/// replaced rather than refused.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
        (Value::Null, _) if status == StatusCode::NO_CONTENT => {
            Response::builder().status(status).finish()
        }
        (v, _) => Response::builder()
            .status(status)
            .content_type("application/json")
            .body(v.to_string()),
    };
    for (k, v) in &r.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v))
        {
            resp.headers_mut().insert(name, value);
        }
    }
    resp.into_response()
}
