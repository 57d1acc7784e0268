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
    /// every request for it is refused until it is resumed.
    StopTenant {
        tenant: TenantId,
        reply: RpcReplyPort<()>,
    },
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

    /// Stops the tenant's subtree and waits for it, so the operator's reply
    /// means no actor of the tenant is running any more.
    async fn stop_tenant(&mut self, tenant: &TenantId) {
        let entry = self.entry(tenant);
        entry.status = ActorStatus::Stopped;
        let running = entry.running.take();
        if let Some(sup) = running {
            self.by_actor.remove(&sup.get_id());
            let timeout = Duration::from_millis(CHILDREN_STOP_TIMEOUT_MS);
            if let Err(e) = sup.stop_and_wait(None, Some(timeout)).await {
                tracing::warn!(tenant = %tenant, error = %e, "tenant stop did not finish");
            }
        }
        // Shown (and refused) even if it never ran in this process: a
        // tenant suspended before a restart starts stopped.
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
            RootMsg::StopTenant { tenant, reply } => {
                state.stop_tenant(&tenant).await;
                let _ = reply.send(());
            }
            RootMsg::RestartActor { tenant, key, reply } => {
                let _ = reply.send(state.restart_actor(&myself, &tenant, key).await);
            }
            RootMsg::RestartTenant { tenant, reply } => {
                let _ = reply.send(state.restart_supervisor(&myself, &tenant).await);
            }
            RootMsg::ResumeTenant { tenant, reply } => {
                state.resume_tenant(&tenant);
                let _ = reply.send(());
            }
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
