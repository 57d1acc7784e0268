//! Running one plugin job and recording it: the [`JobRunner`] boundary the
//! scheduler fires through (the engine implements it with real isolates, in
//! `engine::scheduling`; this module imports nothing of the engine),
//! the per-job record cell every append to a job stream goes through, and
//! the run task (start → invoke with the deadline → finish → metrics).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use extensor_core::aggregate::{self, Aggregate, DomainEvent, Loaded, SnapshotPolicy};
use extensor_core::clock::Clock;
use extensor_core::event::{EventMeta, NewEvent, StreamId};
use extensor_core::ids::{EventId, InstallationId, RunId, TenantId};
use extensor_core::job_runs::{
    JobRuns, JobRunsCommand, JobRunsEvent, RunEnd, RunFinished, RunLog, RunStatus, RunTrigger,
    SchedulerClaimed, SchedulerRecord, WaveStarted, scheduler_stream, types as job_types,
};
use extensor_core::store::{EventStore, ExpectedRevision, READ_EVENTS_MAX};
use futures::future::BoxFuture;
use serde_json::Value;

/// What the runner is asked to run.
#[derive(Clone, Debug)]
pub struct JobRequest {
    pub tenant: TenantId,
    pub installation: InstallationId,
    pub job: String,
    pub run_id: RunId,
    pub scheduled_for: DateTime<Utc>,
    pub trigger: RunTrigger,
    /// The job deadline; the runner enforces it (the isolate does) and the
    /// scheduler guards it again, [`DEADLINE_GUARD_MS`] later.
    pub deadline_ms: u64,
}

/// A job that returned.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSuccess {
    pub value: Value,
    pub logs: Vec<RunLog>,
}

/// A job that did not return a value.
#[derive(Clone, Debug, PartialEq)]
pub enum JobFailure {
    /// It threw, hit a limit other than time, or could not be started.
    Failed { error: String, logs: Vec<RunLog> },
    /// It ran past its deadline.
    TimedOut { error: String, logs: Vec<RunLog> },
}

/// Runs a job of an installation in its isolate. The engine implements it;
/// tests implement it to script outcomes.
pub trait JobRunner: Send + Sync + 'static {
    fn run(&self, request: JobRequest) -> BoxFuture<'static, Result<JobSuccess, JobFailure>>;
}

/// How long after the job deadline the scheduler stops waiting for a runner
/// that did not enforce it: the isolate gives up 250 ms after its deadline,
/// so this only fires for a runner that hangs.
pub const DEADLINE_GUARD_MS: u64 = 1_000;
/// Appends to a job stream retry this many times after a revision conflict
/// (another scheduler process wrote) before giving up.
pub const JOB_CONFLICT_RETRIES_MAX: u32 = 8;

/// A job's state and where its stream stands. Every append this process
/// makes to the stream holds the lock, so the expected revision is always
/// known; only another process's append causes a conflict.
pub type JobCell = Arc<tokio::sync::Mutex<Loaded<JobRuns>>>;

/// Where a job's records go.
#[derive(Clone)]
pub struct JobRecorder {
    pub store: Arc<dyn EventStore>,
    pub stream: StreamId,
    pub cell: JobCell,
    pub snapshots: SnapshotPolicy,
    /// The epoch of the scheduler writing through it: every command is
    /// refused (`stale_epoch`) once the stream has seen a newer one.
    pub epoch: u64,
}

