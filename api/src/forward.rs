//! Every node answers for every tenant: a call that needs the tenant's
//! single-owner work (webhook changes and deliveries, run-now, job views)
//! and reaches a node without the tenant's lease is forwarded, one hop, to
//! the node holding it, and the owner's answer is returned unchanged.
//!
//! One mechanism for every such call: [`forward_gate`] runs the call here
//! first; only an answer of `503 tenant_owned_elsewhere` (given before the
//! handler changed anything: it is refused where the leased service is
//! asked for) is sent on. The request body is held (at most
//! [`BODY_BYTES_MAX`]) so it can be sent again.
//!
//! The owner authenticates and authorises the caller itself: the caller's
//! `Authorization` and `X-Tenant-Slug` go through unchanged, and the
//! forwarding node grants nothing. A forwarded request carries
//! [`FORWARDED_HEADER`]; a node receiving one never forwards it again (a
//! client forging the header only loses forwarding), so a lease that moved
//! meanwhile answers `503 tenant_owned_elsewhere` with `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use extensor_core::ids::TenantId;
use poem::http::{HeaderMap, HeaderValue, StatusCode};
use poem::{Body, Endpoint, IntoResponse, Request, Response};

use crate::directory::TokenOwner;
use crate::error::ApiError;
use crate::observe::BODY_BYTES_MAX;
use crate::state::AppState;

/// Marks a request one node forwarded to another (its value: the
/// forwarding node's id). A request carrying it is never forwarded again.
pub const FORWARDED_HEADER: &str = "X-Extensor-Forwarded-By";

/// How long the owner has to answer a forwarded call: the longest a call
/// may wait by design (run-now's `wait_ms`) and a margin.
pub const FORWARD_TIMEOUT_MS: u64 = extensor_actors::scheduler::RUN_NOW_WAIT_MS_MAX + 10_000;

/// How long connecting to the owner may take before it counts as
/// unreachable (nodes are on one network; a live one accepts at once).
pub const FORWARD_CONNECT_TIMEOUT_MS: u64 = 2_000;

/// `Retry-After` of a call that could not reach the tenant's owner: leases
/// are renewed and taken once per heartbeat.
pub const FORWARD_RETRY_AFTER_S: u64 = extensor_actors::cluster::HEARTBEAT_INTERVAL_MS / 1_000;

/// The refusal that is forwarded.
const OWNED_ELSEWHERE: &str = "tenant_owned_elsewhere";

/// The refusal's body is a problem document of a few hundred bytes.
const REFUSAL_BYTES_MAX: usize = 64 * 1024;

/// Headers that describe one connection, not the request (RFC 9110 §7.6.1),
/// and the ones the client recomputes.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// The HTTP client a node forwards with (one per node, pooled).
pub fn client() -> Result<reqwest::Client, crate::ServeError> {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(FORWARD_TIMEOUT_MS))
        .connect_timeout(Duration::from_millis(FORWARD_CONNECT_TIMEOUT_MS))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| crate::ServeError::Startup(format!("the forwarding client: {e}")))
}

/// Why a forward did not happen or failed: bounded metric labels.
#[derive(Clone, Copy)]
enum Outcome {
    Forwarded,
    SecondHop,
    LeaseMoving,
    OwnerUnreachable,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::SecondHop => "second_hop_refused",
            Outcome::LeaseMoving => "lease_moving",
            Outcome::OwnerUnreachable => "owner_unreachable",
        }
    }
}

/// Every outcome's series exists from the start (at 0), also on a node
/// that never forwards (the embedded store), so dashboards and the
/// seed-list test see the family before the first forward.
pub fn register_metrics() {
    for outcome in [
        Outcome::Forwarded,
        Outcome::SecondHop,
        Outcome::LeaseMoving,
        Outcome::OwnerUnreachable,
    ] {
        metrics::counter!("extensor_cluster_forwards_total", "outcome" => outcome.as_str())
            .increment(0);
    }
}

fn count(outcome: Outcome) {
    metrics::counter!("extensor_cluster_forwards_total", "outcome" => outcome.as_str())
        .increment(1);
}

