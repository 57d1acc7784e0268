//! One webhook's deliveries, as an actor, on the durable-work model
//! (docs/ARCHITECTURE.md, "Durable work"). It owns the webhook's
//! deliveries stream and its own read mark in the tenant's events:
//!
//! - **Start** (a message to itself; its supervisor never waits on it):
//!   installs the code, loads the [`Ledger`] from its snapshot and the
//!   stream's tail (O(pending), not O(history)), and claims the stream with
//!   the next epoch (`webhook.endpoint_claimed`).
//! - **Reading**: it reads the tenant's events after its mark itself
//!   ([`Wake`](EndpointMsg::Wake) from the dispatcher's follower says there
//!   are new ones) and appends a delivery for every match, with the new
//!   mark, before anything is sent. A full backlog stops its reading (the
//!   events stay in the log); nothing is ever skipped. While the webhook is
//!   disabled it passes over the events it reads (Svix semantics) and
//!   records the mark.
//! - **Attempts** run as tasks it owns (aborted when it stops) under the
//!   webhook's concurrency and rate caps; their outcomes come back through
//!   a channel and are appended in batches at the revision at which the
//!   epoch was checked. A stale endpoint (a newer one claimed the stream)
//!   finds out before it attempts and when it records, and stops.
//! - **Auto-disable**: a 410, or a receiver failing without a single success
//!   for `WebhookConfig::disable_after_failing_ms` (default 5 days) asks the
//!   dispatcher to disable the webhook. Pending deliveries stay pending and
//!   resume when it is enabled again.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use extensor_core::aggregate::Aggregate;
use extensor_core::event::{EventMeta, NewEvent, Principal, RecordedEvent, StreamId};
use extensor_core::ids::{DeliveryId, EventId, TenantId};
use extensor_core::store::{
    APPEND_EVENTS_MAX, ExpectedRevision, READ_EVENTS_MAX, ReadFilter, SnapshotRecord,
};
use extensor_core::webhook::deliveries_stream;
use extensor_core::webhook::delivery::{Created, Delivery, DeliveryCommand, DeliveryEvent, Origin};
use extensor_core::webhook::ledger::{self, Ledger, Mark};
use extensor_core::webhook::registry::{WebhookName, WebhookRecord, WebhookStatus};
use extensor_core::webhook::retry::{AttemptOutcome, Verdict, classify};
use extensor_core::webhook::spec::WebhookSpec;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::attempt::{self, AttemptCx};
use super::dispatcher::DispatcherMsg;
use super::{BATCH_EVENTS_MAX, WebhookConfig};
use crate::error::Error;

/// After the store refused to record an attempt, try that delivery again
/// this much later.
const STORE_RETRY_MS: u64 = 1_000;
/// What one pending delivery costs in memory besides its event (ids, status,
/// queue entries): counted so a backlog of events evicted from memory (after
/// a restart) is bounded in bytes too.
pub const PENDING_DELIVERY_BYTES: usize = 512;
/// The read mark is recorded alone (when no delivery carried it) at most
/// this often: a tenant whose events never match this webhook costs one
/// small record a second, and a restart re-reads at most a second's events.
const CURSOR_SAVE_MS: u64 = 1_000;
/// A snapshot of the ledger is written once this many records were
/// appended since the last one, or as many as there are pending deliveries
/// if more (a snapshot holds every pending delivery, so its cost is spread
/// over at least as many records).
pub const SNAPSHOT_EVERY_RECORDS: u64 = 1_000;

/// How a fenced endpoint's stop reason starts (its dispatcher restarts a
/// current endpoint that was fenced).
pub const FENCED: &str = "fenced:";

/// Bytes one pending delivery holds: the overhead plus its event, while the
/// event is kept in memory.
fn held_bytes(event: Option<&Arc<RecordedEvent>>) -> usize {
    PENDING_DELIVERY_BYTES
        + event.map_or(0, |e| {
            e.payload.get().len() + e.event_type.len() + e.stream.as_str().len()
        })
}

pub struct Endpoint;

pub struct EndpointArgs {
    pub tenant: TenantId,
    pub name: WebhookName,
    pub record: WebhookRecord,
    pub config: WebhookConfig,
    pub dispatcher: ActorRef<DispatcherMsg>,
    /// Set while a [`EndpointMsg::Wake`] is queued, so the follower queues
    /// at most one per endpoint however far behind it is.
    pub wake: Arc<AtomicBool>,
}

/// Counters for the ops view and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    pub pending: usize,
    pub in_flight: usize,
    pub scheduled: usize,
    /// Every matching event at or before this position is a delivery.
    pub handled_through: u64,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// Since when the receiver has been failing without a success.
    pub failing_since: Option<DateTime<Utc>>,
    pub active: bool,
    /// Bytes the pending deliveries hold (see `held_bytes`).
    pub pending_bytes: usize,
    /// Times reading stopped because the backlog was full (count or bytes).
    pub backlog_refusals: u64,
    /// The claim epoch of this incarnation.
    pub epoch: u64,
}

