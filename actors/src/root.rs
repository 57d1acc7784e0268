//! The root supervisor: one [`TenantSupervisor`] per tenant, spawned lazily
//! by id. A tenant supervisor that itself fails is restarted per the same
//! [`RestartPolicy`](crate::supervision::RestartPolicy); its children
//! rebuild from the log, so nothing is lost. Other tenants are untouched.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use extensor_core::ids::TenantId;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::error::Error;
use crate::supervision::{
    ActorInfo, ActorKind, ActorStatus, CALL_TIMEOUT_MS, CHILDREN_STOP_TIMEOUT_MS, FailureHistory,
    RestartDecision, TreeSnapshot, call,
};
use crate::tenant_supervisor::{
    ChildKey, TenantSupervisor, TenantSupervisorArgs, TenantSupervisorMsg, TreeConfig,
};

pub struct Root;

pub struct RootState {
    config: TreeConfig,
    tenants: BTreeMap<TenantId, TenantEntry>,
    by_actor: BTreeMap<ActorId, TenantId>,
    /// Tenant supervisors told to stop by an operator and not yet gone, by
    /// actor id. The root never waits for a stop inside its handler (a
    /// subtree may take up to `CHILDREN_STOP_TIMEOUT_MS` to stop, and every
    /// other tenant's call would wait behind it): the callers wait here and
    /// are answered when the supervisor's termination reaches the root, or
    /// when the stop is overdue.
    stopping: BTreeMap<ActorId, Stopping>,
}

/// A tenant stop in progress: who waits for it, and whether a resume
/// arrived meanwhile (applied once the old subtree is gone, so a new
/// supervisor never runs beside the one still stopping).
struct Stopping {
    tenant: TenantId,
    waiters: Vec<RpcReplyPort<()>>,
    resume: bool,
}

struct TenantEntry {
    running: Option<ActorRef<TenantSupervisorMsg>>,
    history: FailureHistory,
    status: ActorStatus,
    last_error: Option<String>,
}

pub enum RootMsg {
    /// The tenant's supervisor, started if it is not running.
    Tenant {
        tenant: TenantId,
        reply: RpcReplyPort<Result<ActorRef<TenantSupervisorMsg>, Error>>,
    },
    /// The live tree for the ops view.
    Snapshot { reply: RpcReplyPort<TreeSnapshot> },
    /// Sent to itself after the backoff delay.
    Restart { tenant: TenantId },
    /// An operator stops a tenant: its supervisor and children stop and
    /// every request for it is refused until it is resumed. Answered once
    /// no actor of the tenant runs any more (or the stop is overdue).
    StopTenant {
        tenant: TenantId,
        reply: RpcReplyPort<()>,
    },
    /// Sent to itself `CHILDREN_STOP_TIMEOUT_MS` after a tenant stop began:
    /// answers its waiters if the supervisor has not terminated by then.
    StopOverdue { actor: ActorId },
    /// An operator restarts a failed child of a tenant (forwarded to its
    /// supervisor).
    RestartActor {
        tenant: TenantId,
        key: ChildKey,
        reply: RpcReplyPort<Result<(), Error>>,
    },
    /// An operator restarts a failed tenant supervisor (or one waiting out
    /// its restart backoff) now, with a clean failure history.
    RestartTenant {
        tenant: TenantId,
        reply: RpcReplyPort<Result<(), Error>>,
    },
    /// An operator resumes a stopped tenant; its next request starts it.
    /// Answered once a stop still in progress has finished.
    ResumeTenant {
        tenant: TenantId,
        reply: RpcReplyPort<()>,
    },
}

fn path_of(tenant: &TenantId) -> String {
    format!("/tenants/{tenant}")
}

