//! The email outbox: the first user of the durable-work model
//! (docs/ARCHITECTURE.md, "Durable work"). One actor per tenant, a service
//! child of its tenant supervisor at `/tenants/<tenant>/outbox`, owns every
//! message of the tenant's `outbox-<tenant>` stream:
//!
//! - `ctx.email.send` appends `email.queued` (with the message sealed under
//!   the platform key; the readable copy is redacted) and wakes the actor;
//!   it never talks SMTP.
//! - At start the actor claims the stream (`email.outbox_claimed`, epoch +1)
//!   and re-reads it: every message without an outcome is pending.
//! - It sends due messages itself, inside its handler (no detached task),
//!   at most `sends_per_minute_max` a minute; a transient failure (SMTP 4xx,
//!   connection, TLS, timeout) records `email.attempt_failed` and retries
//!   with doubling backoff, a permanent one (5xx) or the last allowed attempt
//!   records `email.failed`; success records `email.sent`.
//! - Every record is appended at exactly the revision the actor has read,
//!   after checking that its epoch is still the newest claim: a stale
//!   outbox (a newer one claimed the stream) neither sends nor records.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use extensor_core::event::{EventMeta, NewEvent, Principal, RecordedEvent, StreamId};
use extensor_core::ids::TenantId;
use extensor_core::secrets::SecretBox;
use extensor_core::store::{EventStore, ExpectedRevision, READ_EVENTS_MAX};
use extensor_js::host::OutboundEmail;
use extensor_js::host::mail::{SendFailure, SmtpMailer};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::Error;
use crate::supervision::{RestartPolicy, backoff};

/// The service's name in the tree (`/tenants/<tenant>/outbox`).
pub const SERVICE_NAME: &str = "outbox";

/// First retry delay after a transient failure.
pub const RETRY_BACKOFF_INITIAL_MS: u64 = 1_000;
/// Ceiling of the doubling retry delay: a relay down for an hour is retried
/// every 15 minutes, not hammered.
pub const RETRY_BACKOFF_MAX_MS: u64 = 15 * 60 * 1_000;
/// Attempts before a message is recorded failed: with the backoff above,
/// about 24 hours of retrying, as MTAs commonly do.
pub const ATTEMPTS_MAX: u32 = 100;
/// Sends per tenant per minute: a plugin looping over `ctx.email.send`
/// cannot make the platform's relay (and its reputation) pay for it.
pub const SENDS_PER_MINUTE_MAX: u32 = 600;
/// Error text kept per attempt; relays answer in a line or two.
const ERROR_CHARS_MAX: usize = 500;

/// Record types of the outbox stream.
pub mod types {
    pub const QUEUED: &str = "email.queued";
    pub const CLAIMED: &str = "email.outbox_claimed";
    pub const ATTEMPT_FAILED: &str = "email.attempt_failed";
    pub const SENT: &str = "email.sent";
    pub const FAILED: &str = "email.failed";
    /// Records of the index stream (`outbox-index`).
    pub const INDEX_CREATED: &str = "email.outbox_index_created";
    pub const INDEX_PENDING: &str = "email.outbox_pending";
    pub const INDEX_DRAINED: &str = "email.outbox_drained";
}

/// The outbox's retry and rate settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxConfig {
    pub retry_backoff_initial_ms: u64,
    pub retry_backoff_max_ms: u64,
    pub attempts_max: u32,
    pub sends_per_minute_max: u32,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            retry_backoff_initial_ms: RETRY_BACKOFF_INITIAL_MS,
            retry_backoff_max_ms: RETRY_BACKOFF_MAX_MS,
            attempts_max: ATTEMPTS_MAX,
            sends_per_minute_max: SENDS_PER_MINUTE_MAX,
        }
    }
}

impl OutboxConfig {
    /// The delay after the `attempts`-th failed attempt.
    fn retry_delay(&self, attempts: u32) -> Duration {
        let policy = RestartPolicy {
            backoff_initial_ms: self.retry_backoff_initial_ms,
            backoff_max_ms: self.retry_backoff_max_ms,
            ..RestartPolicy::default()
        };
        backoff(&policy, attempts)
    }
}

/// The tenant's outbox stream.
pub fn stream(tenant: &TenantId) -> StreamId {
    StreamId::new("outbox", tenant.as_str()).expect("tenant ids are valid stream ids")
}

fn seal_context(tenant: &TenantId, outbox_id: &str) -> String {
    format!("email:{tenant}:{outbox_id}")
}

