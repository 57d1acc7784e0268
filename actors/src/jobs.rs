//! Running one plugin job and recording it: the [`JobRunner`] boundary the
//! scheduler fires through (the engine implements it with real isolates),
//! the per-job record cell every append to a job stream goes through, and
//! the run task (start → invoke with the deadline → finish → metrics).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use extensor_core::aggregate::{self, Aggregate, DomainEvent, Loaded, SnapshotPolicy};
use extensor_core::clock::Clock;
use extensor_core::event::{EventMeta, NewEvent, StreamId};
use extensor_core::ids::{EventId, InstallationId, RunId, TenantId};
use extensor_core::job_runs::{
    JobRuns, JobRunsCommand, JobRunsEvent, RunEnd, RunFinished, RunLog, RunStatus, RunTrigger,
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
    pub recorder: JobRecorder,
    pub runner: Arc<dyn JobRunner>,
    pub clock: Arc<dyn Clock>,
    pub request: JobRequest,
    pub meta: EventMeta,
}

/// Runs one claimed run to its end and records it; returns the finish
/// record (`None` if it could not be recorded, which is logged).
pub async fn run_job(ctx: RunContext) -> Option<RunFinished> {
    let req = ctx.request.clone();
    let started_at = ctx.clock.now();
    if req.trigger == RunTrigger::Schedule {
        let drift = (started_at - req.scheduled_for)
            .to_std()
            .unwrap_or_default();
        metrics::histogram!("extensor_job_start_drift_seconds").record(drift.as_secs_f64());
    }
    let started = Instant::now();
    let start = JobRunsCommand::Start {
        run_id: req.run_id.clone(),
        started_at,
    };
    let guard = Duration::from_millis(req.deadline_ms.saturating_add(DEADLINE_GUARD_MS));
    // The start record is durable before the job is invoked: a run that is
    // invoked has a `job.run_started` a restarted scheduler finds, so it is
    // settled as interrupted, never claimed and run a second time. If the
    // start cannot be recorded (the run was settled by another scheduler,
    // or the store refuses), the job is not invoked at all.
    if let Err(e) = ctx.recorder.execute(&start, &ctx.meta).await {
        tracing::warn!(run = %req.run_id, error = %e, "run start not recorded; not run");
        return None;
    }
    let outcome = tokio::time::timeout(guard, ctx.runner.run(req.clone())).await;
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
    };
    match ctx.recorder.execute(&finish, &ctx.meta).await {
        Ok(events) => events.into_iter().find_map(|e| match e {
            JobRunsEvent::Finished(f) => Some(*f),
            _ => None,
        }),
        Err(e) => {
            tracing::warn!(run = %req.run_id, error = %e, "run end not recorded");
            None
        }
    }
}

/// Run counts by status and a duration histogram, per job.
pub fn record_metrics(req: &JobRequest, status: RunStatus, duration: Duration) {
    let labels = [
        ("tenant", req.tenant.to_string()),
        ("installation", req.installation.to_string()),
        ("job", req.job.clone()),
    ];
    metrics::histogram!("extensor_job_run_duration_seconds", &labels)
        .record(duration.as_secs_f64());
    count_run(&req.tenant, &req.installation, &req.job, status);
}

/// Counts one run that ended with `status` (skips included).
pub fn count_run(tenant: &TenantId, installation: &InstallationId, job: &str, status: RunStatus) {
    let labels = [
        ("tenant", tenant.to_string()),
        ("installation", installation.to_string()),
        ("job", job.to_owned()),
        ("status", status.as_str().to_owned()),
    ];
    metrics::counter!("extensor_job_runs_total", &labels).increment(1);
}

/// The engine as a [`JobRunner`]: runs the job in its installation's
/// isolate (`Trigger::Job`) with the job deadline. The handler receives
/// `{run_id, scheduled_for, trigger}`; the run id is also the invocation's
/// event id, so a plugin can deduplicate on it.
pub(crate) struct EngineRunner {
    pub engine: crate::engine::EngineSlot,
}

impl JobRunner for EngineRunner {
    fn run(&self, request: JobRequest) -> BoxFuture<'static, Result<JobSuccess, JobFailure>> {
        let inner = self.engine.get();
        Box::pin(async move {
            let Some(inner) = inner else {
                return Err(JobFailure::Failed {
                    error: "the engine is shutting down".into(),
                    logs: Vec::new(),
                });
            };
            let engine = crate::engine::Engine { inner };
            let input = serde_json::json!({
                "run_id": request.run_id,
                "scheduled_for": request.scheduled_for,
                "trigger": request.trigger.as_str(),
            });
            let trigger = extensor_js::Trigger::Job {
                name: request.job.clone(),
            };
            let event_id = Some(request.run_id.to_string());
            match engine
                .invoke(
                    &request.tenant,
                    &request.installation,
                    trigger,
                    input,
                    event_id,
                )
                .await
            {
                Ok(outcome) => Ok(JobSuccess {
                    value: outcome.value,
                    logs: outcome.logs.into_iter().map(run_log).collect(),
                }),
                Err(e) => Err(job_failure(e)),
            }
        })
    }
}

/// A failed run keeps what the code logged before it failed.
fn job_failure(e: crate::Error) -> JobFailure {
    let error = e.to_string();
    match e {
        crate::Error::Plugin { source, logs, .. } => {
            let logs = logs.into_iter().map(run_log).collect();
            match source {
                extensor_js::JsError::Timeout { .. } => JobFailure::TimedOut { error, logs },
                _ => JobFailure::Failed { error, logs },
            }
        }
        _ => JobFailure::Failed {
            error,
            logs: Vec::new(),
        },
    }
}

fn run_log(entry: extensor_js::LogEntry) -> RunLog {
    let level = serde_json::to_value(entry.level)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    RunLog {
        level,
        time: entry.time,
        message: entry.message,
    }
}