impl RootState {
    async fn tenant(
        &mut self,
        myself: &ActorRef<RootMsg>,
        tenant: &TenantId,
    ) -> Result<ActorRef<TenantSupervisorMsg>, Error> {
        let entry = self
            .tenants
            .entry(tenant.clone())
            .or_insert_with(|| TenantEntry {
                running: None,
                history: FailureHistory::default(),
                status: ActorStatus::Starting,
                last_error: None,
            });
        if let Some(sup) = &entry.running {
            return Ok(sup.clone());
        }
        match entry.status {
            ActorStatus::Failed => Err(Error::Failed {
                actor: path_of(tenant),
                last_error: entry.last_error.clone().unwrap_or_default(),
            }),
            ActorStatus::Restarting | ActorStatus::Stopped => Err(Error::Stopped {
                actor: path_of(tenant),
            }),
            _ => self.start(myself, tenant).await,
        }
    }

    async fn start(
        &mut self,
        myself: &ActorRef<RootMsg>,
        tenant: &TenantId,
    ) -> Result<ActorRef<TenantSupervisorMsg>, Error> {
        let path = path_of(tenant);
        let args = TenantSupervisorArgs {
            tenant: tenant.clone(),
            config: self.config.clone(),
        };
        let (sup, _) = Actor::spawn_linked(None, TenantSupervisor, args, myself.get_cell())
            .await
            .map_err(|e| Error::Spawn {
                actor: path.clone(),
                reason: e.to_string(),
            })?;
        self.by_actor.insert(sup.get_id(), tenant.clone());
        if let Some(entry) = self.tenants.get_mut(tenant) {
            entry.running = Some(sup.clone());
            entry.status = ActorStatus::Running;
        }
        let restarts = self.config.board.get(&path).map_or(0, |i| i.restarts);
        self.config.board.put(
            ActorInfo {
                path,
                kind: ActorKind::TenantSupervisor,
                tenant: Some(tenant.to_string()),
                status: ActorStatus::Running,
                started_at: Some(Utc::now()),
                restarts,
                queue_depth: 0,
                last_error: None,
                last_error_at: None,
            },
            None,
        );
        Ok(sup)
    }

    fn failed(&mut self, myself: &ActorRef<RootMsg>, id: ActorId, error: String) {
        let Some(tenant) = self.by_actor.remove(&id) else {
            return;
        };
        let policy = self.config.policy;
        let Some(entry) = self.tenants.get_mut(&tenant) else {
            return;
        };
        entry.running = None;
        entry.last_error = Some(error.clone());
        let decision = entry.history.record(&policy, Utc::now());
        entry.status = match decision {
            RestartDecision::RestartAfter(_) => ActorStatus::Restarting,
            RestartDecision::GiveUp => ActorStatus::Failed,
        };
        let status = entry.status;
        tracing::warn!(tenant = %tenant, error = %error, ?decision, "tenant supervisor failed");
        self.config.board.update(&path_of(&tenant), |i| {
            i.status = status;
            i.last_error = Some(error);
            i.last_error_at = Some(Utc::now());
        });
        if let RestartDecision::RestartAfter(delay) = decision {
            myself.send_after(delay, move || RootMsg::Restart { tenant });
        }
    }

    fn entry(&mut self, tenant: &TenantId) -> &mut TenantEntry {
        self.tenants
            .entry(tenant.clone())
            .or_insert_with(|| TenantEntry {
                running: None,
                history: FailureHistory::default(),
                status: ActorStatus::Starting,
                last_error: None,
            })
    }

    /// Tells the tenant's subtree to stop and returns at once; `reply` is
    /// answered when the supervisor has terminated ([`RootState::stopped`]),
    /// so the operator's answer still means no actor of the tenant runs.
    fn stop_tenant(
        &mut self,
        myself: &ActorRef<RootMsg>,
        tenant: &TenantId,
        reply: RpcReplyPort<()>,
    ) {
        let entry = self.entry(tenant);
        entry.status = ActorStatus::Stopped;
        let running = entry.running.take();
        self.show_stopped(tenant);
        if let Some(sup) = running {
            let actor = sup.get_id();
            self.by_actor.remove(&actor);
            sup.stop(None);
            self.stopping.insert(
                actor,
                Stopping {
                    tenant: tenant.clone(),
                    waiters: vec![reply],
                    resume: false,
                },
            );
            let timeout = Duration::from_millis(CHILDREN_STOP_TIMEOUT_MS);
            myself.send_after(timeout, move || RootMsg::StopOverdue { actor });
        } else if let Some(stopping) = self.stopping_of(tenant) {
            // A second stop while the first is under way: a resume that
            // came in between is cancelled, and this caller waits too.
            stopping.resume = false;
            stopping.waiters.push(reply);
        } else {
            let _ = reply.send(());
        }
    }

