//! One tenant's job scheduler: follows the tenant's installation events,
//! keeps the next fire time of every enabled installation's jobs, claims
//! each occurrence on the job's stream shortly before its time, fires it
//! through the [`JobRunner`] with the job deadline and records the run.
//!
//! - **At most once.** An occurrence is claimed by appending
//!   `job.run_scheduled` with the job stream's expected revision
//!   ([`JobRecorder`]); of two schedulers (two processes on one store, or a
//!   restart racing a leftover) exactly one claim lands. Only the claimer
//!   runs it.
//! - **Fencing.** Every start of a tenant's scheduler (a process restart or
//!   an in-process one) appends `job.scheduler_claimed` with the next epoch
//!   ([`EpochClaim`]). The new scheduler settles what older epochs left at
//!   once: it fences the job stream (`job.claims_fenced`), records a run
//!   they started as failed (`owner_died`: its outcome is unknown, it is
//!   never run again), and runs a claimed occurrence that has not started
//!   (or records it missed, per the catch-up policy). An older scheduler
//!   is refused on every job stream it was fenced on (its start or end of
//!   a run conflicts there and is re-decided on the fence), so it can
//!   neither run nor record; it then stops. Each claim wave also reads the
//!   epoch record once; runs do not (see `jobs::run_job`).
//! - **Wave start.** At an instant, the runs due then start together: one
//!   task per instant wakes ([`instant`]), takes the run slot of every idle
//!   job due then, appends one `job.wave_started` to `jobs-<tenant>` at the
//!   revision this scheduler last wrote ([`Waves`]), and spawns the runs;
//!   each invokes its job, then appends its own `job.run_started`. A newer
//!   epoch's claim makes the wave conflict, so a fenced scheduler starts
//!   nothing; a restarted one settles an older epoch's unstarted claim at
//!   or before the newest older wave as `owner_died` (it may have been
//!   invoked). Catch-up, queued and run-now
//!   runs start one at a time, each with its own start record first.
//! - **Claim ahead.** Claims are appended [`CLAIM_LEAD_MS`] before the fire
//!   time, so the durable write is not on the path from fire time to start.
//! - **Catch-up and overlap** follow the job's manifest policies (see
//!   `extensor_core::schedule`); skipped occurrences are recorded.
//! - **Lifecycle.** Disable stops a plugin's schedules, enable resumes them
//!   (occurrences while disabled are not "missed"), uninstall removes them,
//!   upgrade takes the new version's jobs. Runs already going finish.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use extensor_core::DomainError;
use extensor_core::aggregate::{self, AsOf, Loaded, SnapshotPolicy};
use extensor_core::clock::Clock;
use extensor_core::event::{EventMeta, Principal, RecordedEvent};
use extensor_core::ids::{InstallationId, RunId, TenantId};
use extensor_core::installation::{InstallationStatus, PluginInstallation, types as ins_types};
use extensor_core::job_runs::{
    ActiveRun, JobRuns, JobRunsCommand, RunEnd, RunFinished, RunStatus, RunSummary, RunTrigger,
    SkipReason, job_stream,
};
use extensor_core::manifest::{JobDecl, Overlap};
use extensor_core::schedule::{CatchUpRule, JobSchedule, plan_catch_up};
use extensor_core::store::{EventStore, READ_EVENTS_MAX, ReadFilter};
use futures::StreamExt;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::jobs::{
    EpochClaim, JobRecorder, JobRequest, JobRunner, RunContext, RunStart, RunTaskEnd, Waves,
    count_run, is_stale_epoch, run_job,
};
use instant::{FireState, Member, SharedSlots, slots};

/// How long before its fire time an occurrence is claimed. Long enough for
/// a wave of claims (10,000 jobs firing on the same minute) to be durable
/// before their time; short enough that a disable just before the time
/// still stops the run (the claim is then recorded as skipped).
pub const CLAIM_LEAD_MS: u64 = 5_000;
/// An occurrence at most this late is fired late rather than treated as
/// missed (a stalled tick is not downtime).
pub const MISSED_GRACE_MS: u64 = 30_000;
/// The job deadline when the platform sets none (`PLUGIN_JOB_TIMEOUT_SECONDS`).
pub const JOB_DEADLINE_MS_DEFAULT: u64 = 30_000;
/// Claims in flight at once during a claim wave.
pub const CLAIM_CONCURRENCY: usize = 256;
/// Occurrences of one job claimed ahead at most (a per-second schedule
/// claims five ahead with the default lead).
pub const CLAIMS_AHEAD_MAX: usize = 64;
/// Queued runs per job under the `queue_one` overlap policy.
pub const QUEUED_RUNS_MAX: usize = 1;
/// The longest a run-now caller may wait for the result.
pub const RUN_NOW_WAIT_MS_MAX: u64 = 120_000;
/// How long an instant's wave cell is kept after the instant, for its run
/// tasks woken late (a later one is covered by the newest wave anyway).
pub const WAVE_CELLS_KEEP_MS: u64 = 60_000;

/// The scheduler's settings; one per process, shared by every tenant.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Names this process in its claims (`sch_<ulid>`).
    pub owner: String,
    pub job_deadline_ms: u64,
    pub claim_lead_ms: u64,
    pub missed_grace_ms: u64,
    pub snapshots: SnapshotPolicy,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            owner: format!("sch_{}", ulid_string()),
            job_deadline_ms: JOB_DEADLINE_MS_DEFAULT,
            claim_lead_ms: CLAIM_LEAD_MS,
            missed_grace_ms: MISSED_GRACE_MS,
            snapshots: SnapshotPolicy::DEFAULT,
        }
    }
}

fn ulid_string() -> String {
    // A run id is a ULID too; reuse the id machinery for a fresh one.
    RunId::generate()
        .as_str()
        .trim_start_matches(RunId::PREFIX)
        .to_owned()
}

pub struct SchedulerArgs {
    pub tenant: TenantId,
    pub store: Arc<dyn EventStore>,
    pub runner: Arc<dyn JobRunner>,
    pub clock: Arc<dyn Clock>,
    pub config: SchedulerConfig,
    /// Where it registers itself; `None` in tests that hold its ref.
    pub registry: Option<Schedulers>,
}

mod instant;

pub struct Scheduler;

type JobKey = (InstallationId, String);

/// Whether an installation event is read back at start or arrives live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Live {
    Replayed,
    Live,
}

