//! A tenant's event dispatcher: a service child of the tenant supervisor
//! that hands each business event (`events-<tenant>`) to the enabled
//! installations whose hooks match its type.
//!
//! **Lanes.** Each enabled installation with hooks gets its own lane, a task
//! that follows the business stream from its own durable checkpoint, runs
//! the matching hooks one event at a time (in stream order), and records
//! each execution as `hook.executed` / `hook.failed` (duration, outcome, the
//! limit hit) in the installation's `hooks-<installation>` stream. The
//! latest record there *is* the lane's checkpoint. Lanes are independent: a
//! slow, throwing or crash-looping plugin delays only its own lane, and a
//! lane holds at most one page of events in memory (bounded).
//!
//! **At-least-once.** A lane records after running, so a crash between the
//! two runs the hook again on restart; every invocation carries the event id
//! (`ctx.invocation.eventId`) for the plugin to deduplicate. A new lane
//! starts at the first event after the installation was (last) enabled.
//!
//! **Failed installations.** While an installation's actor is marked failed
//! (it crash-looped past the restart policy) its lane runs no hook: it
//! records `hook.paused` (code `actor_failed`, the event it stopped at) and
//! waits for an operator restart, then resumes at that event. Nothing is
//! skipped, and a restart of the process meanwhile resumes there too.
//!
//! **Fencing.** A lane starting claims its `hooks-<installation>` stream
//! with `hook.lane_claimed` (epoch + 1, and the business revision it resumes
//! at), appended at the revision it just read. Every later record carries
//! the epoch and is appended at exactly the revision the lane last wrote or
//! checked; before running a hook the lane checks the stream has not moved.
//! A stale lane (a restarted dispatcher's old task, a second process on the
//! same store) finds the stream moved, reads the tail, sees the newer claim
//! and stops: it neither runs nor records. A hook may still run twice (the
//! new lane re-runs what the old one ran but had not recorded), never be
//! marked done without running.
//!
//! **Wake-ups.** Appends wake lanes through the tenant's `head` watch (set by
//! the engine's own appends and by the log follower for anyone else's), so
//! an idle lane costs a parked task, not polling.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use extensor_core::event::{EventMeta, NewEvent, Principal, RecordedEvent, StreamId};
use extensor_core::ids::{EventId, InstallationId, TenantId};
use extensor_core::store::{ExpectedRevision, ReadFilter};
use extensor_js::JsError;
use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use std::sync::Arc;

use extensor_core::store::EventStore;

use crate::error::Error;
use crate::supervision::ActorKind;
use crate::tenant_supervisor::TenantService;

/// The dispatcher's name under its tenant: `/tenants/<t>/dispatcher`.
pub const SERVICE_NAME: &str = "dispatcher";
/// Events a lane reads (and records) per page: the lane's memory bound.
pub const LANE_PAGE_EVENTS: usize = 64;
/// A lane that skipped this many events without a record writes a
/// checkpoint, so a restart does not rescan a long unmatched stretch.
pub const CHECKPOINT_EVERY_EVENTS: u64 = 1_000;
/// A hook's result larger than this is recorded as an excerpt.
pub const HOOK_OUTCOME_BYTES_MAX: usize = 16 * 1024;
/// First and longest pause before a lane retries a failed store call.
const STORE_RETRY_MS_MIN: u64 = 50;
const STORE_RETRY_MS_MAX: u64 = 5_000;

/// Record types in `hooks-<installation>`.
pub mod types {
    pub const EXECUTED: &str = "hook.executed";
    pub const FAILED: &str = "hook.failed";
    pub const CHECKPOINT: &str = "hook.checkpoint";
    /// The lane stopped before `event_revision` because the installation's
    /// actor is failed; it resumes *at* that event, not after it.
    pub const PAUSED: &str = "hook.paused";
    /// A lane started: its fencing epoch and where it resumes.
    pub const LANE_CLAIMED: &str = "hook.lane_claimed";
}

/// Payload of `hook.lane_claimed`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LaneClaim {
    /// One more than the newest epoch in the stream when it was claimed.
    pub epoch: u64,
    /// The business stream revision the lane resumes at.
    pub next_revision: u64,
}

/// The stream a lane records into.
pub fn hooks_stream(id: &InstallationId) -> StreamId {
    StreamId::new("hooks", id.as_str()).expect("installation ids are valid stream ids")
}