/// The `email.queued` record of `email`: `readable` is the redacted copy
/// the log and the API show; the message itself is sealed under the
/// platform key, bound to the tenant and the message id, so the relay gets
/// exactly what the plugin sent (secrets included) and the log never does.
pub fn queued_event(
    secret_box: &SecretBox,
    meta: EventMeta,
    installation_id: &str,
    email: &OutboundEmail,
    readable: Value,
) -> Result<NewEvent, extensor_core::Error> {
    let tenant = meta
        .tenant
        .clone()
        .ok_or_else(|| extensor_core::Error::InvalidValue {
            what: "email",
            value: installation_id.to_owned(),
            reason: "an outbox message belongs to a tenant".into(),
        })?;
    let mut event = NewEvent::new(types::QUEUED, 1, meta.clone(), &json!({}))?;
    let sealed = secret_box.encrypt(
        &seal_context(&tenant, &event.event_id.to_string()),
        &serde_json::to_string(email).unwrap_or_default(),
    )?;
    let mut payload = readable;
    payload["installation_id"] = json!(installation_id);
    payload["sealed"] = json!(sealed);
    let id = event.event_id;
    event = NewEvent::new(types::QUEUED, 1, meta, &payload)?;
    event.event_id = id;
    Ok(event)
}

/// A message's state, as `GET /api/outbox` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Queued or waiting to retry.
    Pending,
    Sent,
    Failed,
}

/// One outbox message, folded from its records. `text`/`html` are the
/// redacted copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    pub outbox_id: String,
    pub installation_id: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub status: MessageStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub queued_at: DateTime<Utc>,
    /// When the next attempt is due (pending messages only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct QueuedPayload {
    installation_id: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    subject: String,
    text: Option<String>,
    html: Option<String>,
    sealed: Option<String>,
}

#[derive(Deserialize)]
struct OutcomePayload {
    outbox_id: String,
    error: Option<String>,
    retry_at: Option<DateTime<Utc>>,
}

/// Outbox records between snapshots of an outbox's pending state: an
/// outbox starting reads its snapshot and at most about this many records
/// after it, however long its mail history is.
pub const OUTBOX_SNAPSHOT_EVERY_EVENTS: u64 = 256;
/// The snapshot's aggregate name, and the version of its shape.
const OUTBOX_SNAPSHOT_AGGREGATE: &str = "outbox";
const OUTBOX_SNAPSHOT_VERSION: u32 = 1;

/// An outbox snapshot: its pending messages (finished ones never change
/// again, so they are left out) and the newest claim epoch.
#[derive(Serialize, Deserialize)]
struct PendingSnapshot {
    messages: BTreeMap<String, (MessageView, Option<String>)>,
    epoch: u64,
}

/// The outbox stream folded: every message and the newest claim epoch.
#[derive(Default)]
struct Folded {
    messages: BTreeMap<String, (MessageView, Option<String>)>,
    epoch: u64,
    revision: Option<u64>,
    /// Global position of the last record applied.
    position: u64,
    /// Records applied since the last snapshot (or since zero).
    since_snapshot: u64,
}

impl Folded {
    /// The outbox's newest snapshot, or an empty fold: a snapshot is only a
    /// cache, so one that cannot be read costs a full replay, not a start.
    async fn from_snapshot(store: &dyn EventStore, tenant: &TenantId) -> Folded {
        let loaded = store
            .load_snapshot(
                stream(tenant),
                OUTBOX_SNAPSHOT_AGGREGATE.into(),
                OUTBOX_SNAPSHOT_VERSION,
            )
            .await;
        let record = match loaded {
            Ok(Some(record)) => record,
            Ok(None) => return Folded::default(),
            Err(e) => {
                tracing::warn!(%tenant, error = %e, "outbox snapshot not loaded");
                return Folded::default();
            }
        };
        match serde_json::from_str::<PendingSnapshot>(&record.state) {
            Ok(snap) => Folded {
                messages: snap.messages,
                epoch: snap.epoch,
                revision: Some(record.revision),
                position: record.position,
                since_snapshot: 0,
            },
            Err(e) => {
                tracing::warn!(%tenant, error = %e, "ignoring unreadable outbox snapshot");
                Folded::default()
            }
        }
    }