/// An occurrence (or run-now) this scheduler claimed and will run.
#[derive(Clone, Debug)]
pub struct Claim {
    run_id: RunId,
    scheduled_for: DateTime<Utc>,
    trigger: RunTrigger,
}

/// A claimed occurrence waiting for its instant, fired by its instant's
/// task ([`instant::fire`]); kept here so that unscheduling can cancel it.
struct Armed {
    scheduled_for: DateTime<Utc>,
    claim: Claim,
    state: FireState,
}

struct JobEntry {
    decl: JobDecl,
    schedule: JobSchedule,
    recorder: JobRecorder,
    /// The next occurrence not yet claimed.
    next: Option<DateTime<Utc>>,
    /// Claimed occurrences with armed run tasks, oldest first.
    claimed: VecDeque<Armed>,
    /// Due runs waiting for the running one: catch-up runs, a queued one.
    pending: VecDeque<Claim>,
    slots: SharedSlots,
}

impl JobEntry {
    fn push_pending(&mut self, claim: Claim) {
        self.pending.push_back(claim);
        slots(&self.slots).pending = self.pending.len();
    }

    fn pop_pending(&mut self) -> Option<Claim> {
        let claim = self.pending.pop_front();
        slots(&self.slots).pending = self.pending.len();
        claim
    }
}

struct InstallationEntry {
    loaded: Loaded<PluginInstallation>,
    /// When it last became enabled or changed version: occurrences before
    /// this are not "missed" (the plugin was off or had other jobs).
    active_since: DateTime<Utc>,
}

pub struct SchedulerState {
    tenant: TenantId,
    store: Arc<dyn EventStore>,
    runner: Arc<dyn JobRunner>,
    clock: Arc<dyn Clock>,
    config: SchedulerConfig,
    installations: BTreeMap<InstallationId, InstallationEntry>,
    jobs: BTreeMap<JobKey, JobEntry>,
    /// Global position of the last installation event applied.
    position: u64,
    timer: Option<(DateTime<Utc>, JoinHandle<()>)>,
    follower: Option<JoinHandle<()>>,
    /// This incarnation's epoch claim, appended first thing in `post_start`.
    claim: Option<EpochClaim>,
    /// Its waves (made with the claim): armed scheduled runs start there.
    waves: Option<Arc<Waves>>,
    /// Every run task, armed or going, and run-now waiters: aborted when
    /// the actor stops (a newer incarnation settles what they left).
    tasks: tokio::task::JoinSet<()>,
}

/// What `run now` answers.
#[derive(Clone, Debug, Serialize)]
pub struct RunNowOutcome {
    pub run_id: RunId,
    /// The run's end if it finished within the wait; otherwise poll the
    /// history with `run_id`.
    pub finished: Option<RunFinished>,
}

/// One job as `GET /api/plugins/{id}/jobs` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct JobView {
    pub name: String,
    /// Seconds form, as the cron crate reads it.
    pub schedule: String,
    pub timezone: String,
    pub catch_up: extensor_core::manifest::CatchUp,
    pub catch_up_max: u32,
    pub overlap: Overlap,
    /// Whether the scheduler is firing it (the plugin is enabled).
    pub scheduled: bool,
    pub next_run: Option<DateTime<Utc>>,
    pub last_run: Option<RunSummary>,
    /// Runs scheduled or going now.
    pub active_runs: usize,
    pub counts: BTreeMap<RunStatus, u64>,
}

pub enum SchedulerMsg {
    /// An installation event (from the follower task).
    Installation(Box<RecordedEvent>),
    /// The follower's subscription failed: the actor fails and restarts.
    FollowFailed(String),
    /// The timer: claim what is near, fire what is due.
    Tick,
    /// A run this scheduler started has ended (recorded or not).
    RunEnded { key: JobKey },
    /// A newer scheduler claimed the tenant, or a wave could not be
    /// recorded (this scheduler no longer knows its stream's revision):
    /// this one stops, and a newer epoch settles what it left.
    Fenced(String),
    /// An armed occurrence came due while its job was busy. It carries its
    /// job's recorder so that, if the job was unscheduled meanwhile, the
    /// claim is still recorded as skipped rather than left `scheduled`.
    Due {
        key: JobKey,
        claim: Claim,
        recorder: JobRecorder,
    },
    RunNow {
        installation: InstallationId,
        job: String,
        principal: Principal,
        wait_ms: u64,
        reply: RpcReplyPort<Result<RunNowOutcome, Error>>,
    },
    Jobs {
        installation: InstallationId,
        reply: RpcReplyPort<Result<Vec<JobView>, Error>>,
    },
}

fn core_error(actor: &str, source: extensor_core::Error) -> Error {
    Error::Core {
        actor: actor.into(),
        source,
    }
}

fn job_not_found(installation: &InstallationId, job: &str) -> extensor_core::Error {
    extensor_core::Error::Domain(DomainError {
        aggregate: "job",
        state: "not scheduled".into(),
        code: "job_not_found",
        message: format!(
            "installation {installation} has no enabled job `{}`",
            job.chars().take(128).collect::<String>()
        ),
    })
}

impl SchedulerState {
    fn path(&self) -> String {
        format!("/tenants/{}/scheduler", self.tenant)
    }

    fn meta(&self, principal: Principal) -> EventMeta {
        EventMeta::new(Some(self.tenant.clone()), principal)
    }

    fn filter(&self) -> ReadFilter {
        ReadFilter {
            tenant: Some(self.tenant.clone()),
            type_prefix: Some("plugin.".into()),
            ..ReadFilter::default()
        }
    }

    fn epoch(&self) -> u64 {
        self.claim.as_ref().map_or(0, |c| c.epoch)
    }

    fn epoch_claim(&self) -> EpochClaim {
        self.claim
            .clone()
            .expect("the epoch is claimed before anything is scheduled")
    }

    /// How an armed claim's run starts: a scheduled occurrence in its
    /// instant's wave, anything else (an adopted run-now or catch-up
    /// claim) with its own start record.
    fn run_start(&self, claim: &Claim) -> RunStart {
        match (&self.waves, claim.trigger) {
            (Some(waves), RunTrigger::Schedule) => RunStart::Wave(waves.clone()),
            _ => RunStart::Recorded,
        }
    }

    /// Whether an older epoch's unstarted claim may have been invoked: a
    /// scheduled occurrence at or before the newest wave an older epoch
    /// wrote (waves only move forward, so that wave or an earlier one
    /// started it, if its job was idle). Such a run is settled
    /// `owner_died`, never run again.
    fn wave_may_have_run(&self, run: &ActiveRun) -> bool {
        let older_wave = self.claim.as_ref().and_then(|c| c.older_wave);
        run.trigger == RunTrigger::Schedule
            && run.started_at.is_none()
            && older_wave.is_some_and(|w| run.scheduled_for <= w)
    }