/// One record of a lane (payload of `hook.*` events).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HookRecord {
    pub installation_id: InstallationId,
    pub slug: String,
    pub event_id: Option<EventId>,
    pub event_type: Option<String>,
    /// The business stream revision this record covers (the checkpoint).
    pub event_revision: u64,
    pub duration_us: u64,
    /// When the hook finished (before the record was written).
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub outcome: Option<Value>,
    pub error: Option<String>,
    /// The error's stable code (`plugin_timeout`, `plugin_failed`, …).
    pub error_code: Option<String>,
    /// `deadline`, `heap`, `stack` or `chain_depth` when a limit was hit.
    pub limit: Option<String>,
    /// The epoch of the lane that wrote it (absent in records written
    /// before lanes were fenced: epoch 0).
    #[serde(default)]
    pub epoch: u64,
}

/// A lane's hold on its stream: the epoch it claimed, and the stream
/// revision it last wrote or checked (appends expect exactly this).
#[derive(Clone, Copy, Debug)]
struct Fence {
    epoch: u64,
    revision: u64,
}

/// A newer lane claimed the stream: this one stops.
#[derive(Debug)]
struct Fenced;

/// What a dispatcher and its lanes are handed: the engine implements it
/// (`engine::lanes`), so this module imports nothing of the engine. An
/// installation is named by id and looked up afresh on every call.
pub(crate) trait LaneHost: Send + Sync + 'static {
    fn store(&self) -> Arc<dyn EventStore>;
    /// Events per lane page, and events without a record before a lane
    /// writes a checkpoint.
    fn lane_bounds(&self) -> (usize, u64);
    /// Held by a starting lane until its start-up reads are done.
    fn lane_starting(&self) -> Box<dyn Send + Sync>;
    /// The tenant's enabled installations that declare hooks.
    fn hooked_installations(&self, tenant: &TenantId) -> Vec<InstallationId>;
    /// Bumped whenever one of the tenant's installations changes.
    fn installations_changed(&self, tenant: &TenantId) -> watch::Receiver<u64>;
    /// The tenant's business stream head: moves on every append.
    fn head(&self, tenant: &TenantId) -> watch::Receiver<u64>;
    /// The business events from revision `next`, if the host still holds
    /// them in memory (`None`: read the store).
    fn recent_from(&self, tenant: &TenantId, next: u64, page: usize) -> Option<Vec<RecordedEvent>>;
    /// Turns `true` when the engine starts shutting down.
    fn closing(&self) -> watch::Receiver<bool>;
    /// The installation as a lane sees it for events of `event_type`.
    fn lane_installation(&self, id: &InstallationId, event_type: &str) -> Option<LaneInstallation>;
    /// `Err(Error::Failed)` while the installation's actor is marked failed.
    fn refuse_failed(&self, id: &InstallationId) -> Result<(), Error>;
    /// Moves whenever the status board changes (an operator restart).
    fn board_changes(&self) -> watch::Receiver<u64>;
    /// Runs the installation's hook for `ev` (its emit-chain depth given);
    /// answers the hook's result.
    fn run_hook(
        self: Arc<Self>,
        id: &InstallationId,
        ev: &RecordedEvent,
        chain_depth: u32,
    ) -> BoxFuture<'static, Result<Value, Error>>;
}

/// Where a dispatcher finds its host: empty once the engine is gone (its
/// lanes then stop).
pub(crate) trait LaneHostSlot: Send + Sync + 'static {
    fn host(&self) -> Option<Arc<dyn LaneHost>>;
}

/// One installation as a lane sees it.
#[derive(Clone, Debug)]
pub(crate) struct LaneInstallation {
    pub id: InstallationId,
    pub slug: String,
    pub enabled: bool,
    /// Global position of its latest `plugin.enabled`: hooks run only for
    /// business events after it.
    pub enabled_at: u64,
    /// Whether it hooks the event type asked about.
    pub handles: bool,
}

/// Spawns a dispatcher per tenant (see [`TenantService`]).
pub(crate) struct DispatcherService {
    pub engine: Arc<dyn LaneHostSlot>,
}