    /// Writes a snapshot once [`OUTBOX_SNAPSHOT_EVERY_EVENTS`] records were
    /// applied since the last one. Failure only costs a longer next start.
    async fn maybe_snapshot(&mut self, store: &dyn EventStore, tenant: &TenantId) {
        let Some(revision) = self.revision else {
            return;
        };
        if self.since_snapshot < OUTBOX_SNAPSHOT_EVERY_EVENTS {
            return;
        }
        let snap = PendingSnapshot {
            messages: self
                .messages
                .iter()
                .filter(|(_, (v, _))| v.status == MessageStatus::Pending)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            epoch: self.epoch,
        };
        let state = match serde_json::to_string(&snap) {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(%tenant, error = %e, "outbox snapshot not serialised");
                return;
            }
        };
        let record = extensor_core::store::SnapshotRecord {
            stream: stream(tenant),
            aggregate: OUTBOX_SNAPSHOT_AGGREGATE.into(),
            snapshot_version: OUTBOX_SNAPSHOT_VERSION,
            revision,
            position: self.position,
            state,
        };
        match store.save_snapshot(record).await {
            Ok(()) => {
                self.since_snapshot = 0;
                // Finished messages are in the log; the fold needs only the
                // pending ones, so its memory stays O(pending) too.
                self.messages
                    .retain(|_, (v, _)| v.status == MessageStatus::Pending);
            }
            Err(e) => tracing::warn!(%tenant, error = %e, "outbox snapshot not written"),
        }
    }

    /// Applies one record; records of unknown types and malformed payloads
    /// are skipped (the stream is written only by this file and the host).
    fn apply(&mut self, e: &RecordedEvent) {
        self.revision = Some(e.revision);
        self.position = e.position;
        self.since_snapshot += 1;
        let payload = e.payload.get();
        match e.event_type.as_str() {
            types::QUEUED => {
                let Ok(q) = serde_json::from_str::<QueuedPayload>(payload) else {
                    return;
                };
                let id = e.event_id.to_string();
                let view = MessageView {
                    outbox_id: id.clone(),
                    installation_id: q.installation_id,
                    to: q.to,
                    subject: q.subject,
                    text: q.text,
                    html: q.html,
                    status: MessageStatus::Pending,
                    attempts: 0,
                    last_error: None,
                    queued_at: e.recorded_at,
                    next_attempt_at: Some(e.recorded_at),
                    finished_at: None,
                };
                self.messages.insert(id, (view, q.sealed));
            }
            types::CLAIMED => {
                let epoch = serde_json::from_str::<Value>(payload)
                    .ok()
                    .and_then(|v| v["epoch"].as_u64())
                    .unwrap_or(0);
                self.epoch = self.epoch.max(epoch);
            }
            types::ATTEMPT_FAILED | types::SENT | types::FAILED => self.outcome(e),
            _ => {}
        }
    }

    fn outcome(&mut self, e: &RecordedEvent) {
        let Ok(o) = serde_json::from_str::<OutcomePayload>(e.payload.get()) else {
            return;
        };
        let Some((view, _)) = self.messages.get_mut(&o.outbox_id) else {
            return;
        };
        match e.event_type.as_str() {
            types::ATTEMPT_FAILED => {
                view.attempts += 1;
                view.last_error = o.error;
                view.next_attempt_at = o.retry_at;
            }
            kind => {
                view.attempts += 1;
                view.status = if kind == types::SENT {
                    MessageStatus::Sent
                } else {
                    MessageStatus::Failed
                };
                if o.error.is_some() {
                    view.last_error = o.error;
                }
                view.next_attempt_at = None;
                view.finished_at = Some(e.recorded_at);
            }
        }
    }

    async fn read_from(
        &mut self,
        store: &dyn EventStore,
        tenant: &TenantId,
    ) -> Result<(), extensor_core::Error> {
        loop {
            let from = self.revision.map_or(0, |r| r + 1);
            let page = store
                .read_stream(stream(tenant), from, READ_EVENTS_MAX)
                .await?;
            for e in &page {
                self.apply(e);
            }
            if page.len() < READ_EVENTS_MAX {
                return Ok(());
            }
        }
    }
}

/// Records one listing reads at most: 200 messages with a day of retries
/// each fit many times over, and a caller cannot make a listing walk an
/// outbox's whole history.
pub const LIST_SCAN_EVENTS_MAX: u64 = 50_000;

/// The tenant's messages, newest first, at most `limit`, optionally only
/// those with `status`. The stream is read backwards from its head, a page
/// at a time, and a message is complete once its `email.queued` is read
/// (its outcomes come after it): a listing costs what it returns, never
/// more than [`LIST_SCAN_EVENTS_MAX`] records.
pub async fn list(
    store: &dyn EventStore,
    tenant: &TenantId,
    status: Option<MessageStatus>,
    limit: usize,
) -> Result<Vec<MessageView>, extensor_core::Error> {
    let stream = stream(tenant);
    let Some(head) = store.stream_revision(stream.clone()).await? else {
        return Ok(Vec::new());
    };
    let floor = (head + 1).saturating_sub(LIST_SCAN_EVENTS_MAX);
    let mut end = head + 1;
    // Outcome records of messages whose `email.queued` is not read yet,
    // newest first.
    let mut outcomes: BTreeMap<String, Vec<RecordedEvent>> = BTreeMap::new();
    let mut out = Vec::new();
    while end > floor && out.len() < limit {
        let from = end.saturating_sub(READ_EVENTS_MAX as u64).max(floor);
        let page = store
            .read_stream(stream.clone(), from, (end - from) as usize)
            .await?;
        for rec in page.iter().rev() {
            if rec.event_type != types::QUEUED {
                if let Ok(o) = serde_json::from_str::<OutcomePayload>(rec.payload.get()) {
                    outcomes.entry(o.outbox_id).or_default().push(rec.clone());
                }
                continue;
            }
            let mut one = Folded::default();
            one.apply(rec);
            for later in outcomes
                .remove(&rec.event_id.to_string())
                .unwrap_or_default()
                .iter()
                .rev()
            {
                one.apply(later);
            }
            out.extend(
                one.messages
                    .into_values()
                    .map(|(view, _)| view)
                    .filter(|v| status.is_none_or(|s| v.status == s)),
            );
            if out.len() >= limit {
                break;
            }
        }
        if page.is_empty() {
            break;
        }
        end = from;
    }
    Ok(out)
}

