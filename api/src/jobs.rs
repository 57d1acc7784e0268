//! `POST /api/plugins/{id}/jobs/{job_name}/run-now`,
//! `GET /api/plugins/{id}/jobs`, `GET /api/plugins/{id}/runs`,
//! `GET /api/plugins/{id}/runs/{run_id}`: a plugin's scheduled jobs, running
//! one now, and the run history (docs/SCRIPTS.md).

use chrono::{DateTime, Utc};
use extensor_core::aggregate::{self, AsOf};
use extensor_core::event::StreamId;
use extensor_core::ids::{InstallationId, RunId};
use extensor_core::installation::PluginInstallation;
use extensor_core::job_runs::{self, RunFilter, RunFinished, RunRecord, RunStatus};
use extensor_core::role::Role;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde_json::Value;

use crate::auth::{BearerAuth, TenantCtx};
use crate::error::ApiError;
use crate::ratelimit::RateClass;
use crate::state::{Feature, State};
use crate::tags::ApiTags;

/// How long run-now waits for the result when `wait_ms` is not given.
pub const RUN_NOW_WAIT_MS_DEFAULT: u64 = 10_000;
/// Runs per history page when `limit` is not given.
const RUNS_PAGE_DEFAULT: u32 = 50;

/// A run's status.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum RunStatusName {
    Scheduled,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Skipped,
}

impl From<RunStatus> for RunStatusName {
    fn from(s: RunStatus) -> Self {
        match s {
            RunStatus::Scheduled => Self::Scheduled,
            RunStatus::Running => Self::Running,
            RunStatus::Succeeded => Self::Succeeded,
            RunStatus::Failed => Self::Failed,
            RunStatus::TimedOut => Self::TimedOut,
            RunStatus::Skipped => Self::Skipped,
        }
    }
}

impl From<RunStatusName> for RunStatus {
    fn from(s: RunStatusName) -> Self {
        match s {
            RunStatusName::Scheduled => Self::Scheduled,
            RunStatusName::Running => Self::Running,
            RunStatusName::Succeeded => Self::Succeeded,
            RunStatusName::Failed => Self::Failed,
            RunStatusName::TimedOut => Self::TimedOut,
            RunStatusName::Skipped => Self::Skipped,
        }
    }
}

/// One captured console line.
#[derive(Object)]
pub struct RunLogView {
    pub level: String,
    pub time: DateTime<Utc>,
    pub message: String,
}

/// A result too big to store: its size and the start of its JSON text.
#[derive(Object)]
pub struct TruncatedResultView {
    pub bytes: u64,
    pub preview: String,
}

/// One run of a job.
#[derive(Object)]
pub struct RunView {
    pub run_id: String,
    pub job: String,
    pub status: RunStatusName,
    /// `schedule`, `catch_up` or `run_now`; absent for an occurrence
    /// skipped without being scheduled.
    pub trigger: Option<String>,
    pub scheduled_for: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    /// The job's return value (JSON), when it succeeded and fit.
    pub result: Option<Value>,
    pub result_truncated: Option<TruncatedResultView>,
    pub error: Option<String>,
    /// Why a skipped run did not run: `missed`, `overlap`, `unscheduled`.
    pub skip_reason: Option<String>,
    /// Older skipped occurrences counted into this record.
    pub folded: u64,
    pub logs: Vec<RunLogView>,
    pub logs_dropped: u32,
}

impl From<RunRecord> for RunView {
    fn from(r: RunRecord) -> Self {
        Self {
            run_id: r.run_id.to_string(),
            job: r.job,
            status: r.status.into(),
            trigger: r.trigger.map(|t| t.as_str().to_owned()),
            scheduled_for: r.scheduled_for,
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_ms: r.duration_ms,
            result: r.result,
            result_truncated: r.result_truncated.map(|t| TruncatedResultView {
                bytes: t.bytes as u64,
                preview: t.preview,
            }),
            error: r.error,
            skip_reason: r.skip_reason.map(|s| {
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            }),
            folded: r.folded,
            logs: r
                .logs
                .into_iter()
                .map(|l| RunLogView {
                    level: l.level,
                    time: l.time,
                    message: l.message,
                })
                .collect(),
            logs_dropped: r.logs_dropped,
        }
    }
}

#[derive(Object)]
pub struct RunPageView {
    /// Newest scheduled time first.
    pub runs: Vec<RunView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<String>,
}

/// The last run of a job that ended.
#[derive(Object)]
pub struct LastRunView {
    pub run_id: String,
    pub status: RunStatusName,
    pub scheduled_for: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: u64,
}

/// Ended runs of a job by status.
#[derive(Object, Default)]
pub struct RunCounts {
    pub succeeded: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub skipped: u64,
}