impl TenantService for DispatcherService {
    fn name(&self) -> &'static str {
        SERVICE_NAME
    }
    /// Single-owner work: only the node holding the tenant's lease runs it.
    fn leased(&self) -> bool {
        true
    }

    fn kind(&self) -> ActorKind {
        ActorKind::Dispatcher
    }

    fn spawn(
        &self,
        tenant: TenantId,
        supervisor: ActorCell,
    ) -> BoxFuture<'static, Result<ActorCell, Error>> {
        let engine = self.engine.clone();
        Box::pin(async move {
            let path = format!("/tenants/{tenant}/{SERVICE_NAME}");
            let args = DispatcherArgs { tenant, engine };
            let (actor, _) = Actor::spawn_linked(None, Dispatcher, args, supervisor)
                .await
                .map_err(|e| Error::Spawn {
                    actor: path,
                    reason: e.to_string(),
                })?;
            Ok(actor.get_cell())
        })
    }
}

pub struct Dispatcher;

pub struct DispatcherArgs {
    tenant: TenantId,
    engine: Arc<dyn LaneHostSlot>,
}

struct Lane {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// A lane never outlives its dispatcher, however the dispatcher ends (a
/// panic skips `post_stop` but still drops the state): otherwise a restarted
/// dispatcher's new lane would run beside the old one.
impl Drop for Lane {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

pub struct DispatcherState {
    tenant: TenantId,
    engine: Arc<dyn LaneHostSlot>,
    lanes: BTreeMap<InstallationId, Lane>,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for DispatcherState {
    fn drop(&mut self) {
        self.stop_lanes();
    }
}

pub enum DispatcherMsg {
    /// The tenant's installations changed: start and stop lanes to match.
    Sync,
    /// How many lanes run (ops and tests).
    Lanes { reply: RpcReplyPort<usize> },
    /// Fault drill: panics in the handler, so the supervisor restarts the
    /// dispatcher and its lanes resume from their checkpoints.
    Panic,
}

impl DispatcherState {
    fn sync(&mut self) {
        let Some(inner) = self.engine.host() else {
            return;
        };
        let wanted = inner.hooked_installations(&self.tenant);
        // Lanes no longer wanted, or whose task ended, go.
        self.lanes.retain(|id, lane| {
            let keep = wanted.contains(id) && !lane.task.is_finished();
            if !keep {
                let _ = lane.stop.send(true);
            }
            keep
        });
        for id in wanted {
            if self.lanes.contains_key(&id) {
                continue;
            }
            let (stop, stop_rx) = watch::channel(false);
            let ctx = LaneCtx {
                engine: self.engine.clone(),
                tenant: self.tenant.clone(),
                id: id.clone(),
                page: inner.lane_bounds().0.max(1),
                checkpoint_every: inner.lane_bounds().1.max(1),
            };
            let starting = inner.lane_starting();
            let task = tokio::spawn(run_lane(ctx, stop_rx, starting));
            self.lanes.insert(id, Lane { stop, task });
        }
    }

