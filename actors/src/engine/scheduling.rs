//! The engine's side of plugin jobs: the scheduler as a tenant service
//! ([`SchedulerService`]), the engine as the scheduler's [`JobRunner`]
//! ([`EngineRunner`], real isolates) and as its [`SchedulerStarter`]. The
//! scheduler and the job runner are handed these; they import nothing of
//! the engine.

use std::sync::Arc;

use extensor_core::ids::TenantId;
use futures::future::BoxFuture;
use ractor::{Actor, ActorRef};

use super::{Engine, EngineSlot};
use crate::error::Error;
use crate::jobs::{JobFailure, JobRequest, JobRunner, JobSuccess};
use crate::scheduler::{
    SERVICE_NAME, Scheduler, SchedulerArgs, SchedulerConfig, SchedulerMsg, SchedulerStarter,
    Schedulers,
};
use crate::tenant_supervisor::TenantSupervisorMsg;
use extensor_core::job_runs::RunLog;

impl SchedulerStarter for EngineSlot {
    fn start(
        &self,
        tenant: &TenantId,
    ) -> BoxFuture<'static, Result<ActorRef<SchedulerMsg>, Error>> {
        let inner = self.get();
        let tenant = tenant.clone();
        Box::pin(async move {
            let inner = inner.ok_or(Error::ShuttingDown)?;
            inner.require_tenant(&tenant).await?;
            let name = SERVICE_NAME;
            let cell = inner
                .supervisor_call(&tenant, |reply| TenantSupervisorMsg::Service {
                    name,
                    reply,
                })
                .await??;
            Ok(cell.into())
        })
    }
}

/// The scheduler as a tenant service at `/tenants/<tenant>/scheduler`,
/// firing jobs through the engine's isolates
/// ([`EngineRunner`]). A tenant supervisor
/// starts it with itself when the tenant has an enabled installation
/// declaring jobs; the engine starts it when such an installation is
/// enabled or upgraded, and [`Schedulers::running`] on run-now or a jobs
/// listing. Once started it stays (disabling the last job-bearing
/// installation leaves it idle, with no timer armed) until the supervisor
/// stops.
pub(crate) struct SchedulerService {
    engine: EngineSlot,
    schedulers: Schedulers,
    /// One owner name per process (shown in claims and `owner_died`
    /// errors); each incarnation claims its own epoch.
    owner: String,
    job_deadline_ms: u64,
}

impl SchedulerService {
    pub(crate) fn new(engine: EngineSlot, schedulers: Schedulers, job_deadline_ms: u64) -> Self {
        Self {
            engine,
            schedulers,
            owner: SchedulerConfig::default().owner,
            job_deadline_ms,
        }
    }
}

impl crate::tenant_supervisor::TenantService for SchedulerService {
    fn name(&self) -> &'static str {
        SERVICE_NAME
    }
    /// Single-owner work: only the node holding the tenant's lease runs it.
    fn leased(&self) -> bool {
        true
    }

    fn wanted_at_start(&self, tenant: &TenantId) -> bool {
        self.engine
            .get()
            .is_some_and(|inner| inner.directory.has_jobs(tenant))
    }

    fn spawn(
        &self,
        tenant: TenantId,
        supervisor: ractor::ActorCell,
    ) -> futures::future::BoxFuture<'static, Result<ractor::ActorCell, Error>> {
        let inner = self.engine.get();
        let runner = Arc::new(EngineRunner {
            engine: self.engine.clone(),
        });
        let config = SchedulerConfig {
            owner: self.owner.clone(),
            job_deadline_ms: self.job_deadline_ms,
            ..SchedulerConfig::default()
        };
        let registry = self.schedulers.clone();
        Box::pin(async move {
            let inner = inner.ok_or(Error::ShuttingDown)?;
            let args = SchedulerArgs {
                tenant: tenant.clone(),
                store: inner.store.clone(),
                runner,
                clock: Arc::new(extensor_core::clock::SystemClock),
                config,
                registry: Some(registry),
            };
            let (actor, _) = Actor::spawn_linked(None, Scheduler, args, supervisor)
                .await
                .map_err(|e| Error::Spawn {
                    actor: format!("/tenants/{tenant}/scheduler"),
                    reason: e.to_string(),
                })?;
            Ok(actor.get_cell())
        })
    }
}

/// The engine as a [`JobRunner`]: runs the job in its installation's
/// isolate (`Trigger::Job`) with the job deadline. The handler receives
/// `{run_id, scheduled_for, trigger}`; the run id is also the invocation's
/// event id, so a plugin can deduplicate on it.
pub(crate) struct EngineRunner {
    pub engine: EngineSlot,
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
            let engine = Engine { inner };
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
