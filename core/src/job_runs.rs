//! The runs of one plugin job: an aggregate over the job's stream
//! `jobs-<installation>.<job>`, and the run history read back from it.
//!
//! A run is identified by (installation, job, scheduled time); its id is
//! derived from them ([`RunId::derive`]). "At most once per scheduled time"
//! is this aggregate's rule: scheduling an occurrence at or before the
//! stream's cursor is refused, and the scheduler appends with the stream's
//! expected revision, so of two schedulers racing for one occurrence exactly
//! one appends `job.run_scheduled`; the other gets a conflict, re-reads the
//! stream, and is refused.
//!
//! Life of a run: `job.run_scheduled` → `job.run_started` → one of
//! `job.run_succeeded`, `job.run_failed`, `job.run_timed_out`; or
//! `job.run_skipped` instead of running (missed while down, overlap, plugin
//! disabled before it fired). A scheduled run's start is its tenant's
//! `job.wave_started` for its instant (on `jobs-<tenant>`, durable before
//! the job is invoked); its own `job.run_started` follows the invocation,
//! and an end decided with `wave_start` records it if it is missing.
//!
//! The seed's audit name for a job run, `job.executed`, is not a second
//! recording: the decision that finishes a run returns its outcome record
//! and a [`JobExecuted`] summary, so both are in the same append (one
//! transaction) and `GET /api/events?type=job.executed` finds every run
//! that ended, under its own name. Folding ignores the summary.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::aggregate::{Aggregate, DomainEvent, parse_payload, refuse, to_raw};
use crate::error::{DomainError, Error};
use crate::event::{RecordedEvent, STREAM_BYTES_MAX, StreamId};
use crate::ids::{InstallationId, RunId};
use crate::store::{EventStore, READ_EVENTS_MAX};

/// A job's JSON result is stored up to this size; a bigger one is replaced
/// by its size and a preview. Results are for monitoring, not data transfer.
pub const RESULT_BYTES_MAX: usize = 64 * 1024;
/// Characters of an oversized result kept as a preview.
pub const RESULT_PREVIEW_CHARS: usize = 1_024;
/// Captured log lines kept per run; more are counted, not stored.
pub const RUN_LOG_LINES_MAX: usize = 200;
/// Bytes of captured log messages kept per run.
pub const RUN_LOG_BYTES_MAX: usize = 64 * 1024;
/// An error message is cut to this many characters.
pub const RUN_ERROR_CHARS_MAX: usize = 4_096;
/// Runs scheduled or running at once per job: one running, one queued,
/// catch-up and run-now runs. More means something is stuck.
pub const ACTIVE_RUNS_MAX: usize = 1_100;
/// History reads stop after this many events per job stream (newest kept).
pub const HISTORY_EVENTS_SCAN_MAX: usize = 200_000;

/// Event types of a job stream.
pub mod types {
    pub const SCHEDULED: &str = "job.run_scheduled";
    pub const STARTED: &str = "job.run_started";
    pub const SUCCEEDED: &str = "job.run_succeeded";
    pub const FAILED: &str = "job.run_failed";
    pub const TIMED_OUT: &str = "job.run_timed_out";
    pub const SKIPPED: &str = "job.run_skipped";
    /// The seed's audit record of a finished run, appended with its
    /// outcome record (see the module's documentation).
    pub const EXECUTED: &str = "job.executed";
    /// A scheduler of a newer epoch took over the job's active claims.
    pub const FENCED: &str = "job.claims_fenced";
    /// A tenant's scheduler started and claimed the next epoch (on the
    /// tenant's [`scheduler_stream`], not on a job stream).
    pub const SCHEDULER_CLAIMED: &str = "job.scheduler_claimed";
    /// A scheduler started every run of its tenant due at one instant
    /// whose job was idle (on the [`scheduler_stream`]).
    pub const WAVE_STARTED: &str = "job.wave_started";
}

/// The stream of a tenant's scheduler records (`jobs-<tenant>`): one
/// `job.scheduler_claimed` per scheduler start, with the next epoch, and
/// one `job.wave_started` per instant at which that scheduler started
/// runs ([`SchedulerRecord`]). A job stream's id always has a dot
/// (`<installation>.<job>`), so the two never collide.
pub fn scheduler_stream(tenant: &crate::ids::TenantId) -> StreamId {
    StreamId::new("jobs", tenant.as_str()).expect("tenant ids are valid stream ids")
}

/// The payload of `job.scheduler_claimed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerClaimed {
    pub epoch: u64,
    pub owner: String,
}

/// The payload of `job.wave_started`: the scheduler of `epoch` started the
/// runs due at `scheduled_for` (each one it had claimed, whose job was
/// idle). Appended at the revision that scheduler last wrote, so it is
/// durable before any of those runs is invoked and a newer epoch's claim
/// in between makes it conflict. A run whose start was a wave appends its
/// own `job.run_started` after its job was invoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveStarted {
    pub epoch: u64,
    pub scheduled_for: DateTime<Utc>,
}

/// One record of a [`scheduler_stream`]: its readers decode every record
/// through this, never assuming all are claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchedulerRecord {
    Claimed(SchedulerClaimed),
    WaveStarted(WaveStarted),
}

impl SchedulerRecord {
    /// Reads a stored record (schema version 1 is the only one).
    pub fn decode(event_type: &str, version: u32, payload: &RawValue) -> Result<Self, String> {
        if version != 1 {
            return Err(format!("unknown version {version} of `{event_type}`"));
        }
        match event_type {
            types::SCHEDULER_CLAIMED => Ok(Self::Claimed(parse_payload(payload)?)),
            types::WAVE_STARTED => Ok(Self::WaveStarted(parse_payload(payload)?)),
            other => Err(format!("unknown scheduler record type `{other}`")),
        }
    }
}