    fn stop_lanes(&mut self) {
        // Dropping a lane stops it.
        self.lanes.clear();
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
    }
}

impl Actor for Dispatcher {
    type Msg = DispatcherMsg;
    type State = DispatcherState;
    type Arguments = DispatcherArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: DispatcherArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let watcher = args.engine.host().map(|inner| {
            let mut generation = inner.installations_changed(&args.tenant);
            let me = myself.clone();
            tokio::spawn(async move {
                while generation.changed().await.is_ok() {
                    if me.send_message(DispatcherMsg::Sync).is_err() {
                        return;
                    }
                }
            })
        });
        myself.send_message(DispatcherMsg::Sync)?;
        Ok(DispatcherState {
            tenant: args.tenant,
            engine: args.engine,
            lanes: BTreeMap::new(),
            watcher,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DispatcherMsg::Sync => state.sync(),
            DispatcherMsg::Lanes { reply } => {
                let _ = reply.send(state.lanes.len());
            }
            DispatcherMsg::Panic => panic!("fault drill in dispatcher of {}", state.tenant),
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.stop_lanes();
        Ok(())
    }
}

struct LaneCtx {
    engine: Arc<dyn LaneHostSlot>,
    tenant: TenantId,
    id: InstallationId,
    page: usize,
    checkpoint_every: u64,
}

/// Whether the lane should stop: told to, or the engine is closing.
fn stopping(stop: &watch::Receiver<bool>, closing: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || *closing.borrow()
}

async fn backoff(attempt: &mut u32) {
    let ms = (STORE_RETRY_MS_MIN << (*attempt).min(7)).min(STORE_RETRY_MS_MAX);
    *attempt += 1;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// `starting` is dropped once the lane has its start revision (or ends).
async fn run_lane(ctx: LaneCtx, mut stop: watch::Receiver<bool>, starting: Box<dyn Send + Sync>) {
    let Some(inner) = ctx.engine.host() else {
        return;
    };
    let mut head = inner.head(&ctx.tenant);
    let mut closing = inner.closing();
    drop(inner);
    let mut attempt = 0;
    let (mut next, mut fence) = loop {
        if stopping(&stop, &closing) {
            return;
        }
        match claim_lane(&ctx).await {
            Ok(Some(claimed)) => break claimed,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(installation = %ctx.id, error = %e, "lane start: store read failed");
                backoff(&mut attempt).await;
            }
        }
    };
    drop(starting);
    let mut unrecorded = 0u64;
    loop {
        if stopping(&stop, &closing) {
            return;
        }
        // Mark the head seen *before* reading, so an append that lands
        // after the read still wakes the wait below.
        head.borrow_and_update();
        let Some(inner) = ctx.engine.host() else {
            return;
        };
        let stream = StreamId::business_events(&ctx.tenant);
        let recent = inner.recent_from(&ctx.tenant, next, ctx.page);
        let read = match recent {
            Some(events) => Ok(events),
            None => inner.store().read_stream(stream, next, ctx.page).await,
        };
        let page = match read {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(installation = %ctx.id, error = %e, "lane read failed");
                drop(inner);
                backoff(&mut attempt).await;
                continue;
            }
        };
        attempt = 0;
        if page.is_empty() {
            drop(inner);
            tokio::select! {
                _ = head.changed() => {}
                _ = stop.changed() => {}
                _ = closing.changed() => {}
            }
            continue;
        }
        let mut records = Vec::new();
        let mut ended = false;
        for ev in &page {
            if stopping(&stop, &closing) {
                ended = true;
                break;
            }
            let Some(known) = inner
                .lane_installation(&ctx.id, &ev.event_type)
                .filter(|k| k.enabled)
            else {
                ended = true;
                break;
            };
            if ev.position > known.enabled_at && known.handles {
                if check_fence(&*inner, &ctx, &mut fence).await.is_err() {
                    return;
                }
                if let Err(failed) = inner.refuse_failed(&known.id) {
                    records.push(paused(&known, ev, &failed, fence.epoch));
                    let taken = std::mem::take(&mut records);
                    if record(&*inner, &ctx, &mut fence, taken).await.is_err() {
                        return;
                    }
                    unrecorded = 0;
                    if !wait_until_restarted(&*inner, &known, &mut stop, &mut closing).await {
                        ended = true;
                        break;
                    }
                }
                match execute(&inner, &known, ev, fence.epoch).await {
                    Some(record) => records.push(record),
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
            next = ev.revision + 1;
            unrecorded += 1;
        }
        if records.is_empty() && unrecorded >= ctx.checkpoint_every {
            records.push(checkpoint(&ctx, next, fence.epoch));
        }
        if !records.is_empty() {
            if record(&*inner, &ctx, &mut fence, records).await.is_err() {
                return;
            }
            unrecorded = 0;
        }
        if ended {
            return;
        }
    }
}

/// Claims the lane's stream: reads its last record (where to resume and
/// the newest epoch) and appends `hook.lane_claimed` with the next epoch at
/// that revision; a conflict (another lane claimed or wrote meanwhile)
/// reads again. Answers where the lane starts and its fence; `None`: the
/// installation is gone.
async fn claim_lane(ctx: &LaneCtx) -> Result<Option<(u64, Fence)>, extensor_core::Error> {
    loop {
        let Some(inner) = ctx.engine.host() else {
            return Ok(None);
        };
        let store = inner.store();
        let hooks = hooks_stream(&ctx.id);
        let revision = store.stream_revision(hooks.clone()).await?;
        let last = match revision {
            Some(rev) => store.read_stream(hooks.clone(), rev, 1).await?.pop(),
            None => None,
        };
        let (epoch, next) = match last {
            Some(last) => resume_point(&last)?,
            None => match start_revision(ctx).await? {
                Some(next) => (0, next),
                None => return Ok(None),
            },
        };
        let claim = LaneClaim {
            epoch: epoch + 1,
            next_revision: next,
        };
        let meta = EventMeta::new(Some(ctx.tenant.clone()), Principal::system());
        let event = NewEvent::new(types::LANE_CLAIMED, 1, meta, &claim)?;
        let expected = ExpectedRevision::from_current(revision);
        match store.append(hooks, expected, vec![event]).await {
            Ok(r) => {
                let fence = Fence {
                    epoch: claim.epoch,
                    revision: r.next_expected,
                };
                return Ok(Some((next, fence)));
            }
            Err(extensor_core::Error::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(ev: &RecordedEvent) -> Result<T, extensor_core::Error> {
    serde_json::from_str(ev.payload.get()).map_err(|e| extensor_core::Error::Decode {
        position: ev.position,
        stream: ev.stream.to_string(),
        event_type: ev.event_type.clone(),
        schema_version: ev.schema_version,
        reason: e.to_string(),
    })
}

/// The epoch and resume revision a lane's last record says.
fn resume_point(last: &RecordedEvent) -> Result<(u64, u64), extensor_core::Error> {
    if last.event_type == types::LANE_CLAIMED {
        let claim: LaneClaim = decode(last)?;
        return Ok((claim.epoch, claim.next_revision));
    }
    let record: HookRecord = decode(last)?;
    if last.event_type == types::PAUSED {
        return Ok((record.epoch, record.event_revision));
    }
    Ok((record.epoch, record.event_revision + 1))
}

/// Where a new lane (no records yet) starts: at the first business event
/// after the installation was enabled. `None`: the installation is gone.
async fn start_revision(ctx: &LaneCtx) -> Result<Option<u64>, extensor_core::Error> {
    let Some(inner) = ctx.engine.host() else {
        return Ok(None);
    };
    let store = inner.store();
    let Some(known) = inner.lane_installation(&ctx.id, "") else {
        return Ok(None);
    };
    let stream = StreamId::business_events(&ctx.tenant);
    // Read the head first: anything appended after it is at or past it.
    let head = store.stream_revision(stream.clone()).await?;
    let filter = ReadFilter {
        stream: Some(stream),
        ..ReadFilter::default()
    };
    let first = store.read_all(known.enabled_at, filter, 1).await?;
    Ok(Some(match first.first() {
        Some(ev) => ev.revision,
        None => head.map_or(0, |r| r + 1),
    }))
}

/// How deep in an emit chain `ev` is: 0 for an event from outside, one more
/// per plugin emit that led to it (followed through causation ids).
async fn event_depth(inner: &dyn LaneHost, ev: &RecordedEvent) -> u32 {
    let max = extensor_js::config::EMIT_CHAIN_DEPTH_MAX;
    let mut depth = 0;
    let mut by_plugin = ev.principal.as_str().starts_with("plugin:");
    let mut cause = ev.causation_id.clone();
    while by_plugin && depth <= max {
        let Some(c) = cause else { break };
        depth += 1;
        match inner.store().read_event(c).await {
            Ok(Some(e)) => {
                by_plugin = e.principal.as_str().starts_with("plugin:");
                cause = e.causation_id;
            }
            _ => break,
        }
    }
    depth
}

fn limit_of(e: &Error) -> Option<&'static str> {
    match e {
        Error::Plugin { source, .. } => match source {
            JsError::Timeout { .. } => Some("deadline"),
            JsError::HeapLimit { .. } => Some("heap"),
            JsError::StackOverflow { .. } => Some("stack"),
            JsError::ChainTooDeep { .. } => Some("chain_depth"),
            _ => None,
        },
        _ => None,
    }
}

/// Room kept in [`HOOK_OUTCOME_BYTES_MAX`] for the wrapper around an
/// excerpt (`{"truncated":true,"bytes":…,"excerpt":""}`).
const EXCERPT_WRAPPER_BYTES: usize = 64;

/// A hook's result as recorded: itself when its JSON fits in
/// [`HOOK_OUTCOME_BYTES_MAX`], else an excerpt whose *recorded* JSON fits
/// too. (The excerpt is a string, which JSON escapes again: cutting the
/// text at the cap let a result full of quotes or control characters
/// record up to six times the cap.)
pub(crate) fn capped(value: Value) -> Value {
    let text = value.to_string();
    if text.len() <= HOOK_OUTCOME_BYTES_MAX {
        return value;
    }
    let budget = HOOK_OUTCOME_BYTES_MAX - EXCERPT_WRAPPER_BYTES;
    let (mut used, mut end) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        let escaped = match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if used + escaped > budget {
            break;
        }
        used += escaped;
        end = i + c.len_utf8();
    }
    serde_json::json!({"truncated": true, "bytes": text.len(), "excerpt": &text[..end]})
}

/// Runs the hook for one event and builds its record; `None` when the
/// engine is shutting down (the event is left for the next start).
async fn execute(
    inner: &Arc<dyn LaneHost>,
    known: &LaneInstallation,
    ev: &RecordedEvent,
    epoch: u64,
) -> Option<NewEvent> {
    let depth = event_depth(&**inner, ev).await;
    let started = Instant::now();
    let result = inner.clone().run_hook(&known.id, ev, depth).await;
    let elapsed = started.elapsed();
    let finished_at = chrono::Utc::now();
    if matches!(result, Err(Error::ShuttingDown)) {
        return None;
    }
    let slug = known.slug.clone();
    let outcome = if result.is_ok() { "executed" } else { "failed" };
    let plugin = crate::metric_labels::plugin(&slug);
    metrics::counter!("extensor_hook_executions_total", "plugin" => plugin.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("extensor_hook_duration_seconds", "plugin" => plugin)
        .record(elapsed.as_secs_f64());
    let mut record = HookRecord {
        installation_id: known.id.clone(),
        slug,
        event_id: Some(ev.event_id.clone()),
        event_type: Some(ev.event_type.clone()),
        event_revision: ev.revision,
        duration_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        finished_at: Some(finished_at),
        outcome: None,
        error: None,
        error_code: None,
        limit: None,
        epoch,
    };
    let event_type = match result {
        Ok(value) => {
            record.outcome = Some(capped(value));
            types::EXECUTED
        }
        Err(e) => {
            tracing::debug!(installation = %record.installation_id, error = %e, "hook failed");
            record.limit = limit_of(&e).map(str::to_owned);
            record.error_code = Some(e.code().to_owned());
            record.error = Some(e.to_string());
            types::FAILED
        }
    };
    let mut meta = EventMeta::new(
        ev.tenant.clone(),
        Principal::plugin(&record.installation_id),
    );
    meta.correlation_id = ev.correlation_id.clone();
    meta.causation_id = Some(ev.event_id.clone());
    NewEvent::new(event_type, 1, meta, &record).ok()
}

/// The record of a lane pausing at `ev` for a failed installation.
fn paused(known: &LaneInstallation, ev: &RecordedEvent, failed: &Error, epoch: u64) -> NewEvent {
    let record = HookRecord {
        installation_id: known.id.clone(),
        slug: known.slug.clone(),
        event_id: Some(ev.event_id.clone()),
        event_type: Some(ev.event_type.clone()),
        event_revision: ev.revision,
        duration_us: 0,
        finished_at: None,
        outcome: None,
        error: Some(failed.to_string()),
        error_code: Some(failed.code().to_owned()),
        limit: None,
        epoch,
    };
    let mut meta = EventMeta::new(ev.tenant.clone(), Principal::system());
    meta.causation_id = Some(ev.event_id.clone());
    NewEvent::new(types::PAUSED, 1, meta, &record).expect("a hook record serialises")
}

/// Waits until the installation's actor is no longer failed (an operator
/// restarted it). `false`: the lane was told to stop, or the engine is
/// closing, meanwhile.
async fn wait_until_restarted(
    inner: &dyn LaneHost,
    known: &LaneInstallation,
    stop: &mut watch::Receiver<bool>,
    closing: &mut watch::Receiver<bool>,
) -> bool {
    let mut changes = inner.board_changes();
    tracing::warn!(installation = %known.id, "hook lane paused: installation failed");
    loop {
        changes.borrow_and_update();
        if stopping(stop, closing) {
            return false;
        }
        if inner.refuse_failed(&known.id).is_ok() {
            tracing::info!(installation = %known.id, "hook lane resumed");
            return true;
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return false;
                }
            }
            _ = stop.changed() => {}
            _ = closing.changed() => {}
        }
    }
}

fn checkpoint(ctx: &LaneCtx, next: u64, epoch: u64) -> NewEvent {
    let record = HookRecord {
        installation_id: ctx.id.clone(),
        slug: String::new(),
        event_id: None,
        event_type: None,
        event_revision: next.saturating_sub(1),
        duration_us: 0,
        finished_at: None,
        outcome: None,
        error: None,
        error_code: None,
        limit: None,
        epoch,
    };
    let meta = EventMeta::new(Some(ctx.tenant.clone()), Principal::system());
    NewEvent::new(types::CHECKPOINT, 1, meta, &record).expect("a hook record serialises")
}

/// Checks the lane still holds its stream: if the stream moved past the
/// revision the lane last wrote or checked, reads the tail; a newer claim
/// there fences the lane, anything else (a record of ours whose ack was
/// lost) is adopted. A store that cannot answer is retried: a lane that
/// cannot check does not run.
async fn check_fence(inner: &dyn LaneHost, ctx: &LaneCtx, fence: &mut Fence) -> Result<(), Fenced> {
    let mut attempt = 0;
    loop {
        match read_fence(inner, ctx, fence).await {
            Ok(result) => return result,
            Err(e) => {
                tracing::warn!(installation = %ctx.id, error = %e, "lane fence check retried");
                backoff(&mut attempt).await;
            }
        }
    }
}

async fn read_fence(
    inner: &dyn LaneHost,
    ctx: &LaneCtx,
    fence: &mut Fence,
) -> Result<Result<(), Fenced>, extensor_core::Error> {
    let store = inner.store();
    let hooks = hooks_stream(&ctx.id);
    if store.stream_revision(hooks.clone()).await? == Some(fence.revision) {
        return Ok(Ok(()));
    }
    loop {
        let tail = store
            .read_stream(hooks.clone(), fence.revision + 1, ctx.page)
            .await?;
        let Some(last) = tail.last() else {
            return Ok(Ok(()));
        };
        for ev in tail.iter().filter(|e| e.event_type == types::LANE_CLAIMED) {
            let claim: LaneClaim = decode(ev)?;
            if claim.epoch > fence.epoch {
                tracing::info!(installation = %ctx.id, ours = fence.epoch, newer = claim.epoch, "hook lane fenced by a newer claim");
                return Ok(Err(Fenced));
            }
        }
        fence.revision = last.revision;
    }
}

/// Appends the records at the lane's fence revision, retrying a store
/// failure a few times. A conflict checks the fence: a newer claim stops
/// the lane (`Err`) without recording. If the store still fails the lane
/// goes on: the events run again after a restart (at-least-once), which is
/// better than stalling every later event.
async fn record(
    inner: &dyn LaneHost,
    ctx: &LaneCtx,
    fence: &mut Fence,
    records: Vec<NewEvent>,
) -> Result<(), Fenced> {
    let mut attempt = 0;
    loop {
        let expected = ExpectedRevision::Exact(fence.revision);
        match inner
            .store()
            .append(hooks_stream(&ctx.id), expected, records.clone())
            .await
        {
            Ok(r) => {
                fence.revision = r.next_expected;
                return Ok(());
            }
            Err(extensor_core::Error::Conflict { .. }) => check_fence(inner, ctx, fence).await?,
            Err(e) if attempt < 3 => {
                tracing::warn!(installation = %ctx.id, error = %e, "hook records append retried");
                backoff(&mut attempt).await;
            }
            Err(e) => {
                tracing::error!(installation = %ctx.id, error = %e, "hook records not written");
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    fn hostile_text() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,64}",
            "[\"\\\\\u{0}-\u{1f}]{0,64}",
            (1usize..40_000).prop_map(|n| "\"".repeat(n)),
            (1usize..40_000).prop_map(|n| "\u{1}".repeat(n)),
            (1usize..20_000).prop_map(|n| "é€😀".repeat(n)),
        ]
    }

    proptest! {
        #![proptest_config(Config {
            cases: 128,
            rng_seed: RngSeed::Fixed(0x5eed_0013),
            failure_persistence: None,
            ..Config::default()
        })]

        /// A plugin's hook result, however hostile, is recorded within the
        /// cap once serialised (strings full of characters JSON escapes
        /// used to record up to six times it).
        #[test]
        fn recorded_hook_outcomes_stay_within_the_cap(
            parts in prop::collection::vec(hostile_text(), 0..4),
        ) {
            let value = serde_json::json!({ "parts": parts });
            let recorded = capped(value.clone()).to_string();
            prop_assert!(recorded.len() <= HOOK_OUTCOME_BYTES_MAX, "{} bytes", recorded.len());
            if value.to_string().len() <= HOOK_OUTCOME_BYTES_MAX {
                prop_assert_eq!(recorded, value.to_string());
            }
        }
    }
}