/// The middleware (inside the state's `.data`): on a shared store, an API
/// call refused `503 tenant_owned_elsewhere` here goes to the owner.
pub async fn forward_gate<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let state = req.data::<Arc<AppState>>().cloned();
    let client = state.as_ref().and_then(|s| s.node.forward.clone());
    let (Some(state), Some(client)) = (state, client) else {
        return next.call(req).await.map(IntoResponse::into_response);
    };
    if !req.uri().path().starts_with("/api/") {
        return next.call(req).await.map(IntoResponse::into_response);
    }
    let body = match req
        .take_body()
        .into_bytes_limit(BODY_BYTES_MAX as usize)
        .await
    {
        Ok(b) => b,
        Err(_) => {
            let detail = format!("request bodies are limited to {BODY_BYTES_MAX} bytes");
            return Ok(ApiError::too_large(detail).into_response());
        }
    };
    req.set_body(body.clone());
    let forwarded = req.headers().contains_key(FORWARDED_HEADER);
    let parts = Parts {
        method: req.method().clone(),
        path_and_query: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned()),
        headers: req.headers().clone(),
        body,
    };
    let resp = match next.call(req).await {
        Ok(r) => r.into_response(),
        // Operations answer their errors as `Err`; only a 503 is looked at.
        Err(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE => e.into_response(),
        Err(e) => return Err(e),
    };
    let (resp, owned_elsewhere) = refused_as_owned_elsewhere(resp).await;
    if !owned_elsewhere {
        return Ok(resp);
    }
    if forwarded {
        count(Outcome::SecondHop);
        return Ok(with_retry_after(resp));
    }
    Ok(forward(&state, &client, parts).await)
}

/// What is sent on of the request.
struct Parts {
    method: poem::http::Method,
    path_and_query: String,
    headers: HeaderMap,
    body: bytes::Bytes,
}

/// Whether `resp` is `503 tenant_owned_elsewhere`, and `resp` itself with
/// its body intact: a 503 whose body is longer than a refusal can be is
/// not one, and goes on whole, as it came (the part already read, then the
/// rest), never cut.
async fn refused_as_owned_elsewhere(resp: Response) -> (Response, bool) {
    use futures::StreamExt;
    if resp.status() != StatusCode::SERVICE_UNAVAILABLE {
        return (resp, false);
    }
    let (parts, body) = resp.into_parts();
    let mut stream = body.into_bytes_stream();
    let mut head: Vec<bytes::Bytes> = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let failed = match chunk {
            Ok(c) => {
                seen += c.len();
                head.push(c);
                None
            }
            Err(e) => Some(e),
        };
        if failed.is_some() || seen > REFUSAL_BYTES_MAX {
            let read = futures::stream::iter(head.into_iter().map(Ok));
            let failed = futures::stream::iter(failed.map(Err));
            let body = Body::from_bytes_stream(read.chain(failed).chain(stream));
            return (Response::from_parts(parts, body), false);
        }
    }
    let bytes = bytes::Bytes::from(head.concat());
    let code = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned));
    let resp = Response::from_parts(parts, Body::from(bytes));
    (resp, code.as_deref() == Some(OWNED_ELSEWHERE))
}

fn with_retry_after(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert("retry-after", HeaderValue::from(FORWARD_RETRY_AFTER_S));
    resp
}

fn refusal(outcome: Outcome, code: &str, detail: String) -> Response {
    count(outcome);
    tracing::warn!(code, detail = %detail, "not forwarded to the tenant's owner");
    with_retry_after(ApiError::unavailable(code, detail).into_response())
}

/// Sends the call to the tenant's lease holder and returns its answer.
async fn forward(state: &AppState, client: &reqwest::Client, parts: Parts) -> Response {
    let Some(tenant) = tenant_of(state, &parts.headers) else {
        // The call was admitted here, so its tenant resolves; a token
        // revoked in between lands here.
        let detail = "the tenant of this call is no longer known here".to_owned();
        return refusal(Outcome::LeaseMoving, "tenant_lease_moving", detail);
    };
    let Some(node) = &state.node.node else {
        return refusal(Outcome::LeaseMoving, "tenant_lease_moving", String::new());
    };
    let holder = match node.cluster().holder(&tenant).await {
        Ok(h) => h,
        Err(e) => {
            let detail = format!("cannot read the tenant's lease from the store: {e}");
            return refusal(
                Outcome::OwnerUnreachable,
                "tenant_owner_unreachable",
                detail,
            );
        }
    };
    let holder = match holder {
        Some(h) if h.node != state.node.me.id => h,
        _ => {
            let detail = "the tenant's lease is moving between nodes; retry shortly".to_owned();
            return refusal(Outcome::LeaseMoving, "tenant_lease_moving", detail);
        }
    };
    if holder
        .address
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_unspecified())
    {
        let detail = format!(
            "the tenant's owner {} registered the wildcard address {}; \
             bind every node to an address the others can reach",
            holder.node, holder.address
        );
        return refusal(
            Outcome::OwnerUnreachable,
            "tenant_owner_unreachable",
            detail,
        );
    }
    let url = format!("http://{}{}", holder.address, parts.path_and_query);
    let sent = client
        .request(parts.method, url)
        .headers(end_to_end(&parts.headers))
        .header(FORWARDED_HEADER, state.node.me.id.as_str())
        .body(parts.body)
        .send()
        .await;
    let answer = match sent {
        Ok(a) => a,
        Err(e) => {
            let detail = format!("the tenant's owner {} did not answer: {e}", holder.node);
            return refusal(
                Outcome::OwnerUnreachable,
                "tenant_owner_unreachable",
                detail,
            );
        }
    };
    relay(answer, &holder.node.to_string()).await
}