/// What the endpoint has once started.
struct Running {
    cx: Arc<AttemptCx>,
    spec: Arc<WebhookSpec>,
}

type AttemptResult = (DeliveryId, Result<Vec<DeliveryEvent>, String>);

pub struct EndpointState {
    tenant: TenantId,
    name: WebhookName,
    config: WebhookConfig,
    dispatcher: ActorRef<DispatcherMsg>,
    record: WebhookRecord,
    stream: StreamId,
    running: Option<Running>,
    /// The epoch this incarnation claimed (0 until it has).
    epoch: u64,
    ledger: Ledger,
    /// The read mark last made durable.
    recorded_through: u64,
    cursor_saved_at: Instant,
    snapshot_revision: Option<u64>,
    active: bool,
    /// Reading stopped for a full backlog.
    paused: bool,
    events: HashMap<DeliveryId, Arc<RecordedEvent>>,
    pending_bytes: usize,
    backlog_refusals: u64,
    ready: VecDeque<DeliveryId>,
    scheduled: BTreeSet<(DateTime<Utc>, DeliveryId)>,
    in_flight: HashMap<DeliveryId, JoinHandle<()>>,
    results_tx: mpsc::UnboundedSender<AttemptResult>,
    results_rx: mpsc::UnboundedReceiver<AttemptResult>,
    tokens: f64,
    refilled: Instant,
    ticker: Option<JoinHandle<()>>,
    wake: Arc<AtomicBool>,
}

pub enum EndpointMsg {
    /// Sent to itself at start: install, load, claim, read.
    Start,
    /// The tenant has new events: read them from the mark.
    Wake,
    /// Creates deliveries for `events` (a replay; already matched);
    /// answers how many were created.
    Deliver {
        events: Arc<Vec<Arc<RecordedEvent>>>,
        origin: Origin,
        reply: RpcReplyPort<Result<usize, Error>>,
    },
    /// A new delivery of an earlier delivery's event.
    Redeliver {
        of: DeliveryId,
        event: Arc<RecordedEvent>,
        reply: RpcReplyPort<Result<DeliveryId, Error>>,
    },
    /// A delivery of a synthetic `webhook.test` event.
    SendTest {
        reply: RpcReplyPort<Result<DeliveryId, Error>>,
    },
    /// The webhook was re-declared: new code, target and caps.
    Update {
        record: Box<WebhookRecord>,
        reply: RpcReplyPort<Result<(), Error>>,
    },
    SetActive(bool),
    Stats {
        reply: RpcReplyPort<EndpointStats>,
    },
    /// Due retries, the rate budget, the mark and the snapshot.
    Tick,
    /// Attempt tasks finished: their outcomes wait in the results channel.
    AttemptsDone,
}