/// One job of a plugin.
#[derive(Object)]
pub struct JobView {
    pub name: String,
    /// The cron expression in the seconds form (`0 0 2 * * *`).
    pub schedule: String,
    /// IANA zone the schedule is read in.
    pub timezone: String,
    /// `skip`, `run_once` or `run_each`.
    pub catch_up: String,
    pub catch_up_max: u32,
    /// `skip` or `queue_one`.
    pub overlap: String,
    /// Whether the scheduler is firing it (the plugin is enabled).
    pub scheduled: bool,
    pub next_run: Option<DateTime<Utc>>,
    pub last_run: Option<LastRunView>,
    /// Runs scheduled or going now.
    pub active_runs: u64,
    pub counts: RunCounts,
}

#[derive(Object)]
pub struct JobList {
    pub jobs: Vec<JobView>,
}

/// What run-now answers.
#[derive(Object)]
pub struct RunNowView {
    pub run_id: String,
    /// Whether the run ended within the wait; if not, poll
    /// `GET /api/plugins/{id}/runs/{run_id}`.
    pub finished: bool,
    pub status: RunStatusName,
    pub duration_ms: Option<u64>,
    pub result: Option<Value>,
    pub result_truncated: Option<TruncatedResultView>,
    pub error: Option<String>,
    pub logs: Vec<RunLogView>,
}

#[derive(ApiResponse)]
pub enum RunNowResponse {
    /// The run ended within the wait: its outcome.
    #[oai(status = 200)]
    Finished(Json<RunNowView>),
    /// The run is still going: poll it by `run_id`.
    #[oai(status = 202)]
    Accepted(Json<RunNowView>),
}

pub struct JobsApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Jobs")]
impl JobsApi {
    /// Run a job now
    ///
    /// Recorded like a scheduled run (trigger `run_now`). Answers 200 with the
    /// outcome if the run ends within `wait_ms`, otherwise 202 with the run id.
    #[oai(
        path = "/plugins/:id/jobs/:job_name/run-now",
        method = "post",
        operation_id = "runJobNow"
    )]
    async fn run_now(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The plugin installation's id (`ins_…`).
        id: Path<String>,
        /// The job's name.
        job_name: Path<String>,
        /// How long to wait for the run to end, in ms (default 10,000, at most 120,000).
        wait_ms: Query<Option<u64>>,
    ) -> Result<RunNowResponse, ApiError> {
        state.features.require(Feature::AppScripts)?;
        let ctx = state.tenant_access(&auth, &tenant, Role::Developer, RateClass::Management)?;
        let (ins, installation) = installation_of(&state, &ctx, &id).await?;
        let declared = installation
            .current
            .as_ref()
            .is_some_and(|v| v.manifest.jobs.iter().any(|j| j.name == *job_name));
        if !declared {
            return Err(ApiError::not_found("job", &job_name));
        }
        let wait = wait_ms.unwrap_or(RUN_NOW_WAIT_MS_DEFAULT);
        let outcome = state
            .engine
            .schedulers()
            .run_now(&ctx.tenant, &ins, &job_name, ctx.principal.clone(), wait)
            .await
            .map_err(ApiError::from)?;
        let run_id = outcome.run_id.to_string();
        Ok(match outcome.finished {
            Some(f) => RunNowResponse::Finished(Json(finished_view(run_id, f))),
            None => RunNowResponse::Accepted(Json(RunNowView {
                run_id,
                finished: false,
                status: RunStatusName::Running,
                duration_ms: None,
                result: None,
                result_truncated: None,
                error: None,
                logs: Vec::new(),
            })),
        })
    }

    /// List a plugin's jobs with their last and next run
    #[oai(path = "/plugins/:id/jobs", method = "get", operation_id = "listJobs")]
    async fn list(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The plugin installation's id (`ins_…`).
        id: Path<String>,
    ) -> Result<Json<JobList>, ApiError> {
        state.features.require(Feature::AppScripts)?;
        let ctx = state.tenant_access(&auth, &tenant, Role::Viewer, RateClass::Management)?;
        let (ins, _) = installation_of(&state, &ctx, &id).await?;
        let views = state
            .engine
            .schedulers()
            .jobs(&ctx.tenant, &ins)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(JobList {
            jobs: views.into_iter().map(job_view).collect(),
        }))
    }

    /// List a plugin's job runs, newest first
    #[oai(
        path = "/plugins/:id/runs",
        method = "get",
        operation_id = "listJobRuns"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn runs(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The plugin installation's id (`ins_…`).
        id: Path<String>,
        /// Only this job's runs.
        job: Query<Option<String>>,
        /// Only runs with this status.
        status: Query<Option<RunStatusName>>,
        /// The previous page's `next_before`: a run id (`run_` and a ULID).
        #[oai(validator(pattern = r"^run_[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$"))]
        before: Query<Option<String>>,
        /// Page size (default 50, at most 200).
        limit: Query<Option<u32>>,
    ) -> Result<Json<RunPageView>, ApiError> {
        state.features.require(Feature::AppScripts)?;
        let ctx = state.tenant_access(&auth, &tenant, Role::Viewer, RateClass::Management)?;
        let (ins, installation) = installation_of(&state, &ctx, &id).await?;
        let before = match before.0.as_deref() {
            None => None,
            Some(b) => Some(b.parse::<RunId>().map_err(|_| {
                ApiError::invalid_field("before", "must be a run id (`run_…`) from `next_before`")
            })?),
        };
        let filter = RunFilter {
            job: job.0,
            status: status.0.map(Into::into),
            before,
            limit: limit.unwrap_or(RUNS_PAGE_DEFAULT) as usize,
        };
        let page = job_runs::history(
            state.store.as_ref(),
            &ins,
            &job_names(&installation),
            &filter,
        )
        .await?;
        Ok(Json(RunPageView {
            runs: page.runs.into_iter().map(Into::into).collect(),
            next_before: page.next_before.map(|r| r.to_string()),
        }))
    }

    /// Get one run of a plugin's job
    #[oai(
        path = "/plugins/:id/runs/:run_id",
        method = "get",
        operation_id = "getJobRun"
    )]
    async fn run(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The plugin installation's id (`ins_…`).
        id: Path<String>,
        /// The run's id (`run_…`).
        run_id: Path<String>,
    ) -> Result<Json<RunView>, ApiError> {
        state.features.require(Feature::AppScripts)?;
        let ctx = state.tenant_access(&auth, &tenant, Role::Viewer, RateClass::Management)?;
        let (ins, installation) = installation_of(&state, &ctx, &id).await?;
        let wanted: RunId = run_id
            .parse()
            .map_err(|_| ApiError::not_found("run", &run_id))?;
        for job in job_names(&installation) {
            let stream = job_runs::job_stream(&ins, &job)?;
            let runs = job_runs::read_runs(
                state.store.as_ref(),
                &stream,
                job_runs::HISTORY_RUNS_PER_JOB_MAX,
            )
            .await?;
            if let Some(r) = runs.into_iter().find(|r| r.run_id == wanted) {
                return Ok(Json(r.into()));
            }
        }
        Err(ApiError::not_found("run", &run_id))
    }
}