    /// Claims the next epoch, reads every installation event of the
    /// tenant, then schedules.
    async fn load(&mut self, myself: &ActorRef<SchedulerMsg>) -> Result<(), Error> {
        let claim = EpochClaim::claim(
            self.store.clone(),
            &self.tenant,
            &self.config.owner,
            &self.meta(Principal::system()),
        )
        .await
        .map_err(|e| core_error(&self.path(), e))?;
        tracing::info!(tenant = %self.tenant, epoch = claim.epoch, "scheduler claimed its epoch");
        self.waves = Some(Waves::new(claim.clone()));
        self.claim = Some(claim);
        loop {
            let page = self
                .store
                .read_all(self.position, self.filter(), READ_EVENTS_MAX)
                .await
                .map_err(|e| core_error(&self.path(), e))?;
            let n = page.len();
            for ev in &page {
                self.fold(ev, Live::Replayed).await;
            }
            if n < READ_EVENTS_MAX {
                break;
            }
        }
        let ids: Vec<InstallationId> = self.installations.keys().cloned().collect();
        for id in ids {
            self.reconcile(myself, &id).await;
        }
        self.follow(myself);
        self.arm(myself);
        Ok(())
    }

    /// Follows new installation events after what `load` read.
    fn follow(&mut self, myself: &ActorRef<SchedulerMsg>) {
        let mut events = self.store.subscribe_all(self.position, self.filter());
        let me = myself.clone();
        self.follower = Some(tokio::spawn(async move {
            while let Some(next) = events.next().await {
                let msg = match next {
                    Ok(ev) => SchedulerMsg::Installation(Box::new(ev)),
                    Err(e) => SchedulerMsg::FollowFailed(e.to_string()),
                };
                if me.send_message(msg).is_err() {
                    return;
                }
            }
        }));
    }

    /// Applies one installation event to its installation's state. `live`:
    /// it arrived from the feed just now, so the plugin is active from now
    /// on (by this scheduler's clock) rather than from when it was stamped.
    async fn fold(&mut self, ev: &RecordedEvent, live: Live) -> Option<InstallationId> {
        self.position = self.position.max(ev.position);
        let id: InstallationId = ev
            .stream
            .as_str()
            .strip_prefix("installation-")?
            .parse()
            .ok()?;
        let entry = self
            .installations
            .entry(id.clone())
            .or_insert_with(|| InstallationEntry {
                loaded: Loaded {
                    state: PluginInstallation::default(),
                    revision: None,
                    position: 0,
                    events_applied: 0,
                },
                active_since: ev.recorded_at,
            });
        if entry.loaded.revision.is_some_and(|r| ev.revision <= r) {
            return None; // already applied (load and follow overlap)
        }
        if let Err(e) = aggregate::apply_recorded(&mut entry.loaded, ev) {
            tracing::warn!(installation = %id, error = %e, "reloading installation");
            match aggregate::load(self.store.as_ref(), &ev.stream, AsOf::Latest).await {
                Ok(l) => entry.loaded = l,
                Err(e) => {
                    tracing::error!(installation = %id, error = %e, "installation not loaded")
                }
            }
        }
        if matches!(
            ev.event_type.as_str(),
            ins_types::INSTALLED
                | ins_types::ENABLED
                | ins_types::UPGRADED
                | ins_types::ROLLED_BACK
        ) {
            entry.active_since = match live {
                Live::Replayed => ev.recorded_at,
                Live::Live => ev.recorded_at.max(self.clock.now()),
            };
        }
        Some(id)
    }

    /// Brings the installation's scheduled jobs in line with its state.
    async fn reconcile(&mut self, myself: &ActorRef<SchedulerMsg>, id: &InstallationId) {
        let Some(entry) = self.installations.get(id) else {
            return;
        };
        let wanted: BTreeMap<String, JobDecl> =
            match (&entry.loaded.state.status, &entry.loaded.state.current) {
                (InstallationStatus::Enabled, Some(v)) => v
                    .manifest
                    .jobs
                    .iter()
                    .map(|j| (j.name.clone(), j.clone()))
                    .collect(),
                _ => BTreeMap::new(),
            };
        let active_since = entry.active_since;
        let existing: Vec<JobKey> = self
            .jobs
            .range((id.clone(), String::new())..)
            .take_while(|(k, _)| &k.0 == id)
            .map(|(k, _)| k.clone())
            .collect();
        for key in existing {
            if wanted.get(&key.1) != self.jobs.get(&key).map(|j| &j.decl) {
                self.unschedule(&key).await;
            }
        }
        for (name, decl) in wanted {
            let key = (id.clone(), name);
            if !self.jobs.contains_key(&key)
                && let Err(e) = self.schedule_job(myself, &key, decl, active_since).await
            {
                tracing::error!(installation = %key.0, job = %key.1, error = %e, "job not scheduled");
                if is_stale_epoch(&e) {
                    let _ = myself.send_message(SchedulerMsg::Fenced(e.to_string()));
                }
            }
        }
        // `extensor_jobs_scheduled` is set when `/metrics` is scraped (from
        // the installation index, one unlabelled series).
    }

    /// Stops a job's schedule: its claimed and queued runs are recorded as
    /// skipped; runs going finish on their own.
    async fn unschedule(&mut self, key: &JobKey) {
        let Some(entry) = self.jobs.remove(key) else {
            return;
        };
        let meta = self.meta(Principal::system());
        // A task that already fired is left to finish its run and record
        // it (aborting it mid-run left the run `running` for good); only
        // the ones still sleeping are cancelled and skipped.
        let cancelled: Vec<&Armed> = entry.claimed.iter().filter(|a| a.state.cancel()).collect();
        let claims = cancelled.into_iter().map(|a| &a.claim);
        for claim in claims.chain(entry.pending.iter()) {
            let cmd = skip_command(key, claim, SkipReason::Unscheduled);
            match entry.recorder.execute(&cmd, &meta).await {
                Ok(_) => count_run(&self.tenant, &key.0, &key.1, RunStatus::Skipped),
                Err(e) => tracing::warn!(run = %claim.run_id, error = %e, "skip not recorded"),
            }
        }
    }

