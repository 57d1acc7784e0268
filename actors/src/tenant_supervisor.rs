//! One tenant's supervisor: the tenant actor and one actor per plugin
//! installation, spawned lazily by id, plus the tenant's *service* children
//! (the event dispatcher; webhook and scheduler actors), from
//! [`TreeConfig::services`]: the dispatcher starts with the supervisor, the
//! others with it only when the tenant needs them, else on first use. A failed child is restarted per the
//! [`RestartPolicy`]; one that fails too often is marked failed and left
//! alone until an operator restarts it, while its siblings keep serving.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use extensor_core::aggregate::{Aggregate, Loaded, SnapshotPolicy};
use extensor_core::event::{EventMeta, StreamId};
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::installation::PluginInstallation;
use extensor_core::store::EventStore;
use extensor_core::tenant::Tenant;
use futures::future::BoxFuture;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};

use crate::aggregate_actor::{
    ActorAggregate, AggregateActor, AggregateArgs, AggregateMsg, PASSIVATED,
};
use crate::error::Error;
use crate::ownership::Ownership;
use crate::supervision::{
    ActorInfo, ActorKind, ActorStatus, CHILDREN_STOP_TIMEOUT_MS, FailureHistory, Mailbox,
    RestartDecision, RestartPolicy, StatusBoard,
};

/// The stop reason of a leased service stopped because the node gave up
/// (or lost) the tenant's lease.
pub const LEASE_RELEASED: &str = "tenant lease released";

/// A caller's handle on one aggregate actor: sends go through its bounded
/// mailbox and calls always carry a timeout. After a restart the handle is
/// stale (`Error::Stopped`); ask the supervisor for a fresh one.
#[derive(Clone)]
pub struct Handle<A: Aggregate> {
    pub actor: ActorRef<AggregateMsg<A>>,
    pub mailbox: Mailbox,
}

impl<A: ActorAggregate> Handle<A> {
    pub async fn execute(
        &self,
        command: A::Command,
        meta: EventMeta,
        timeout_ms: u64,
    ) -> Result<Loaded<A>, Error> {
        let build = |reply| AggregateMsg::Execute {
            command,
            meta,
            reply,
        };
        self.mailbox.call(&self.actor, build, timeout_ms).await?
    }

    pub async fn query(&self, timeout_ms: u64) -> Result<Loaded<A>, Error> {
        let build = |reply| AggregateMsg::Query { reply };
        self.mailbox.call(&self.actor, build, timeout_ms).await
    }

    /// Sends the fault-drill panic (see [`AggregateMsg::Panic`]).
    pub fn panic(&self) -> Result<(), Error> {
        self.mailbox.cast(&self.actor, AggregateMsg::Panic)
    }
}

/// An installation actor's tree path: `/tenants/<tenant>/installations/<id>`.
pub fn installation_path(tenant: &TenantId, id: &InstallationId) -> String {
    format!("/tenants/{tenant}/installations/{id}")
}

/// Which child of the tenant supervisor.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChildKey {
    Tenant,
    Installation(InstallationId),
    /// A service child, by its [`TenantService::name`].
    Service(&'static str),
}

/// A long-running per-tenant service (the event dispatcher; the webhook and
/// scheduler actors). **This is the extension point**: add a service to
/// `TreeConfig::services` (the engine builds that list in one place,
/// `engine::tenant_services`) and every tenant supervisor starts it when it
/// starts if [`wanted_at_start`](TenantService::wanted_at_start) says so,
/// else on first use, at `/tenants/<tenant>/<name>`, and restarts it per
/// the policy like any other child.
pub trait TenantService: Send + Sync + 'static {
    /// Its name in the tree path; unique among services.
    fn name(&self) -> &'static str;
    /// How the ops view labels it.
    fn kind(&self) -> ActorKind {
        ActorKind::Service
    }
    /// Whether the supervisor starts it with itself (at start and after a
    /// restart of the supervisor). A service that says no for a tenant is
    /// started on first use instead ([`TenantSupervisorMsg::Service`]), so
    /// a tenant without webhooks or jobs pays for no idle actor.
    fn wanted_at_start(&self, _tenant: &TenantId) -> bool {
        true
    }
    /// Whether it is single-owner work (hook dispatch, scheduler, webhook
    /// deliveries, outbox): then it runs only while this node owns the
    /// tenant ([`TreeConfig::ownership`]); elsewhere starting it is refused
    /// with [`Error::NotOwner`].
    fn leased(&self) -> bool {
        false
    }
    /// Spawns the service's actor for `tenant`, linked to `supervisor`.
    fn spawn(
        &self,
        tenant: TenantId,
        supervisor: ActorCell,
    ) -> BoxFuture<'static, Result<ActorCell, Error>>;
}