    fn stopping_of(&mut self, tenant: &TenantId) -> Option<&mut Stopping> {
        self.stopping.values_mut().find(|s| &s.tenant == tenant)
    }

    /// The supervisor of a stopping tenant terminated (or its stop is
    /// overdue): apply a resume that waited for it, answer the waiters.
    fn stopped(&mut self, actor: ActorId) -> bool {
        let Some(stopping) = self.stopping.remove(&actor) else {
            return false;
        };
        if stopping.resume {
            self.resume_tenant(&stopping.tenant);
        }
        for reply in stopping.waiters {
            let _ = reply.send(());
        }
        true
    }

    /// Shows the tenant stopped in the tree: even if it never ran in this
    /// process (a tenant suspended before a restart starts stopped).
    fn show_stopped(&mut self, tenant: &TenantId) {
        let path = path_of(tenant);
        if self.config.board.get(&path).is_none() {
            self.config.board.put(
                ActorInfo {
                    path,
                    kind: ActorKind::TenantSupervisor,
                    tenant: Some(tenant.to_string()),
                    status: ActorStatus::Stopped,
                    started_at: None,
                    restarts: 0,
                    queue_depth: 0,
                    last_error: None,
                    last_error_at: None,
                },
                None,
            );
        } else {
            self.config
                .board
                .update(&path, |i| i.status = ActorStatus::Stopped);
        }
    }

    async fn restart_actor(
        &mut self,
        myself: &ActorRef<RootMsg>,
        tenant: &TenantId,
        key: ChildKey,
    ) -> Result<(), Error> {
        let sup = self.tenant(myself, tenant).await?;
        let build = |reply| TenantSupervisorMsg::OperatorRestart { key, reply };
        // Not the ops call's timeout: the root must never wait on a stuck
        // tenant longer than any other call.
        call(&path_of(tenant), &sup, build, CALL_TIMEOUT_MS).await?
    }

    /// A failed supervisor (or one waiting for its backoff) starts now with
    /// a clean history; a running one is left alone (its failed children
    /// have their own paths); a stopped tenant needs a resume, not this.
    async fn restart_supervisor(
        &mut self,
        myself: &ActorRef<RootMsg>,
        tenant: &TenantId,
    ) -> Result<(), Error> {
        let path = path_of(tenant);
        // Only a supervisor the tree has shown: never start one for an
        // unknown tenant.
        let Some(entry) = self.tenants.get_mut(tenant) else {
            return Err(Error::not_found("actor", &path));
        };
        match entry.status {
            ActorStatus::Stopped => return Err(Error::Stopped { actor: path }),
            _ if entry.running.is_some() => return Ok(()),
            _ => {}
        }
        entry.history.clear();
        entry.status = ActorStatus::Starting;
        self.config.board.update(&path, |i| i.restarts += 1);
        let started = self.start(myself, tenant).await;
        if let Err(e) = &started
            && let Some(entry) = self.tenants.get_mut(tenant)
        {
            entry.status = ActorStatus::Failed;
            entry.last_error = Some(e.to_string());
        }
        started.map(drop)
    }

    /// Resumes now, or once a stop of the tenant still under way is done.
    fn resume_or_defer(&mut self, tenant: &TenantId, reply: RpcReplyPort<()>) {
        if let Some(stopping) = self.stopping_of(tenant) {
            stopping.resume = true;
            stopping.waiters.push(reply);
            return;
        }
        self.resume_tenant(tenant);
        let _ = reply.send(());
    }