/// The index of tenants whose outbox may hold pending mail (`outbox-index`):
/// what a boot reads instead of the log's whole `email.` history. A tenant
/// is marked (`email.outbox_pending`) before its first message after a
/// drain is queued, and unmarked (`email.outbox_drained`) by its outbox
/// once it holds nothing pending; snapshots every
/// [`INDEX_SNAPSHOT_EVERY_EVENTS`] keep a boot at O(pending tenants + that).
pub fn index_stream() -> StreamId {
    StreamId::new("outbox", "index").expect("a valid stream id")
}

/// Index records between snapshots: a boot reads at most this many after
/// the snapshot, however long the outbox history is.
pub const INDEX_SNAPSHOT_EVERY_EVENTS: u64 = 256;
/// Attempts to unmark a drained tenant when other tenants' marks keep
/// moving the index (a failed unmark only costs an idle outbox at boot).
const INDEX_DRAIN_TRIES_MAX: u32 = 3;

const INDEX_SNAPSHOTS: extensor_core::aggregate::SnapshotPolicy =
    extensor_core::aggregate::SnapshotPolicy {
        every_events: Some(INDEX_SNAPSHOT_EVERY_EVENTS),
    };

/// The index folded: the tenants marked pending.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OutboxIndex {
    pub pending: BTreeSet<TenantId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub tenant: TenantId,
}

/// A record of the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexEvent {
    /// The index exists (written once, by the scan that built it).
    Created,
    Pending(IndexEntry),
    Drained(IndexEntry),
}

/// What the index is asked to record.
pub enum IndexCommand {
    Create,
    Mark(TenantId),
}

impl extensor_core::aggregate::DomainEvent for IndexEvent {
    fn event_type(&self) -> &'static str {
        match self {
            IndexEvent::Created => types::INDEX_CREATED,
            IndexEvent::Pending(_) => types::INDEX_PENDING,
            IndexEvent::Drained(_) => types::INDEX_DRAINED,
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn to_payload(&self) -> Result<Box<serde_json::value::RawValue>, serde_json::Error> {
        match self {
            IndexEvent::Created => extensor_core::aggregate::to_raw(&json!({})),
            IndexEvent::Pending(e) | IndexEvent::Drained(e) => extensor_core::aggregate::to_raw(e),
        }
    }

    fn decode(
        event_type: &str,
        _version: u32,
        payload: &serde_json::value::RawValue,
    ) -> Result<Self, String> {
        use extensor_core::aggregate::parse_payload;
        Ok(match event_type {
            types::INDEX_CREATED => IndexEvent::Created,
            types::INDEX_PENDING => IndexEvent::Pending(parse_payload(payload)?),
            types::INDEX_DRAINED => IndexEvent::Drained(parse_payload(payload)?),
            other => return Err(format!("unknown outbox index record `{other}`")),
        })
    }
}

impl extensor_core::aggregate::Aggregate for OutboxIndex {
    type Command = IndexCommand;
    type Event = IndexEvent;
    const KIND: &'static str = "outbox_index";
    const SNAPSHOT_VERSION: u32 = 1;

    /// A mark always appends (even for a tenant already marked): it must
    /// move the index's revision so a concurrent unmark conflicts.
    fn decide(
        &self,
        command: &IndexCommand,
    ) -> Result<Vec<IndexEvent>, extensor_core::DomainError> {
        Ok(match command {
            IndexCommand::Create => vec![IndexEvent::Created],
            IndexCommand::Mark(t) => vec![IndexEvent::Pending(IndexEntry { tenant: t.clone() })],
        })
    }