    /// Loads a job's stream, settles leftovers of earlier schedulers, applies
    /// the catch-up policy and starts scheduling it.
    async fn schedule_job(
        &mut self,
        myself: &ActorRef<SchedulerMsg>,
        key: &JobKey,
        decl: JobDecl,
        active_since: DateTime<Utc>,
    ) -> Result<(), extensor_core::Error> {
        let schedule = JobSchedule::from_decl(&decl)?;
        let stream = job_stream(&key.0, &key.1)?;
        let loaded = aggregate::load::<JobRuns>(self.store.as_ref(), &stream, AsOf::Latest).await?;
        let recorder = JobRecorder {
            store: self.store.clone(),
            stream,
            cell: Arc::new(tokio::sync::Mutex::new(loaded)),
            snapshots: self.config.snapshots,
            epoch: self.epoch(),
        };
        let mut entry = JobEntry {
            decl,
            schedule,
            recorder,
            next: None,
            claimed: VecDeque::new(),
            pending: VecDeque::new(),
            slots: SharedSlots::default(),
        };
        let left = self.settle_leftovers(key, &mut entry).await?;
        let adopted: Vec<Member> = (left.adopted.into_iter())
            .map(|claim| self.arm_run(key, &mut entry, claim))
            .collect();
        self.fire_at_instants(myself, adopted);
        self.catch_up(key, &mut entry, active_since, left.missed)
            .await?;
        self.jobs.insert(key.clone(), entry);
        self.start_next(myself, key);
        Ok(())
    }

    /// Settles, at once, what schedulers of older epochs left on this job
    /// (a killed process, an in-process restart): fences the stream so they
    /// can no longer act on it, records their started runs as failed
    /// (`owner_died`), adopts their claims that are not late (run at their
    /// time, or at once), and hands back the late ones for the catch-up
    /// policy.
    async fn settle_leftovers(
        &self,
        key: &JobKey,
        entry: &mut JobEntry,
    ) -> Result<Leftovers, extensor_core::Error> {
        let now = self.clock.now();
        let grace = chrono::Duration::milliseconds(self.config.missed_grace_ms as i64);
        let epoch = self.epoch();
        let mut left = Leftovers::default();
        let stale = |state: JobRuns| -> Vec<_> {
            state
                .active
                .into_iter()
                .filter(|(_, r)| r.epoch < epoch)
                .collect()
        };
        if stale(entry.recorder.state().await).is_empty() {
            return Ok(left);
        }
        let meta = self.meta(Principal::system());
        let fence = JobRunsCommand::Fence {
            epoch,
            owner: self.config.owner.clone(),
        };
        entry.recorder.execute(&fence, &meta).await?;
        // Decided on the state after the fence: from here on no older
        // scheduler can start or end anything on this stream.
        for (run_id, run) in stale(entry.recorder.state().await) {
            let claim = Claim {
                run_id: run_id.clone(),
                scheduled_for: run.scheduled_for,
                trigger: run.trigger,
            };
            if run.started_at.is_some() || self.wave_may_have_run(&run) {
                self.owner_died(key, &entry.recorder, &run_id, &run, &meta)
                    .await?;
            } else if now <= run.scheduled_for + grace {
                left.adopted.push(claim);
            } else {
                left.missed.push(claim);
            }
        }
        left.adopted.sort_by_key(|c| c.scheduled_for);
        left.missed.sort_by_key(|c| c.scheduled_for);
        Ok(left)
    }

    /// Records an older epoch's run as failed (`owner_died`): it started
    /// (its own start record, or a wave that may have invoked it) and its
    /// outcome is unknown, so it is not run again.
    async fn owner_died(
        &self,
        key: &JobKey,
        recorder: &JobRecorder,
        run_id: &RunId,
        run: &ActiveRun,
        meta: &EventMeta,
    ) -> Result<(), extensor_core::Error> {
        let error = match run.started_at {
            Some(_) => format!(
                "owner_died: scheduler {} (epoch {}) stopped while the run was going; its outcome is unknown and it is not run again",
                run.owner, run.epoch
            ),
            None => format!(
                "owner_died: a scheduler that held this run (claimed by {}, epoch {}) stopped after starting the runs due at {} (`job.wave_started`); its outcome is unknown and it is not run again",
                run.owner,
                run.epoch,
                run.scheduled_for.to_rfc3339()
            ),
        };
        let cmd = JobRunsCommand::Finish {
            run_id: run_id.clone(),
            finished_at: self.clock.now(),
            end: RunEnd::Failed { error },
            logs: Vec::new(),
            // The wave's instant stands for its start, recorded with the end.
            wave_start: Some(run.scheduled_for),
        };
        recorder.execute(&cmd, meta).await?;
        count_run(&self.tenant, &key.0, &key.1, RunStatus::Failed);
        Ok(())
    }

    /// Applies the catch-up policy to occurrences due since the cursor and
    /// sets the next occurrence.
    async fn catch_up(
        &self,
        key: &JobKey,
        entry: &mut JobEntry,
        active_since: DateTime<Utc>,
        missed_claims: Vec<Claim>,
    ) -> Result<(), extensor_core::Error> {
        let now = self.clock.now();
        let state = entry.recorder.state().await;
        let cursor = state.cursor.map_or(active_since, |c| c.max(active_since));
        let rule = CatchUpRule {
            policy: entry.decl.catch_up,
            max_runs: entry.decl.catch_up_max,
            grace: chrono::Duration::milliseconds(self.config.missed_grace_ms as i64),
        };
        let plan = plan_catch_up(&entry.schedule, rule, cursor, now);
        let meta = self.meta(Principal::system());
        self.settle_missed_claims(key, entry, &plan, missed_claims)
            .await?;
        for (i, at) in plan.skip.iter().enumerate() {
            let claim = Claim {
                run_id: RunId::derive(&key.0, &key.1, *at, RunTrigger::Schedule.as_str()),
                scheduled_for: *at,
                trigger: RunTrigger::Schedule,
            };
            let mut cmd = skip_command(key, &claim, SkipReason::Missed);
            if let (
                0,
                JobRunsCommand::Skip {
                    folded,
                    folded_is_lower_bound,
                    ..
                },
            ) = (i, &mut cmd)
            {
                *folded = plan.folded;
                *folded_is_lower_bound = plan.folded_is_lower_bound;
            }
            entry.recorder.execute(&cmd, &meta).await?;
            count_run(&self.tenant, &key.0, &key.1, RunStatus::Skipped);
        }
        let runs = plan.run.iter().map(|t| (*t, RunTrigger::CatchUp));
        for (at, trigger) in runs.chain(plan.on_time.map(|t| (t, RunTrigger::Schedule))) {
            if let Some(claim) = self.claim(key, &entry.recorder, at, trigger, &meta).await? {
                entry.push_pending(claim);
            }
        }
        let after = entry
            .recorder
            .state()
            .await
            .cursor
            .map_or(now, |c| c.max(now));
        entry.next = entry.schedule.next_after(after);
        Ok(())
    }