    fn resume_tenant(&mut self, tenant: &TenantId) {
        let entry = self.entry(tenant);
        if entry.status == ActorStatus::Stopped {
            entry.status = ActorStatus::Starting;
            entry.history.clear();
            // Not running until its next request: shown as passivated, and
            // no longer refused as stopped.
            self.config
                .board
                .update(&path_of(tenant), |i| i.status = ActorStatus::Passivated);
        }
    }

    async fn restart(&mut self, myself: &ActorRef<RootMsg>, tenant: &TenantId) {
        // An operator stop wins over a restart that was waiting its backoff,
        // and an operator restart meanwhile already started it.
        let entry = self.entry(tenant);
        if entry.status == ActorStatus::Stopped || entry.running.is_some() {
            return;
        }
        self.config
            .board
            .update(&path_of(tenant), |i| i.restarts += 1);
        if let Some(entry) = self.tenants.get_mut(tenant) {
            entry.status = ActorStatus::Starting;
        }
        if let Err(e) = self.start(myself, tenant).await {
            tracing::warn!(tenant = %tenant, error = %e, "tenant supervisor restart failed");
            if let Some(entry) = self.tenants.get_mut(tenant) {
                entry.status = ActorStatus::Failed;
                entry.last_error = Some(e.to_string());
            }
        }
    }
}

impl Actor for Root {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = TreeConfig;

    async fn pre_start(
        &self,
        _myself: ActorRef<RootMsg>,
        config: TreeConfig,
    ) -> Result<RootState, ActorProcessingErr> {
        Ok(RootState {
            config,
            tenants: BTreeMap::new(),
            by_actor: BTreeMap::new(),
            stopping: BTreeMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RootMsg>,
        msg: RootMsg,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Tenant { tenant, reply } => {
                let _ = reply.send(state.tenant(&myself, &tenant).await);
            }
            RootMsg::Snapshot { reply } => {
                let _ = reply.send(state.config.board.snapshot());
            }
            RootMsg::Restart { tenant } => state.restart(&myself, &tenant).await,
            RootMsg::StopTenant { tenant, reply } => state.stop_tenant(&myself, &tenant, reply),
            RootMsg::StopOverdue { actor } => {
                if let Some(s) = state.stopping.get(&actor) {
                    tracing::warn!(tenant = %s.tenant, timeout_ms = CHILDREN_STOP_TIMEOUT_MS, "tenant stop did not finish in time; answering its callers");
                }
                state.stopped(actor);
            }
            RootMsg::RestartActor { tenant, key, reply } => {
                let _ = reply.send(state.restart_actor(&myself, &tenant, key).await);
            }
            RootMsg::RestartTenant { tenant, reply } => {
                let _ = reply.send(state.restart_supervisor(&myself, &tenant).await);
            }
            RootMsg::ResumeTenant { tenant, reply } => state.resume_or_defer(&tenant, reply),
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let timeout = Duration::from_millis(CHILDREN_STOP_TIMEOUT_MS);
        myself.stop_children_and_wait(None, Some(timeout)).await;
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        evt: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            // A supervisor an operator stopped: its waiters are answered,
            // whether it stopped cleanly or failed on the way out.
            SupervisionEvent::ActorFailed(cell, _)
            | SupervisionEvent::ActorTerminated(cell, _, _)
                if state.stopped(cell.get_id()) => {}
            SupervisionEvent::ActorFailed(cell, err) => {
                state.failed(&myself, cell.get_id(), err.to_string());
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                // A clean stop (operator stop of a tenant): started again on
                // the next request.
                if let Some(tenant) = state.by_actor.remove(&cell.get_id())
                    && let Some(entry) = state.tenants.get_mut(&tenant)
                {
                    entry.running = None;
                }
            }
            SupervisionEvent::ActorStarted(_) | SupervisionEvent::ProcessGroupChanged(_) => {}
        }
        Ok(())
    }
}