    fn apply(&mut self, event: &IndexEvent) -> Result<(), String> {
        match event {
            IndexEvent::Created => {}
            IndexEvent::Pending(e) => {
                self.pending.insert(e.tenant.clone());
            }
            IndexEvent::Drained(e) => {
                self.pending.remove(&e.tenant);
            }
        }
        Ok(())
    }
}

fn index_meta() -> EventMeta {
    EventMeta::new(None, Principal::system())
}

/// Tenants with (maybe) pending mail: their outboxes start with the server.
/// Reads the index (its snapshot and the records after it), never the
/// outbox history; a store without an index gets one built by a single
/// scan of the `email.` history (the upgrade to the index).
pub async fn tenants_with_pending(
    store: &dyn EventStore,
) -> Result<BTreeSet<TenantId>, extensor_core::Error> {
    use extensor_core::aggregate::{self, AsOf};
    if store.stream_revision(index_stream()).await?.is_none() {
        let pending = scan_pending(store).await?;
        aggregate::execute::<OutboxIndex>(
            store,
            &index_stream(),
            &IndexCommand::Create,
            &index_meta(),
            INDEX_SNAPSHOTS,
        )
        .await?;
        for tenant in &pending {
            mark_pending(store, tenant).await?;
        }
    }
    let loaded = aggregate::load::<OutboxIndex>(store, &index_stream(), AsOf::Latest).await?;
    Ok(loaded.state.pending)
}

/// Marks `tenant` as having pending mail.
pub async fn mark_pending(
    store: &dyn EventStore,
    tenant: &TenantId,
) -> Result<(), extensor_core::Error> {
    extensor_core::aggregate::execute::<OutboxIndex>(
        store,
        &index_stream(),
        &IndexCommand::Mark(tenant.clone()),
        &index_meta(),
        INDEX_SNAPSHOTS,
    )
    .await
    .map(drop)
}

/// The upgrade path only: one scan of the log's `email.` records.
async fn scan_pending(store: &dyn EventStore) -> Result<BTreeSet<TenantId>, extensor_core::Error> {
    use extensor_core::store::ReadFilter;
    let filter = ReadFilter {
        type_prefix: Some("email.".into()),
        ..ReadFilter::default()
    };
    let mut pending: BTreeMap<String, TenantId> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = store
            .read_all(after, filter.clone(), READ_EVENTS_MAX)
            .await?;
        for e in &page {
            // Trust is per stream: only the outbox streams' records count.
            if e.stream.category() != "outbox" {
                continue;
            }
            let Some(tenant) = e.tenant.clone() else {
                continue;
            };
            match e.event_type.as_str() {
                types::QUEUED => {
                    pending.insert(e.event_id.to_string(), tenant);
                }
                types::SENT | types::FAILED => {
                    if let Ok(o) = serde_json::from_str::<OutcomePayload>(e.payload.get()) {
                        pending.remove(&o.outbox_id);
                    }
                }
                _ => {}
            }
        }
        match page.last() {
            Some(last) if page.len() == READ_EVENTS_MAX => after = last.position,
            _ => return Ok(pending.into_values().collect()),
        }
    }
}

/// One tenant in [`OutboxTenants`].
#[derive(Clone, Copy, Debug, Default)]
struct TenantMark {
    /// The index has this tenant marked pending (as far as this process
    /// knows): a host queuing mail need not mark it again.
    indexed: bool,
    /// Hosts between their mark check and their `email.queued` append: the
    /// outbox does not unmark the tenant while any is.
    queuing: usize,
}

/// Tenants whose outbox starts with their supervisor (marked in the index:
/// pending mail at boot, or mail queued since), and the in-process side of
/// the index protocol: hosts hold a [`QueueLease`] while they queue, so an
/// outbox never unmarks a tenant under a message being queued.
#[derive(Clone, Default)]
pub struct OutboxTenants(Arc<Mutex<BTreeMap<TenantId, TenantMark>>>);

/// Held by a host from its mark check until its `email.queued` append is
/// durable (dropped after).
pub struct QueueLease {
    tenants: OutboxTenants,
    tenant: TenantId,
}

impl Drop for QueueLease {
    fn drop(&mut self) {
        if let Some(m) = self.tenants.lock().get_mut(&self.tenant) {
            m.queuing = m.queuing.saturating_sub(1);
        }
    }
}

impl OutboxTenants {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TenantId, TenantMark>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tenants the index has marked (at boot).
    pub fn extend(&self, tenants: impl IntoIterator<Item = TenantId>) {
        let mut map = self.lock();
        for t in tenants {
            map.entry(t).or_default().indexed = true;
        }
    }

    pub fn contains(&self, tenant: &TenantId) -> bool {
        self.lock().get(tenant).is_some_and(|m| m.indexed)
    }

    /// Before queuing mail for `tenant`: marks it in the index unless this
    /// process knows it is marked. Hold the lease until the message is
    /// appended.
    pub async fn lease(
        &self,
        store: &dyn EventStore,
        tenant: &TenantId,
    ) -> Result<QueueLease, extensor_core::Error> {
        let indexed = {
            let mut map = self.lock();
            let m = map.entry(tenant.clone()).or_default();
            m.queuing += 1;
            m.indexed
        };
        let lease = QueueLease {
            tenants: self.clone(),
            tenant: tenant.clone(),
        };
        if !indexed {
            mark_pending(store, tenant).await?;
            self.lock().entry(tenant.clone()).or_default().indexed = true;
        }
        Ok(lease)
    }

    /// Starts unmarking `tenant`: `false` if a host is queuing for it or it
    /// is not marked. Hosts arriving from now on mark it again themselves.
    fn begin_drain(&self, tenant: &TenantId) -> bool {
        let mut map = self.lock();
        let Some(m) = map.get_mut(tenant) else {
            return false;
        };
        if m.queuing > 0 || !m.indexed {
            return false;
        }
        m.indexed = false;
        true
    }