enum ChildRef {
    Tenant(Handle<Tenant>),
    Installation(Handle<PluginInstallation>),
    Service(ActorCell),
}

impl ChildRef {
    fn cell(&self) -> ActorCell {
        match self {
            ChildRef::Tenant(h) => h.actor.get_cell(),
            ChildRef::Installation(h) => h.actor.get_cell(),
            ChildRef::Service(c) => c.clone(),
        }
    }
}

struct Child {
    path: String,
    running: Option<ChildRef>,
    history: FailureHistory,
    status: ActorStatus,
    last_error: Option<String>,
}

pub struct TenantSupervisor;

/// Configuration shared by every tenant supervisor.
#[derive(Clone)]
pub struct TreeConfig {
    pub store: Arc<dyn EventStore>,
    pub board: StatusBoard,
    pub policy: RestartPolicy,
    pub snapshots: SnapshotPolicy,
    pub mailbox_messages_max: usize,
    /// Passivate aggregate actors idle this long; `None`: never.
    pub passivate_idle_ms: Option<u64>,
    /// The service children every tenant supervisor starts (see
    /// [`TenantService`]). Empty in tree-only tests.
    pub services: Vec<Arc<dyn TenantService>>,
    /// Which tenants' leased services may run on this node.
    pub ownership: Ownership,
}

pub struct TenantSupervisorArgs {
    pub tenant: TenantId,
    pub config: TreeConfig,
}

pub struct TenantSupervisorState {
    tenant: TenantId,
    config: TreeConfig,
    children: BTreeMap<ChildKey, Child>,
    by_actor: BTreeMap<ActorId, ChildKey>,
}

pub enum TenantSupervisorMsg {
    TenantHandle {
        reply: RpcReplyPort<Result<Handle<Tenant>, Error>>,
    },
    InstallationHandle {
        id: InstallationId,
        reply: RpcReplyPort<Result<Handle<PluginInstallation>, Error>>,
    },
    /// Sent to itself after the backoff delay.
    Restart { key: ChildKey },
    /// An operator restarts a failed child, clearing its failure history.
    OperatorRestart {
        key: ChildKey,
        reply: RpcReplyPort<Result<(), Error>>,
    },
    /// Sent to itself at start: starts every service child.
    StartServices,
    /// The node took the tenant's lease: starts every service child the
    /// tenant needs that is not running; answered once they have started.
    EnsureServices { reply: RpcReplyPort<()> },
    /// The node is giving up the tenant's lease: stops every leased service
    /// child (hook dispatch, scheduler, webhooks, outbox) and answers once
    /// they have stopped, so the lease is released only after its work.
    StopLeased { reply: RpcReplyPort<()> },
    /// A service child's actor, started if it is not running. Callers route
    /// by name through here rather than caching the actor, so a restarted
    /// service is never addressed through a stale reference.
    Service {
        name: &'static str,
        reply: RpcReplyPort<Result<ActorCell, Error>>,
    },
}

impl TenantSupervisorState {
    fn path_of(&self, key: &ChildKey) -> String {
        match key {
            ChildKey::Tenant => format!("/tenants/{}/tenant", self.tenant),
            ChildKey::Installation(id) => installation_path(&self.tenant, id),
            ChildKey::Service(name) => format!("/tenants/{}/{name}", self.tenant),
        }
    }

    fn service(&self, name: &str) -> Option<Arc<dyn TenantService>> {
        self.config
            .services
            .iter()
            .find(|s| s.name() == name)
            .cloned()
    }

    async fn service_cell(
        &mut self,
        myself: &ActorCell,
        name: &'static str,
    ) -> Result<ActorCell, Error> {
        let key = ChildKey::Service(name);
        if self.service(name).is_none() {
            return Err(Error::not_found("service", name));
        }
        match self.ensure(myself, &key).await? {
            ChildRef::Service(cell) => Ok(cell.clone()),
            _ => unreachable_child(&self.path_of(&key)),
        }
    }