    /// Claims an older scheduler left that are now late: older than every
    /// occurrence the plan covers, so they take what the policy leaves of
    /// its runs (`run_once`: one, if the plan runs none; `run_each`: up to
    /// the cap), newest first; the rest are recorded missed.
    async fn settle_missed_claims(
        &self,
        key: &JobKey,
        entry: &mut JobEntry,
        plan: &extensor_core::schedule::CatchUpPlan,
        mut claims: Vec<Claim>,
    ) -> Result<(), extensor_core::Error> {
        let budget = match entry.decl.catch_up {
            extensor_core::manifest::CatchUp::Skip => 0,
            extensor_core::manifest::CatchUp::RunOnce => 1,
            extensor_core::manifest::CatchUp::RunEach => entry.decl.catch_up_max as usize,
        }
        .saturating_sub(plan.run.len())
        .min(claims.len());
        let run = claims.split_off(claims.len() - budget);
        let meta = self.meta(Principal::system());
        for claim in claims {
            let cmd = skip_command(key, &claim, SkipReason::Missed);
            entry.recorder.execute(&cmd, &meta).await?;
            count_run(&self.tenant, &key.0, &key.1, RunStatus::Skipped);
        }
        for claim in run {
            entry.push_pending(claim);
        }
        Ok(())
    }

    /// Claims one occurrence; `None` when another scheduler already did.
    /// A claim of an older epoch on the same occurrence (a fenced
    /// scheduler's, left behind) is adopted: fenced and returned as ours.
    async fn claim(
        &self,
        key: &JobKey,
        recorder: &JobRecorder,
        at: DateTime<Utc>,
        trigger: RunTrigger,
        meta: &EventMeta,
    ) -> Result<Option<Claim>, extensor_core::Error> {
        let claim = Claim {
            run_id: RunId::derive(&key.0, &key.1, at, trigger.as_str()),
            scheduled_for: at,
            trigger,
        };
        let cmd = claim_command(key, &claim, &self.config.owner, self.epoch());
        match recorder.execute(&cmd, meta).await {
            Ok(_) => Ok(Some(claim)),
            Err(extensor_core::Error::Domain(d)) if d.code == "already_scheduled" => {
                self.adopt(key, recorder, claim, meta).await
            }
            Err(e) => Err(e),
        }
    }

    /// Adopts `claim` if an older epoch holds it and has not started it
    /// (neither its own start record nor a wave that may have invoked it:
    /// that one is settled `owner_died`).
    async fn adopt(
        &self,
        key: &JobKey,
        recorder: &JobRecorder,
        claim: Claim,
        meta: &EventMeta,
    ) -> Result<Option<Claim>, extensor_core::Error> {
        let epoch = self.epoch();
        let stale = |state: JobRuns| {
            state
                .active
                .get(&claim.run_id)
                .filter(|r| r.epoch < epoch && r.started_at.is_none())
                .cloned()
        };
        if stale(recorder.state().await).is_none() {
            return Ok(None);
        }
        let fence = JobRunsCommand::Fence {
            epoch,
            owner: self.config.owner.clone(),
        };
        recorder.execute(&fence, meta).await?;
        // Re-checked after the fence: the older owner may have started it
        // just before; then it is not ours to run.
        match stale(recorder.state().await) {
            Some(run) if self.wave_may_have_run(&run) => {
                self.owner_died(key, recorder, &claim.run_id, &run, meta)
                    .await?;
                Ok(None)
            }
            Some(_) => Ok(Some(claim)),
            None => Ok(None),
        }
    }

    /// The timer fired: claim what is near (arming a firing task per
    /// instant) and re-arm. Claims whose time has come fired on their own.
    async fn tick(&mut self, myself: &ActorRef<SchedulerMsg>) {
        self.claim_wave(myself).await;
        let now = self.clock.now();
        if let Some(waves) = &self.waves {
            waves.forget_before(now - chrono::Duration::milliseconds(WAVE_CELLS_KEEP_MS as i64));
        }
        for entry in self.jobs.values_mut() {
            while entry
                .claimed
                .front()
                .is_some_and(|a| a.scheduled_for <= now)
            {
                entry.claimed.pop_front();
            }
        }
        self.arm(myself);
    }

