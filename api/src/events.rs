//! `POST /api/events` (a host application publishes a business event) and
//! `GET /api/events` (the audit query over the tenant's events, paging by
//! global position, oldest first from `after` or newest first from
//! `before`).

use chrono::{DateTime, Utc};
use extensor_core::event::{RecordedEvent, StreamId};
use extensor_core::role::Role;
use extensor_core::store::{EventStore, ReadFilter};
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde_json::Value;

use crate::auth::BearerAuth;
use crate::error::ApiError;
use crate::ratelimit::RateClass;
use crate::state::State;
use crate::tags::ApiTags;
use crate::types::Text;

/// Events per page when `limit` is not given.
const PAGE_EVENTS_DEFAULT: u32 = 100;
/// The largest page one query returns.
pub const PAGE_EVENTS_MAX: u32 = 1_000;

/// One event as stored, with its place in the log and its hash-chain link.
#[derive(Object)]
pub struct EventView {
    /// Global position (from 1, without gaps).
    pub position: u64,
    pub stream: String,
    /// Revision within the stream (from 0).
    pub revision: u64,
    pub id: String,
    #[oai(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    pub recorded_at: DateTime<Utc>,
    pub tenant: Option<String>,
    /// Who caused it: `token:tok_…`, `platform-admin`, `plugin:ins_…`, `system`.
    pub principal: String,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    /// The event's data.
    pub data: Value,
    /// Hex SHA-256 of the previous event's link, and of this one.
    pub prev_hash: String,
    pub hash: String,
}

impl From<RecordedEvent> for EventView {
    fn from(e: RecordedEvent) -> Self {
        Self {
            position: e.position,
            stream: e.stream.to_string(),
            revision: e.revision,
            id: e.event_id.to_string(),
            data: serde_json::from_str(e.payload.get()).unwrap_or(Value::Null),
            event_type: e.event_type,
            schema_version: e.schema_version,
            recorded_at: e.recorded_at,
            tenant: e.tenant.map(|t| t.to_string()),
            principal: e.principal.to_string(),
            correlation_id: e.correlation_id.to_string(),
            causation_id: e.causation_id.map(|c| c.to_string()),
            prev_hash: hex::encode(e.prev_hash),
            hash: hex::encode(e.hash),
        }
    }
}

#[derive(Object)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// Pass as `after` to read what is newer than this page. Oldest first:
    /// the last position returned, or the `after` given when nothing
    /// matched. Newest first: the top of the range read (the head of the
    /// log when the read began, or `before` − 1 if lower; at least
    /// `after`), so following `GET /api/events/stream?after=` from it
    /// misses nothing.
    pub next_after: u64,
    /// Newest first: pass as `before` to read the next, older page (the
    /// oldest position returned); `null` when there is none (the page was
    /// not full) and always in oldest-first order.
    pub next_before: Option<u64>,
}

/// Which end of the range a page of events starts from.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[oai(rename_all = "lowercase")]
pub enum EventOrder {
    /// Oldest first, from `after` up; page on with `next_after`.
    #[default]
    Asc,
    /// Newest first, from `before` (or the head of the log) down; page on
    /// with `next_before`.
    Desc,
}

/// The positions a query covers: `after < position < before`.
#[derive(Clone, Copy, Debug)]
struct Range {
    after: u64,
    before: Option<u64>,
}

/// Oldest first: `limit` events from `after` up, below `before`.
async fn oldest_first(
    store: &dyn EventStore,
    range: Range,
    mut filter: ReadFilter,
    limit: usize,
) -> Result<EventPage, ApiError> {
    // `before` is at least 1 (its validator).
    filter.position_max = range.before.map(|b| b.saturating_sub(1));
    let events = store.read_all(range.after, filter, limit).await?;
    let next_after = events.last().map_or(range.after, |e| e.position);
    Ok(page(events, next_after, None))
}

/// Newest first: `limit` events from below `before` (or the head) down,
/// above `after`. The head is read first: the range has a known top, which
/// is where a live follower starts.
async fn newest_first(
    store: &dyn EventStore,
    range: Range,
    filter: ReadFilter,
    limit: usize,
) -> Result<EventPage, ApiError> {
    let head = store.head_position().await?;
    let top = range.before.map_or(head, |b| b.saturating_sub(1).min(head));
    let events = store
        .read_all_backward(top + 1, range.after, filter, limit)
        .await?;
    let next_before = (events.len() == limit)
        .then(|| events.last().map(|e| e.position))
        .flatten();
    Ok(page(events, top.max(range.after), next_before))
}