    /// The unmark did not happen: the tenant stays marked.
    fn drain_abandoned(&self, tenant: &TenantId) {
        self.lock().entry(tenant.clone()).or_default().indexed = true;
    }
}

/// The redaction point for what the outbox records: scrubs the sending
/// installation's secret values (and cuts URLs to their host) out of a
/// relay's error text. The engine hands in its redactor; `None` records
/// errors as the relay wrote them (tests without secrets).
pub type Redact = Arc<dyn Fn(&TenantId, Option<&str>, &str) -> String + Send + Sync>;

/// What every tenant's outbox is handed: nothing of the engine.
#[derive(Clone)]
pub struct OutboxService {
    pub store: Arc<dyn EventStore>,
    /// `None`: SMTP is not configured; messages stay pending.
    pub mailer: Option<Arc<SmtpMailer>>,
    pub secret_box: SecretBox,
    pub config: OutboxConfig,
    pub tenants: OutboxTenants,
    pub redact: Option<Redact>,
}

impl crate::tenant_supervisor::TenantService for OutboxService {
    fn name(&self) -> &'static str {
        SERVICE_NAME
    }
    /// Single-owner work: only the node holding the tenant's lease runs it.
    fn leased(&self) -> bool {
        true
    }

    fn wanted_at_start(&self, tenant: &TenantId) -> bool {
        self.tenants.contains(tenant)
    }

    fn spawn(
        &self,
        tenant: TenantId,
        supervisor: ractor::ActorCell,
    ) -> futures::future::BoxFuture<'static, Result<ractor::ActorCell, Error>> {
        let service = self.clone();
        Box::pin(async move {
            let actor = format!("/tenants/{tenant}/{SERVICE_NAME}");
            let args = OutboxArgs { tenant, service };
            let (a, _) = Actor::spawn_linked(None, Outbox, args, supervisor)
                .await
                .map_err(|e| Error::Spawn {
                    actor,
                    reason: e.to_string(),
                })?;
            Ok(a.get_cell())
        })
    }
}

pub struct Outbox;

pub struct OutboxArgs {
    pub tenant: TenantId,
    pub service: OutboxService,
}

pub enum OutboxMsg {
    /// Sent to itself at start: fold the stream, claim it with the next
    /// epoch, send what is due.
    Claim,
    /// New mail was queued (or a timer fired): read the stream's tail and
    /// send what is due.
    Wake,
    /// What the outbox holds now (answered after any drain in progress).
    Status {
        reply: ractor::RpcReplyPort<OutboxStatus>,
    },
}

/// An outbox's own view: its claim epoch and its pending messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxStatus {
    pub epoch: u64,
    pub pending: usize,
}

pub struct OutboxState {
    tenant: TenantId,
    service: OutboxService,
    /// The epoch this incarnation claimed.
    epoch: u64,
    folded: Folded,
    /// Sends within the last minute, for the rate cap.
    sent_at: VecDeque<Instant>,
    /// The earliest wake already scheduled, so timers do not pile up.
    wake_at: Option<Instant>,
}

/// Why an outbox stopped: a newer incarnation claimed the stream.
#[derive(Debug, thiserror::Error)]
#[error("outbox of {tenant}: fenced by epoch {newer} (ours {ours})")]
pub struct Fenced {
    tenant: TenantId,
    ours: u64,
    newer: u64,
}

impl OutboxState {
    fn store(&self) -> &dyn EventStore {
        &*self.service.store
    }

    fn meta(&self) -> EventMeta {
        EventMeta::new(Some(self.tenant.clone()), Principal::system())
    }

    /// Folds the stream and appends `email.outbox_claimed` with the next
    /// epoch, at the revision just read (a conflict re-reads and retries).
    async fn claim(&mut self) -> Result<(), ActorProcessingErr> {
        let (store, tenant) = (self.service.store.clone(), self.tenant.clone());
        self.folded = Folded::from_snapshot(&*store, &tenant).await;
        self.folded.read_from(&*store, &tenant).await?;
        self.folded.maybe_snapshot(&*store, &tenant).await;
        loop {
            let epoch = self.folded.epoch + 1;
            let claim = NewEvent::new(types::CLAIMED, 1, self.meta(), &json!({"epoch": epoch}))?;
            let expected = ExpectedRevision::from_current(self.folded.revision);
            match store.append(stream(&tenant), expected, vec![claim]).await {
                Ok(_) => {
                    self.epoch = epoch;
                    return Ok(());
                }
                Err(extensor_core::Error::Conflict { .. }) => {
                    self.folded.read_from(&*store, &tenant).await?;
                }
                Err(e) => return Err(Box::new(e)),
            }
        }
    }