/// The owner's answer as this node's: its status, its end-to-end headers,
/// its body (at most [`BODY_BYTES_MAX`]).
async fn relay(mut answer: reqwest::Response, owner: &str) -> Response {
    let status = answer.status();
    let headers = end_to_end(answer.headers());
    let mut body = Vec::new();
    loop {
        match answer.chunk().await {
            Ok(Some(chunk)) if (body.len() + chunk.len()) as u64 <= BODY_BYTES_MAX => {
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Ok(Some(_)) => {
                let detail = format!("the owner's answer is over {BODY_BYTES_MAX} bytes");
                return refusal(
                    Outcome::OwnerUnreachable,
                    "tenant_owner_unreachable",
                    detail,
                );
            }
            Err(e) => {
                let detail = format!("the tenant's owner {owner} broke off its answer: {e}");
                return refusal(
                    Outcome::OwnerUnreachable,
                    "tenant_owner_unreachable",
                    detail,
                );
            }
        }
    }
    count(Outcome::Forwarded);
    tracing::info!(
        owner,
        status = status.as_u16(),
        "forwarded to the tenant's owner"
    );
    let mut resp = Response::builder().status(status).body(body);
    *resp.headers_mut() = headers;
    resp
}

/// `headers` less the hop-by-hop ones (and those `Connection` names) and
/// any forwarding mark the client sent (the forwarder sets its own).
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|n| n.trim().to_ascii_lowercase()))
        .collect();
    let mut kept = HeaderMap::new();
    for (name, value) in headers {
        let n = name.as_str();
        let dropped = HOP_BY_HOP.contains(&n)
            || named.iter().any(|x| x == n)
            || n.eq_ignore_ascii_case(FORWARDED_HEADER);
        if !dropped {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

/// The tenant a call admitted here acts in: the slug it names, else its
/// tenant token's tenant (as `auth::tenant_access` resolved it).
fn tenant_of(state: &AppState, headers: &HeaderMap) -> Option<TenantId> {
    let slug = headers
        .get(crate::auth::TENANT_HEADER)
        .and_then(|v| v.to_str().ok());
    if let Some(slug) = slug {
        return state.directory.tenant_by_slug(slug).map(|t| t.id);
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })?;
    match state.directory.lookup(token.trim())? {
        TokenOwner::Tenant(t) => Some(t.tenant),
        TokenOwner::PlatformAdmin => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::HeaderName;

    fn unavailable(body: Body) -> Response {
        Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(body)
    }

    /// Only the refusal is taken for one, and no answer's body is lost on
    /// the way: not a long 503's (it used to go out empty), not a body
    /// that arrives in chunks.
    #[tokio::test]
    async fn a_refusal_is_recognised_and_every_other_503_goes_on_whole() {
        let refusal = r#"{"status":503,"code":"tenant_owned_elsewhere","detail":"x"}"#;
        let (resp, refused) = refused_as_owned_elsewhere(unavailable(refusal.into())).await;
        assert!(refused);
        assert_eq!(resp.into_body().into_string().await.unwrap(), refusal);

        let other = r#"{"status":503,"code":"backpressure","detail":"x"}"#;
        let (resp, refused) = refused_as_owned_elsewhere(unavailable(other.into())).await;
        assert!(!refused);
        assert_eq!(resp.into_body().into_string().await.unwrap(), other);

        // Longer than any refusal, in chunks: passed through byte for byte.
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = (0..40u8)
            .map(|i| Ok(bytes::Bytes::from(vec![i; 4096])))
            .collect();
        let want: Vec<u8> = (0..40u8).flat_map(|i| vec![i; 4096]).collect();
        let body = Body::from_bytes_stream(futures::stream::iter(chunks));
        let (resp, refused) = refused_as_owned_elsewhere(unavailable(body)).await;
        assert!(!refused);
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.into_body().into_vec().await.unwrap(), want);

        let ok = Response::builder().body("fine");
        let (resp, refused) = refused_as_owned_elsewhere(ok).await;
        assert!(!refused);
        assert_eq!(resp.into_body().into_string().await.unwrap(), "fine");
    }

    #[test]
    fn only_end_to_end_headers_go_on_and_the_callers_credentials_unchanged() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer ext_abc"),
            ("x-tenant-slug", "acme"),
            ("content-type", "application/yaml"),
            ("if-match", "\"3\""),
            ("connection", "keep-alive, x-private-hop"),
            ("x-private-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("host", "10.0.0.1:8080"),
            ("content-length", "12"),
            ("upgrade", "websocket"),
            ("x-extensor-forwarded-by", "node_forged"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let kept = end_to_end(&h);
        let names: Vec<&str> = kept.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            ["authorization", "x-tenant-slug", "content-type", "if-match"]
        );
        assert_eq!(kept["authorization"], "Bearer ext_abc");
        assert_eq!(kept["x-tenant-slug"], "acme");
    }
}