    /// Starts every service child the tenant needs now (see
    /// [`TenantService::wanted_at_start`]); one that fails to start is
    /// handled like a crash (restart with backoff) and does not stop the
    /// others.
    async fn start_services(&mut self, myself: &ActorRef<TenantSupervisorMsg>) {
        let tenant = &self.tenant;
        let owned = self.config.ownership.owns(tenant);
        let names: Vec<&'static str> = self
            .config
            .services
            .iter()
            .filter(|s| s.wanted_at_start(tenant) && (owned || !s.leased()))
            .map(|s| s.name())
            .filter(|name| {
                let key = ChildKey::Service(name);
                self.children.get(&key).is_none_or(|c| {
                    c.running.is_none()
                        && !matches!(c.status, ActorStatus::Failed | ActorStatus::Restarting)
                })
            })
            .collect();
        for name in names {
            let key = ChildKey::Service(name);
            if let Err(e) = self.start(&myself.get_cell(), &key).await {
                self.record_failure(myself, key, e.to_string());
            }
        }
    }

    fn child(&mut self, key: &ChildKey) -> &mut Child {
        let path = self.path_of(key);
        self.children.entry(key.clone()).or_insert_with(|| Child {
            path,
            running: None,
            history: FailureHistory::default(),
            status: ActorStatus::Starting,
            last_error: None,
        })
    }

    /// The running child, started if it is not; refused if it failed or is
    /// waiting out its backoff.
    async fn ensure(&mut self, myself: &ActorCell, key: &ChildKey) -> Result<&ChildRef, Error> {
        let child = self.child(key);
        match child.status {
            ActorStatus::Failed => {
                return Err(Error::Failed {
                    actor: child.path.clone(),
                    last_error: child.last_error.clone().unwrap_or_default(),
                });
            }
            ActorStatus::Restarting => {
                return Err(Error::Stopped {
                    actor: child.path.clone(),
                });
            }
            _ => {}
        }
        if child.running.is_none() {
            self.start(myself, key).await?;
        }
        let child = self.child(key);
        child.running.as_ref().ok_or_else(|| Error::Stopped {
            actor: child.path.clone(),
        })
    }

    async fn tenant_handle(&mut self, myself: &ActorCell) -> Result<Handle<Tenant>, Error> {
        match self.ensure(myself, &ChildKey::Tenant).await? {
            ChildRef::Tenant(h) => Ok(h.clone()),
            _ => unreachable_child(&self.path_of(&ChildKey::Tenant)),
        }
    }

    async fn installation_handle(
        &mut self,
        myself: &ActorCell,
        id: InstallationId,
    ) -> Result<Handle<PluginInstallation>, Error> {
        let key = ChildKey::Installation(id);
        match self.ensure(myself, &key).await? {
            ChildRef::Installation(h) => Ok(h.clone()),
            _ => unreachable_child(&self.path_of(&key)),
        }
    }

    /// Stops every running leased service (see
    /// [`TenantSupervisorMsg::StopLeased`]). They show as passivated: not
    /// running here, started again when the node owns the tenant again.
    async fn stop_leased(&mut self) {
        let keys: Vec<ChildKey> = self
            .children
            .iter()
            .filter(|(key, child)| {
                child.running.is_some()
                    && matches!(key, ChildKey::Service(name)
                        if self.service(name).is_some_and(|s| s.leased()))
            })
            .map(|(key, _)| key.clone())
            .collect();
        let mut stopping = Vec::new();
        for key in keys {
            let child = self.child(&key);
            let Some(running) = child.running.take() else {
                continue;
            };
            child.status = ActorStatus::Passivated;
            let path = child.path.clone();
            let cell = running.cell();
            self.by_actor.remove(&cell.get_id());
            self.config
                .board
                .update(&path, |i| i.status = ActorStatus::Passivated);
            stopping.push(async move {
                let timeout = Duration::from_millis(CHILDREN_STOP_TIMEOUT_MS);
                if let Err(e) = cell
                    .stop_and_wait(Some(LEASE_RELEASED.into()), Some(timeout))
                    .await
                {
                    tracing::warn!(actor = %path, error = %e, "leased service slow to stop");
                }
            });
        }
        // Together: the whole stop takes at most one child's stop timeout.
        futures::future::join_all(stopping).await;
    }