/// The stream of one job's runs: `jobs-<installation>.<job>`. A job name too
/// long for a stream name is cut and suffixed with a hash of the whole name.
pub fn job_stream(installation: &InstallationId, job: &str) -> Result<StreamId, Error> {
    let prefix_len = "jobs-".len() + installation.as_str().len() + 1;
    let id = if prefix_len + job.len() <= STREAM_BYTES_MAX {
        format!("{installation}.{job}")
    } else {
        use sha2::{Digest, Sha256};
        let digest = hex::encode(&Sha256::digest(job.as_bytes())[..8]);
        let keep = STREAM_BYTES_MAX - prefix_len - digest.len() - 1;
        let cut: String = job.chars().take(keep).collect();
        format!("{installation}.{cut}-{digest}")
    };
    StreamId::new("jobs", &id)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Scheduled,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Skipped,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Scheduled,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::TimedOut,
        RunStatus::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Scheduled => "scheduled",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Scheduled | RunStatus::Running)
    }
}

/// Why a run exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    /// Its scheduled time came.
    Schedule,
    /// A missed occurrence run after downtime by the catch-up policy.
    CatchUp,
    /// Someone asked for it (API or CLI).
    RunNow,
}

impl RunTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            RunTrigger::Schedule => "schedule",
            RunTrigger::CatchUp => "catch_up",
            RunTrigger::RunNow => "run_now",
        }
    }

    /// Scheduled and catch-up runs are occurrences of the cron schedule and
    /// move the cursor; a run-now does not.
    fn is_occurrence(self) -> bool {
        !matches!(self, RunTrigger::RunNow)
    }
}

/// Why an occurrence did not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Missed while the server was down; the catch-up policy skipped it.
    Missed,
    /// The previous run was still going (overlap policy).
    Overlap,
    /// The plugin was disabled, uninstalled or upgraded without this job
    /// between scheduling the run and its time.
    Unscheduled,
}

/// One captured console line of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLog {
    pub level: String,
    pub time: DateTime<Utc>,
    pub message: String,
}

/// A result too big to keep: its size and the start of its JSON text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruncatedResult {
    pub bytes: usize,
    pub preview: String,
}

/// Applies [`RESULT_BYTES_MAX`]: the value itself, or its size and preview.
pub fn cap_result(value: Value) -> (Option<Value>, Option<TruncatedResult>) {
    let text = value.to_string();
    if text.len() <= RESULT_BYTES_MAX {
        return (Some(value), None);
    }
    let preview = text.chars().take(RESULT_PREVIEW_CHARS).collect();
    (
        None,
        Some(TruncatedResult {
            bytes: text.len(),
            preview,
        }),
    )
}

/// Applies [`RUN_LOG_LINES_MAX`] and [`RUN_LOG_BYTES_MAX`], keeping the
/// first lines; returns the kept lines and how many were dropped.
pub fn cap_logs(logs: Vec<RunLog>) -> (Vec<RunLog>, u32) {
    let total = logs.len();
    let mut bytes = 0;
    let kept: Vec<RunLog> = logs
        .into_iter()
        .take(RUN_LOG_LINES_MAX)
        .take_while(|l| {
            bytes += l.message.len();
            bytes <= RUN_LOG_BYTES_MAX
        })
        .collect();
    let dropped = u32::try_from(total - kept.len()).unwrap_or(u32::MAX);
    (kept, dropped)
}

/// Cuts an error message to [`RUN_ERROR_CHARS_MAX`].
pub fn cap_error(message: &str) -> String {
    if message.chars().count() <= RUN_ERROR_CHARS_MAX {
        return message.to_owned();
    }
    let mut out: String = message.chars().take(RUN_ERROR_CHARS_MAX).collect();
    out.push('…');
    out
}

/// How a started (or scheduled) run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RunEnd {
    Succeeded {
        result: Option<Value>,
        result_truncated: Option<TruncatedResult>,
    },
    Failed {
        error: String,
    },
    TimedOut {
        error: String,
    },
}

impl RunEnd {
    /// The end as it is stored: result and error capped.
    fn capped(&self) -> RunEnd {
        match self {
            RunEnd::Succeeded {
                result: Some(v), ..
            } => {
                let (result, result_truncated) = cap_result(v.clone());
                RunEnd::Succeeded {
                    result,
                    result_truncated,
                }
            }
            RunEnd::Failed { error } => RunEnd::Failed {
                error: cap_error(error),
            },
            RunEnd::TimedOut { error } => RunEnd::TimedOut {
                error: cap_error(error),
            },
            other => other.clone(),
        }
    }

