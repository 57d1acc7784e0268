//! Request logging and HTTP metrics, as one poem middleware around every
//! endpoint. Each request gets an id (the caller's `X-Request-Id` if it is
//! sane, else a fresh ULID), echoed in the response, and runs inside a
//! `request` span carrying the id, the tenant slug and the plugin, so every
//! log line the request causes names them. One line is logged per request
//! when it finishes.

use std::sync::OnceLock;
use std::time::Instant;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

/// No request body may exceed this (plugin uploads are the largest; their
/// own, smaller cap applies on top). Bodies without a length are cut off
/// here while streaming, so a chunked upload cannot grow without bound.
pub const BODY_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Caller-supplied request ids longer than this are replaced.
const REQUEST_ID_BYTES_MAX: usize = 64;
/// Characters of the request path in its log line.
const LOGGED_PATH_CHARS_MAX: usize = 200;

/// Latency buckets in seconds: sub-millisecond plugin routes to slow uploads.
const LATENCY_BUCKETS_S: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// A gauge not set for this long is dropped from the output. Every gauge
/// is set at each scrape, just before rendering, so only series of things
/// that are gone (an evicted pool) age out.
pub const GAUGE_IDLE_MS: u64 = 60 * 1000;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use. `None` if
/// another recorder was installed first (then `/metrics` says so).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            // Gauges are set when `/metrics` is scraped (`Engine::set_gauges`);
            // one not set again for GAUGE_IDLE_MS (an evicted pool's) leaves
            // the output, so per-pool series stay bounded by the live pools.
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS_S)
                .ok()?
                .idle_timeout(
                    metrics_util::MetricKindMask::GAUGE,
                    Some(std::time::Duration::from_millis(GAUGE_IDLE_MS)),
                );
            match builder.install_recorder() {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The `area` label values, in [`area`] order.
const AREAS: [&str; 4] = ["plugin_route", "events", "management", "other"];
/// The `status` label values, in [`status_class`] order.
const STATUS_CLASSES: [&str; 6] = ["2xx", "3xx", "429", "4xx", "503", "5xx"];

/// Which family of endpoint a path is, for metric labels (bounded: never
/// the raw path): an index into [`AREAS`].
fn area(path: &str) -> usize {
    if path.starts_with("/ext/") {
        0
    } else if path.starts_with("/api/events") {
        1
    } else if path.starts_with("/api/") {
        2
    } else {
        3
    }
}

/// The request metrics' handles, each registered at its first use (so
/// `/metrics` shows the series that were counted, as a lookup would). A
/// labelled lookup per request hashed and compared its labels twice on
/// every request (docs/BENCHMARKS.md, plugin routes).
struct HttpMetrics {
    requests: [[OnceLock<metrics::Counter>; STATUS_CLASSES.len()]; AREAS.len()],
    seconds: [OnceLock<metrics::Histogram>; AREAS.len()],
}

impl HttpMetrics {
    const fn new() -> HttpMetrics {
        HttpMetrics {
            requests: [const { [const { OnceLock::new() }; STATUS_CLASSES.len()] }; AREAS.len()],
            seconds: [const { OnceLock::new() }; AREAS.len()],
        }
    }

    /// Counts one request of `area` that answered `status`, taking `elapsed`.
    fn record(&self, area: usize, status: u16, elapsed: std::time::Duration) {
        let class = status_class(status);
        let (a, s) = (AREAS[area], STATUS_CLASSES[class]);
        self.requests[area][class]
            .get_or_init(
                || metrics::counter!("extensor_http_requests_total", "area" => a, "status" => s),
            )
            .increment(1);
        self.seconds[area]
            .get_or_init(
                || metrics::histogram!("extensor_http_request_duration_seconds", "area" => a),
            )
            .record(elapsed.as_secs_f64());
    }
}

/// The process's request metrics (the recorder is process-wide too). A
/// handle belongs to the recorder installed when it was registered: `serve`
/// installs the Prometheus recorder before it accepts a request.
static HTTP_METRICS: HttpMetrics = HttpMetrics::new();

/// The plugin a request concerns, for the log span.
fn plugin_of(path: &str) -> &str {
    let rest = path
        .strip_prefix("/ext/")
        .or_else(|| path.strip_prefix("/api/plugins/"))
        .unwrap_or("");
    let seg = rest.split('/').next().unwrap_or("");
    if seg.len() > REQUEST_ID_BYTES_MAX {
        ""
    } else {
        seg
    }
}

fn request_id(req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= REQUEST_ID_BYTES_MAX
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map_or_else(|| ulid::Ulid::new().to_string(), str::to_owned)
}

/// Refuses a declared length over [`BODY_BYTES_MAX`], and caps an
/// undeclared one while it streams.
fn limit_body(req: &mut Request) -> Result<(), crate::error::ApiError> {
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_BYTES_MAX) {
        return Err(crate::error::ApiError::too_large(format!(
            "request bodies are limited to {BODY_BYTES_MAX} bytes"
        )));
    }
    if declared.is_none() {
        use futures::StreamExt;
        let mut seen = 0u64;
        let stream = req.take_body().into_bytes_stream().map(move |chunk| {
            let chunk = chunk?;
            seen += chunk.len() as u64;
            if seen > BODY_BYTES_MAX {
                return Err(std::io::Error::other(format!(
                    "request body over {BODY_BYTES_MAX} bytes"
                )));
            }
            Ok(chunk)
        });
        req.set_body(poem::Body::from_bytes_stream(stream));
    }
    Ok(())
}

