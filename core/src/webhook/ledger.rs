//! One webhook's deliveries stream (`webhook_deliveries-<tenant>.<name>`)
//! folded into what its endpoint needs to run: the claim epoch, how far the
//! tenant's events have been read, the pending deliveries, and since when
//! the receiver has been failing. Pure: the endpoint actor reads, appends
//! and snapshots it.
//!
//! Besides the delivery events ([`DeliveryEvent`]) the stream holds the
//! endpoint's own records:
//! - `webhook.endpoint_claimed`: an endpoint starting claims the stream with
//!   the next epoch; every later record is appended at the revision at which
//!   that epoch was checked, so a stale endpoint can neither attempt nor
//!   record (the fencing token of the durable-work model).
//! - `webhook.endpoint_cursor`: the tenant's events have been read up to a
//!   position and every matching one is durably a delivery; appended with
//!   the creations of a batch (and alone when the endpoint passed over
//!   events while disabled or none matched for a while).
//! - `webhook.endpoint_resumed`: the webhook was enabled again.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::delivery::{Delivery, DeliveryEvent, Origin};
use super::retry::{AttemptOutcome, Verdict, classify};
use crate::aggregate::{Aggregate, DomainEvent};
use crate::ids::DeliveryId;

/// The aggregate name of the ledger's snapshots.
pub const SNAPSHOT_AGGREGATE: &str = "webhook_endpoint";
/// Bumped whenever [`Ledger`]'s serialized form changes; older snapshots
/// are ignored (the stream rebuilds them).
pub const SNAPSHOT_VERSION: u32 = 1;

pub mod types {
    pub const CLAIMED: &str = "webhook.endpoint_claimed";
    pub const CURSOR: &str = "webhook.endpoint_cursor";
    /// The webhook was enabled again: the receiver's failure record starts
    /// afresh (else the next failure would disable it at once).
    pub const RESUMED: &str = "webhook.endpoint_resumed";
}

/// Whether `event_type` is one of the endpoint's own records (not a
/// delivery event): readers of deliveries pass over them.
pub fn is_endpoint_record(event_type: &str) -> bool {
    matches!(event_type, types::CLAIMED | types::CURSOR | types::RESUMED)
}

/// `webhook.endpoint_claimed` and `webhook.endpoint_cursor`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub epoch: u64,
    /// Every matching event of the tenant at or before this position is a
    /// delivery (or was passed over while the webhook was disabled).
    pub read_through: u64,
}

impl Mark {
    pub fn payload(&self) -> Result<Box<RawValue>, serde_json::Error> {
        serde_json::value::to_raw_value(self)
    }
}

/// The stream, folded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// The revision of the last record applied; `None`: an empty stream.
    pub revision: Option<u64>,
    /// The global position of the last record applied.
    pub position: u64,
    /// The newest claim.
    pub epoch: u64,
    pub read_through: u64,
    /// Deliveries without a final event, by id.
    pub pending: BTreeMap<DeliveryId, Delivery>,
    /// When the receiver first failed after its last success (`None`: its
    /// last answered attempt succeeded, or it never failed).
    pub failing_since: Option<DateTime<Utc>>,
    /// Failed attempts since the last success (for the ops view).
    pub failures_since_success: u32,
}

impl Ledger {
    /// Applies one record of the stream. A delivery event that does not
    /// follow (an attempt a stale incarnation recorded before it was
    /// fenced) is reported and passed over; an unknown type is an error.
    pub fn apply(
        &mut self,
        event_type: &str,
        schema_version: u32,
        payload: &RawValue,
        revision: u64,
        position: u64,
    ) -> Result<(), String> {
        self.revision = Some(revision);
        self.position = position;
        if is_endpoint_record(event_type) {
            let mark: Mark = serde_json::from_str(payload.get()).map_err(|e| e.to_string())?;
            if event_type == types::CLAIMED {
                self.epoch = self.epoch.max(mark.epoch);
            }
            if event_type == types::RESUMED {
                self.failing_since = None;
                self.failures_since_success = 0;
            }
            self.read_through = self.read_through.max(mark.read_through);
            return Ok(());
        }
        let ev = DeliveryEvent::decode(event_type, schema_version, payload)?;
        self.apply_delivery(&ev);
        Ok(())
    }