    /// A leased service may start only while the node owns the tenant.
    fn check_owner(&self, key: &ChildKey, path: &str) -> Result<(), Error> {
        match key {
            ChildKey::Service(name)
                if self.service(name).is_some_and(|s| s.leased())
                    && !self.config.ownership.owns(&self.tenant) =>
            {
                let actor = path.to_owned();
                Err(if self.config.ownership.fenced() {
                    Error::Fenced { actor }
                } else {
                    Error::NotOwner { actor }
                })
            }
            _ => Ok(()),
        }
    }

    /// Spawns the child linked to this supervisor and records it running.
    async fn start(&mut self, myself: &ActorCell, key: &ChildKey) -> Result<(), Error> {
        let path = self.path_of(key);
        self.check_owner(key, &path)?;
        let mailbox = Mailbox::new(&path, self.config.mailbox_messages_max);
        self.config.board.put(
            self.info(key, &path, ActorStatus::Starting),
            Some(mailbox.clone()),
        );
        let running = match key {
            ChildKey::Tenant => ChildRef::Tenant(
                spawn::<Tenant>(
                    myself,
                    &self.config,
                    StreamId::tenant(&self.tenant),
                    mailbox,
                )
                .await?,
            ),
            ChildKey::Installation(id) => ChildRef::Installation(
                spawn::<PluginInstallation>(
                    myself,
                    &self.config,
                    StreamId::installation(id),
                    mailbox,
                )
                .await?,
            ),
            ChildKey::Service(name) => {
                let service = self
                    .service(name)
                    .ok_or_else(|| Error::not_found("service", *name))?;
                ChildRef::Service(service.spawn(self.tenant.clone(), myself.clone()).await?)
            }
        };
        self.by_actor.insert(running.cell().get_id(), key.clone());
        let child = self.child(key);
        child.running = Some(running);
        child.status = ActorStatus::Running;
        self.config.board.update(&path, |i| {
            i.status = ActorStatus::Running;
            i.started_at = Some(Utc::now());
        });
        Ok(())
    }

    fn info(&self, key: &ChildKey, path: &str, status: ActorStatus) -> ActorInfo {
        let kind = match key {
            ChildKey::Tenant => ActorKind::Tenant,
            ChildKey::Installation(_) => ActorKind::Installation,
            ChildKey::Service(name) => self.service(name).map_or(ActorKind::Service, |s| s.kind()),
        };
        let previous = self.config.board.get(path);
        ActorInfo {
            path: path.into(),
            kind,
            tenant: Some(self.tenant.to_string()),
            status,
            started_at: None,
            restarts: previous.as_ref().map_or(0, |p| p.restarts),
            queue_depth: 0,
            last_error: previous.as_ref().and_then(|p| p.last_error.clone()),
            last_error_at: previous.and_then(|p| p.last_error_at),
        }
    }

    /// A child actor failed (panic or error): find which one it was.
    fn failed(&mut self, myself: &ActorRef<TenantSupervisorMsg>, cell: &ActorCell, error: String) {
        if let Some(key) = self.by_actor.remove(&cell.get_id()) {
            self.record_failure(myself, key, error);
        }
    }

    /// Restarts the child after the policy's backoff, or gives up on it.
    fn record_failure(
        &mut self,
        myself: &ActorRef<TenantSupervisorMsg>,
        key: ChildKey,
        error: String,
    ) {
        let policy = self.config.policy;
        let child = self.child(&key);
        child.running = None;
        child.last_error = Some(error.clone());
        let decision = child.history.record(&policy, Utc::now());
        child.status = match decision {
            RestartDecision::RestartAfter(_) => ActorStatus::Restarting,
            RestartDecision::GiveUp => ActorStatus::Failed,
        };
        let (path, status) = (child.path.clone(), child.status);
        tracing::warn!(actor = %path, error = %error, ?decision, "child failed");
        self.config.board.update(&path, |i| {
            i.status = status;
            i.last_error = Some(error);
            i.last_error_at = Some(Utc::now());
        });
        if let RestartDecision::RestartAfter(delay) = decision {
            myself.send_after(delay, move || TenantSupervisorMsg::Restart { key });
        }
    }

    /// Starts a child again after its backoff (or on an operator's word).
    async fn restart(&mut self, myself: &ActorRef<TenantSupervisorMsg>, key: &ChildKey) {
        let path = self.path_of(key);
        self.child(key).status = ActorStatus::Starting;
        self.config.board.update(&path, |i| i.restarts += 1);
        match self.start(&myself.get_cell(), key).await {
            Ok(()) => {}
            // The lease went while it waited out its backoff: not a failure;
            // it starts again when the node owns the tenant again.
            Err(Error::NotOwner { .. } | Error::Fenced { .. }) => {
                self.child(key).status = ActorStatus::Passivated;
                self.config
                    .board
                    .update(&path, |i| i.status = ActorStatus::Passivated);
            }
            // Failing to start (the rebuild failed) counts as a failure.
            Err(e) => self.record_failure(myself, key.clone(), e.to_string()),
        }
    }