/// The middleware: wrap with `.around(observe::around)`.
pub async fn around<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let started = Instant::now();
    if let Err(e) = limit_body(&mut req) {
        return Ok(e.into_response());
    }
    // An optional header that is present but unreadable is refused, not
    // taken for absent (which would act in the token's own tenant).
    if req
        .headers()
        .get(crate::auth::TENANT_HEADER)
        .is_some_and(|v| v.to_str().is_err())
    {
        let detail = format!("header {} is not visible ASCII", crate::auth::TENANT_HEADER);
        return Ok(crate::error::ApiError::bad_request("invalid_request", detail).into_response());
    }
    let id = request_id(&req);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = {
        let tenant = req
            .headers()
            .get(crate::auth::TENANT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map_or("", |t| chars_prefix(t, REQUEST_ID_BYTES_MAX));
        let plugin = plugin_of(&path);
        tracing::info_span!("request", id = %id, tenant = %tenant, plugin = %plugin)
    };
    let result = next.call(req).instrument(span.clone()).await;
    let mut resp = match result {
        Ok(r) => r.into_response(),
        Err(e) => crate::error::problem_catch_all(e).await,
    };
    let status = resp.status().as_u16();
    // RFC 9110: a 405 names the methods the resource has.
    if status == 405
        && let Some(allow) = crate::document::allowed_methods(&path)
    {
        resp.headers_mut()
            .insert("allow", HeaderValue::from_static(allow));
    }
    let elapsed = started.elapsed();
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    HTTP_METRICS.record(area(&path), status, elapsed);
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            path = %chars_prefix(&path, LOGGED_PATH_CHARS_MAX),
            status,
            ms = elapsed.as_secs_f64() * 1e3,
            "request"
        );
    });
    Ok(resp)
}

/// The first `n` characters of `s`, borrowed (logged per request, so no copy).
fn chars_prefix(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// An index into [`STATUS_CLASSES`].
fn status_class(status: u16) -> usize {
    match status {
        200..=299 => 0,
        300..=399 => 1,
        429 => 2,
        400..=499 => 3,
        503 => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::{HttpMetrics, area, chars_prefix};

    /// A request's series exist once such a request was counted, and only
    /// then, with the area and status class as labels.
    #[test]
    fn request_metrics_register_only_what_was_counted() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let m = HttpMetrics::new();
        let ms = std::time::Duration::from_millis(1);
        metrics::with_local_recorder(&recorder, || {
            m.record(area("/ext/shop/x"), 200, ms);
            m.record(area("/ext/shop/x"), 204, ms);
            m.record(area("/api/tenants"), 503, ms);
            m.record(area("/api/tenants"), 429, ms);
        });
        let mut seen: Vec<String> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let (_, key) = key.into_parts();
                let labels: Vec<String> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                let value = match value {
                    DebugValue::Counter(n) => n.to_string(),
                    DebugValue::Histogram(v) => format!("{} samples", v.len()),
                    DebugValue::Gauge(_) => "gauge".into(),
                };
                format!("{}{{{}}} {value}", key.name(), labels.join(","))
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                "extensor_http_request_duration_seconds{area=management} 2 samples",
                "extensor_http_request_duration_seconds{area=plugin_route} 2 samples",
                "extensor_http_requests_total{area=management,status=429} 1",
                "extensor_http_requests_total{area=management,status=503} 1",
                "extensor_http_requests_total{area=plugin_route,status=2xx} 2",
            ]
        );
    }

    #[test]
    fn chars_prefix_cuts_at_a_character_boundary() {
        assert_eq!(chars_prefix("abc", 5), "abc");
        assert_eq!(chars_prefix("abc", 2), "ab");
        assert_eq!(chars_prefix("äöü", 2), "äö");
        assert_eq!(chars_prefix("", 0), "");
    }
}