    /// Applies a delivery event (the endpoint applies its own appends with
    /// this before they are read back).
    pub fn apply_delivery(&mut self, ev: &DeliveryEvent) {
        if let DeliveryEvent::Created(c) = ev
            && c.origin == Origin::Event
        {
            self.read_through = self.read_through.max(c.event_position);
        }
        if let DeliveryEvent::Attempted(a) = ev {
            self.observe(&a.outcome, a.at);
        }
        let id = ev.delivery_id().clone();
        let d = self.pending.entry(id.clone()).or_default();
        if let Err(why) = d.apply(ev) {
            tracing::warn!(delivery = %id, %why, "a delivery event that does not follow; passed over");
        }
        if d.status.is_final() || d.id.is_none() {
            self.pending.remove(&id);
        }
    }

    /// Tracks the receiver's health: only its answers (a status, a
    /// timeout, a broken connection) count; a refused address or a failing
    /// transform is the declaration's problem, not the receiver's.
    fn observe(&mut self, outcome: &AttemptOutcome, at: DateTime<Utc>) {
        match (outcome, classify(outcome)) {
            (_, Verdict::Delivered) => {
                self.failing_since = None;
                self.failures_since_success = 0;
            }
            (
                AttemptOutcome::Status { .. }
                | AttemptOutcome::Timeout
                | AttemptOutcome::Connection,
                _,
            ) => {
                self.failing_since.get_or_insert(at);
                self.failures_since_success = self.failures_since_success.saturating_add(1);
            }
            _ => {}
        }
    }

    /// Whether the receiver has failed without a single success for at
    /// least `period` at `now`.
    pub fn failing_for(&self, now: DateTime<Utc>, period: chrono::Duration) -> bool {
        self.failing_since
            .is_some_and(|since| now - since >= period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::EventId;
    use crate::webhook::delivery::{Attempt, Created};

    fn created(id: &DeliveryId, position: u64) -> DeliveryEvent {
        DeliveryEvent::Created(Box::new(Created {
            delivery_id: id.clone(),
            webhook_revision: 1,
            event_id: EventId::generate(),
            event_type: "a.b".into(),
            event_position: position,
            origin: Origin::Event,
            at: Utc::now(),
        }))
    }

    fn attempted(id: &DeliveryId, status: u16, at: DateTime<Utc>) -> DeliveryEvent {
        DeliveryEvent::Attempted(Box::new(Attempt {
            delivery_id: id.clone(),
            attempt: 1,
            at,
            outcome: AttemptOutcome::Status { status },
            status: Some(status),
            latency_ms: 1,
            response_excerpt: None,
            error: None,
            next_attempt_at: Some(at),
        }))
    }

    #[test]
    fn failing_since_is_the_first_failure_after_the_last_success() {
        let mut l = Ledger::default();
        let (a, b) = (DeliveryId::generate(), DeliveryId::generate());
        let t0 = Utc::now();
        l.apply_delivery(&created(&a, 7));
        l.apply_delivery(&created(&b, 9));
        assert_eq!((l.read_through, l.pending.len()), (9, 2));
        l.apply_delivery(&attempted(&a, 500, t0));
        l.apply_delivery(&attempted(&b, 503, t0 + chrono::Duration::hours(1)));
        assert_eq!(l.failing_since, Some(t0), "the first failure counts");
        assert!(l.failing_for(t0 + chrono::Duration::days(5), chrono::Duration::days(5)));
        assert!(!l.failing_for(t0 + chrono::Duration::days(4), chrono::Duration::days(5)));
        l.apply_delivery(&attempted(&a, 200, t0 + chrono::Duration::days(1)));
        assert_eq!((l.failing_since, l.failures_since_success), (None, 0));
    }

    #[test]
    fn claims_and_cursors_move_the_epoch_and_the_mark() {
        let mut l = Ledger::default();
        let mark = Mark {
            epoch: 3,
            read_through: 40,
        };
        let raw = mark.payload().unwrap();
        l.apply(types::CLAIMED, 1, &raw, 0, 5).unwrap();
        assert_eq!((l.epoch, l.read_through, l.revision), (3, 40, Some(0)));
        let later = Mark {
            epoch: 3,
            read_through: 90,
        }
        .payload()
        .unwrap();
        l.apply(types::CURSOR, 1, &later, 1, 6).unwrap();
        assert_eq!((l.epoch, l.read_through), (3, 90));
        assert!(l.apply("webhook.bogus", 1, &raw, 2, 7).is_err());
        // Enabled again: the failure record starts afresh, durably.
        l.failing_since = Some(Utc::now());
        l.failures_since_success = 9;
        l.apply(types::RESUMED, 1, &later, 3, 8).unwrap();
        assert_eq!((l.failing_since, l.failures_since_success), (None, 0));
    }
}
