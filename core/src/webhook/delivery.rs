//! One delivery: an event (or a test message) on its way to one webhook.
//! Created, then attempted until delivered, failed or skipped. Pure
//! decide/apply; the webhook's actor stores the events of all its
//! deliveries in one stream (`webhook_deliveries-<tenant>.<name>`) and
//! routes each to its delivery by id.
//!
//! Every attempt is recorded with its time, status, latency, a response
//! excerpt and the error, and whether (and when) another attempt follows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::retry::{AttemptOutcome, RetryPolicy, Verdict, classify};
use crate::aggregate::{Aggregate, DomainEvent, parse_payload, refuse, to_raw};
use crate::error::DomainError;
use crate::ids::{DeliveryId, EventId};

/// The response body kept per attempt: enough to see the receiver's error.
pub const RESPONSE_EXCERPT_CHARS_MAX: usize = 1_024;
/// Error texts kept per attempt.
pub const ERROR_CHARS_MAX: usize = 1_024;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    #[default]
    New,
    Pending,
    Delivered,
    Failed,
    Skipped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::New => "new",
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Skipped => "skipped",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Delivered | DeliveryStatus::Failed | DeliveryStatus::Skipped
        )
    }
}

/// Why a delivery exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// A matching event in the tenant's stream.
    Event,
    /// An operator asked to deliver an earlier delivery's event again.
    Redeliver { of: DeliveryId },
    /// A replay of a time range.
    Replay,
    /// `send a test delivery`.
    Test,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    pub delivery_id: DeliveryId,
    /// The webhook revision whose declaration the delivery follows.
    pub webhook_revision: u32,
    pub event_id: EventId,
    pub event_type: String,
    /// The event's global position (0 for test messages).
    pub event_position: u64,
    pub origin: Origin,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub delivery_id: DeliveryId,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
    /// The HTTP status, when the receiver answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    /// When the next attempt is due; `None` when this was the last.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    pub delivery_id: DeliveryId,
    pub at: DateTime<Utc>,
    /// For failed and skipped deliveries: why.
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryEvent {
    Created(Box<Created>),
    Attempted(Box<Attempt>),
    Delivered(Finished),
    Failed(Finished),
    Skipped(Finished),
}

impl DeliveryEvent {
    pub fn delivery_id(&self) -> &DeliveryId {
        match self {
            DeliveryEvent::Created(c) => &c.delivery_id,
            DeliveryEvent::Attempted(a) => &a.delivery_id,
            DeliveryEvent::Delivered(f) | DeliveryEvent::Failed(f) | DeliveryEvent::Skipped(f) => {
                &f.delivery_id
            }
        }
    }
}

/// Event types; `webhook.delivered` and `webhook.failed` are the seed's
/// audit names.
pub mod types {
    pub const CREATED: &str = "webhook.delivery_created";
    pub const ATTEMPTED: &str = "webhook.delivery_attempted";
    pub const DELIVERED: &str = "webhook.delivered";
    pub const FAILED: &str = "webhook.failed";
    pub const SKIPPED: &str = "webhook.delivery_skipped";
}