/// The attempt context of one declaration revision: its code installed and
/// its secrets resolved.
async fn build_cx(
    config: &WebhookConfig,
    tenant: &TenantId,
    name: &WebhookName,
    record: &WebhookRecord,
) -> Result<Running, String> {
    let list = |p: Vec<extensor_core::webhook::Problem>| {
        p.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let spec = WebhookSpec::parse(&record.source.yaml)
        .map_err(|p| format!("stored declaration no longer parses: {}", list(p)))?;
    let code = super::code::prepare(
        &config.sandbox,
        tenant.as_str(),
        name,
        record.revision,
        &spec,
        &record.source.files,
        config.warm.as_ref(),
    )
    .await
    .map_err(|p| {
        let text: Vec<String> = p.iter().map(ToString::to_string).collect();
        format!("stored code no longer loads: {}", text.join("; "))
    })?;
    // Secrets that cannot be read (a store hiccup) fail the start, so the
    // endpoint is restarted with backoff; failing every attempt instead
    // would turn a transient fault into failed deliveries.
    let secrets = config
        .secrets
        .secrets(tenant)
        .await
        .map_err(|e| format!("tenant secrets unavailable: {e}"))?;
    let target = attempt::resolve_target(&spec.delivery, &secrets);
    let redactor = extensor_core::redact::Redactor::new(secrets.into_values());
    let cx = AttemptCx {
        tenant: tenant.clone(),
        name: name.clone(),
        store: config.store.clone(),
        http: config.http.clone(),
        target,
        code,
        policy: spec.retry,
        redactor,
        clock: config.clock.clone(),
    };
    Ok(Running {
        cx: Arc::new(cx),
        spec: Arc::new(spec),
    })
}

/// The position of the newest `webhook.declared` of `name` in the tenant's
/// registry: a webhook never delivers events from before its declaration,
/// so a fresh endpoint starts reading there instead of at the log's start.
async fn declaration_position(
    config: &WebhookConfig,
    tenant: &TenantId,
    name: &WebhookName,
) -> Result<u64, extensor_core::Error> {
    use extensor_core::webhook::registry::types::DECLARED;
    let stream = extensor_core::webhook::registry_stream(tenant);
    let (mut from, mut found) = (0, 0);
    loop {
        let page = config
            .store
            .read_stream(stream.clone(), from, READ_EVENTS_MAX)
            .await?;
        for e in page.iter().filter(|e| e.event_type == DECLARED) {
            let named = serde_json::from_str::<serde_json::Value>(e.payload.get())
                .is_ok_and(|v| v["name"].as_str() == Some(name.as_str()));
            if named {
                found = e.position;
            }
        }
        if page.len() < READ_EVENTS_MAX {
            return Ok(found);
        }
        from += READ_EVENTS_MAX as u64;
    }
}

impl EndpointState {
    fn path(&self) -> String {
        format!("/tenants/{}/webhooks/{}", self.tenant, self.name)
    }

    fn core(&self, source: extensor_core::Error) -> Error {
        Error::Core {
            actor: self.path(),
            source,
        }
    }

    fn fenced(&self) -> Error {
        Error::Conflict {
            code: "fenced",
            message: format!(
                "{}: epoch {} was claimed after ours ({})",
                self.path(),
                self.ledger.epoch,
                self.epoch
            ),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.config.clock.now()
    }

    /// Install, load, claim, then queue what is pending and read.
    async fn start(&mut self, myself: &ActorRef<EndpointMsg>) -> Result<(), Error> {
        let running = build_cx(&self.config, &self.tenant, &self.name, &self.record)
            .await
            .map_err(|reason| Error::Spawn {
                actor: self.path(),
                reason,
            })?;
        self.tokens = f64::from(running.spec.delivery.rate_per_second);
        self.refilled = Instant::now();
        self.running = Some(running);
        self.load().await?;
        self.claim().await?;
        self.snapshot_revision = self.snapshot_revision.or(Some(0));
        let pending: Vec<(DeliveryId, Option<DateTime<Utc>>)> = self
            .ledger
            .pending
            .iter()
            .map(|(id, d)| (id.clone(), d.next_attempt_at))
            .collect();
        for (id, at) in pending {
            match at {
                Some(at) => {
                    self.scheduled.insert((at, id));
                }
                None => self.ready.push_back(id),
            }
            self.pending_bytes += held_bytes(None);
        }
        let tick = Duration::from_millis(self.config.tick_ms.max(1));
        self.ticker = Some(myself.send_interval(tick, || EndpointMsg::Tick));
        self.pull().await?;
        self.pump(myself).await
    }

    /// The ledger from its snapshot (if any) and the stream's tail.
    async fn load(&mut self) -> Result<(), Error> {
        let snap = self
            .config
            .store
            .load_snapshot(
                self.stream.clone(),
                ledger::SNAPSHOT_AGGREGATE.into(),
                ledger::SNAPSHOT_VERSION,
            )
            .await
            .map_err(|e| self.core(e))?;
        if let Some(s) = snap
            && let Ok(l) = serde_json::from_str::<Ledger>(&s.state)
            && l.revision == Some(s.revision)
        {
            self.snapshot_revision = l.revision;
            self.ledger = l;
        }
        self.catch_up().await
    }

    /// Applies the stream's records after the ledger's revision.
    async fn catch_up(&mut self) -> Result<(), Error> {
        loop {
            let from = self.ledger.revision.map_or(0, |r| r + 1);
            let page = self
                .config
                .store
                .read_stream(self.stream.clone(), from, READ_EVENTS_MAX)
                .await
                .map_err(|e| self.core(e))?;
            for r in &page {
                let applied = self.ledger.apply(
                    &r.event_type,
                    r.schema_version,
                    &r.payload,
                    r.revision,
                    r.position,
                );
                if let Err(why) = applied {
                    let at = format!("{} revision {}", self.stream, r.revision);
                    return Err(self.core(extensor_core::Error::InvalidValue {
                        what: "webhook deliveries stream",
                        value: at,
                        reason: why,
                    }));
                }
            }
            if page.len() < READ_EVENTS_MAX {
                return Ok(());
            }
        }
    }

    /// Appends `webhook.endpoint_claimed` with the next epoch at the
    /// revision just read; a conflict re-reads and tries again.
    async fn claim(&mut self) -> Result<(), Error> {
        let floor = declaration_position(&self.config, &self.tenant, &self.name)
            .await
            .map_err(|e| self.core(e))?;
        loop {
            let mark = Mark {
                epoch: self.ledger.epoch + 1,
                read_through: self.ledger.read_through.max(floor),
            };
            let event = self.mark_event(ledger::types::CLAIMED, &mark)?;
            let expected = ExpectedRevision::from_current(self.ledger.revision);
            let appended = self
                .config
                .store
                .append(self.stream.clone(), expected, vec![event])
                .await;
            match appended {
                Ok(r) => {
                    self.ledger.epoch = mark.epoch;
                    self.ledger.read_through = mark.read_through;
                    self.ledger.revision = Some(r.next_expected);
                    self.epoch = mark.epoch;
                    self.recorded_through = mark.read_through;
                    return Ok(());
                }
                Err(extensor_core::Error::Conflict { .. }) => self.catch_up().await?,
                Err(e) => return Err(self.core(e)),
            }
        }
    }

    fn meta(&self, cause: Option<&EventId>) -> EventMeta {
        EventMeta {
            causation_id: cause.cloned(),
            ..EventMeta::new(Some(self.tenant.clone()), Principal::system())
        }
    }

    fn mark_event(&self, kind: &str, mark: &Mark) -> Result<NewEvent, Error> {
        NewEvent::new(kind, 1, self.meta(None), mark).map_err(|e| self.core(e))
    }

    /// Appends `events` at the revision the ledger has read, after checking
    /// that our claim is still the newest. On a conflict it re-reads: a
    /// newer claim means this endpoint is stale ([`Self::fenced`]).
    async fn append_fenced(&mut self, events: Vec<NewEvent>) -> Result<(), Error> {
        for chunk in events.chunks(APPEND_EVENTS_MAX) {
            loop {
                if self.ledger.epoch != self.epoch {
                    return Err(self.fenced());
                }
                let expected = ExpectedRevision::from_current(self.ledger.revision);
                let appended = self
                    .config
                    .store
                    .append(self.stream.clone(), expected, chunk.to_vec())
                    .await;
                match appended {
                    Ok(r) => {
                        self.ledger.revision = Some(r.next_expected);
                        self.ledger.position = r.last_position;
                        break;
                    }
                    Err(extensor_core::Error::Conflict { .. }) => self.catch_up().await?,
                    Err(e) => return Err(self.core(e)),
                }
            }
        }
        Ok(())
    }

    /// Before attempting: the stream must still be at the revision we read
    /// (else someone else wrote: re-read, and a newer claim fences us).
    async fn check_claim(&mut self) -> Result<(), Error> {
        let head = self
            .config
            .store
            .stream_revision(self.stream.clone())
            .await
            .map_err(|e| self.core(e))?;
        if head != self.ledger.revision {
            self.catch_up().await?;
        }
        if self.ledger.epoch != self.epoch {
            return Err(self.fenced());
        }
        Ok(())
    }

    fn has_room(&self) -> bool {
        self.ledger.pending.len() < self.config.backlog_max
            && self.pending_bytes < self.config.backlog_bytes_max
    }

    fn matches(&self, spec: &WebhookSpec, ev: &RecordedEvent) -> bool {
        ev.recorded_at >= self.record.declared_at
            && super::dispatcher::matches_spec(spec, ev, &self.tenant)
    }

    /// Reads the tenant's events after the mark, a page at a time, and
    /// makes every match a delivery (durably, with the new mark) until the
    /// log's head or a full backlog. A full backlog pauses reading; it
    /// never skips: the mark stays where the deliveries end.
    async fn pull(&mut self) -> Result<(), Error> {
        let Some(spec) = self.running.as_ref().map(|r| r.spec.clone()) else {
            return Ok(());
        };
        let filter = ReadFilter {
            stream: Some(StreamId::business_events(&self.tenant)),
            ..ReadFilter::default()
        };
        loop {
            if !self.has_room() {
                self.paused = true;
                return Ok(());
            }
            self.paused = false;
            let page = self
                .config
                .store
                .read_all(self.ledger.read_through, filter.clone(), BATCH_EVENTS_MAX)
                .await
                .map_err(|e| self.core(e))?;
            let full = page.len() == BATCH_EVENTS_MAX;
            let (taken, through, cut) = self.admit(&spec, page);
            if self.active && !taken.is_empty() {
                self.create_many(&taken, &Origin::Event, Some(through))
                    .await?;
            } else if !taken.is_empty() {
                // Disabled: these events are passed over, durably, so that
                // enabling the webhook later does not send them.
                self.save_mark(through).await?;
            }
            self.ledger.read_through = self.ledger.read_through.max(through);
            if cut {
                self.backlog_refusals += 1;
                self.paused = true;
                return Ok(());
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// The matching events of `page` the backlog has room for, in order,
    /// and the position through which the page is handled. The backlog
    /// takes at least one delivery when empty (so one event larger than the
    /// byte cap still moves): it holds at most `max(backlog_bytes_max, one
    /// event)` bytes and `backlog_max` deliveries. `true`: cut short.
    fn admit(
        &self,
        spec: &WebhookSpec,
        page: Vec<RecordedEvent>,
    ) -> (Vec<Arc<RecordedEvent>>, u64, bool) {
        let (mut count, mut bytes) = (self.ledger.pending.len(), self.pending_bytes);
        let (mut taken, mut through) = (Vec::new(), self.ledger.read_through);
        for e in page {
            if self.matches(spec, &e) {
                let e = Arc::new(e);
                let b = held_bytes(Some(&e));
                let full =
                    count >= self.config.backlog_max || bytes + b > self.config.backlog_bytes_max;
                if self.active && count > 0 && full {
                    return (taken, through, true);
                }
                (count, bytes, through) = (count + 1, bytes + b, e.position);
                taken.push(e);
            } else {
                through = e.position;
            }
        }
        (taken, through, false)
    }

    /// Records the read mark alone.
    async fn save_mark(&mut self, through: u64) -> Result<(), Error> {
        let mark = Mark {
            epoch: self.epoch,
            read_through: through,
        };
        let event = self.mark_event(ledger::types::CURSOR, &mark)?;
        self.append_fenced(vec![event]).await?;
        self.ledger.read_through = self.ledger.read_through.max(through);
        self.recorded_through = through;
        self.cursor_saved_at = Instant::now();
        Ok(())
    }

    fn new_delivery(
        &self,
        event_id: &EventId,
        event_type: &str,
        position: u64,
        origin: Origin,
    ) -> Created {
        Created {
            delivery_id: DeliveryId::generate(),
            webhook_revision: self.record.revision,
            event_id: event_id.clone(),
            event_type: event_type.to_owned(),
            event_position: position,
            origin,
            at: self.now(),
        }
    }

    /// Deliveries for `events`, appended (with the mark `through`, when
    /// reading) before any attempt, then queued.
    async fn create_many(
        &mut self,
        events: &[Arc<RecordedEvent>],
        origin: &Origin,
        through: Option<u64>,
    ) -> Result<usize, Error> {
        let created: Vec<Created> = events
            .iter()
            .map(|ev| self.new_delivery(&ev.event_id, &ev.event_type, ev.position, origin.clone()))
            .collect();
        let n = created.len();
        self.create(created, events.iter().cloned().map(Some).collect(), through)
            .await?;
        Ok(n)
    }

    async fn create(
        &mut self,
        created: Vec<Created>,
        events: Vec<Option<Arc<RecordedEvent>>>,
        through: Option<u64>,
    ) -> Result<(), Error> {
        let mut batch = Vec::with_capacity(created.len() + 1);
        let mut records = Vec::with_capacity(created.len());
        for c in created {
            let evs = Delivery::default()
                .decide(&DeliveryCommand::Create(Box::new(c.clone())))
                .map_err(|e| self.core(e.into()))?;
            let meta = self.meta(Some(&c.event_id));
            batch.extend(attempt::to_new_events(&evs, &meta).map_err(|reason| {
                self.core(extensor_core::Error::InvalidValue {
                    what: "delivery",
                    value: c.delivery_id.to_string(),
                    reason,
                })
            })?);
            records.extend(evs);
        }
        if let Some(through) = through {
            let mark = Mark {
                epoch: self.epoch,
                read_through: through,
            };
            batch.push(self.mark_event(ledger::types::CURSOR, &mark)?);
        }
        self.append_fenced(batch).await?;
        if let Some(through) = through {
            self.ledger.read_through = self.ledger.read_through.max(through);
            self.recorded_through = through;
            self.cursor_saved_at = Instant::now();
        }
        for (e, event) in records.iter().zip(events) {
            self.ledger.apply_delivery(e);
            let id = e.delivery_id().clone();
            metrics::counter!("extensor_webhook_deliveries_created_total").increment(1);
            self.ready.push_back(id.clone());
            self.pending_bytes += held_bytes(event.as_ref());
            if let Some(ev) = event {
                self.events.insert(id, ev);
            }
        }
        Ok(())
    }

    fn refill(&mut self, rate: u32) {
        let rate = f64::from(rate);
        let elapsed = self.refilled.elapsed().as_secs_f64();
        self.refilled = Instant::now();
        // The bucket holds at most one second's worth: a burst after an idle
        // spell is capped at the per-second rate.
        self.tokens = (self.tokens + elapsed * rate).min(rate);
    }

    /// Starts attempts while the caps allow, once the claim is checked.
    async fn pump(&mut self, myself: &ActorRef<EndpointMsg>) -> Result<(), Error> {
        let Some(spec) = self.running.as_ref().map(|r| r.spec.clone()) else {
            return Ok(());
        };
        if !self.active || self.ready.is_empty() {
            return Ok(());
        }
        self.refill(spec.delivery.rate_per_second);
        let concurrency = spec.delivery.concurrency as usize;
        if self.in_flight.len() >= concurrency || self.tokens < 1.0 {
            return Ok(());
        }
        self.check_claim().await?;
        while self.in_flight.len() < concurrency && self.tokens >= 1.0 {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            let Some(delivery) = self.ledger.pending.get(&id).cloned() else {
                continue;
            };
            if self.in_flight.contains_key(&id) {
                continue;
            }
            self.tokens -= 1.0;
            let cx = self.running.as_ref().map(|r| r.cx.clone());
            let Some(cx) = cx else { break };
            let event = self.events.get(&id).cloned();
            let (tx, me, task_id) = (self.results_tx.clone(), myself.clone(), id.clone());
            let task = tokio::spawn(async move {
                let result = attempt::run(cx, delivery, event).await;
                let _ = tx.send((task_id, result));
                let _ = me.send_message(EndpointMsg::AttemptsDone);
            });
            self.in_flight.insert(id, task);
        }
        Ok(())
    }

    async fn tick(&mut self, myself: &ActorRef<EndpointMsg>) -> Result<(), Error> {
        if self.running.is_none() {
            return Ok(());
        }
        let now = self.now();
        while let Some(first) = self.scheduled.first() {
            if first.0 > now {
                break;
            }
            let (_, id) = self.scheduled.pop_first().expect("checked non-empty");
            self.ready.push_back(id);
        }
        if self.paused && self.has_room() {
            self.pull().await?;
        }
        let idle = self.cursor_saved_at.elapsed() >= Duration::from_millis(CURSOR_SAVE_MS);
        if idle && self.ledger.read_through > self.recorded_through {
            self.save_mark(self.ledger.read_through).await?;
        }
        self.maybe_snapshot().await;
        self.pump(myself).await
    }

    /// Writes the ledger's snapshot when enough was appended since the
    /// last (a failure is only logged: snapshots are a cache).
    async fn maybe_snapshot(&mut self) {
        let (Some(rev), Some(at)) = (self.ledger.revision, self.snapshot_revision) else {
            return;
        };
        let every = SNAPSHOT_EVERY_RECORDS.max(self.ledger.pending.len() as u64);
        if rev < at + every {
            return;
        }
        let Ok(state) = serde_json::to_string(&self.ledger) else {
            return;
        };
        let snap = SnapshotRecord {
            stream: self.stream.clone(),
            aggregate: ledger::SNAPSHOT_AGGREGATE.into(),
            snapshot_version: ledger::SNAPSHOT_VERSION,
            revision: rev,
            position: self.ledger.position,
            state,
        };
        match self.config.store.save_snapshot(snap).await {
            Ok(()) => self.snapshot_revision = Some(rev),
            Err(e) => tracing::warn!(webhook = %self.name, error = %e, "ledger snapshot not saved"),
        }
    }

    /// Records the outcomes of every finished attempt in one append, then
    /// applies them.
    async fn attempts_done(&mut self, myself: &ActorRef<EndpointMsg>) -> Result<(), Error> {
        let mut done = Vec::new();
        while let Ok(r) = self.results_rx.try_recv() {
            done.push(r);
        }
        if done.is_empty() {
            return Ok(());
        }
        let mut batch = Vec::new();
        let mut recorded = Vec::new();
        for (id, result) in done {
            self.in_flight.remove(&id);
            match result {
                Ok(events) => {
                    let cause = self.ledger.pending.get(&id).and_then(|d| d.created.clone());
                    let meta = self.meta(cause.as_ref().map(|c| &c.event_id));
                    match attempt::to_new_events(&events, &meta) {
                        Ok(new) => batch.extend(new),
                        Err(why) => tracing::error!(delivery = %id, %why, "attempt not encoded"),
                    }
                    recorded.push((id, events));
                }
                Err(why) => {
                    tracing::warn!(webhook = %self.name, delivery = %id, %why, "attempt not recorded; retrying later");
                    self.retry_later(id);
                }
            }
        }
        if let Err(e) = self.append_fenced(batch).await {
            if matches!(e, Error::Conflict { code: "fenced", .. }) {
                return Err(e);
            }
            tracing::warn!(webhook = %self.name, error = %e, "attempts not recorded; retrying later");
            for (id, _) in recorded {
                self.retry_later(id);
            }
            return Ok(());
        }
        for (id, events) in recorded {
            self.apply_outcome(id, &events);
        }
        self.check_health();
        if self.paused && self.has_room() {
            self.pull().await?;
        }
        self.pump(myself).await
    }

    fn retry_later(&mut self, id: DeliveryId) {
        let at = self.now() + chrono::Duration::milliseconds(STORE_RETRY_MS as i64);
        self.scheduled.insert((at, id));
    }

    fn apply_outcome(&mut self, id: DeliveryId, events: &[DeliveryEvent]) {
        for e in events {
            if let DeliveryEvent::Attempted(a) = e {
                if classify(&a.outcome) == Verdict::Gone {
                    self.disable("the receiver answered 410 Gone".into());
                }
                metrics::counter!("extensor_webhook_attempts_total", "outcome" => outcome_label(&a.outcome)).increment(1);
                metrics::histogram!("extensor_webhook_attempt_seconds")
                    .record(a.latency_ms as f64 / 1000.0);
            }
            self.ledger.apply_delivery(e);
        }
        match self.ledger.pending.get(&id) {
            None => {
                if let Some(d) = events.last() {
                    let status = match d {
                        DeliveryEvent::Delivered(_) => "delivered",
                        DeliveryEvent::Failed(_) => "failed",
                        _ => "skipped",
                    };
                    metrics::counter!("extensor_webhook_deliveries_total", "status" => status)
                        .increment(1);
                }
                let gone = self.events.remove(&id);
                self.pending_bytes -= held_bytes(gone.as_ref()).min(self.pending_bytes);
            }
            Some(d) => match d.next_attempt_at {
                Some(at) => {
                    self.scheduled.insert((at, id));
                }
                None => self.ready.push_back(id),
            },
        }
    }

    /// Disables the webhook once its receiver has failed without a single
    /// success for the configured period (a burst never does).
    fn check_health(&mut self) {
        let period = chrono::Duration::milliseconds(
            i64::try_from(self.config.disable_after_failing_ms).unwrap_or(i64::MAX),
        );
        if !self.active || !self.ledger.failing_for(self.now(), period) {
            return;
        }
        let since = self.ledger.failing_since.unwrap_or_default();
        self.disable(format!(
            "the receiver has failed without a single success since {} ({} failed attempts); \
             the limit is {}",
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.ledger.failures_since_success,
            human_ms(self.config.disable_after_failing_ms),
        ));
    }

    fn disable(&mut self, reason: String) {
        if !self.active {
            return;
        }
        self.active = false;
        tracing::warn!(webhook = %self.name, %reason, "disabling webhook");
        let _ = self.dispatcher.send_message(DispatcherMsg::AutoDisable {
            name: self.name.clone(),
            reason,
        });
    }

    /// Enabled again: the receiver's failure record starts afresh (durably,
    /// so a restart does not disable it again at once), and pending
    /// deliveries resume.
    async fn set_active(
        &mut self,
        myself: &ActorRef<EndpointMsg>,
        active: bool,
    ) -> Result<(), Error> {
        let resumed = active && !self.active;
        self.active = active;
        if resumed && self.running.is_some() && self.ledger.failing_since.is_some() {
            let mark = Mark {
                epoch: self.epoch,
                read_through: self.recorded_through,
            };
            let event = self.mark_event(ledger::types::RESUMED, &mark)?;
            self.append_fenced(vec![event]).await?;
            self.ledger.failing_since = None;
            self.ledger.failures_since_success = 0;
        }
        if resumed {
            let due: Vec<DeliveryId> = self.scheduled.iter().map(|(_, id)| id.clone()).collect();
            self.scheduled.clear();
            self.ready.extend(due);
            self.pull().await?;
        }
        self.pump(myself).await
    }

    fn stats(&self) -> EndpointStats {
        EndpointStats {
            pending: self.ledger.pending.len(),
            in_flight: self.in_flight.len(),
            scheduled: self.scheduled.len(),
            handled_through: self.ledger.read_through,
            consecutive_failures: self.ledger.failures_since_success,
            failing_since: self.ledger.failing_since,
            active: self.active,
            pending_bytes: self.pending_bytes,
            backlog_refusals: self.backlog_refusals,
            epoch: self.epoch,
        }
    }

    async fn one_delivery(
        &mut self,
        c: Created,
        event: Option<Arc<RecordedEvent>>,
    ) -> Result<DeliveryId, Error> {
        if self.running.is_none() {
            return Err(Error::Stopped { actor: self.path() });
        }
        let id = c.delivery_id.clone();
        self.create(vec![c], vec![event], None).await?;
        Ok(id)
    }

    async fn update(&mut self, record: &WebhookRecord) -> Result<(), Error> {
        let running = build_cx(&self.config, &self.tenant, &self.name, record)
            .await
            .map_err(|reason| Error::Spawn {
                actor: self.path(),
                reason,
            })?;
        self.running = Some(running);
        self.record = record.clone();
        Ok(())
    }

    async fn handle(
        &mut self,
        myself: &ActorRef<EndpointMsg>,
        msg: EndpointMsg,
    ) -> Result<(), Error> {
        match msg {
            EndpointMsg::Start => self.start(myself).await?,
            EndpointMsg::Wake => {
                self.wake.store(false, Ordering::SeqCst);
                self.pull().await?;
                self.pump(myself).await?;
            }
            EndpointMsg::Deliver {
                events,
                origin,
                reply,
            } => {
                let r = match self.running.is_some() {
                    true => self.create_many(&events, &origin, None).await,
                    false => Err(Error::Stopped { actor: self.path() }),
                };
                let fenced = matches!(r, Err(Error::Conflict { code: "fenced", .. }));
                let _ = reply.send(r);
                if fenced {
                    return Err(self.fenced());
                }
                self.pump(myself).await?;
            }
            EndpointMsg::Redeliver { of, event, reply } => {
                let c = self.new_delivery(
                    &event.event_id,
                    &event.event_type,
                    event.position,
                    Origin::Redeliver { of },
                );
                let _ = reply.send(self.one_delivery(c, Some(event)).await);
                self.pump(myself).await?;
            }
            EndpointMsg::SendTest { reply } => {
                let c = self.new_delivery(
                    &EventId::generate(),
                    attempt::TEST_EVENT_TYPE,
                    0,
                    Origin::Test,
                );
                let _ = reply.send(self.one_delivery(c, None).await);
                self.pump(myself).await?;
            }
            EndpointMsg::Update { record, reply } => {
                let _ = reply.send(self.update(&record).await);
                self.pump(myself).await?;
            }
            EndpointMsg::SetActive(active) => self.set_active(myself, active).await?,
            EndpointMsg::Stats { reply } => {
                let _ = reply.send(self.stats());
            }
            EndpointMsg::Tick => self.tick(myself).await?,
            EndpointMsg::AttemptsDone => self.attempts_done(myself).await?,
        }
        Ok(())
    }
}

/// `432000000` → `5 days`; for reasons people read.
fn human_ms(ms: u64) -> String {
    const DAY: u64 = 86_400_000;
    const HOUR: u64 = 3_600_000;
    match ms {
        ms if ms >= DAY && ms % DAY == 0 => format!("{} days", ms / DAY),
        ms if ms >= HOUR && ms % HOUR == 0 => format!("{} hours", ms / HOUR),
        ms if ms % 1_000 == 0 => format!("{} s", ms / 1_000),
        ms => format!("{ms} ms"),
    }
}

fn outcome_label(o: &AttemptOutcome) -> &'static str {
    match o {
        AttemptOutcome::Status { status } if (200..300).contains(status) => "2xx",
        AttemptOutcome::Status { status } if (400..500).contains(status) => "4xx",
        AttemptOutcome::Status { status } if (500..600).contains(status) => "5xx",
        AttemptOutcome::Status { .. } => "other_status",
        AttemptOutcome::Timeout => "timeout",
        AttemptOutcome::Connection => "connection",
        AttemptOutcome::Refused => "refused",
        AttemptOutcome::Transform => "transform",
    }
}

impl Actor for Endpoint {
    type Msg = EndpointMsg;
    type State = EndpointState;
    type Arguments = EndpointArgs;

    /// Only sends itself `Start`: the dispatcher that spawns it never waits
    /// on its code, its reads or its claim.
    async fn pre_start(
        &self,
        myself: ActorRef<EndpointMsg>,
        args: EndpointArgs,
    ) -> Result<EndpointState, ActorProcessingErr> {
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        let state = EndpointState {
            stream: deliveries_stream(&args.tenant, &args.name),
            active: args.record.status == WebhookStatus::Active,
            tenant: args.tenant,
            name: args.name,
            dispatcher: args.dispatcher,
            record: args.record,
            config: args.config,
            running: None,
            epoch: 0,
            ledger: Ledger::default(),
            recorded_through: 0,
            cursor_saved_at: Instant::now(),
            snapshot_revision: None,
            paused: false,
            events: HashMap::new(),
            pending_bytes: 0,
            backlog_refusals: 0,
            ready: VecDeque::new(),
            scheduled: BTreeSet::new(),
            in_flight: HashMap::new(),
            results_tx,
            results_rx,
            tokens: 0.0,
            refilled: Instant::now(),
            ticker: None,
            wake: args.wake,
        };
        myself.send_message(EndpointMsg::Start)?;
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<EndpointMsg>,
        state: &mut EndpointState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.ticker.take() {
            t.abort();
        }
        // No attempt outlives its endpoint: one cut short is not recorded,
        // so the delivery is pending again for the next incarnation.
        for (_, task) in state.in_flight.drain() {
            task.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<EndpointMsg>,
        msg: EndpointMsg,
        state: &mut EndpointState,
    ) -> Result<(), ActorProcessingErr> {
        match state.handle(&myself, msg).await {
            Ok(()) => Ok(()),
            // A newer endpoint claimed the stream: this one stops (a
            // failure would be restarted and claim again).
            Err(Error::Conflict {
                code: "fenced",
                message,
            }) => {
                tracing::warn!(%message, "stale webhook endpoint stops");
                myself.stop(Some(format!("{FENCED} {message}")));
                Ok(())
            }
            Err(e) => Err(Box::new(e)),
        }
    }
}