    /// Claims, concurrently, every occurrence within the claim lead, once
    /// the epoch claim is checked to be still the newest.
    async fn claim_wave(&mut self, myself: &ActorRef<SchedulerMsg>) {
        if let Err(e) = self.epoch_claim().check().await {
            tracing::warn!(tenant = %self.tenant, error = %e, "no claims made");
            if is_stale_epoch(&e) {
                let _ = myself.send_message(SchedulerMsg::Fenced(e.to_string()));
            }
            return;
        }
        let horizon =
            self.clock.now() + chrono::Duration::milliseconds(self.config.claim_lead_ms as i64);
        let meta = self.meta(Principal::system());
        let mut wanted: Vec<(JobKey, JobRecorder, DateTime<Utc>)> = Vec::new();
        for (key, entry) in self.jobs.iter_mut() {
            while let Some(at) = entry.next.filter(|t| *t <= horizon) {
                if entry.claimed.len() >= CLAIMS_AHEAD_MAX {
                    break;
                }
                wanted.push((key.clone(), entry.recorder.clone(), at));
                entry.next = entry.schedule.next_after(at);
            }
        }
        let this = &*self;
        let results: Vec<_> = futures::stream::iter(wanted)
            .map(|(key, recorder, at)| {
                let meta = &meta;
                async move {
                    let r = this
                        .claim(&key, &recorder, at, RunTrigger::Schedule, meta)
                        .await;
                    (key, r)
                }
            })
            .buffer_unordered(CLAIM_CONCURRENCY)
            .collect()
            .await;
        let mut armed = Vec::with_capacity(results.len());
        for (key, result) in results {
            let Some(mut entry) = self.jobs.remove(&key) else {
                continue;
            };
            match result {
                Ok(Some(claim)) => armed.push(self.arm_run(&key, &mut entry, claim)),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(installation = %key.0, job = %key.1, error = %e, "claim failed; occurrence not run");
                    if is_stale_epoch(&e) {
                        let _ = myself.send_message(SchedulerMsg::Fenced(e.to_string()));
                    }
                }
            }
            self.jobs.insert(key, entry);
        }
        self.fire_at_instants(myself, armed);
    }

    /// Arms a claim: records it among the job's claimed occurrences and
    /// builds its run, which its instant's task fires ([`instant::fire`]).
    fn arm_run(&self, key: &JobKey, entry: &mut JobEntry, claim: Claim) -> Member {
        let start = self.run_start(&claim);
        let ctx = self.run_context(key, entry, &claim, Principal::system(), start);
        let state = FireState::default();
        let pos = entry
            .claimed
            .partition_point(|a| a.scheduled_for < claim.scheduled_for);
        let armed = Armed {
            scheduled_for: claim.scheduled_for,
            claim: claim.clone(),
            state: state.clone(),
        };
        entry.claimed.insert(pos, armed);
        Member {
            key: key.clone(),
            claim,
            recorder: entry.recorder.clone(),
            slots: entry.slots.clone(),
            state,
            run: Box::pin(run_job_caught(ctx)),
        }
    }

    /// Spawns one firing task per instant of `members` (see [`instant`]).
    fn fire_at_instants(&mut self, myself: &ActorRef<SchedulerMsg>, members: Vec<Member>) {
        for (at, members) in instant::by_instant(members) {
            let waves = self
                .waves
                .clone()
                .map(|w| (w, self.meta(Principal::system())));
            let fire = instant::Instant {
                at,
                sleep: self.clock.sleep_until(at),
                waves,
                members,
            };
            self.tasks.spawn(instant::fire(fire, myself.clone()));
        }
    }

    fn run_context(
        &self,
        key: &JobKey,
        entry: &JobEntry,
        claim: &Claim,
        principal: Principal,
        start: RunStart,
    ) -> RunContext {
        RunContext {
            start,
            recorder: entry.recorder.clone(),
            runner: self.runner.clone(),
            clock: self.clock.clone(),
            request: JobRequest {
                tenant: self.tenant.clone(),
                installation: key.0.clone(),
                job: key.1.clone(),
                run_id: claim.run_id.clone(),
                scheduled_for: claim.scheduled_for,
                trigger: claim.trigger,
                deadline_ms: self.config.job_deadline_ms,
            },
            meta: self.meta(principal),
        }
    }

    /// An armed occurrence came due while the job was busy: the overlap
    /// policy decides (unless the job went idle in between).
    async fn due(
        &mut self,
        myself: &ActorRef<SchedulerMsg>,
        key: &JobKey,
        claim: Claim,
        recorder: JobRecorder,
    ) {
        let meta = self.meta(Principal::system());
        let Some(entry) = self.jobs.get_mut(key) else {
            // Unscheduled after it fired: settle the claim, never leave it.
            let skip = skip_command(key, &claim, SkipReason::Unscheduled);
            if let Err(e) = recorder.execute(&skip, &meta).await {
                tracing::warn!(run = %claim.run_id, error = %e, "skip not recorded");
            }
            return;
        };
        let busy = !slots(&entry.slots).idle();
        let queue =
            entry.decl.overlap == Overlap::QueueOne && entry.pending.len() < QUEUED_RUNS_MAX;
        if !busy || queue {
            entry.push_pending(claim);
            self.start_next(myself, key);
            return;
        }
        let recorder = entry.recorder.clone();
        match recorder
            .execute(&skip_command(key, &claim, SkipReason::Overlap), &meta)
            .await
        {
            Ok(_) => count_run(&self.tenant, &key.0, &key.1, RunStatus::Skipped),
            Err(e) => tracing::warn!(run = %claim.run_id, error = %e, "skip not recorded"),
        }
    }

    /// Starts the first pending run if none of the job's runs is going.
    fn start_next(&mut self, myself: &ActorRef<SchedulerMsg>, key: &JobKey) {
        let Some(entry) = self.jobs.get_mut(key) else {
            return;
        };
        if slots(&entry.slots).running > 0 {
            return;
        }
        if let Some(claim) = entry.pop_pending() {
            self.start(myself, key, claim, Principal::system(), None);
        }
    }

    /// Spawns the run task of `claim` now.
    fn start(
        &mut self,
        myself: &ActorRef<SchedulerMsg>,
        key: &JobKey,
        claim: Claim,
        principal: Principal,
        done: Option<oneshot::Sender<Option<RunFinished>>>,
    ) {
        let Some(entry) = self.jobs.get(key) else {
            return;
        };
        slots(&entry.slots).running += 1;
        // One at a time, so each keeps its own start record before the call.
        let ctx = self.run_context(key, entry, &claim, principal, RunStart::Recorded);
        let me = myself.clone();
        let key = key.clone();
        self.tasks.spawn(async move {
            let end = run_job_caught(ctx).await;
            let msg = ended(key, &end);
            if let Some(done) = done {
                let _ = done.send(end.ok().and_then(RunTaskEnd::finished));
            }
            let _ = me.send_message(msg);
        });
    }

    fn run_ended(&mut self, myself: &ActorRef<SchedulerMsg>, key: &JobKey) {
        if let Some(entry) = self.jobs.get(key) {
            let mut s = slots(&entry.slots);
            s.running = s.running.saturating_sub(1);
        }
        // No re-arm: a queued run starts right here, and scanning every job
        // per finished run would cost O(jobs²) per tick.
        self.start_next(myself, key);
    }

    /// Runs a job now, recorded like a scheduled run. Answers once it
    /// finished or `wait_ms` passed, without blocking the scheduler.
    async fn run_now(
        &mut self,
        myself: &ActorRef<SchedulerMsg>,
        key: JobKey,
        principal: Principal,
        wait_ms: u64,
        reply: RpcReplyPort<Result<RunNowOutcome, Error>>,
    ) {
        let path = self.path();
        let Some(recorder) = self.jobs.get(&key).map(|e| e.recorder.clone()) else {
            let _ = reply.send(Err(core_error(&path, job_not_found(&key.0, &key.1))));
            return;
        };
        let at = self.clock.now();
        let claimed = self
            .claim(
                &key,
                &recorder,
                at,
                RunTrigger::RunNow,
                &self.meta(principal.clone()),
            )
            .await;
        let claim = match claimed {
            Ok(Some(c)) => c,
            Ok(None) => {
                let e = extensor_core::Error::Domain(DomainError {
                    aggregate: "job",
                    state: "running".into(),
                    code: "already_scheduled",
                    message: "a run-now of this job was just started; retry".into(),
                });
                let _ = reply.send(Err(core_error(&path, e)));
                return;
            }
            Err(e) => {
                let _ = reply.send(Err(core_error(&path, e)));
                return;
            }
        };
        let run_id = claim.run_id.clone();
        let (done_tx, done_rx) = oneshot::channel();
        self.start(myself, &key, claim, principal, Some(done_tx));
        let wait = Duration::from_millis(wait_ms.min(RUN_NOW_WAIT_MS_MAX));
        self.tasks.spawn(async move {
            let finished = tokio::time::timeout(wait, done_rx)
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            let _ = reply.send(Ok(RunNowOutcome { run_id, finished }));
        });
    }

    /// The installation's jobs with schedule, next and last run.
    async fn job_views(&self, id: &InstallationId) -> Result<Vec<JobView>, Error> {
        let path = self.path();
        let Some(ins) = self
            .installations
            .get(id)
            .filter(|i| i.loaded.state.status.is_installed())
        else {
            let e = extensor_core::Error::Domain(DomainError {
                aggregate: "installation",
                state: "not installed".into(),
                code: "not_installed",
                message: format!("no installation {id} in this tenant"),
            });
            return Err(core_error(&path, e));
        };
        let decls = ins
            .loaded
            .state
            .current
            .as_ref()
            .map(|v| v.manifest.jobs.clone())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(decls.len());
        for decl in decls {
            let key = (id.clone(), decl.name.clone());
            let (state, next) = match self.jobs.get(&key) {
                Some(e) => {
                    let now = self.clock.now();
                    let next = e
                        .claimed
                        .iter()
                        .map(|a| a.scheduled_for)
                        .find(|t| *t > now)
                        .or(e.next);
                    (e.recorder.state().await, next)
                }
                None => {
                    let stream = job_stream(id, &decl.name).map_err(|e| core_error(&path, e))?;
                    let loaded =
                        aggregate::load::<JobRuns>(self.store.as_ref(), &stream, AsOf::Latest)
                            .await
                            .map_err(|e| core_error(&path, e))?;
                    (loaded.state, None)
                }
            };
            out.push(JobView {
                name: decl.name,
                schedule: decl.schedule,
                timezone: decl.timezone,
                catch_up: decl.catch_up,
                catch_up_max: decl.catch_up_max,
                overlap: decl.overlap,
                scheduled: self.jobs.contains_key(&key),
                next_run: next,
                last_run: state.last,
                active_runs: state.active.len(),
                counts: state.counts,
            });
        }
        Ok(out)
    }

    /// Sets the timer to the earliest claim or fire time.
    fn arm(&mut self, myself: &ActorRef<SchedulerMsg>) {
        let lead = chrono::Duration::milliseconds(self.config.claim_lead_ms as i64);
        let at = self
            .jobs
            .values()
            .filter_map(|j| j.next.map(|n| n - lead))
            .min();
        let Some(at) = at else {
            if let Some((_, t)) = self.timer.take() {
                t.abort();
            }
            return;
        };
        if self
            .timer
            .as_ref()
            .is_some_and(|(t, h)| *t == at && !h.is_finished())
        {
            return;
        }
        if let Some((_, t)) = self.timer.take() {
            t.abort();
        }
        let sleep = self.clock.sleep_until(at);
        let me = myself.clone();
        self.timer = Some((
            at,
            tokio::spawn(async move {
                sleep.await;
                let _ = me.send_message(SchedulerMsg::Tick);
            }),
        ));
    }
}