    /// Reads the tail and checks the claim is still ours.
    async fn refresh(&mut self) -> Result<(), ActorProcessingErr> {
        let store = self.service.store.clone();
        self.folded.read_from(&*store, &self.tenant).await?;
        self.folded.maybe_snapshot(&*store, &self.tenant).await;
        if self.folded.epoch != self.epoch {
            return Err(Box::new(Fenced {
                tenant: self.tenant.clone(),
                ours: self.epoch,
                newer: self.folded.epoch,
            }));
        }
        Ok(())
    }

    /// Appends `event` at the revision just checked; on a conflict (the
    /// host queued more mail meanwhile) re-reads, re-checks the epoch and
    /// tries again.
    async fn record(&mut self, kind: &str, payload: Value) -> Result<(), ActorProcessingErr> {
        loop {
            let event = NewEvent::new(kind, 1, self.meta(), &payload)?;
            let expected = ExpectedRevision::from_current(self.folded.revision);
            match self
                .store()
                .append(stream(&self.tenant), expected, vec![event])
                .await
            {
                Ok(_) => return self.refresh().await,
                Err(extensor_core::Error::Conflict { .. }) => self.refresh().await?,
                Err(e) => return Err(Box::new(e)),
            }
        }
    }

    /// The next due pending message.
    fn due(&self, now: DateTime<Utc>) -> Option<(String, Option<String>)> {
        self.folded
            .messages
            .values()
            .filter(|(v, _)| v.status == MessageStatus::Pending)
            .filter(|(v, _)| v.next_attempt_at.is_none_or(|t| t <= now))
            .min_by_key(|(v, _)| v.next_attempt_at)
            .map(|(v, sealed)| (v.outbox_id.clone(), sealed.clone()))
    }

    fn earliest_pending(&self) -> Option<DateTime<Utc>> {
        self.folded
            .messages
            .values()
            .filter(|(v, _)| v.status == MessageStatus::Pending)
            .map(|(v, _)| v.next_attempt_at.unwrap_or(v.queued_at))
            .min()
    }

    /// When the rate cap lets the next send go (`None`: now).
    fn rate_wait(&mut self) -> Option<Duration> {
        let minute = Duration::from_secs(60);
        while self.sent_at.front().is_some_and(|t| t.elapsed() >= minute) {
            self.sent_at.pop_front();
        }
        let cap = self.service.config.sends_per_minute_max.max(1) as usize;
        (self.sent_at.len() >= cap)
            .then(|| minute.saturating_sub(self.sent_at.front().map_or(minute, |t| t.elapsed())))
    }

    /// Sends every due message (rate permitting), then arms one timer for
    /// the next due one.
    async fn drain(&mut self, myself: &ActorRef<OutboxMsg>) -> Result<(), ActorProcessingErr> {
        self.refresh().await?;
        let Some(mailer) = self.service.mailer.clone() else {
            return Ok(());
        };
        while let Some((id, sealed)) = self.due(Utc::now()) {
            if let Some(wait) = self.rate_wait() {
                self.arm(myself, wait);
                return Ok(());
            }
            self.sent_at.push_back(Instant::now());
            self.attempt(&mailer, &id, sealed.as_deref()).await?;
        }
        if let Some(at) = self.earliest_pending() {
            let wait = (at - Utc::now()).to_std().unwrap_or_default();
            self.arm(myself, wait);
        } else {
            self.unmark().await?;
        }
        Ok(())
    }

    fn pending(&self) -> usize {
        self.folded
            .messages
            .values()
            .filter(|(v, _)| v.status == MessageStatus::Pending)
            .count()
    }

    /// Nothing is pending: unmarks the tenant in the index, at the index
    /// revision read before hosts could mark it again, so a mark made
    /// meanwhile (a message being queued) makes the unmark conflict.
    async fn unmark(&mut self) -> Result<(), ActorProcessingErr> {
        let store = self.service.store.clone();
        for _ in 0..INDEX_DRAIN_TRIES_MAX {
            if !self.service.tenants.contains(&self.tenant) {
                return Ok(()); // not marked (as far as this process knows)
            }
            let revision = store.stream_revision(index_stream()).await?;
            let Some(revision) = revision else {
                return Ok(()); // no index yet: the next boot builds it
            };
            if !self.service.tenants.begin_drain(&self.tenant) {
                return Ok(());
            }
            self.refresh().await?;
            if self.pending() > 0 {
                self.service.tenants.drain_abandoned(&self.tenant);
                return Ok(());
            }
            let entry = IndexEntry {
                tenant: self.tenant.clone(),
            };
            let event = NewEvent::new(types::INDEX_DRAINED, 1, index_meta(), &entry)?;
            match store
                .append(
                    index_stream(),
                    ExpectedRevision::Exact(revision),
                    vec![event],
                )
                .await
            {
                Ok(r) => {
                    snapshot_index(&*store, r.next_expected).await;
                    return Ok(());
                }
                Err(extensor_core::Error::Conflict { .. }) => {
                    self.service.tenants.drain_abandoned(&self.tenant);
                }
                Err(e) => {
                    self.service.tenants.drain_abandoned(&self.tenant);
                    return Err(Box::new(e));
                }
            }
        }
        Ok(())
    }