    pub fn status(&self) -> RunStatus {
        match self {
            RunEnd::Succeeded { .. } => RunStatus::Succeeded,
            RunEnd::Failed { .. } => RunStatus::Failed,
            RunEnd::TimedOut { .. } => RunStatus::TimedOut,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobRunsCommand {
    /// Claims an occurrence (or a run-now) for `owner`, a scheduler of
    /// the tenant's claim `epoch`.
    Schedule {
        run_id: RunId,
        installation: InstallationId,
        job: String,
        scheduled_for: DateTime<Utc>,
        trigger: RunTrigger,
        owner: String,
        epoch: u64,
    },
    /// The scheduler of `epoch` takes over every active claim of older
    /// epochs: from now on only it may start, finish or skip them.
    Fence { epoch: u64, owner: String },
    Start {
        run_id: RunId,
        started_at: DateTime<Utc>,
    },
    Finish {
        run_id: RunId,
        finished_at: DateTime<Utc>,
        end: RunEnd,
        logs: Vec<RunLog>,
        /// The run was started by a `job.wave_started` at this time, so its
        /// own `job.run_started` (appended after the job was invoked) may
        /// be missing: then the decision records it before the end.
        wave_start: Option<DateTime<Utc>>,
    },
    /// Skips a scheduled run, or records an occurrence that never got one.
    Skip {
        run_id: RunId,
        installation: InstallationId,
        job: String,
        scheduled_for: DateTime<Utc>,
        reason: SkipReason,
        /// Older occurrences folded into this record (see `schedule`).
        folded: u64,
        folded_is_lower_bound: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunScheduled {
    pub run_id: RunId,
    pub installation: InstallationId,
    pub job: String,
    pub scheduled_for: DateTime<Utc>,
    pub trigger: RunTrigger,
    pub owner: String,
    /// The claiming scheduler's epoch (0 in records older than epochs).
    #[serde(default)]
    pub epoch: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimsFenced {
    pub epoch: u64,
    pub owner: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStarted {
    pub run_id: RunId,
    pub started_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFinished {
    pub run_id: RunId,
    pub scheduled_for: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// From start to finish; 0 for a run that never started.
    pub duration_ms: u64,
    #[serde(flatten)]
    pub end: RunEnd,
    pub logs: Vec<RunLog>,
    #[serde(default)]
    pub logs_dropped: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSkipped {
    pub run_id: RunId,
    pub installation: InstallationId,
    pub job: String,
    pub scheduled_for: DateTime<Utc>,
    pub reason: SkipReason,
    #[serde(default)]
    pub folded: u64,
    #[serde(default)]
    pub folded_is_lower_bound: bool,
}

/// `job.executed` (schema version 1): the seed's audit record of one run
/// that ended, appended in the same append as its outcome record
/// (`job.run_succeeded` / `job.run_failed` / `job.run_timed_out`, which
/// hold the result, error and logs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobExecuted {
    pub run_id: RunId,
    /// `null` only for a run claimed before this record existed (its claim
    /// was folded from a snapshot that did not keep it).
    pub installation: Option<InstallationId>,
    pub job: Option<String>,
    pub trigger: RunTrigger,
    /// `succeeded`, `failed` or `timed_out`.
    pub status: RunStatus,
    pub scheduled_for: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobRunsEvent {
    Scheduled(RunScheduled),
    Started(RunStarted),
    /// `job.run_succeeded`, `job.run_failed` or `job.run_timed_out`.
    Finished(Box<RunFinished>),
    Skipped(RunSkipped),
    Fenced(ClaimsFenced),
    /// `job.executed`, always right after a `Finished` of the same run.
    Executed(Box<JobExecuted>),
}

impl DomainEvent for JobRunsEvent {
    fn event_type(&self) -> &'static str {
        match self {
            JobRunsEvent::Scheduled(_) => types::SCHEDULED,
            JobRunsEvent::Started(_) => types::STARTED,
            JobRunsEvent::Finished(f) => match f.end {
                RunEnd::Succeeded { .. } => types::SUCCEEDED,
                RunEnd::Failed { .. } => types::FAILED,
                RunEnd::TimedOut { .. } => types::TIMED_OUT,
            },
            JobRunsEvent::Skipped(_) => types::SKIPPED,
            JobRunsEvent::Fenced(_) => types::FENCED,
            JobRunsEvent::Executed(_) => types::EXECUTED,
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn to_payload(&self) -> Result<Box<RawValue>, serde_json::Error> {
        match self {
            JobRunsEvent::Scheduled(p) => to_raw(p),
            JobRunsEvent::Started(p) => to_raw(p),
            JobRunsEvent::Finished(p) => to_raw(p),
            JobRunsEvent::Skipped(p) => to_raw(p),
            JobRunsEvent::Fenced(p) => to_raw(p),
            JobRunsEvent::Executed(p) => to_raw(p),
        }
    }

    fn decode(event_type: &str, version: u32, payload: &RawValue) -> Result<Self, String> {
        if version != 1 {
            return Err(format!("unknown version {version} of `{event_type}`"));
        }
        Ok(match event_type {
            types::SCHEDULED => JobRunsEvent::Scheduled(parse_payload(payload)?),
            types::STARTED => JobRunsEvent::Started(parse_payload(payload)?),
            types::SUCCEEDED | types::FAILED | types::TIMED_OUT => {
                // The status is in the payload too; it must agree with the type.
                let f: RunFinished = parse_payload(payload)?;
                let expected = match event_type {
                    types::SUCCEEDED => RunStatus::Succeeded,
                    types::FAILED => RunStatus::Failed,
                    _ => RunStatus::TimedOut,
                };
                if f.end.status() != expected {
                    return Err(format!(
                        "`{event_type}` carries status {:?}",
                        f.end.status()
                    ));
                }
                JobRunsEvent::Finished(Box::new(f))
            }
            types::SKIPPED => JobRunsEvent::Skipped(parse_payload(payload)?),
            types::FENCED => JobRunsEvent::Fenced(parse_payload(payload)?),
            types::EXECUTED => JobRunsEvent::Executed(Box::new(parse_payload(payload)?)),
            other => return Err(format!("unknown job event type `{other}`")),
        })
    }
}

/// A run that has not ended yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveRun {
    pub scheduled_for: DateTime<Utc>,
    pub trigger: RunTrigger,
    pub owner: String,
    /// The epoch of the scheduler that claimed it.
    #[serde(default)]
    pub epoch: u64,
    pub started_at: Option<DateTime<Utc>>,
    /// From the claim, for the run's `job.executed` (absent in snapshots
    /// written before it existed).
    #[serde(default)]
    pub installation: Option<InstallationId>,
    #[serde(default)]
    pub job: Option<String>,
}

impl ActiveRun {
    pub fn status(&self) -> RunStatus {
        if self.started_at.is_some() {
            RunStatus::Running
        } else {
            RunStatus::Scheduled
        }
    }
}

/// The last run that ended, for `GET …/jobs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: RunId,
    pub status: RunStatus,
    pub scheduled_for: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: u64,
}

/// The job's state: bounded whatever the length of its history, which
/// lives in the stream and is read by [`read_runs`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRuns {
    /// The newest occurrence of the schedule that was scheduled or skipped.
    /// Occurrences at or before it are never scheduled again.
    pub cursor: Option<DateTime<Utc>>,
    pub active: BTreeMap<RunId, ActiveRun>,
    pub last: Option<RunSummary>,
    /// Ended runs by status.
    pub counts: BTreeMap<RunStatus, u64>,
    /// The newest scheduler epoch that claimed or fenced on this stream. A
    /// scheduler of an older epoch is refused every command
    /// ([`JobRuns::check_epoch`]).
    #[serde(default)]
    pub epoch: u64,
}

impl JobRuns {
    /// Refuses a scheduler whose epoch is older than the newest one seen
    /// on this stream (`stale_epoch`): it was fenced by a newer scheduler
    /// and may neither claim, start nor record.
    pub fn check_epoch(&self, epoch: u64) -> Result<(), DomainError> {
        if epoch < self.epoch {
            return Err(self.refuse(
                "stale_epoch",
                format!(
                    "scheduler epoch {epoch} was fenced by epoch {}; it may not act on this job",
                    self.epoch
                ),
            ));
        }
        Ok(())
    }

    fn refuse(&self, code: &'static str, message: impl Into<String>) -> DomainError {
        let state = format!("at cursor {:?}", self.cursor.map(|c| c.to_rfc3339()));
        refuse("job", state, code, message)
    }

    fn decide_schedule(&self, e: &RunScheduled) -> Result<Vec<JobRunsEvent>, DomainError> {
        if e.trigger.is_occurrence() && self.cursor.is_some_and(|c| e.scheduled_for <= c) {
            return Err(self.refuse(
                "already_scheduled",
                format!(
                    "the occurrence at {} was already scheduled or skipped",
                    e.scheduled_for.to_rfc3339()
                ),
            ));
        }
        if self.active.contains_key(&e.run_id)
            || self.last.as_ref().is_some_and(|l| l.run_id == e.run_id)
        {
            return Err(self.refuse("already_scheduled", format!("run {} exists", e.run_id)));
        }
        if self.active.len() >= ACTIVE_RUNS_MAX {
            return Err(self.refuse(
                "too_many_active_runs",
                format!("{ACTIVE_RUNS_MAX} runs are already scheduled or running"),
            ));
        }
        Ok(vec![JobRunsEvent::Scheduled(e.clone())])
    }

    fn decide_finish(
        &self,
        run_id: &RunId,
        finished_at: DateTime<Utc>,
        end: &RunEnd,
        logs: &[RunLog],
        wave_start: Option<DateTime<Utc>>,
    ) -> Result<Vec<JobRunsEvent>, DomainError> {
        let run = self.active.get(run_id).ok_or_else(|| {
            self.refuse(
                "run_not_active",
                format!("run {run_id} is not scheduled or running"),
            )
        })?;
        // A wave's run whose own start record is not on the stream (its
        // scheduler stopped, or the append failed, after the job was
        // invoked) gets it here, in the same append as its end: a run that
        // was invoked always reads as started.
        let wave_started = match (run.started_at, wave_start) {
            (None, Some(at)) => Some(RunStarted {
                run_id: run_id.clone(),
                started_at: at,
            }),
            _ => None,
        };
        let started_at = run.started_at.or(wave_start);
        let duration_ms = started_at.map_or(0, |s| {
            u64::try_from((finished_at - s).num_milliseconds()).unwrap_or(0)
        });
        let (logs, logs_dropped) = cap_logs(logs.to_vec());
        let end = end.capped();
        let executed = JobExecuted {
            run_id: run_id.clone(),
            installation: run.installation.clone(),
            job: run.job.clone(),
            trigger: run.trigger,
            status: end.status(),
            scheduled_for: run.scheduled_for,
            started_at,
            finished_at,
            duration_ms,
        };
        // One decision, one append: the outcome and its audit record (after
        // the wave's start, if it was missing).
        let start = wave_started.map(JobRunsEvent::Started);
        Ok(start
            .into_iter()
            .chain([
                JobRunsEvent::Finished(Box::new(RunFinished {
                    run_id: run_id.clone(),
                    scheduled_for: run.scheduled_for,
                    finished_at,
                    duration_ms,
                    end,
                    logs,
                    logs_dropped,
                })),
                JobRunsEvent::Executed(Box::new(executed)),
            ])
            .collect())
    }

    fn decide_skip(&self, e: &RunSkipped) -> Result<Vec<JobRunsEvent>, DomainError> {
        match self.active.get(&e.run_id) {
            Some(run) if run.started_at.is_some() => {
                Err(self.refuse("run_started", format!("run {} already started", e.run_id)))
            }
            Some(_) => Ok(vec![JobRunsEvent::Skipped(e.clone())]),
            None if self.cursor.is_some_and(|c| e.scheduled_for <= c) => Err(self.refuse(
                "already_scheduled",
                format!(
                    "the occurrence at {} was already scheduled or skipped",
                    e.scheduled_for.to_rfc3339()
                ),
            )),
            None => Ok(vec![JobRunsEvent::Skipped(e.clone())]),
        }
    }

    fn end(&mut self, run_id: &RunId, summary: RunSummary) {
        self.active.remove(run_id);
        *self.counts.entry(summary.status).or_default() += 1;
        self.last = Some(summary);
    }
}

impl Aggregate for JobRuns {
    type Command = JobRunsCommand;
    type Event = JobRunsEvent;
    const KIND: &'static str = "job";
    const SNAPSHOT_VERSION: u32 = 1;

    fn decide(&self, command: &JobRunsCommand) -> Result<Vec<JobRunsEvent>, DomainError> {
        use JobRunsCommand as C;
        match command {
            C::Schedule {
                run_id,
                installation,
                job,
                scheduled_for,
                trigger,
                owner,
                epoch,
            } => {
                self.check_epoch(*epoch)?;
                self.decide_schedule(&RunScheduled {
                    run_id: run_id.clone(),
                    installation: installation.clone(),
                    job: job.clone(),
                    scheduled_for: *scheduled_for,
                    trigger: *trigger,
                    owner: owner.clone(),
                    epoch: *epoch,
                })
            }
            C::Fence { epoch, owner } => {
                self.check_epoch(*epoch)?;
                if *epoch == self.epoch {
                    return Ok(Vec::new());
                }
                Ok(vec![JobRunsEvent::Fenced(ClaimsFenced {
                    epoch: *epoch,
                    owner: owner.clone(),
                })])
            }
            C::Start { run_id, started_at } => match self.active.get(run_id) {
                Some(run) if run.started_at.is_none() => {
                    Ok(vec![JobRunsEvent::Started(RunStarted {
                        run_id: run_id.clone(),
                        started_at: *started_at,
                    })])
                }
                _ => Err(self.refuse(
                    "run_not_scheduled",
                    format!("run {run_id} is not waiting to start"),
                )),
            },
            C::Finish {
                run_id,
                finished_at,
                end,
                logs,
                wave_start,
            } => self.decide_finish(run_id, *finished_at, end, logs, *wave_start),
            C::Skip {
                run_id,
                installation,
                job,
                scheduled_for,
                reason,
                folded,
                folded_is_lower_bound,
            } => self.decide_skip(&RunSkipped {
                run_id: run_id.clone(),
                installation: installation.clone(),
                job: job.clone(),
                scheduled_for: *scheduled_for,
                reason: *reason,
                folded: *folded,
                folded_is_lower_bound: *folded_is_lower_bound,
            }),
        }
    }

    fn apply(&mut self, event: &JobRunsEvent) -> Result<(), String> {
        match event {
            JobRunsEvent::Scheduled(e) => {
                if self.active.contains_key(&e.run_id) {
                    return Err(format!("run {} scheduled twice", e.run_id));
                }
                if e.trigger.is_occurrence() {
                    self.cursor = self.cursor.max(Some(e.scheduled_for));
                }
                self.epoch = self.epoch.max(e.epoch);
                self.active.insert(
                    e.run_id.clone(),
                    ActiveRun {
                        scheduled_for: e.scheduled_for,
                        trigger: e.trigger,
                        owner: e.owner.clone(),
                        epoch: e.epoch,
                        started_at: None,
                        installation: Some(e.installation.clone()),
                        job: Some(e.job.clone()),
                    },
                );
            }
            JobRunsEvent::Started(e) => {
                let run = self
                    .active
                    .get_mut(&e.run_id)
                    .ok_or_else(|| format!("run {} started but never scheduled", e.run_id))?;
                run.started_at = Some(e.started_at);
            }
            JobRunsEvent::Finished(f) => {
                if !self.active.contains_key(&f.run_id) {
                    return Err(format!("run {} finished but is not active", f.run_id));
                }
                let summary = RunSummary {
                    run_id: f.run_id.clone(),
                    status: f.end.status(),
                    scheduled_for: f.scheduled_for,
                    finished_at: Some(f.finished_at),
                    duration_ms: f.duration_ms,
                };
                self.end(&f.run_id, summary);
            }
            JobRunsEvent::Skipped(e) => {
                if self
                    .active
                    .get(&e.run_id)
                    .is_none_or(|r| r.trigger.is_occurrence())
                {
                    self.cursor = self.cursor.max(Some(e.scheduled_for));
                }
                let summary = RunSummary {
                    run_id: e.run_id.clone(),
                    status: RunStatus::Skipped,
                    scheduled_for: e.scheduled_for,
                    finished_at: None,
                    duration_ms: 0,
                };
                self.end(&e.run_id, summary);
            }
            JobRunsEvent::Fenced(e) => self.epoch = self.epoch.max(e.epoch),
            // The audit copy of the `Finished` just applied.
            JobRunsEvent::Executed(_) => {}
        }
        Ok(())
    }
}

/// One run as the history shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: RunId,
    pub installation: InstallationId,
    pub job: String,
    pub status: RunStatus,
    pub trigger: Option<RunTrigger>,
    pub scheduled_for: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    pub result: Option<Value>,
    pub result_truncated: Option<TruncatedResult>,
    pub error: Option<String>,
    pub skip_reason: Option<SkipReason>,
    /// Older skipped occurrences counted into this record.
    pub folded: u64,
    pub logs: Vec<RunLog>,
    pub logs_dropped: u32,
    /// Global position of the record's newest event.
    pub position: u64,
}

/// Folds a job stream's events into run records (by run id).
#[derive(Debug, Default)]
pub struct RunHistory {
    pub runs: BTreeMap<RunId, RunRecord>,
}

impl RunHistory {
    /// Adds one recorded event of a job stream. Events of other types are
    /// ignored; an undecodable one is an error naming its position.
    pub fn add(&mut self, ev: &RecordedEvent) -> Result<(), Error> {
        let decoded = JobRunsEvent::decode(&ev.event_type, ev.schema_version, &ev.payload)
            .map_err(|reason| Error::Decode {
                position: ev.position,
                stream: ev.stream.to_string(),
                event_type: ev.event_type.clone(),
                schema_version: ev.schema_version,
                reason,
            })?;
        match decoded {
            JobRunsEvent::Scheduled(e) => {
                self.runs.insert(
                    e.run_id.clone(),
                    new_record(
                        &e.run_id,
                        &e.installation,
                        &e.job,
                        e.scheduled_for,
                        RunStatus::Scheduled,
                        Some(e.trigger),
                        ev.position,
                    ),
                );
            }
            JobRunsEvent::Started(e) => {
                if let Some(r) = self.runs.get_mut(&e.run_id) {
                    r.status = RunStatus::Running;
                    r.started_at = Some(e.started_at);
                    r.position = ev.position;
                }
            }
            JobRunsEvent::Finished(f) => {
                if let Some(r) = self.runs.get_mut(&f.run_id) {
                    r.status = f.end.status();
                    r.finished_at = Some(f.finished_at);
                    r.duration_ms = Some(f.duration_ms);
                    r.logs = f.logs;
                    r.logs_dropped = f.logs_dropped;
                    r.position = ev.position;
                    match f.end {
                        RunEnd::Succeeded {
                            result,
                            result_truncated,
                        } => {
                            r.result = result;
                            r.result_truncated = result_truncated;
                        }
                        RunEnd::Failed { error } | RunEnd::TimedOut { error } => {
                            r.error = Some(error)
                        }
                    }
                }
            }
            JobRunsEvent::Skipped(e) => {
                let r = self.runs.entry(e.run_id.clone()).or_insert_with(|| {
                    new_record(
                        &e.run_id,
                        &e.installation,
                        &e.job,
                        e.scheduled_for,
                        RunStatus::Skipped,
                        None,
                        ev.position,
                    )
                });
                r.status = RunStatus::Skipped;
                r.skip_reason = Some(e.reason);
                r.folded = e.folded;
                r.position = ev.position;
            }
            JobRunsEvent::Fenced(_) | JobRunsEvent::Executed(_) => {}
        }
        Ok(())
    }

    /// Keeps only the `max` most recently touched runs.
    fn trim(&mut self, max: usize) {
        if self.runs.len() <= max {
            return;
        }
        let mut positions: Vec<u64> = self.runs.values().map(|r| r.position).collect();
        positions.sort_unstable();
        let cut = positions[positions.len() - max];
        self.runs.retain(|_, r| r.position >= cut);
    }
}

fn new_record(
    run_id: &RunId,
    installation: &InstallationId,
    job: &str,
    scheduled_for: DateTime<Utc>,
    status: RunStatus,
    trigger: Option<RunTrigger>,
    position: u64,
) -> RunRecord {
    RunRecord {
        run_id: run_id.clone(),
        installation: installation.clone(),
        job: job.to_owned(),
        status,
        trigger,
        scheduled_for,
        started_at: None,
        finished_at: None,
        duration_ms: None,
        result: None,
        result_truncated: None,
        error: None,
        skip_reason: None,
        folded: 0,
        logs: Vec::new(),
        logs_dropped: 0,
        position,
    }
}

/// Reads the runs of one job stream, keeping at most `keep` of the most
/// recently touched runs (and scanning at most [`HISTORY_EVENTS_SCAN_MAX`]
/// events from the stream's end).
pub async fn read_runs(
    store: &dyn EventStore,
    stream: &StreamId,
    keep: usize,
) -> Result<Vec<RunRecord>, Error> {
    let revision = store.stream_revision(stream.clone()).await?;
    let Some(last) = revision else {
        return Ok(Vec::new());
    };
    let mut from = (last + 1).saturating_sub(HISTORY_EVENTS_SCAN_MAX as u64);
    let mut history = RunHistory::default();
    loop {
        let page = store
            .read_stream(stream.clone(), from, READ_EVENTS_MAX)
            .await?;
        let n = page.len();
        for ev in &page {
            history.add(ev)?;
        }
        history.trim(keep.max(1).saturating_mul(2));
        if n < READ_EVENTS_MAX {
            break;
        }
        from += n as u64;
    }
    history.trim(keep);
    Ok(history.runs.into_values().collect())
}

/// Runs read per job for the history; older ones are not listed.
pub const HISTORY_RUNS_PER_JOB_MAX: usize = 10_000;
/// The largest page of the history.
pub const RUNS_PAGE_MAX: usize = 200;

/// Which runs the history lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub job: Option<String>,
    pub status: Option<RunStatus>,
    /// Only runs listed after this one (the previous page's last run).
    pub before: Option<RunId>,
    /// Page size, capped at [`RUNS_PAGE_MAX`].
    pub limit: usize,
}

/// One page of the history, newest scheduled time first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunPage {
    pub runs: Vec<RunRecord>,
    /// Pass as `before` for the next page; `None` on the last page.
    pub next_before: Option<RunId>,
}

/// The runs of `jobs` (an installation's job names), filtered and paged.
pub async fn history(
    store: &dyn EventStore,
    installation: &InstallationId,
    jobs: &[String],
    filter: &RunFilter,
) -> Result<RunPage, Error> {
    let mut all = Vec::new();
    for job in jobs
        .iter()
        .filter(|j| filter.job.as_ref().is_none_or(|f| f == *j))
    {
        let stream = job_stream(installation, job)?;
        all.extend(read_runs(store, &stream, HISTORY_RUNS_PER_JOB_MAX).await?);
    }
    Ok(page(all, filter))
}

/// Filters, orders (newest scheduled time first, then run id) and pages.
pub fn page(mut runs: Vec<RunRecord>, filter: &RunFilter) -> RunPage {
    runs.retain(|r| filter.status.is_none_or(|s| r.status == s));
    runs.sort_by(|a, b| (b.scheduled_for, &b.run_id).cmp(&(a.scheduled_for, &a.run_id)));
    let start = match &filter.before {
        Some(id) => runs
            .iter()
            .position(|r| &r.run_id == id)
            .map_or(runs.len(), |i| i + 1),
        None => 0,
    };
    let limit = filter.limit.clamp(1, RUNS_PAGE_MAX);
    let mut rest: Vec<RunRecord> = runs.into_iter().skip(start).collect();
    let more = rest.len() > limit;
    rest.truncate(limit);
    let next_before = if more {
        rest.last().map(|r| r.run_id.clone())
    } else {
        None
    };
    RunPage {
        runs: rest,
        next_before,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn ins() -> InstallationId {
        InstallationId::for_slug(&TenantId::generate(), &"daily-kpi".parse().unwrap())
    }

    fn schedule(ins: &InstallationId, at: &str, trigger: RunTrigger) -> JobRunsCommand {
        JobRunsCommand::Schedule {
            run_id: RunId::derive(ins, "report", utc(at), trigger.as_str()),
            installation: ins.clone(),
            job: "report".into(),
            scheduled_for: utc(at),
            trigger,
            owner: "sch_a".into(),
            epoch: 1,
        }
    }

    fn run(state: &mut JobRuns, cmd: &JobRunsCommand) -> Result<(), DomainError> {
        for e in state.decide(cmd)? {
            // Round-trip through the wire form, as a rebuild would.
            let payload = e.to_payload().unwrap();
            let back = JobRunsEvent::decode(e.event_type(), 1, &payload).unwrap();
            assert_eq!(back, e);
            state.apply(&back).unwrap();
        }
        Ok(())
    }

    #[test]
    fn an_occurrence_is_scheduled_at_most_once() {
        let ins = ins();
        let mut s = JobRuns::default();
        run(
            &mut s,
            &schedule(&ins, "2026-01-01T01:00:00Z", RunTrigger::Schedule),
        )
        .unwrap();
        let again = run(
            &mut s,
            &schedule(&ins, "2026-01-01T01:00:00Z", RunTrigger::Schedule),
        );
        assert_eq!(again.unwrap_err().code, "already_scheduled");
        // Nor an older one, once the cursor moved past it.
        let older = run(
            &mut s,
            &schedule(&ins, "2026-01-01T00:00:00Z", RunTrigger::CatchUp),
        );
        assert_eq!(older.unwrap_err().code, "already_scheduled");
        // A run-now at the same instant is a different run.
        run(
            &mut s,
            &schedule(&ins, "2026-01-01T01:00:00Z", RunTrigger::RunNow),
        )
        .unwrap();
        assert_eq!(s.active.len(), 2);
    }

    #[test]
    fn a_fence_refuses_every_older_epoch() {
        let ins = ins();
        let mut s = JobRuns::default();
        run(
            &mut s,
            &schedule(&ins, "2026-01-01T01:00:00Z", RunTrigger::Schedule),
        )
        .unwrap();
        let fence = |epoch| JobRunsCommand::Fence {
            epoch,
            owner: "sch_b".into(),
        };
        run(&mut s, &fence(2)).unwrap();
        assert_eq!(s.epoch, 2);
        // Fencing again at the same epoch is a no-op, an older one refused.
        assert!(s.decide(&fence(2)).unwrap().is_empty());
        assert_eq!(s.decide(&fence(1)).unwrap_err().code, "stale_epoch");
        // The claim of epoch 1 stays active, now the newer epoch's to act on.
        assert_eq!(s.check_epoch(1).unwrap_err().code, "stale_epoch");
        assert!(s.check_epoch(2).is_ok());
        let old = schedule(&ins, "2026-01-01T02:00:00Z", RunTrigger::Schedule);
        assert_eq!(s.decide(&old).unwrap_err().code, "stale_epoch");
        assert_eq!(s.active.len(), 1);
    }

    #[test]
    fn a_run_goes_scheduled_running_finished_with_duration() {
        let ins = ins();
        let mut s = JobRuns::default();
        let cmd = schedule(&ins, "2026-01-01T01:00:00Z", RunTrigger::Schedule);
        let JobRunsCommand::Schedule { run_id, .. } = cmd.clone() else {
            unreachable!()
        };
        run(&mut s, &cmd).unwrap();
        assert_eq!(s.active[&run_id].status(), RunStatus::Scheduled);
        let start = JobRunsCommand::Start {
            run_id: run_id.clone(),
            started_at: utc("2026-01-01T01:00:00.010Z"),
        };
        run(&mut s, &start).unwrap();
        assert_eq!(run(&mut s, &start).unwrap_err().code, "run_not_scheduled");
        let finish = JobRunsCommand::Finish {
            run_id: run_id.clone(),
            finished_at: utc("2026-01-01T01:00:01.510Z"),
            end: RunEnd::Succeeded {
                result: Some(serde_json::json!({"rows": 3})),
                result_truncated: None,
            },
            logs: vec![],
            wave_start: None,
        };
        // The outcome and the seed's `job.executed` come from one decision,
        // so they are always in one append.
        let decided = s.decide(&finish).unwrap();
        let types: Vec<&str> = decided.iter().map(DomainEvent::event_type).collect();
        assert_eq!(types, [types::SUCCEEDED, types::EXECUTED]);
        let JobRunsEvent::Executed(executed) = &decided[1] else {
            unreachable!()
        };
        assert_eq!(
            (
                executed.installation.as_ref(),
                executed.job.as_deref(),
                executed.status,
                executed.duration_ms
            ),
            (Some(&ins), Some("report"), RunStatus::Succeeded, 1_500)
        );
        let raw = decided[1].to_payload().unwrap();
        let back = JobRunsEvent::decode(types::EXECUTED, 1, &raw).unwrap();
        assert_eq!(back, decided[1]);
        run(&mut s, &finish).unwrap();
        assert!(s.active.is_empty());
        let last = s.last.clone().unwrap();
        assert_eq!(
            (last.status, last.duration_ms),
            (RunStatus::Succeeded, 1_500)
        );
        assert_eq!(s.counts[&RunStatus::Succeeded], 1);
        assert_eq!(run(&mut s, &finish).unwrap_err().code, "run_not_active");
    }

    #[test]
    fn the_end_of_a_wave_run_records_its_missing_start_in_the_same_append() {
        let ins = ins();
        let mut s = JobRuns::default();
        let cmd = schedule(&ins, "2026-01-01T01:00:00Z", RunTrigger::Schedule);
        let JobRunsCommand::Schedule { run_id, .. } = cmd.clone() else {
            unreachable!()
        };
        run(&mut s, &cmd).unwrap();
        let wave_at = utc("2026-01-01T01:00:00.004Z");
        let finish = |wave_start| JobRunsCommand::Finish {
            run_id: run_id.clone(),
            finished_at: utc("2026-01-01T01:00:01.004Z"),
            end: RunEnd::Failed {
                error: "owner_died".into(),
            },
            logs: vec![],
            wave_start,
        };
        // Its own start record never landed: the end brings it.
        let decided = s.decide(&finish(Some(wave_at))).unwrap();
        let types: Vec<&str> = decided.iter().map(DomainEvent::event_type).collect();
        assert_eq!(types, [types::STARTED, types::FAILED, types::EXECUTED]);
        let JobRunsEvent::Executed(executed) = &decided[2] else {
            unreachable!()
        };
        assert_eq!(
            (executed.started_at, executed.duration_ms),
            (Some(wave_at), 1_000)
        );
        // Once the start is on the stream, the end does not repeat it.
        let start = JobRunsCommand::Start {
            run_id: run_id.clone(),
            started_at: wave_at,
        };
        run(&mut s, &start).unwrap();
        let decided = s.decide(&finish(Some(wave_at))).unwrap();
        let types: Vec<&str> = decided.iter().map(DomainEvent::event_type).collect();
        assert_eq!(types, [types::FAILED, types::EXECUTED]);
    }

    #[test]
    fn scheduler_records_decode_claims_and_waves_and_refuse_others() {
        let wave = WaveStarted {
            epoch: 3,
            scheduled_for: utc("2026-01-01T01:00:00Z"),
        };
        let raw = to_raw(&wave).unwrap();
        assert_eq!(
            SchedulerRecord::decode(types::WAVE_STARTED, 1, &raw),
            Ok(SchedulerRecord::WaveStarted(wave))
        );
        let claim = to_raw(&SchedulerClaimed {
            epoch: 2,
            owner: "sch_a".into(),
        })
        .unwrap();
        assert!(matches!(
            SchedulerRecord::decode(types::SCHEDULER_CLAIMED, 1, &claim),
            Ok(SchedulerRecord::Claimed(c)) if c.epoch == 2
        ));
        assert!(SchedulerRecord::decode(types::STARTED, 1, &raw).is_err());
        assert!(SchedulerRecord::decode(types::WAVE_STARTED, 2, &raw).is_err());
    }

    #[test]
    fn skipping_records_missed_occurrences_and_moves_the_cursor() {
        let ins = ins();
        let mut s = JobRuns::default();
        let at = utc("2026-01-01T02:00:00Z");
        let skip = JobRunsCommand::Skip {
            run_id: RunId::derive(&ins, "report", at, "schedule"),
            installation: ins.clone(),
            job: "report".into(),
            scheduled_for: at,
            reason: SkipReason::Missed,
            folded: 7,
            folded_is_lower_bound: false,
        };
        run(&mut s, &skip).unwrap();
        assert_eq!(s.cursor, Some(at));
        assert_eq!(s.counts[&RunStatus::Skipped], 1);
        assert_eq!(run(&mut s, &skip).unwrap_err().code, "already_scheduled");
    }

    #[test]
    fn huge_results_and_logs_are_capped() {
        let big = Value::String("x".repeat(RESULT_BYTES_MAX + 10));
        let (kept, truncated) = cap_result(big);
        assert!(kept.is_none());
        let t = truncated.unwrap();
        assert_eq!(t.bytes, RESULT_BYTES_MAX + 12);
        assert_eq!(t.preview.chars().count(), RESULT_PREVIEW_CHARS);
        let small = serde_json::json!({"ok": true});
        assert_eq!(cap_result(small.clone()), (Some(small), None));
        let line = |i: usize| RunLog {
            level: "info".into(),
            time: utc("2026-01-01T00:00:00Z"),
            message: format!("line {i}"),
        };
        let (logs, dropped) = cap_logs((0..RUN_LOG_LINES_MAX + 5).map(line).collect());
        assert_eq!((logs.len(), dropped), (RUN_LOG_LINES_MAX, 5));
        assert!(cap_error(&"e".repeat(10_000)).chars().count() <= RUN_ERROR_CHARS_MAX + 1);
    }

    #[test]
    fn a_finish_event_whose_status_disagrees_with_its_type_is_refused() {
        let payload = serde_json::value::to_raw_value(&serde_json::json!({
            "run_id": RunId::derive(&ins(), "j", utc("2026-01-01T00:00:00Z"), "schedule"),
            "scheduled_for": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:01Z",
            "duration_ms": 1, "status": "failed", "error": "boom", "logs": []
        }))
        .unwrap();
        let err = JobRunsEvent::decode(types::SUCCEEDED, 1, &payload).unwrap_err();
        assert!(err.contains("status"), "{err}");
    }

    #[test]
    fn history_pages_newest_first_and_filters_by_status() {
        let ins = ins();
        let runs: Vec<RunRecord> = (0..5)
            .map(|i| {
                let at = utc("2026-01-01T00:00:00Z") + chrono::Duration::minutes(i);
                let status = if i % 2 == 0 {
                    RunStatus::Succeeded
                } else {
                    RunStatus::Failed
                };
                let id = RunId::derive(&ins, "report", at, "schedule");
                new_record(
                    &id,
                    &ins,
                    "report",
                    at,
                    status,
                    Some(RunTrigger::Schedule),
                    i as u64,
                )
            })
            .collect();
        let first = page(
            runs.clone(),
            &RunFilter {
                limit: 2,
                ..RunFilter::default()
            },
        );
        assert_eq!(first.runs.len(), 2);
        assert_eq!(first.runs[0].scheduled_for, utc("2026-01-01T00:04:00Z"));
        let second = page(
            runs.clone(),
            &RunFilter {
                limit: 2,
                before: first.next_before.clone(),
                ..RunFilter::default()
            },
        );
        assert_eq!(second.runs[0].scheduled_for, utc("2026-01-01T00:02:00Z"));
        let last = page(
            runs.clone(),
            &RunFilter {
                limit: 2,
                before: second.next_before,
                ..RunFilter::default()
            },
        );
        assert_eq!((last.runs.len(), last.next_before), (1, None));
        let failed = page(
            runs,
            &RunFilter {
                status: Some(RunStatus::Failed),
                limit: 10,
                ..RunFilter::default()
            },
        );
        assert!(failed.runs.iter().all(|r| r.status == RunStatus::Failed));
        assert_eq!(failed.runs.len(), 2);
    }

    #[test]
    fn long_job_names_still_make_a_valid_stream() {
        let ins = ins();
        assert_eq!(
            job_stream(&ins, "report").unwrap().as_str(),
            format!("jobs-{ins}.report")
        );
        let long = "a".repeat(128);
        let s = job_stream(&ins, &long).unwrap();
        assert!(s.as_str().len() <= STREAM_BYTES_MAX);
        assert_ne!(s, job_stream(&ins, &"a".repeat(127)).unwrap());
    }
}