/// Every running scheduler of this process, by tenant: how the engine and
/// the API reach a tenant's scheduler. A scheduler registers itself when
/// it starts; a stale entry (it stopped) answers `Error::Stopped`.
#[derive(Clone, Default)]
pub struct Schedulers {
    by_tenant: Arc<std::sync::Mutex<BTreeMap<TenantId, ActorRef<SchedulerMsg>>>>,
    /// Starts a missing scheduler (the engine, through the tenant's
    /// supervisor); `None` outside an engine (tests that spawn a scheduler
    /// themselves).
    starter: Option<Arc<dyn SchedulerStarter>>,
}

/// What [`Schedulers`] is handed to start a tenant's scheduler on demand:
/// the engine implements it (`engine::scheduling`), so this module imports
/// nothing of the engine.
pub trait SchedulerStarter: Send + Sync + 'static {
    /// The tenant's running scheduler, started if it has none.
    fn start(
        &self,
        tenant: &TenantId,
    ) -> futures::future::BoxFuture<'static, Result<ActorRef<SchedulerMsg>, Error>>;
}

/// Slack on top of a run-now wait for the call itself.
const RUN_NOW_CALL_SLACK_MS: u64 = 5_000;

impl Schedulers {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TenantId, ActorRef<SchedulerMsg>>> {
        self.by_tenant
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn register(&self, tenant: TenantId, actor: ActorRef<SchedulerMsg>) {
        self.lock().insert(tenant, actor);
    }

    /// A registry whose missing schedulers are started by `starter`.
    pub fn with_starter(starter: Arc<dyn SchedulerStarter>) -> Self {
        Self {
            by_tenant: Arc::default(),
            starter: Some(starter),
        }
    }

    /// The tenant's registered scheduler (maybe stopped: calls to a stale
    /// one answer `Error::Stopped`).
    pub fn get(&self, tenant: &TenantId) -> Result<ActorRef<SchedulerMsg>, Error> {
        self.lock()
            .get(tenant)
            .cloned()
            .ok_or_else(|| Error::Stopped {
                actor: format!("/tenants/{tenant}/scheduler"),
            })
    }

    /// The tenant's running scheduler. In an engine, a tenant without one
    /// (it has no enabled job, or it stopped) gets one from its supervisor
    /// (`NotFound` for a tenant never created); outside one, as [`get`].
    ///
    /// [`get`]: Self::get
    pub async fn running(&self, tenant: &TenantId) -> Result<ActorRef<SchedulerMsg>, Error> {
        if let Ok(actor) = self.get(tenant)
            && matches!(actor.get_status(), ractor::ActorStatus::Running)
        {
            return Ok(actor);
        }
        match &self.starter {
            Some(starter) => starter.start(tenant).await,
            None => self.get(tenant),
        }
    }

