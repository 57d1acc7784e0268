//! One delivery attempt from start to end; not an actor. The endpoint
//! actor runs it as a task it owns and receives the events to record back:
//! the endpoint appends them (many attempts' outcomes in one append) at the
//! revision at which its claim was checked, so a stale endpoint cannot
//! record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use extensor_core::aggregate::{Aggregate, DomainEvent};
use extensor_core::clock::Clock;
use extensor_core::event::{EventMeta, NewEvent, RecordedEvent, StreamId};
use extensor_core::ids::{EventId, TenantId};
use extensor_core::redact::Redactor;
use extensor_core::store::{EventStore, ReadFilter};
use extensor_core::webhook::delivery::{
    Delivery, DeliveryCommand, DeliveryEvent, Observed, Origin,
};
use extensor_core::webhook::registry::WebhookName;
use extensor_core::webhook::retry::{AttemptOutcome, RetryPolicy, parse_retry_after};
use extensor_core::webhook::signing::{SigningKey, signature_header};
use extensor_core::webhook::spec::DeliverySpec;
use extensor_js::host::net::{GuardedHttp, HTTP_REQUEST_BYTES_MAX, refusal_reason};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::code::{Code, Transformed};

/// Response bytes read for the excerpt; the rest is not read.
pub const RESPONSE_READ_BYTES_MAX: usize = 4 * 1024;
/// The event type of a test delivery (never in the log).
pub const TEST_EVENT_TYPE: &str = "webhook.test";
pub const USER_AGENT: &str = concat!("Extensor-Webhooks/", env!("CARGO_PKG_VERSION"));

/// Where and how to send: the declaration with its secrets resolved.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: reqwest::Url,
    pub host: String,
    pub headers: HeaderMap,
    pub keys: Vec<SigningKey>,
    pub timeout: Duration,
}

/// Resolves `${SECRET:NAME}` references. An error names the secret or the
/// field, never a secret's value.
pub fn resolve_target(
    spec: &DeliverySpec,
    secrets: &BTreeMap<String, String>,
) -> Result<Target, String> {
    let lookup = |n: &str| secrets.get(n).cloned();
    let missing = |n: String| format!("tenant secret `{n}` does not exist (any more)");
    let url = spec.url.resolve(&lookup).map_err(missing)?;
    extensor_core::webhook::spec::check_url(&url)
        .map_err(|_| "delivery.url does not resolve to an http(s) URL".to_string())?;
    let url = reqwest::Url::parse(&url).map_err(|e| format!("delivery.url is not a URL: {e}"))?;
    let host = url.host_str().ok_or("delivery.url has no host")?.to_owned();
    let mut headers = HeaderMap::new();
    for (name, value) in &spec.headers {
        let v = value.resolve(&lookup).map_err(missing)?;
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header `{name}` is not valid"))?;
        let v = HeaderValue::from_str(&v)
            .map_err(|_| format!("header `{name}` has a value HTTP cannot carry"))?;
        headers.insert(n, v);
    }
    let mut keys = Vec::new();
    for (i, s) in spec.signing.iter().flat_map(|s| &s.secrets).enumerate() {
        let raw = s.resolve(&lookup).map_err(missing)?;
        keys.push(SigningKey::parse(&raw).map_err(|e| format!("signing secret {i}: {e}"))?);
    }
    Ok(Target {
        url,
        host,
        headers,
        keys,
        timeout: Duration::from_millis(spec.timeout_ms),
    })
}

/// What every attempt of one webhook (at one revision) shares.
pub struct AttemptCx {
    pub tenant: TenantId,
    pub name: WebhookName,
    pub store: Arc<dyn EventStore>,
    pub http: Arc<GuardedHttp>,
    pub target: Result<Target, String>,
    pub code: Option<Arc<Code>>,
    pub policy: RetryPolicy,
    /// Every tenant secret value: what an attempt records (error, response
    /// excerpt) goes through it, so neither a resolved URL or header nor
    /// a signing key nor a receiver echoing one back reaches the log.
    pub redactor: Redactor,
    /// Where attempt times come from (tests drive the auto-disable period
    /// with a manual clock).
    pub clock: Arc<dyn Clock>,
}