fn page(events: Vec<RecordedEvent>, next_after: u64, next_before: Option<u64>) -> EventPage {
    EventPage {
        events: events.into_iter().map(Into::into).collect(),
        next_after,
        next_before,
    }
}

/// A business event from the host application.
#[derive(Object)]
pub struct PublishEvent {
    /// Dotted name, e.g. `auth.user.created`: at most 128 letters, digits,
    /// `_`, `-` and single dots, starting with a letter
    /// (`extensor_core::manifest::event_type_problem`).
    #[oai(validator(
        max_length = 128,
        pattern = r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$"
    ))]
    pub event_type: Text,
    /// Any JSON, at most 1 MiB serialised.
    #[oai(default)]
    pub event_data: Value,
}

#[derive(ApiResponse)]
pub enum PublishResponse {
    /// Recorded durably; hooks and webhooks will see it.
    #[oai(status = 201)]
    Created(Json<EventView>),
    /// A retry with an `Idempotency-Key` already used: the original event,
    /// nothing appended.
    #[oai(status = 200)]
    Replayed(Json<EventView>),
}

pub struct EventsApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Events")]
impl EventsApi {
    /// Publish a business event into the tenant's stream
    #[oai(path = "/events", method = "post", operation_id = "publishEvent")]
    async fn publish(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// Makes a retried publish a no-op answering the original event
        /// (1 to 200 characters).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<PublishEvent>,
    ) -> Result<PublishResponse, ApiError> {
        let ctx = state.tenant_access(&auth, &tenant, Role::Developer, RateClass::Events)?;
        let head_before = state.store.head_position().await?;
        let PublishEvent {
            event_type,
            event_data,
        } = body.0;
        let ev = state
            .engine
            .publish(
                &ctx.tenant,
                &event_type,
                event_data,
                idempotency_key.0,
                ctx.principal,
            )
            .await?;
        Ok(if ev.position <= head_before {
            PublishResponse::Replayed(Json(ev.into()))
        } else {
            PublishResponse::Created(Json(ev.into()))
        })
    }

    /// Query the tenant's events by position, type, stream and time, either end first
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/events", method = "get", operation_id = "listEvents")]
    async fn list(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// Only events after this global position (0: from the start).
        after: Query<Option<u64>>,
        /// Only events before this global position (at least 1). Newest
        /// first, the cursor of the next, older page: pass `next_before`.
        #[oai(validator(minimum(value = "1")))]
        before: Query<Option<u64>>,
        /// `asc` (default): oldest first, from `after` up. `desc`: newest
        /// first, from `before` (or the head of the log) down, without
        /// reading the older events.
        #[oai(default)]
        order: Query<EventOrder>,
        /// Page size, 1 to 1000 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
        /// Event type or type prefix (`plugin.` matches `plugin.enabled`),
        /// 1 to 128 characters.
        #[oai(name = "type", validator(min_length = 1, max_length = 128))]
        event_type: Query<Option<String>>,
        /// Only this stream, e.g. `installation-ins_…`: `<category>-<id>`,
        /// at most 160 characters (`extensor_core::event::StreamId`).
        #[oai(validator(max_length = 160, pattern = r"^[a-z_]+-[A-Za-z0-9_.\-]+$"))]
        stream: Query<Option<String>>,
        /// Recorded at or after this time (RFC 3339).
        from: Query<Option<DateTime<Utc>>>,
        /// Recorded before this time (RFC 3339).
        to: Query<Option<DateTime<Utc>>>,
    ) -> Result<Json<EventPage>, ApiError> {
        let ctx = state.tenant_access(&auth, &tenant, Role::Viewer, RateClass::Management)?;
        // `limit` is within 1..=PAGE_EVENTS_MAX: its validator says so.
        let limit = limit.0.unwrap_or(PAGE_EVENTS_DEFAULT) as usize;
        let stream = match stream.0 {
            None => None,
            Some(s) => Some(
                s.parse::<StreamId>()
                    .map_err(|e| ApiError::invalid_field("query:stream", e.to_string()))?,
            ),
        };
        let filter = ReadFilter {
            tenant: Some(ctx.tenant),
            stream,
            type_prefix: event_type.0,
            recorded_from: from.0,
            recorded_before: to.0,
            position_max: None,
        };
        let range = Range {
            after: after.0.unwrap_or(0),
            before: before.0,
        };
        Ok(Json(match order.0 {
            EventOrder::Asc => oldest_first(state.store.as_ref(), range, filter, limit).await?,
            EventOrder::Desc => newest_first(state.store.as_ref(), range, filter, limit).await?,
        }))
    }
}