impl DomainEvent for DeliveryEvent {
    fn event_type(&self) -> &'static str {
        match self {
            DeliveryEvent::Created(_) => types::CREATED,
            DeliveryEvent::Attempted(_) => types::ATTEMPTED,
            DeliveryEvent::Delivered(_) => types::DELIVERED,
            DeliveryEvent::Failed(_) => types::FAILED,
            DeliveryEvent::Skipped(_) => types::SKIPPED,
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn to_payload(&self) -> Result<Box<RawValue>, serde_json::Error> {
        match self {
            DeliveryEvent::Created(c) => to_raw(c),
            DeliveryEvent::Attempted(a) => to_raw(a),
            DeliveryEvent::Delivered(f) | DeliveryEvent::Failed(f) | DeliveryEvent::Skipped(f) => {
                to_raw(f)
            }
        }
    }

    fn decode(event_type: &str, version: u32, payload: &RawValue) -> Result<Self, String> {
        Ok(match (event_type, version) {
            (types::CREATED, 1) => DeliveryEvent::Created(parse_payload(payload)?),
            (types::ATTEMPTED, 1) => DeliveryEvent::Attempted(parse_payload(payload)?),
            (types::DELIVERED, 1) => DeliveryEvent::Delivered(parse_payload(payload)?),
            (types::FAILED, 1) => DeliveryEvent::Failed(parse_payload(payload)?),
            (types::SKIPPED, 1) => DeliveryEvent::Skipped(parse_payload(payload)?),
            (t, v) => return Err(format!("unknown delivery event type `{t}` version {v}")),
        })
    }
}

/// The result of one attempt, as the delivery engine observed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
    pub latency_ms: u64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    /// The receiver's `Retry-After`, already parsed.
    pub retry_after: Option<std::time::Duration>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DeliveryCommand {
    Create(Box<Created>),
    /// Records an attempt and decides, with `policy`, what follows.
    /// `random` in [0, 1) feeds the backoff jitter.
    RecordAttempt {
        observed: Observed,
        policy: RetryPolicy,
        random: f64,
    },
    Skip {
        at: DateTime<Utc>,
        reason: String,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: Option<DeliveryId>,
    pub status: DeliveryStatus,
    pub created: Option<Created>,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    /// The verdict of the last attempt (tells a 410 apart).
    pub last_verdict: Option<Verdict>,
}

fn cut(s: &str, chars_max: usize) -> String {
    if s.chars().count() <= chars_max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(chars_max).collect();
    out.push('…');
    out
}

impl Delivery {
    fn refuse(&self, code: &'static str, message: impl Into<String>) -> DomainError {
        refuse("delivery", self.status.as_str(), code, message)
    }

    fn id(&self) -> Result<DeliveryId, DomainError> {
        self.id
            .clone()
            .ok_or_else(|| self.refuse("delivery_not_found", "the delivery does not exist"))
    }

    fn decide_attempt(
        &self,
        o: &Observed,
        policy: &RetryPolicy,
        random: f64,
    ) -> Result<Vec<DeliveryEvent>, DomainError> {
        let delivery_id = self.id()?;
        if self.status != DeliveryStatus::Pending {
            return Err(self.refuse("delivery_finished", "only a pending delivery is attempted"));
        }
        let attempt = self.attempts + 1;
        let verdict = classify(&o.outcome);
        let next = match verdict {
            Verdict::Retry => policy.next_delay(attempt, random, o.retry_after),
            _ => None,
        };
        let next_attempt_at =
            next.map(|d| o.at + chrono::Duration::from_std(d).unwrap_or_default());
        let status = match o.outcome {
            AttemptOutcome::Status { status } => Some(status),
            _ => None,
        };
        let mut events = vec![DeliveryEvent::Attempted(Box::new(Attempt {
            delivery_id: delivery_id.clone(),
            attempt,
            at: o.at,
            outcome: o.outcome.clone(),
            status,
            latency_ms: o.latency_ms,
            response_excerpt: o
                .response_excerpt
                .as_deref()
                .map(|s| cut(s, RESPONSE_EXCERPT_CHARS_MAX)),
            error: o.error.as_deref().map(|s| cut(s, ERROR_CHARS_MAX)),
            next_attempt_at,
        }))];
        let finished = |reason: Option<String>| Finished {
            delivery_id: delivery_id.clone(),
            at: o.at,
            reason,
        };
        match verdict {
            Verdict::Delivered => events.push(DeliveryEvent::Delivered(finished(None))),
            Verdict::Retry if next.is_some() => {}
            _ => events.push(DeliveryEvent::Failed(finished(Some(failure_reason(
                verdict, o, attempt,
            ))))),
        }
        Ok(events)
    }
}

fn failure_reason(verdict: Verdict, o: &Observed, attempt: u32) -> String {
    let what = match (&o.outcome, &o.error) {
        (AttemptOutcome::Status { status }, _) => format!("HTTP {status}"),
        (_, Some(e)) => cut(e, 200),
        (other, None) => format!("{other:?}"),
    };
    match verdict {
        Verdict::Gone => format!("{what}: the receiver says the endpoint is gone"),
        Verdict::Retry => format!("{what} after {attempt} attempts (no attempts left)"),
        _ => format!("{what}: not retried"),
    }
}

impl Aggregate for Delivery {
    type Command = DeliveryCommand;
    type Event = DeliveryEvent;
    const KIND: &'static str = "delivery";
    const SNAPSHOT_VERSION: u32 = 1;

    fn decide(&self, command: &DeliveryCommand) -> Result<Vec<DeliveryEvent>, DomainError> {
        match command {
            DeliveryCommand::Create(c) => {
                if self.status != DeliveryStatus::New {
                    return Err(self.refuse("delivery_exists", "the delivery already exists"));
                }
                Ok(vec![DeliveryEvent::Created(c.clone())])
            }
            DeliveryCommand::RecordAttempt {
                observed,
                policy,
                random,
            } => self.decide_attempt(observed, policy, *random),
            DeliveryCommand::Skip { at, reason } => {
                let delivery_id = self.id()?;
                if self.status != DeliveryStatus::Pending {
                    return Err(
                        self.refuse("delivery_finished", "only a pending delivery is skipped")
                    );
                }
                Ok(vec![DeliveryEvent::Skipped(Finished {
                    delivery_id,
                    at: *at,
                    reason: Some(cut(reason, ERROR_CHARS_MAX)),
                })])
            }
        }
    }

    fn apply(&mut self, event: &DeliveryEvent) -> Result<(), String> {
        if let Some(id) = &self.id
            && id != event.delivery_id()
        {
            return Err(format!("event of {} applied to {id}", event.delivery_id()));
        }
        match event {
            DeliveryEvent::Created(c) => {
                if self.status != DeliveryStatus::New {
                    return Err(format!("{} created twice", c.delivery_id));
                }
                self.id = Some(c.delivery_id.clone());
                self.status = DeliveryStatus::Pending;
                self.created = Some((**c).clone());
            }
            _ if self.status != DeliveryStatus::Pending => {
                return Err(format!(
                    "{} on a {} delivery",
                    event.event_type(),
                    self.status.as_str()
                ));
            }
            DeliveryEvent::Attempted(a) => {
                if a.attempt != self.attempts + 1 {
                    return Err(format!(
                        "attempt {} follows attempt {}",
                        a.attempt, self.attempts
                    ));
                }
                self.attempts = a.attempt;
                self.last_status = a.status;
                self.last_error = a.error.clone();
                self.next_attempt_at = a.next_attempt_at;
                self.last_verdict = Some(classify(&a.outcome));
            }
            DeliveryEvent::Delivered(f) | DeliveryEvent::Failed(f) | DeliveryEvent::Skipped(f) => {
                self.status = match event {
                    DeliveryEvent::Delivered(_) => DeliveryStatus::Delivered,
                    DeliveryEvent::Failed(_) => DeliveryStatus::Failed,
                    _ => DeliveryStatus::Skipped,
                };
                self.next_attempt_at = None;
                self.finished_at = Some(f.at);
                self.reason = f.reason.clone();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::retry::Backoff;

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            backoff: Backoff::Fixed { interval_ms: 100 },
        }
    }

    fn created() -> Delivery {
        let mut d = Delivery::default();
        let c = Created {
            delivery_id: DeliveryId::generate(),
            webhook_revision: 1,
            event_id: EventId::generate(),
            event_type: "build.completed".into(),
            event_position: 7,
            origin: Origin::Event,
            at: Utc::now(),
        };
        run(&mut d, DeliveryCommand::Create(Box::new(c))).unwrap();
        d
    }

    fn run(d: &mut Delivery, cmd: DeliveryCommand) -> Result<Vec<&'static str>, DomainError> {
        let events = d.decide(&cmd)?;
        for e in &events {
            let raw = e.to_payload().unwrap();
            d.apply(&DeliveryEvent::decode(e.event_type(), 1, &raw).unwrap())
                .unwrap();
        }
        Ok(events.iter().map(DomainEvent::event_type).collect())
    }

    fn attempt(d: &mut Delivery, outcome: AttemptOutcome, max: u32) -> Vec<&'static str> {
        let observed = Observed {
            at: Utc::now(),
            outcome,
            latency_ms: 3,
            response_excerpt: Some("x".repeat(5_000)),
            error: None,
            retry_after: None,
        };
        run(
            d,
            DeliveryCommand::RecordAttempt {
                observed,
                policy: policy(max),
                random: 0.5,
            },
        )
        .unwrap()
    }

    #[test]
    fn retry_then_deliver() {
        let mut d = created();
        assert_eq!(
            attempt(&mut d, AttemptOutcome::Status { status: 500 }, 3),
            vec![types::ATTEMPTED]
        );
        assert_eq!(d.status, DeliveryStatus::Pending);
        assert!(d.next_attempt_at.is_some());
        assert_eq!(
            attempt(&mut d, AttemptOutcome::Status { status: 200 }, 3),
            vec![types::ATTEMPTED, types::DELIVERED]
        );
        assert_eq!(
            (d.status, d.attempts, d.next_attempt_at),
            (DeliveryStatus::Delivered, 2, None)
        );
        let again = d.decide(&DeliveryCommand::Skip {
            at: Utc::now(),
            reason: "x".into(),
        });
        assert_eq!(again.unwrap_err().code, "delivery_finished");
    }

    #[test]
    fn exhausted_gone_and_permanent_failures() {
        let mut d = created();
        attempt(&mut d, AttemptOutcome::Timeout, 2);
        assert_eq!(
            attempt(&mut d, AttemptOutcome::Connection, 2),
            vec![types::ATTEMPTED, types::FAILED]
        );
        assert!(
            d.reason.as_deref().unwrap().contains("no attempts left"),
            "{:?}",
            d.reason
        );
        let mut gone = created();
        attempt(&mut gone, AttemptOutcome::Status { status: 410 }, 5);
        assert_eq!(
            (gone.status, gone.last_verdict),
            (DeliveryStatus::Failed, Some(Verdict::Gone))
        );
        let mut bad = created();
        attempt(&mut bad, AttemptOutcome::Status { status: 400 }, 5);
        assert_eq!((bad.status, bad.attempts), (DeliveryStatus::Failed, 1));
    }

    #[test]
    fn excerpts_are_cut_and_skips_recorded() {
        let d = created();
        let events = d
            .decide(&DeliveryCommand::RecordAttempt {
                observed: Observed {
                    at: Utc::now(),
                    outcome: AttemptOutcome::Status { status: 503 },
                    latency_ms: 1,
                    response_excerpt: Some("y".repeat(10_000)),
                    error: None,
                    retry_after: Some(std::time::Duration::from_secs(30)),
                },
                policy: policy(3),
                random: 0.0,
            })
            .unwrap();
        let DeliveryEvent::Attempted(a) = &events[0] else {
            panic!()
        };
        assert!(
            a.response_excerpt.as_ref().unwrap().chars().count() <= RESPONSE_EXCERPT_CHARS_MAX + 1
        );
        assert!(
            a.next_attempt_at.unwrap() - a.at >= chrono::Duration::seconds(30),
            "Retry-After honoured"
        );
        let mut s = created();
        assert_eq!(
            run(
                &mut s,
                DeliveryCommand::Skip {
                    at: Utc::now(),
                    reason: "transform returned null".into()
                }
            )
            .unwrap(),
            vec![types::SKIPPED]
        );
        assert_eq!(s.status, DeliveryStatus::Skipped);
    }
}