    fn arm(&mut self, myself: &ActorRef<OutboxMsg>, wait: Duration) {
        let at = Instant::now() + wait;
        if self.wake_at.is_some_and(|w| w <= at && w > Instant::now()) {
            return;
        }
        self.wake_at = Some(at);
        myself.send_after(wait, || OutboxMsg::Wake);
    }

    /// One delivery attempt and its durable outcome.
    async fn attempt(
        &mut self,
        mailer: &SmtpMailer,
        id: &str,
        sealed: Option<&str>,
    ) -> Result<(), ActorProcessingErr> {
        let email = sealed
            .ok_or_else(|| "the message has no sealed copy".to_owned())
            .and_then(|s| {
                let context = seal_context(&self.tenant, id);
                let plain = self.service.secret_box.decrypt(&context, s);
                plain.map_err(|e| e.to_string()).and_then(|p| {
                    serde_json::from_str::<OutboundEmail>(&p).map_err(|e| e.to_string())
                })
            });
        let result = match email {
            Ok(email) => mailer.send(&email).await.map_err(|f| (f.kind, f.message)),
            Err(e) => Err((SendFailure::Permanent, e)),
        };
        let attempts = self.folded.messages.get(id).map_or(0, |(v, _)| v.attempts) + 1;
        let (kind, payload) = match result {
            Ok(()) => (types::SENT, json!({"outbox_id": id, "attempt": attempts})),
            Err((SendFailure::Transient, error)) if attempts < self.service.config.attempts_max => {
                let delay = self.service.config.retry_delay(attempts);
                let retry_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                let payload = json!({"outbox_id": id, "attempt": attempts,
                    "error": clip(&error), "retry_at": retry_at});
                (types::ATTEMPT_FAILED, payload)
            }
            Err((_, error)) => (
                types::FAILED,
                json!({"outbox_id": id, "attempt": attempts, "error": clip(&error)}),
            ),
        };
        self.record(kind, payload).await
    }
}

/// Writes the index's snapshot when an unmark lands on a snapshot
/// boundary (marks go through `aggregate::execute`, which does the same).
async fn snapshot_index(store: &dyn EventStore, revision: u64) {
    use extensor_core::aggregate::{self, AsOf};
    if !(revision + 1).is_multiple_of(INDEX_SNAPSHOT_EVERY_EVENTS) {
        return;
    }
    let written = match aggregate::load::<OutboxIndex>(store, &index_stream(), AsOf::Latest).await {
        Ok(loaded) => aggregate::write_snapshot(store, &index_stream(), &loaded).await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        tracing::warn!(error = %e, "outbox index snapshot not written");
    }
}

fn clip(error: &str) -> String {
    error.chars().take(ERROR_CHARS_MAX).collect()
}

impl Actor for Outbox {
    type Msg = OutboxMsg;
    type State = OutboxState;
    type Arguments = OutboxArgs;

    /// Only sends itself `Claim`: the supervisor that spawns it never waits
    /// on its reads, its claim or SMTP.
    async fn pre_start(
        &self,
        myself: ActorRef<OutboxMsg>,
        args: OutboxArgs,
    ) -> Result<OutboxState, ActorProcessingErr> {
        let state = OutboxState {
            tenant: args.tenant,
            service: args.service,
            epoch: 0,
            folded: Folded::default(),
            sent_at: VecDeque::new(),
            wake_at: None,
        };
        myself.send_message(OutboxMsg::Claim)?;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<OutboxMsg>,
        msg: OutboxMsg,
        state: &mut OutboxState,
    ) -> Result<(), ActorProcessingErr> {
        let handled = self.handle_msg(myself, msg, state).await;
        // The outbox depth `/metrics` reports (`outbox_pending`).
        crate::outbox_pending::set(&state.tenant, state.pending());
        handled
    }
}

impl Outbox {
    async fn handle_msg(
        &self,
        myself: ActorRef<OutboxMsg>,
        msg: OutboxMsg,
        state: &mut OutboxState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            OutboxMsg::Claim => {
                state.claim().await?;
                state.drain(&myself).await
            }
            OutboxMsg::Wake if state.epoch == 0 => Ok(()), // `Claim` drains next
            OutboxMsg::Wake => {
                if state.wake_at.is_some_and(|w| w <= Instant::now()) {
                    state.wake_at = None;
                }
                state.drain(&myself).await
            }
            OutboxMsg::Status { reply } => {
                let pending = state.pending();
                let _ = reply.send(OutboxStatus {
                    epoch: state.epoch,
                    pending,
                });
                Ok(())
            }
        }
    }
}
