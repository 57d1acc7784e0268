//! Deliveries and their attempts, read back from a webhook's deliveries
//! stream for the API: newest first, filtered by status, event type and
//! creation time. The stream is read backwards from its head and the read
//! stops as soon as the answer is complete (`limit` deliveries matched, one
//! delivery found, or `since` passed), so a query costs about what it
//! returns; never more than [`QUERY_SCAN_EVENTS_MAX`] events however old the
//! webhook.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use extensor_core::Error;
use extensor_core::aggregate::DomainEvent;
use extensor_core::ids::{DeliveryId, TenantId};
use extensor_core::store::{EventStore, READ_EVENTS_MAX};
use extensor_core::webhook::deliveries_stream;
use extensor_core::webhook::delivery::{Attempt, Created, DeliveryEvent, DeliveryStatus};
use extensor_core::webhook::registry::WebhookName;
use serde::{Deserialize, Serialize};

/// Events of a deliveries stream one query reads, newest first.
pub const QUERY_SCAN_EVENTS_MAX: u64 = 200_000;
/// Deliveries one query returns.
pub const QUERY_LIMIT_MAX: usize = 1_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeliveryView {
    pub created: Created,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    pub finished_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct DeliveryQuery {
    pub status: Option<DeliveryStatus>,
    /// Exact event type.
    pub event_type: Option<String>,
    /// Created at or after / before.
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: usize,
}

impl DeliveryQuery {
    fn matches(&self, d: &DeliveryView) -> bool {
        self.status.is_none_or(|s| s == d.status)
            && self
                .event_type
                .as_ref()
                .is_none_or(|t| *t == d.created.event_type)
            && self.since.is_none_or(|t| d.created.at >= t)
            && self.until.is_none_or(|t| d.created.at < t)
    }
}

/// What is known of a delivery whose `created` the backward scan has not
/// reached yet (its later events were read first).
#[derive(Default)]
struct Partial {
    /// Newest first, as read.
    attempts: Vec<Attempt>,
    end: Option<(DeliveryStatus, DateTime<Utc>, Option<String>)>,
}

/// Reads the deliveries stream newest first, a page at a time, and hands
/// each delivery to `take` once its creation is read (every later event of
/// it came before), newest delivery first, until `take` says it has
/// enough: a query costs what it returns, not the stream's length, and
/// never more than [`QUERY_SCAN_EVENTS_MAX`] events.
async fn scan_back(
    store: &dyn EventStore,
    tenant: &TenantId,
    name: &WebhookName,
    take: &mut (dyn FnMut(DeliveryView) -> Scan + Send),
) -> Result<(), Error> {
    let stream = deliveries_stream(tenant, name);
    let Some(head) = store.stream_revision(stream.clone()).await? else {
        return Ok(());
    };
    let floor = (head + 1).saturating_sub(QUERY_SCAN_EVENTS_MAX);
    let mut end = head + 1;
    let mut partial: HashMap<DeliveryId, Partial> = HashMap::new();
    while end > floor {
        let from = end.saturating_sub(READ_EVENTS_MAX as u64).max(floor);
        let page = store
            .read_stream(stream.clone(), from, (end - from) as usize)
            .await?;
        for rec in page.iter().rev() {
            // The endpoint's claims and read marks are not deliveries.
            if extensor_core::webhook::ledger::is_endpoint_record(&rec.event_type) {
                continue;
            }
            let ev = DeliveryEvent::decode(&rec.event_type, rec.schema_version, &rec.payload)
                .map_err(|reason| Error::Decode {
                    position: rec.position,
                    stream: stream.to_string(),
                    event_type: rec.event_type.clone(),
                    schema_version: rec.schema_version,
                    reason,
                })?;
            if let Some(view) = fold_back(&mut partial, ev)
                && take(view) == Scan::Stop
            {
                return Ok(());
            }
        }
        if page.is_empty() {
            break;
        }
        end = from;
    }
    Ok(())
}

/// Whether the backward scan goes on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    More,
    Stop,
}

/// Folds one event read backwards; a delivery is complete at its creation.
fn fold_back(
    partial: &mut HashMap<DeliveryId, Partial>,
    ev: DeliveryEvent,
) -> Option<DeliveryView> {
    let (status, f) = match ev {
        DeliveryEvent::Created(c) => {
            let p = partial.remove(&c.delivery_id).unwrap_or_default();
            let (status, finished_at, reason) = match p.end {
                Some((s, at, r)) => (s, Some(at), r),
                None => (DeliveryStatus::Pending, None, None),
            };
            let mut attempts = p.attempts;
            attempts.reverse();
            return Some(DeliveryView {
                created: *c,
                status,
                attempts,
                finished_at,
                reason,
            });
        }
        DeliveryEvent::Attempted(a) => {
            partial
                .entry(a.delivery_id.clone())
                .or_default()
                .attempts
                .push(*a);
            return None;
        }
        DeliveryEvent::Delivered(f) => (DeliveryStatus::Delivered, f),
        DeliveryEvent::Failed(f) => (DeliveryStatus::Failed, f),
        DeliveryEvent::Skipped(f) => (DeliveryStatus::Skipped, f),
    };
    partial.entry(f.delivery_id.clone()).or_default().end = Some((status, f.at, f.reason));
    None
}

