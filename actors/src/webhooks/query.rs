//! Deliveries and their attempts, read back from a webhook's deliveries
//! stream for the API: newest first, filtered by status, event type and
//! creation time. Reads the newest [`QUERY_SCAN_EVENTS_MAX`] events of the
//! stream at most, so a query costs a bounded read however old the webhook.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use extensor_core::Error;
use extensor_core::aggregate::DomainEvent;
use extensor_core::ids::{DeliveryId, TenantId};
use extensor_core::store::{EventStore, READ_EVENTS_MAX};
use extensor_core::webhook::deliveries_stream;
use extensor_core::webhook::delivery::{Attempt, Created, DeliveryEvent, DeliveryStatus};
use extensor_core::webhook::registry::WebhookName;
use serde::Serialize;

/// Events of a deliveries stream one query reads, newest first.
pub const QUERY_SCAN_EVENTS_MAX: u64 = 200_000;
/// Deliveries one query returns.
pub const QUERY_LIMIT_MAX: usize = 1_000;

#[derive(Clone, Debug, Serialize)]
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

async fn scan(
    store: &dyn EventStore,
    tenant: &TenantId,
    name: &WebhookName,
) -> Result<Vec<DeliveryView>, Error> {
    let stream = deliveries_stream(tenant, name);
    let Some(head) = store.stream_revision(stream.clone()).await? else {
        return Ok(Vec::new());
    };
    let mut from = (head + 1).saturating_sub(QUERY_SCAN_EVENTS_MAX);
    let mut views: Vec<DeliveryView> = Vec::new();
    let mut index: HashMap<DeliveryId, usize> = HashMap::new();
    loop {
        let page = store
            .read_stream(stream.clone(), from, READ_EVENTS_MAX)
            .await?;
        for rec in &page {
            let ev = DeliveryEvent::decode(&rec.event_type, rec.schema_version, &rec.payload)
                .map_err(|reason| Error::Decode {
                    position: rec.position,
                    stream: stream.to_string(),
                    event_type: rec.event_type.clone(),
                    schema_version: rec.schema_version,
                    reason,
                })?;
            fold(&mut views, &mut index, ev);
        }
        if page.len() < READ_EVENTS_MAX {
            break;
        }
        from += READ_EVENTS_MAX as u64;
    }
    Ok(views)
}

fn fold(views: &mut Vec<DeliveryView>, index: &mut HashMap<DeliveryId, usize>, ev: DeliveryEvent) {
    if let DeliveryEvent::Created(c) = ev {
        index.insert(c.delivery_id.clone(), views.len());
        views.push(DeliveryView {
            created: *c,
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            finished_at: None,
            reason: None,
        });
        return;
    }
    // A delivery created before the scanned window is left out.
    let Some(&i) = index.get(ev.delivery_id()) else {
        return;
    };
    let v = &mut views[i];
    let (status, f) = match ev {
        DeliveryEvent::Created(_) => return,
        DeliveryEvent::Attempted(a) => {
            v.attempts.push(*a);
            return;
        }
        DeliveryEvent::Delivered(f) => (DeliveryStatus::Delivered, f),
        DeliveryEvent::Failed(f) => (DeliveryStatus::Failed, f),
        DeliveryEvent::Skipped(f) => (DeliveryStatus::Skipped, f),
    };
    v.status = status;
    v.finished_at = Some(f.at);
    v.reason = f.reason;
}

/// Deliveries of one webhook, newest first.
pub async fn deliveries(
    store: &dyn EventStore,
    tenant: &TenantId,
    name: &WebhookName,
    q: &DeliveryQuery,
) -> Result<Vec<DeliveryView>, Error> {
    let limit = q.limit.clamp(1, QUERY_LIMIT_MAX);
    let all = scan(store, tenant, name).await?;
    Ok(all
        .into_iter()
        .rev()
        .filter(|d| q.matches(d))
        .take(limit)
        .collect())
}

/// One delivery of one webhook.
pub async fn delivery(
    store: &dyn EventStore,
    tenant: &TenantId,
    name: &WebhookName,
    id: &DeliveryId,
) -> Result<Option<DeliveryView>, Error> {
    let all = scan(store, tenant, name).await?;
    Ok(all.into_iter().find(|d| &d.created.delivery_id == id))
}