fn job_names(installation: &PluginInstallation) -> Vec<String> {
    installation
        .current
        .as_ref()
        .map(|v| v.manifest.jobs.iter().map(|j| j.name.clone()).collect())
        .unwrap_or_default()
}

/// The caller's tenant's installation `id`; another tenant's, a malformed
/// or an absent id all answer the same 404.
async fn installation_of(
    state: &State<'_>,
    ctx: &TenantCtx,
    id: &str,
) -> Result<(InstallationId, PluginInstallation), ApiError> {
    let not_found = || ApiError::not_found("plugin", id);
    let ins: InstallationId = id.parse().map_err(|_| not_found())?;
    let loaded = aggregate::load::<PluginInstallation>(
        state.store.as_ref(),
        &StreamId::installation(&ins),
        AsOf::Latest,
    )
    .await?;
    let ours = loaded.state.tenant.as_ref() == Some(&ctx.tenant);
    if !ours || !loaded.state.status.is_installed() {
        return Err(not_found());
    }
    Ok((ins, loaded.state))
}

fn job_view(v: extensor_actors::scheduler::JobView) -> JobView {
    let count = |s: RunStatus| v.counts.get(&s).copied().unwrap_or(0);
    JobView {
        counts: RunCounts {
            succeeded: count(RunStatus::Succeeded),
            failed: count(RunStatus::Failed),
            timed_out: count(RunStatus::TimedOut),
            skipped: count(RunStatus::Skipped),
        },
        name: v.name,
        schedule: v.schedule,
        timezone: v.timezone,
        catch_up: snake(&v.catch_up),
        catch_up_max: v.catch_up_max,
        overlap: snake(&v.overlap),
        scheduled: v.scheduled,
        next_run: v.next_run,
        last_run: v.last_run.map(|l| LastRunView {
            run_id: l.run_id.to_string(),
            status: l.status.into(),
            scheduled_for: l.scheduled_for,
            finished_at: l.finished_at,
            duration_ms: l.duration_ms,
        }),
        active_runs: v.active_runs as u64,
    }
}

/// The serde (snake_case) name of a policy enum.
fn snake<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A run that ended within the wait: its outcome, result or error, and logs.
fn finished_view(run_id: String, f: RunFinished) -> RunNowView {
    let status = f.end.status().into();
    let (result, result_truncated, error) = match f.end {
        job_runs::RunEnd::Succeeded {
            result,
            result_truncated,
        } => (result, result_truncated, None),
        job_runs::RunEnd::Failed { error } | job_runs::RunEnd::TimedOut { error } => {
            (None, None, Some(error))
        }
    };
    RunNowView {
        run_id,
        finished: true,
        status,
        duration_ms: Some(f.duration_ms),
        result,
        result_truncated: result_truncated.map(|t| TruncatedResultView {
            bytes: t.bytes as u64,
            preview: t.preview,
        }),
        error,
        logs: f
            .logs
            .into_iter()
            .map(|l| RunLogView {
                level: l.level,
                time: l.time,
                message: l.message,
            })
            .collect(),
    }
}