impl JobRecorder {
    /// decide → append with the expected revision → apply. On a conflict it
    /// reads the stream's new events, applies them and decides again, so a
    /// refusal (`already_scheduled`) reflects what the other writer did.
    pub async fn execute(
        &self,
        command: &JobRunsCommand,
        meta: &EventMeta,
    ) -> Result<Vec<JobRunsEvent>, extensor_core::Error> {
        let mut loaded = self.cell.lock().await;
        let mut attempt = 0;
        loop {
            // Checked at the revision the append below expects: a newer
            // scheduler's claim or fence in between makes it conflict, and
            // the retry sees it here.
            loaded.state.check_epoch(self.epoch)?;
            let events = loaded.state.decide(command)?;
            if events.is_empty() {
                return Ok(events);
            }
            let new_events = events
                .iter()
                .map(|e| new_event(e, meta))
                .collect::<Result<Vec<_>, _>>()?;
            let expected = ExpectedRevision::from_current(loaded.revision);
            match self
                .store
                .append(self.stream.clone(), expected, new_events)
                .await
            {
                Ok(result) => {
                    self.applied(
                        &mut loaded,
                        &events,
                        result.next_expected,
                        result.last_position,
                    )
                    .await?;
                    return Ok(events);
                }
                Err(extensor_core::Error::Conflict { .. })
                    if attempt < JOB_CONFLICT_RETRIES_MAX =>
                {
                    attempt += 1;
                    self.catch_up(&mut loaded).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn applied(
        &self,
        loaded: &mut Loaded<JobRuns>,
        events: &[JobRunsEvent],
        revision: u64,
        position: u64,
    ) -> Result<(), extensor_core::Error> {
        for e in events {
            loaded
                .state
                .apply(e)
                .map_err(|reason| extensor_core::Error::Invariant {
                    position,
                    stream: self.stream.to_string(),
                    aggregate: JobRuns::KIND,
                    reason,
                })?;
        }
        loaded.revision = Some(revision);
        loaded.position = position;
        loaded.events_applied += events.len() as u64;
        if self
            .snapshots
            .every_events
            .is_some_and(|n| loaded.events_applied >= n)
        {
            match aggregate::write_snapshot(self.store.as_ref(), &self.stream, loaded).await {
                Ok(()) => loaded.events_applied = 0,
                Err(e) => {
                    tracing::warn!(stream = %self.stream, error = %e, "job snapshot not written")
                }
            }
        }
        Ok(())
    }

    /// Applies the events another writer appended since our revision.
    async fn catch_up(&self, loaded: &mut Loaded<JobRuns>) -> Result<(), extensor_core::Error> {
        loop {
            let from = loaded.revision.map_or(0, |r| r + 1);
            let page = self
                .store
                .read_stream(self.stream.clone(), from, READ_EVENTS_MAX)
                .await?;
            for ev in &page {
                aggregate::apply_recorded(loaded, ev)?;
            }
            if page.len() < READ_EVENTS_MAX {
                return Ok(());
            }
        }
    }

    /// The job's state as this process last saw it.
    pub async fn state(&self) -> JobRuns {
        self.cell.lock().await.state.clone()
    }
}

/// Appends to the scheduler stream retry this many times after a conflict
/// (another scheduler of the tenant claimed at the same moment).
pub const EPOCH_CLAIM_RETRIES_MAX: u32 = 8;

/// What a scheduler last wrote to its tenant's `jobs-<tenant>`.
struct Written {
    /// The revision of its newest record (its claim, then each wave).
    revision: u64,
    /// The newest instant a wave covers: its own newest wave's, or at
    /// first the newest of older epochs' (waves only move forward).
    wave: Option<DateTime<Utc>>,
}

/// One scheduler incarnation's claim on its tenant's jobs: the
/// `job.scheduler_claimed` record it appended to `jobs-<tenant>` with the
/// epoch = its revision + 1 (increasing, since revisions are), and the
/// `job.wave_started` records it appends after it. Only schedulers write
/// that stream, and each appends at the revision it last wrote, so a head
/// other than that revision is a newer scheduler's claim:
/// [`EpochClaim::check`] is one read of the stream's revision.
#[derive(Clone)]
pub struct EpochClaim {
    store: Arc<dyn EventStore>,
    stream: StreamId,
    pub epoch: u64,
    pub owner: String,
    /// Held across each wave's append, so waves go one after another.
    written: Arc<tokio::sync::Mutex<Written>>,
    /// The newest instant at which an older epoch started runs (its
    /// `job.wave_started`), read once after this claim: no older epoch can
    /// append a wave after it (the append would conflict).
    pub older_wave: Option<DateTime<Utc>>,
}

impl EpochClaim {
    /// Appends the next epoch's claim for `owner`, at the revision read.
    pub async fn claim(
        store: Arc<dyn EventStore>,
        tenant: &TenantId,
        owner: &str,
        meta: &EventMeta,
    ) -> Result<Self, extensor_core::Error> {
        let stream = scheduler_stream(tenant);
        let mut attempt = 0;
        loop {
            // The claim at revision r has epoch r + 1: no record is parsed.
            let head = store.stream_revision(stream.clone()).await?;
            let claimed = SchedulerClaimed {
                epoch: head.map_or(1, |r| r + 2),
                owner: owner.to_owned(),
            };
            let event = NewEvent::new(job_types::SCHEDULER_CLAIMED, 1, meta.clone(), &claimed)?;
            let expected = ExpectedRevision::from_current(head);
            match store.append(stream.clone(), expected, vec![event]).await {
                Ok(r) => {
                    let older_wave =
                        newest_wave_before(store.as_ref(), &stream, r.next_expected).await?;
                    let written = Written {
                        revision: r.next_expected,
                        wave: older_wave,
                    };
                    return Ok(Self {
                        store,
                        stream,
                        epoch: claimed.epoch,
                        owner: claimed.owner,
                        written: Arc::new(tokio::sync::Mutex::new(written)),
                        older_wave,
                    });
                }
                Err(extensor_core::Error::Conflict { .. }) if attempt < EPOCH_CLAIM_RETRIES_MAX => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `Ok` while this claim is the tenant's newest; a `stale_epoch` domain
    /// error once a newer scheduler claimed.
    pub async fn check(&self) -> Result<(), extensor_core::Error> {
        let written = self.written.lock().await;
        let head = self.store.stream_revision(self.stream.clone()).await?;
        if head == Some(written.revision) {
            return Ok(());
        }
        Err(self.fenced())
    }

    /// Makes the start of the runs due at `at` durable: one
    /// `job.wave_started` at the revision this scheduler last wrote, so a
    /// newer scheduler's claim in between makes it conflict
    /// (`stale_epoch`: nothing may start). An instant at or before a wave
    /// already written is covered by it and appends nothing.
    pub async fn start_wave(
        &self,
        at: DateTime<Utc>,
        meta: &EventMeta,
    ) -> Result<(), extensor_core::Error> {
        let mut written = self.written.lock().await;
        if written.wave.is_some_and(|w| w >= at) {
            return Ok(());
        }
        let wave = WaveStarted {
            epoch: self.epoch,
            scheduled_for: at,
        };
        let event = NewEvent::new(job_types::WAVE_STARTED, 1, meta.clone(), &wave)?;
        let expected = ExpectedRevision::Exact(written.revision);
        match self
            .store
            .append(self.stream.clone(), expected, vec![event])
            .await
        {
            Ok(r) => {
                written.revision = r.next_expected;
                written.wave = Some(at);
                Ok(())
            }
            Err(extensor_core::Error::Conflict { .. }) => Err(self.fenced()),
            Err(e) => Err(e),
        }
    }

    fn fenced(&self) -> extensor_core::Error {
        extensor_core::Error::Domain(extensor_core::DomainError {
            aggregate: "scheduler",
            state: format!("epoch {}", self.epoch),
            code: "stale_epoch",
            message: format!(
                "scheduler epoch {} ({}) was fenced: a newer scheduler claimed the tenant's jobs",
                self.epoch, self.owner
            ),
        })
    }
}

/// The instant of the newest `job.wave_started` before `revision` of a
/// scheduler stream, read backwards a page at a time (usually the first
/// page: the records before a claim are the previous epoch's waves).
async fn newest_wave_before(
    store: &dyn EventStore,
    stream: &StreamId,
    revision: u64,
) -> Result<Option<DateTime<Utc>>, extensor_core::Error> {
    let mut end = revision;
    while end > 0 {
        let from = end.saturating_sub(READ_EVENTS_MAX as u64);
        let page = store
            .read_stream(stream.clone(), from, (end - from) as usize)
            .await?;
        for ev in page.iter().rev() {
            let record = SchedulerRecord::decode(&ev.event_type, ev.schema_version, &ev.payload)
                .map_err(|reason| extensor_core::Error::Decode {
                    position: ev.position,
                    stream: ev.stream.to_string(),
                    event_type: ev.event_type.clone(),
                    schema_version: ev.schema_version,
                    reason,
                })?;
            if let SchedulerRecord::WaveStarted(w) = record {
                return Ok(Some(w.scheduled_for));
            }
        }
        end = from;
    }
    Ok(None)
}

/// Whether an instant's wave is durable: `Err` if it could not be appended.
type WaveCell = Arc<tokio::sync::OnceCell<Result<(), Arc<extensor_core::Error>>>>;

/// A scheduler's waves, one cell per instant: the first to ask for an
/// instant (its firing task, before it spawns the runs) appends its
/// `job.wave_started`; every run of the instant awaits that same append,
/// so 10,000 runs due at once wait on one durable write.
pub struct Waves {
    claim: EpochClaim,
    cells: std::sync::Mutex<BTreeMap<DateTime<Utc>, WaveCell>>,
}

impl Waves {
    pub fn new(claim: EpochClaim) -> Arc<Self> {
        Arc::new(Self {
            claim,
            cells: std::sync::Mutex::default(),
        })
    }

    fn cells(&self) -> std::sync::MutexGuard<'_, BTreeMap<DateTime<Utc>, WaveCell>> {
        // A map of cells only; a panic elsewhere cannot leave it torn.
        self.cells
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Returns once the wave of `at` is durable (appended by whichever run
    /// task of that instant came first).
    pub async fn start(
        &self,
        at: DateTime<Utc>,
        meta: &EventMeta,
    ) -> Result<(), Arc<extensor_core::Error>> {
        let cell = self.cells().entry(at).or_default().clone();
        cell.get_or_init(|| async { self.claim.start_wave(at, meta).await.map_err(Arc::new) })
            .await
            .clone()
    }

    /// Drops the cells of instants before `before`. A run task of such an
    /// instant that still comes (woken very late) makes a new cell, which
    /// the claim's newest wave already covers: nothing is appended twice.
    pub fn forget_before(&self, before: DateTime<Utc>) {
        self.cells().retain(|at, _| *at >= before);
    }
}

/// Whether `e` says the scheduler was fenced by a newer epoch.
pub fn is_stale_epoch(e: &extensor_core::Error) -> bool {
    matches!(e, extensor_core::Error::Domain(d) if d.code == "stale_epoch")
}

fn new_event(e: &JobRunsEvent, meta: &EventMeta) -> Result<NewEvent, extensor_core::Error> {
    let payload = e
        .to_payload()
        .map_err(|err| extensor_core::Error::InvalidValue {
            what: "event payload",
            value: e.event_type().into(),
            reason: err.to_string(),
        })?;
    Ok(NewEvent {
        event_id: EventId::generate(),
        event_type: e.event_type().into(),
        schema_version: e.schema_version(),
        meta: meta.clone(),
        payload,
    })
}

/// Everything one run needs.
pub struct RunContext {
    /// Carries the scheduler's epoch: a start or end is refused
    /// (`stale_epoch`) on a job stream a newer scheduler fenced.
    pub recorder: JobRecorder,
    pub runner: Arc<dyn JobRunner>,
    pub clock: Arc<dyn Clock>,
    pub request: JobRequest,
    pub meta: EventMeta,
    pub start: RunStart,
}

/// What is durable before a run's job is invoked.
pub enum RunStart {
    /// Its own `job.run_started`: catch-up, queued and run-now runs, which
    /// start one at a time.
    Recorded,
    /// Its instant's `job.wave_started` ([`Waves`]): an armed scheduled run.
    /// 10,000 runs due at one instant wait on that one append instead of
    /// 10,000; each run's own `job.run_started` follows its invocation.
    Wave(Arc<Waves>),
}

/// How a run task ended.
#[derive(Debug)]
pub enum RunTaskEnd {
    /// Its end is recorded (`None`: it could not be, which is logged).
    Recorded(Option<RunFinished>),
    /// A newer scheduler claimed the tenant: the run was not started, or
    /// its end was not recorded (the newer scheduler settles it).
    Fenced,
    /// Its instant's wave could not be appended (the store failed): it was
    /// not run. Its scheduler stops, so that a newer epoch settles the
    /// claim (a wave that did land makes it `owner_died`, else catch-up).
    NotStarted(String),
}

impl RunTaskEnd {
    pub fn finished(self) -> Option<RunFinished> {
        match self {
            RunTaskEnd::Recorded(f) => f,
            RunTaskEnd::Fenced | RunTaskEnd::NotStarted(_) => None,
        }
    }
}

/// How a run began: when, and the wave's start if that was its start.
struct Begun {
    started_at: DateTime<Utc>,
    wave_start: Option<DateTime<Utc>>,
}

/// Runs one claimed run to its end and records it. Its start is durable
/// before the job is invoked (its own start record, or its instant's wave),
/// so a restarted scheduler finds it started and settles it `owner_died`,
/// never runs it a second time; a start that cannot be made durable is
/// not run. A fenced scheduler neither runs nor records: a newer scheduler's
/// epoch claim makes its wave conflict, and it fences every job stream on
/// which an older epoch holds a claim before acting on it, where the
/// recorder checks the epoch at the revision it appends at (`stale_epoch`).
pub async fn run_job(ctx: RunContext) -> RunTaskEnd {
    let req = ctx.request.clone();
    let begun = match begin(&ctx).await {
        Ok(b) => b,
        Err(end) => return end,
    };
    let started = Instant::now();
    let outcome = invoke(&ctx, &begun).await;
    let (end, logs) = match outcome {
        Ok(Ok(s)) => (
            RunEnd::Succeeded {
                result: Some(s.value),
                result_truncated: None,
            },
            s.logs,
        ),
        Ok(Err(JobFailure::Failed { error, logs })) => (RunEnd::Failed { error }, logs),
        Ok(Err(JobFailure::TimedOut { error, logs })) => (RunEnd::TimedOut { error }, logs),
        Err(_) => (
            RunEnd::TimedOut {
                error: format!(
                    "no answer within the job deadline of {} ms",
                    req.deadline_ms
                ),
            },
            Vec::new(),
        ),
    };
    record_metrics(&req, end.status(), started.elapsed());
    let finish = JobRunsCommand::Finish {
        run_id: req.run_id.clone(),
        finished_at: ctx.clock.now(),
        end,
        logs,
        wave_start: begun.wave_start,
    };
    match ctx.recorder.execute(&finish, &ctx.meta).await {
        Ok(events) => RunTaskEnd::Recorded(events.into_iter().find_map(|e| match e {
            JobRunsEvent::Finished(f) => Some(*f),
            _ => None,
        })),
        Err(e) => {
            tracing::warn!(run = %req.run_id, error = %e, "run end not recorded");
            fenced_or(&e, None)
        }
    }
}

/// Makes the run's start durable: its own start record, or its instant's
/// wave. `Err` carries how the task ends when it cannot (not run).
async fn begin(ctx: &RunContext) -> Result<Begun, RunTaskEnd> {
    let req = &ctx.request;
    match &ctx.start {
        RunStart::Recorded => {
            let started_at = ctx.clock.now();
            record_drift(req, started_at);
            let start = JobRunsCommand::Start {
                run_id: req.run_id.clone(),
                started_at,
            };
            if let Err(e) = ctx.recorder.execute(&start, &ctx.meta).await {
                tracing::warn!(run = %req.run_id, error = %e, "run start not recorded; not run");
                return Err(fenced_or(&e, None));
            }
            Ok(Begun {
                started_at,
                wave_start: None,
            })
        }
        RunStart::Wave(waves) => {
            if let Err(e) = waves.start(req.scheduled_for, &ctx.meta).await {
                tracing::warn!(run = %req.run_id, error = %e, "wave not recorded; not run");
                if is_stale_epoch(&e) {
                    return Err(RunTaskEnd::Fenced);
                }
                return Err(RunTaskEnd::NotStarted(e.to_string()));
            }
            let started_at = ctx.clock.now();
            record_drift(req, started_at);
            Ok(Begun {
                started_at,
                wave_start: Some(started_at),
            })
        }
    }
}

/// Invokes the job under the deadline guard. A wave's run appends its own
/// start record while the job runs: after the invocation, off the path
/// from the instant to it (its end records the start if this fails).
async fn invoke(
    ctx: &RunContext,
    begun: &Begun,
) -> Result<Result<JobSuccess, JobFailure>, tokio::time::error::Elapsed> {
    let req = &ctx.request;
    let guard = Duration::from_millis(req.deadline_ms.saturating_add(DEADLINE_GUARD_MS));
    let call = tokio::time::timeout(guard, ctx.runner.run(req.clone()));
    if begun.wave_start.is_none() {
        return call.await;
    }
    let start = JobRunsCommand::Start {
        run_id: req.run_id.clone(),
        started_at: begun.started_at,
    };
    // Polled after the call (which `join` polls first), and only once the
    // task has yielded: the other runs of the instant, spawned together,
    // call their jobs before any of them builds and queues its start record.
    let record = async {
        tokio::task::yield_now().await;
        ctx.recorder.execute(&start, &ctx.meta).await
    };
    let (outcome, recorded) = futures::future::join(call, record).await;
    if let Err(e) = recorded {
        tracing::warn!(run = %req.run_id, error = %e, "run start not recorded after its wave");
    }
    outcome
}

fn record_drift(req: &JobRequest, started_at: DateTime<Utc>) {
    if req.trigger == RunTrigger::Schedule {
        let drift = (started_at - req.scheduled_for)
            .to_std()
            .unwrap_or_default();
        metrics::histogram!("extensor_job_start_drift_seconds").record(drift.as_secs_f64());
    }
}

fn fenced_or(e: &extensor_core::Error, finished: Option<RunFinished>) -> RunTaskEnd {
    if is_stale_epoch(e) {
        RunTaskEnd::Fenced
    } else {
        RunTaskEnd::Recorded(finished)
    }
}

/// Run counts by status and a duration histogram, per job (labels capped
/// by `metric_labels::JOB_LABELS_MAX`; the installation names the tenant).
pub fn record_metrics(req: &JobRequest, status: RunStatus, duration: Duration) {
    let (installation, job) = crate::metric_labels::job(req.installation.as_str(), &req.job);
    let labels = [("installation", installation), ("job", job)];
    metrics::histogram!("extensor_job_run_duration_seconds", &labels)
        .record(duration.as_secs_f64());
    count_run(&req.tenant, &req.installation, &req.job, status);
}

/// Counts one run that ended with `status` (skips included).
pub fn count_run(_tenant: &TenantId, installation: &InstallationId, job: &str, status: RunStatus) {
    let (installation, job) = crate::metric_labels::job(installation.as_str(), job);
    let labels = [
        ("installation", installation),
        ("job", job),
        ("status", status.as_str().to_owned()),
    ];
    metrics::counter!("extensor_job_runs_total", &labels).increment(1);
}