/// The event as transforms and receivers see it.
pub fn event_json(tenant: &TenantId, ev: &RecordedEvent) -> Value {
    let data: Value = serde_json::from_str(ev.payload.get()).unwrap_or(Value::Null);
    json!({
        "id": ev.event_id,
        "type": ev.event_type,
        "tenant": tenant,
        "time": ev.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": data,
    })
}

/// Runs one attempt of `delivery` and answers the events to record. `Err`
/// means there is nothing to record (its event could not be read); the
/// delivery stays pending.
pub async fn run(
    cx: Arc<AttemptCx>,
    delivery: Delivery,
    event: Option<Arc<RecordedEvent>>,
) -> Result<Vec<DeliveryEvent>, String> {
    let created = delivery
        .created
        .clone()
        .ok_or("attempt of a delivery never created")?;
    let id = created.delivery_id.to_string();
    let event_value = match (&created.origin, event) {
        (Origin::Test, _) => json!({
            "id": created.event_id,
            "type": TEST_EVENT_TYPE,
            "tenant": cx.tenant,
            "time": created.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "data": {"test": true, "webhook": cx.name.as_str()},
        }),
        (_, Some(ev)) => event_json(&cx.tenant, &ev),
        (_, None) => event_json(
            &cx.tenant,
            &load_event(
                &*cx.store,
                &cx.tenant,
                created.event_position,
                &created.event_id,
            )
            .await?,
        ),
    };
    let command = match prepare_body(&cx, &id, created.event_id.as_str(), &event_value).await {
        Prepared::Skip(reason) => DeliveryCommand::Skip {
            at: cx.clock.now(),
            reason,
        },
        Prepared::Failed(error) => record(observed_error(AttemptOutcome::Transform, error), &cx),
        Prepared::Body(body) => {
            let observed = match &cx.target {
                Ok(t) => post(&cx.http, t, &id, body).await,
                Err(e) => observed_error(AttemptOutcome::Refused, e.clone()),
            };
            record(observed, &cx)
        }
    };
    delivery.decide(&command).map_err(|e| e.to_string())
}

enum Prepared {
    Body(Vec<u8>),
    Skip(String),
    Failed(String),
}

async fn prepare_body(cx: &AttemptCx, id: &str, event_id: &str, event: &Value) -> Prepared {
    let Some(code) = &cx.code else {
        return Prepared::Body(serde_json::to_vec(event).unwrap_or_default());
    };
    match code.keep(id, event_id, event).await {
        Ok(true) => {}
        Ok(false) => return Prepared::Skip("the filter returned false".into()),
        Err(e) => return Prepared::Failed(e),
    }
    match code.transform(id, event_id, event).await {
        Ok(Transformed::Skip) => Prepared::Skip("the transform returned null".into()),
        Ok(Transformed::Body(v)) => match serde_json::to_vec(&v) {
            Ok(b) if b.len() <= HTTP_REQUEST_BYTES_MAX => Prepared::Body(b),
            Ok(b) => Prepared::Failed(format!(
                "the transform's body is {} bytes; the limit is {HTTP_REQUEST_BYTES_MAX}",
                b.len()
            )),
            Err(e) => Prepared::Failed(format!("the transform's result is not JSON: {e}")),
        },
        Err(e) => Prepared::Failed(e),
    }
}

/// The attempt to record, its texts redacted (the one place an attempt's
/// error or response excerpt is written from).
fn record(mut observed: Observed, cx: &AttemptCx) -> DeliveryCommand {
    observed.at = cx.clock.now();
    observed.error = observed.error.map(|e| cx.redactor.outbound(&e));
    observed.response_excerpt = cx.redactor.redact_opt(observed.response_excerpt.as_deref());
    DeliveryCommand::RecordAttempt {
        observed,
        policy: cx.policy,
        random: super::random_unit(),
    }
}

fn observed_error(outcome: AttemptOutcome, error: String) -> Observed {
    Observed {
        at: Utc::now(),
        outcome,
        latency_ms: 0,
        response_excerpt: None,
        error: Some(error),
        retry_after: None,
    }
}