/// Deliveries of one webhook, newest first. Stops reading once `limit`
/// match, or once deliveries are older than `since`.
pub async fn deliveries(
    store: &dyn EventStore,
    tenant: &TenantId,
    name: &WebhookName,
    q: &DeliveryQuery,
) -> Result<Vec<DeliveryView>, Error> {
    let limit = q.limit.clamp(1, QUERY_LIMIT_MAX);
    let mut found = Vec::new();
    scan_back(store, tenant, name, &mut |d| {
        if q.since.is_some_and(|t| d.created.at < t) {
            return Scan::Stop;
        }
        if q.matches(&d) {
            found.push(d);
        }
        if found.len() >= limit {
            Scan::Stop
        } else {
            Scan::More
        }
    })
    .await?;
    Ok(found)
}

/// One delivery of one webhook (the scan stops at it).
pub async fn delivery(
    store: &dyn EventStore,
    tenant: &TenantId,
    name: &WebhookName,
    id: &DeliveryId,
) -> Result<Option<DeliveryView>, Error> {
    let mut found = None;
    scan_back(store, tenant, name, &mut |d| {
        if &d.created.delivery_id == id {
            found = Some(d);
            Scan::Stop
        } else {
            Scan::More
        }
    })
    .await?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use extensor_core::event::{EventMeta, Principal};
    use extensor_core::ids::EventId;
    use extensor_core::store::ExpectedRevision;
    use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
    use extensor_core::webhook::delivery::{Finished, Origin};
    use extensor_core::webhook::retry::AttemptOutcome;

    /// `n` deliveries, each created, attempted once and delivered.
    async fn deliveries_stream_of(n: usize) -> (tempfile::TempDir, SqliteStore, TenantId) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::CreateIfMissing)).unwrap();
        let tenant = TenantId::generate();
        let name: WebhookName = "orders".parse().unwrap();
        let at = Utc::now();
        let mut events = Vec::new();
        for i in 0..n {
            let id = DeliveryId::generate();
            events.push(DeliveryEvent::Created(Box::new(Created {
                delivery_id: id.clone(),
                webhook_revision: 1,
                event_id: EventId::generate(),
                event_type: if i % 2 == 0 {
                    "order.created"
                } else {
                    "order.paid"
                }
                .into(),
                event_position: i as u64 + 1,
                origin: Origin::Event,
                at,
            })));
            events.push(DeliveryEvent::Attempted(Box::new(Attempt {
                delivery_id: id.clone(),
                attempt: 1,
                at,
                outcome: AttemptOutcome::Status { status: 200 },
                status: Some(200),
                latency_ms: 1,
                response_excerpt: None,
                error: None,
                next_attempt_at: None,
            })));
            events.push(DeliveryEvent::Delivered(Finished {
                delivery_id: id,
                at,
                reason: None,
            }));
        }
        let meta = EventMeta::new(Some(tenant.clone()), Principal::system());
        let stream = deliveries_stream(&tenant, &name);
        for chunk in events.chunks(999) {
            let batch = crate::webhooks::attempt::to_new_events(chunk, &meta).unwrap();
            store
                .append(stream.clone(), ExpectedRevision::Any, batch)
                .await
                .unwrap();
        }
        (dir, store, tenant)
    }

    /// A page of 10 newest deliveries out of 20,000 (60,000 events) reads
    /// one page of the stream, not the whole stream; the answer is what a
    /// full fold gives.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_listing_reads_what_it_returns_not_the_stream() {
        let (_dir, store, tenant) = deliveries_stream_of(20_000).await;
        let name: WebhookName = "orders".parse().unwrap();
        let q = DeliveryQuery {
            limit: 10,
            ..DeliveryQuery::default()
        };
        let before = store.reads();
        let page = deliveries(&store, &tenant, &name, &q).await.unwrap();
        let reads = store.reads() - before;
        assert_eq!(page.len(), 10);
        assert!(reads <= 3, "{reads} reads for 10 deliveries");
        for d in &page {
            assert_eq!(d.status, DeliveryStatus::Delivered);
            assert_eq!(d.attempts.len(), 1);
            assert!(d.finished_at.is_some());
        }
        // Newest first, and one lookup by id stops at it.
        let newest = &page[0].created.delivery_id;
        let found = delivery(&store, &tenant, &name, newest).await.unwrap();
        assert_eq!(found.unwrap().created.delivery_id, *newest);
        // A filter that matches half reads about twice as far; still bounded.
        let paid = DeliveryQuery {
            limit: 10,
            event_type: Some("order.paid".into()),
            ..DeliveryQuery::default()
        };
        let got = deliveries(&store, &tenant, &name, &paid).await.unwrap();
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|d| d.created.event_type == "order.paid"));
        store.close().await;
    }
}
