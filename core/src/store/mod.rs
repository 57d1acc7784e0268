//! The event store: an append-only log of streams with optimistic
//! concurrency, global ordering, catch-up subscriptions and snapshots.
//!
//! [`EventStore`] is the boundary every backend implements. The embedded
//! default is [`sqlite::SqliteStore`]; [`conformance`] is the test suite every
//! backend must pass, written so that a server-backed store (KurrentDB,
//! PostgreSQL) runs exactly the same checks.

pub mod chain;
pub mod conformance;
pub mod event_row;
pub mod sqlite;
pub mod subscription;
pub mod verify;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::error::Error;
use crate::event::{NewEvent, RecordedEvent, StreamId};
use crate::ids::TenantId;
pub use crate::revision::ExpectedRevision;

/// One append carries at most this many events: a command that needs more is
/// doing something other than recording a decision.
pub const APPEND_EVENTS_MAX: usize = 1_000;
/// One read returns at most this many events; callers page with `after`.
pub const READ_EVENTS_MAX: usize = 10_000;
/// A snapshot's serialised state may not exceed this.
pub const SNAPSHOT_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Where an acknowledged append landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// Global position of the first and last event appended.
    pub first_position: u64,
    pub last_position: u64,
    /// The stream's revision after the append.
    pub next_expected: u64,
}

/// Selects events when reading or subscribing to the whole log. Every field
/// narrows; the default selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadFilter {
    pub tenant: Option<TenantId>,
    pub stream: Option<StreamId>,
    /// `plugin.` matches `plugin.enabled`; an exact type matches itself.
    pub type_prefix: Option<String>,
    /// Inclusive lower and exclusive upper bound on `recorded_at`.
    pub recorded_from: Option<DateTime<Utc>>,
    pub recorded_before: Option<DateTime<Utc>>,
    /// Inclusive upper bound on the position (audit "as of").
    pub position_max: Option<u64>,
}

impl ReadFilter {
    pub fn matches(&self, e: &RecordedEvent) -> bool {
        self.tenant
            .as_ref()
            .is_none_or(|t| e.tenant.as_ref() == Some(t))
            && self.stream.as_ref().is_none_or(|s| &e.stream == s)
            && self
                .type_prefix
                .as_deref()
                .is_none_or(|p| e.event_type.starts_with(p))
            && self.recorded_from.is_none_or(|t| e.recorded_at >= t)
            && self.recorded_before.is_none_or(|t| e.recorded_at < t)
            && self.position_max.is_none_or(|p| e.position <= p)
    }
}

/// A cached aggregate state. Snapshots are only a cache: deleting every one
/// of them changes no state, only how long a rebuild takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub stream: StreamId,
    /// The aggregate kind, e.g. `tenant`.
    pub aggregate: String,
    /// The code's snapshot format version; a reader ignores other versions.
    pub snapshot_version: u32,
    /// The stream revision and global position the state includes.
    pub revision: u64,
    pub position: u64,
    pub state: String,
}

/// A stream of events from a subscription: catch-up from the store, then
/// live, with no gap and no duplicate at the switch.
pub type EventStream = BoxStream<'static, Result<RecordedEvent, Error>>;

/// The event store boundary. Object-safe so the backend can be chosen at
/// start-up (`Arc<dyn EventStore>`).
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` if its current revision satisfies
    /// `expected`; all or nothing. Resolves only once the events are durable.
    fn append(
        &self,
        stream: StreamId,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'_, Result<AppendResult, Error>>;

    /// Reads up to `limit` events of `stream` from revision `from` onwards.
    fn read_stream(
        &self,
        stream: StreamId,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>>;

    /// Reads up to `limit` events after global position `after` (0 reads from
    /// the start) that match `filter`, in position order.
    fn read_all(
        &self,
        after: u64,
        filter: ReadFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>>;

    /// Reads up to `limit` events that match `filter` with
    /// `after < position < before`, newest first (`u64::MAX` as `before`
    /// reads from the head). A page of the newest events costs what a page
    /// of the oldest does, whatever the log's length.
    fn read_all_backward(
        &self,
        before: u64,
        after: u64,
        filter: ReadFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>>;

    /// The event with this id, wherever it is (idempotent publishing finds
    /// the original event of a retried request by its deterministic id).
    /// The default scans the log; backends with an index override it.
    fn read_event(
        &self,
        event_id: crate::ids::EventId,
    ) -> BoxFuture<'_, Result<Option<RecordedEvent>, Error>> {
        Box::pin(async move {
            let mut after = 0;
            loop {
                let page = self
                    .read_all(after, ReadFilter::default(), READ_EVENTS_MAX)
                    .await?;
                let Some(last) = page.last() else {
                    return Ok(None);
                };
                after = last.position;
                if let Some(found) = page.into_iter().find(|e| e.event_id == event_id) {
                    return Ok(Some(found));
                }
            }
        })
    }

    /// Every matching event after `after`: first those already stored, then
    /// new ones as they are committed.
    fn subscribe_all(&self, after: u64, filter: ReadFilter) -> EventStream;

    /// The revision of the stream's last event, or `None` if it has none.
    fn stream_revision(&self, stream: StreamId) -> BoxFuture<'_, Result<Option<u64>, Error>>;

    /// The position of the last event in the log (0 when empty).
    fn head_position(&self) -> BoxFuture<'_, Result<u64, Error>>;

    /// Stores `snapshot`, replacing the previous one of that stream and kind.
    fn save_snapshot(&self, snapshot: SnapshotRecord) -> BoxFuture<'_, Result<(), Error>>;

    /// The newest snapshot of `stream` for `aggregate` written with
    /// `snapshot_version`; snapshots of other versions are ignored.
    fn load_snapshot(
        &self,
        stream: StreamId,
        aggregate: String,
        snapshot_version: u32,
    ) -> BoxFuture<'_, Result<Option<SnapshotRecord>, Error>>;

    /// Removes every snapshot (they are a cache). Returns how many went.
    fn delete_snapshots(&self) -> BoxFuture<'_, Result<u64, Error>>;
}