    /// A clean stop is not a failure: the next request starts the child.
    fn stopped(&mut self, cell: &ActorCell, reason: Option<&str>) {
        let Some(key) = self.by_actor.remove(&cell.get_id()) else {
            return;
        };
        let child = self.child(&key);
        child.running = None;
        if child.status != ActorStatus::Running {
            return;
        }
        let path = child.path.clone();
        let status = if reason == Some(PASSIVATED) {
            ActorStatus::Passivated
        } else {
            ActorStatus::Starting
        };
        child.status = status;
        tracing::debug!(actor = %path, ?reason, "child stopped");
        self.config.board.update(&path, |i| i.status = status);
    }

    async fn operator_restart(
        &mut self,
        myself: &ActorRef<TenantSupervisorMsg>,
        key: &ChildKey,
    ) -> Result<(), Error> {
        let child = self.child(key);
        if child.status != ActorStatus::Failed {
            return Ok(());
        }
        child.history.clear();
        self.restart(myself, key).await;
        Ok(())
    }
}

async fn spawn<A>(
    supervisor: &ActorCell,
    config: &TreeConfig,
    stream: StreamId,
    mailbox: Mailbox,
) -> Result<Handle<A>, Error>
where
    A: ActorAggregate,
{
    let args = AggregateArgs {
        store: config.store.clone(),
        stream,
        mailbox: mailbox.clone(),
        snapshots: config.snapshots,
        passivate_idle_ms: config.passivate_idle_ms,
    };
    let (actor, _) = Actor::spawn_linked(
        None,
        AggregateActor::<A>::default(),
        args,
        supervisor.clone(),
    )
    .await
    .map_err(|e| Error::Spawn {
        actor: mailbox.path().into(),
        reason: e.to_string(),
    })?;
    Ok(Handle { actor, mailbox })
}

impl Actor for TenantSupervisor {
    type Msg = TenantSupervisorMsg;
    type State = TenantSupervisorState;
    type Arguments = TenantSupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: TenantSupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        if !args.config.services.is_empty() {
            // Children are spawned once this actor runs, not inside its start.
            myself.send_message(TenantSupervisorMsg::StartServices)?;
        }
        Ok(TenantSupervisorState {
            tenant: args.tenant,
            config: args.config,
            children: BTreeMap::new(),
            by_actor: BTreeMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let cell = myself.get_cell();
        match msg {
            TenantSupervisorMsg::TenantHandle { reply } => {
                let _ = reply.send(state.tenant_handle(&cell).await);
            }
            TenantSupervisorMsg::InstallationHandle { id, reply } => {
                let _ = reply.send(state.installation_handle(&cell, id).await);
            }
            TenantSupervisorMsg::Restart { key } => state.restart(&myself, &key).await,
            TenantSupervisorMsg::OperatorRestart { key, reply } => {
                let _ = reply.send(state.operator_restart(&myself, &key).await);
            }
            TenantSupervisorMsg::StartServices => state.start_services(&myself).await,
            TenantSupervisorMsg::EnsureServices { reply } => {
                state.start_services(&myself).await;
                let _ = reply.send(());
            }
            TenantSupervisorMsg::StopLeased { reply } => {
                state.stop_leased().await;
                let _ = reply.send(());
            }
            TenantSupervisorMsg::Service { name, reply } => {
                let _ = reply.send(state.service_cell(&cell, name).await);
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
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                state.failed(&myself, &cell, err.to_string())
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                state.stopped(&cell, reason.as_deref());
            }
            SupervisionEvent::ActorStarted(_) | SupervisionEvent::ProcessGroupChanged(_) => {}
        }
        Ok(())
    }
}

/// A key holds only its own kind of child; reaching this is a bug in this
/// file, reported as an error rather than a panic in the supervisor.
fn unreachable_child<T>(path: &str) -> Result<T, Error> {
    Err(Error::Spawn {
        actor: path.into(),
        reason: "child of the wrong kind under this key".into(),
    })
}