/// Reads the delivery's event back from the log (after a restart).
async fn load_event(
    store: &dyn EventStore,
    tenant: &TenantId,
    position: u64,
    event_id: &EventId,
) -> Result<RecordedEvent, String> {
    let filter = ReadFilter {
        stream: Some(StreamId::business_events(tenant)),
        position_max: Some(position),
        ..ReadFilter::default()
    };
    let found = store
        .read_all(position.saturating_sub(1), filter, 1)
        .await
        .map_err(|e| e.to_string())?;
    found
        .into_iter()
        .find(|e| &e.event_id == event_id)
        .ok_or_else(|| {
            format!("event {event_id} is not at position {position} of the tenant's events")
        })
}

/// POSTs `body`, signed, through the guarded client, within the timeout.
pub async fn post(http: &GuardedHttp, t: &Target, msg_id: &str, body: Vec<u8>) -> Observed {
    let at = Utc::now();
    if let Err(why) = http
        .guard()
        .check_url(&t.url, std::slice::from_ref(&t.host))
    {
        return observed_error(AttemptOutcome::Refused, why);
    }
    let request = signed_request(http, t, msg_id, at.timestamp(), body);
    let started = Instant::now();
    let result = tokio::time::timeout(t.timeout, exchange(request)).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match result {
        Err(_) => Observed {
            at,
            latency_ms,
            ..observed_error(
                AttemptOutcome::Timeout,
                format!("no complete answer within {} ms", t.timeout.as_millis()),
            )
        },
        Ok(Ok(answer)) => {
            let text = String::from_utf8_lossy(&answer.excerpt).into_owned();
            Observed {
                at,
                outcome: AttemptOutcome::Status {
                    status: answer.status,
                },
                latency_ms,
                response_excerpt: (!text.is_empty()).then_some(text),
                error: None,
                retry_after: answer.retry_after,
            }
        }
        Ok(Err(e)) => Observed {
            at,
            latency_ms,
            ..transport_failure(&e)
        },
    }
}

/// The request with the Standard Webhooks headers (`webhook-id`,
/// `webhook-timestamp`, and `webhook-signature` when the webhook signs).
fn signed_request(
    http: &GuardedHttp,
    t: &Target,
    msg_id: &str,
    ts: i64,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let mut rb = http
        .client()
        .post(t.url.clone())
        .headers(t.headers.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, USER_AGENT)
        .header("webhook-id", msg_id)
        .header("webhook-timestamp", ts.to_string())
        .timeout(t.timeout);
    if !t.keys.is_empty() {
        rb = rb.header(
            "webhook-signature",
            signature_header(&t.keys, msg_id, ts, &body),
        );
    }
    rb.body(body)
}

/// What came back from the receiver: status, `Retry-After`, and at most
/// `RESPONSE_READ_BYTES_MAX` bytes of the body.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    excerpt: Vec<u8>,
}

async fn exchange(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let mut resp = request.send().await?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, Utc::now()));
    let mut excerpt = Vec::new();
    while excerpt.len() < RESPONSE_READ_BYTES_MAX {
        match resp.chunk().await? {
            Some(c) => excerpt.extend_from_slice(&c),
            None => break,
        }
    }
    excerpt.truncate(RESPONSE_READ_BYTES_MAX);
    Ok(Answer {
        status,
        retry_after,
        excerpt,
    })
}

/// A request that failed below HTTP: refused by the guard at connect time,
/// timed out, or a connection error.
fn transport_failure(e: &reqwest::Error) -> Observed {
    if let Some(why) = refusal_reason(e) {
        return observed_error(AttemptOutcome::Refused, why);
    }
    let outcome = if e.is_timeout() {
        AttemptOutcome::Timeout
    } else {
        AttemptOutcome::Connection
    };
    observed_error(outcome, error_chain(e))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

pub fn to_new_events(events: &[DeliveryEvent], meta: &EventMeta) -> Result<Vec<NewEvent>, String> {
    events
        .iter()
        .map(|e| {
            Ok(NewEvent {
                event_id: EventId::generate(),
                event_type: e.event_type().into(),
                schema_version: e.schema_version(),
                meta: meta.clone(),
                payload: e.to_payload().map_err(|e| e.to_string())?,
            })
        })
        .collect()
}