    /// Runs `job` now (see [`SchedulerMsg::RunNow`]).
    pub async fn run_now(
        &self,
        tenant: &TenantId,
        installation: &InstallationId,
        job: &str,
        principal: Principal,
        wait_ms: u64,
    ) -> Result<RunNowOutcome, Error> {
        let actor = self.running(tenant).await?;
        let wait_ms = wait_ms.min(RUN_NOW_WAIT_MS_MAX);
        let build = |reply| SchedulerMsg::RunNow {
            installation: installation.clone(),
            job: job.to_owned(),
            principal,
            wait_ms,
            reply,
        };
        let path = format!("/tenants/{tenant}/scheduler");
        crate::supervision::call(&path, &actor, build, wait_ms + RUN_NOW_CALL_SLACK_MS).await?
    }

    /// The installation's jobs with next and last run.
    pub async fn jobs(
        &self,
        tenant: &TenantId,
        installation: &InstallationId,
    ) -> Result<Vec<JobView>, Error> {
        let actor = self.running(tenant).await?;
        let build = |reply| SchedulerMsg::Jobs {
            installation: installation.clone(),
            reply,
        };
        let path = format!("/tenants/{tenant}/scheduler");
        crate::supervision::call(&path, &actor, build, crate::supervision::CALL_TIMEOUT_MS).await?
    }
}

fn claim_command(key: &JobKey, claim: &Claim, owner: &str, epoch: u64) -> JobRunsCommand {
    JobRunsCommand::Schedule {
        run_id: claim.run_id.clone(),
        installation: key.0.clone(),
        job: key.1.clone(),
        scheduled_for: claim.scheduled_for,
        trigger: claim.trigger,
        owner: owner.into(),
        epoch,
    }
}

/// A run whose panic (a host bug: the runner, the recorder) is caught, so
/// its task still tells the actor it ended and the job's slot is freed.
async fn run_job_caught(ctx: RunContext) -> std::thread::Result<RunTaskEnd> {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(run_job(ctx))
        .catch_unwind()
        .await
}

/// What a run task tells the actor when it is done, panicked or not.
fn ended(key: JobKey, end: &std::thread::Result<RunTaskEnd>) -> SchedulerMsg {
    let Ok(end) = end else {
        // The run's end is unknown; free its slot so later occurrences run
        // (a newer epoch settles its claim).
        tracing::error!(installation = %key.0, job = %key.1, "run task panicked");
        return SchedulerMsg::RunEnded { key };
    };
    match end {
        RunTaskEnd::Fenced => SchedulerMsg::Fenced(format!(
            "job {} of {}: a newer scheduler claimed the tenant",
            key.1, key.0
        )),
        RunTaskEnd::NotStarted(e) => SchedulerMsg::Fenced(format!(
            "job {} of {}: its wave could not be recorded ({e}); a newer epoch settles its claims",
            key.1, key.0
        )),
        RunTaskEnd::Recorded(_) => SchedulerMsg::RunEnded { key },
    }
}

/// Claims an older epoch left on a job, sorted by what happens to them.
#[derive(Default)]
struct Leftovers {
    /// Not started and not late: run by this scheduler at their time.
    adopted: Vec<Claim>,
    /// Not started and late: run or recorded missed per the catch-up policy.
    missed: Vec<Claim>,
}

fn skip_command(key: &JobKey, claim: &Claim, reason: SkipReason) -> JobRunsCommand {
    JobRunsCommand::Skip {
        run_id: claim.run_id.clone(),
        installation: key.0.clone(),
        job: key.1.clone(),
        scheduled_for: claim.scheduled_for,
        reason,
        folded: 0,
        folded_is_lower_bound: false,
    }
}

impl Actor for Scheduler {
    type Msg = SchedulerMsg;
    type State = SchedulerState;
    type Arguments = SchedulerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SchedulerMsg>,
        args: SchedulerArgs,
    ) -> Result<SchedulerState, ActorProcessingErr> {
        if let Some(registry) = &args.registry {
            registry.register(args.tenant.clone(), myself);
        }
        Ok(SchedulerState {
            tenant: args.tenant,
            store: args.store,
            runner: args.runner,
            clock: args.clock,
            config: args.config,
            installations: BTreeMap::new(),
            jobs: BTreeMap::new(),
            position: 0,
            timer: None,
            follower: None,
            claim: None,
            waves: None,
            tasks: tokio::task::JoinSet::new(),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<SchedulerMsg>,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        state.load(&myself).await?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SchedulerMsg>,
        msg: SchedulerMsg,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SchedulerMsg::Installation(ev) => {
                if let Some(id) = state.fold(&ev, Live::Live).await {
                    state.reconcile(&myself, &id).await;
                    state.arm(&myself);
                }
            }
            SchedulerMsg::FollowFailed(e) => {
                return Err(format!("installation feed failed: {e}").into());
            }
            SchedulerMsg::Fenced(e) => {
                return Err(format!("fenced: {e}").into());
            }
            SchedulerMsg::Tick => state.tick(&myself).await,
            SchedulerMsg::RunEnded { key } => state.run_ended(&myself, &key),
            SchedulerMsg::Due {
                key,
                claim,
                recorder,
            } => state.due(&myself, &key, claim, recorder).await,
            SchedulerMsg::RunNow {
                installation,
                job,
                principal,
                wait_ms,
                reply,
            } => {
                state
                    .run_now(&myself, (installation, job), principal, wait_ms, reply)
                    .await;
                state.arm(&myself);
            }
            SchedulerMsg::Jobs {
                installation,
                reply,
            } => {
                let _ = reply.send(state.job_views(&installation).await);
            }
        }
        // Reap the tasks that ended, so the set holds only live ones.
        while let Some(done) = state.tasks.try_join_next() {
            if let Err(e) = done
                && e.is_panic()
            {
                tracing::error!(tenant = %state.tenant, error = %e, "run task panicked");
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SchedulerMsg>,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some((_, t)) = state.timer.take() {
            t.abort();
        }
        if let Some(f) = state.follower.take() {
            f.abort();
        }
        // No run task outlives this actor. A sleeping one's claim stays in
        // the log and the next incarnation (a newer epoch) adopts it; a run
        // going is cut off, and the next incarnation records it failed
        // (`owner_died`): its start is durable, so it is never run again.
        for entry in state.jobs.values() {
            for armed in &entry.claimed {
                armed.state.cancel();
            }
        }
        state.tasks.abort_all();
        Ok(())
    }
}

/// The tenant supervisor's child name of the scheduler
/// (`/tenants/<t>/scheduler`).
pub const SERVICE_NAME: &str = "scheduler";
