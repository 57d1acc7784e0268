//! The library facade: one [`Engine`] per process ties the event store, the
//! supervision tree, the JS sandbox, secrets and bundles together. The API,
//! webhooks and scheduler build on it.
//!
//! Every method is tenant-scoped: an id that belongs to another tenant gives
//! [`Error::NotFound`], exactly as an absent one does.
//!
//! Submodules (siblings reach the internals through [`Inner`]):
//! - `directory`: the in-memory index of every installation, kept current
//!   from the log (also other processes' writes).
//! - `plugins`: upload, lifecycle, secrets.
//! - `runtime`: cached isolate pools per installation (LRU by count and by
//!   warm heap bytes) and the host services wired to real components.
//! - [`responses`]: what a plugin route may answer on the platform's origin
//!   (status and header allow-list).
//! - `gauges`: the `/metrics` gauges set from live state at scrape time.
//! - `extensibility`: the live numbers of the status block (plugins,
//!   webhooks, jobs) for a tenant or the platform.
//! - `invoke`: invocations, plugin routes, test events, filter chains.
//! - `invocation_metrics`: each runtime's invocation metric handles.
//! - `publish`: business events, idempotent publishing.
//! - `read_models`: the tenant's events projected into SQLite for
//!   `ctx.db.query`.
//! - `leases`: taking and giving up a tenant's single-owner work as the
//!   node gains or loses its lease (`Engine::own`, `Engine::disown`).

pub(crate) mod directory;
mod extensibility;
mod gauges;
mod invocation_metrics;
pub(crate) mod invoke;
mod lanes;
mod leases;
mod plugins;
mod publish;
mod read_models;
pub mod responses;
mod runtime;
mod scheduling;
// Helper "api" adds `mod tenants;` here (tenant creation, tokens).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use extensor_core::aggregate::{Loaded, SnapshotPolicy};
use extensor_core::bundles::{BundleBlobs, BundleStore};
use extensor_core::event::{EventMeta, Principal};
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::installation::PluginInstallation;
use extensor_core::secrets::{SecretBox, SecretKey};
use extensor_core::store::EventStore;
use extensor_core::tenant::{Tenant, TenantCommand, TenantStatus};
use extensor_js::host::llm::LlmConfig;
use extensor_js::host::mail::SmtpConfig;
use extensor_js::{Sandbox, SandboxConfig, ZipLimits};
use futures::StreamExt;
use ractor::ActorRef;
use tokio::sync::{Notify, Semaphore, watch};

use crate::dispatcher::DispatcherService;
use crate::error::Error;
use crate::root::{Root, RootMsg};
use crate::supervision::{
    CALL_TIMEOUT_MS, MAILBOX_MESSAGES_MAX, RestartPolicy, StatusBoard, TreeSnapshot, call,
};
use crate::tenant_supervisor::{ChildKey, Handle, TenantService, TenantSupervisorMsg, TreeConfig};

pub use directory::InstallationView;
pub use extensibility::{ExtensibilityCounts, STATUS_SLUGS_MAX, StatusScope};
pub use invoke::{
    ChainFailure, ChainResult, ChainStep, FilterOrder, HookRun, PluginStats, RouteRequest,
    RouteResponse, StepStatus,
};
pub use plugins::{SecretInfo, UploadAction, UploadOutcome};
pub use runtime::{RUNTIMES_MAX, WARM_ISOLATES_BYTES_MAX_DEFAULT, WarmPool};

/// The supervision tree's settings. (The brief named this field's type
/// `TreeConfig`; that name is the tree's *runtime* config, which also holds
/// the store and status board, so the engine takes these settings and builds
/// the `TreeConfig` itself.)
#[derive(Clone, Debug)]
pub struct TreeSettings {
    pub policy: RestartPolicy,
    pub snapshots: SnapshotPolicy,
    pub mailbox_messages_max: usize,
    /// Aggregate actors idle this long stop and restart on their next
    /// request. `None`: never.
    pub passivate_idle_ms: Option<u64>,
    /// Calls to the root supervisor in flight at once; beyond it callers
    /// get `Backpressure` instead of queueing without bound.
    pub root_calls_max: usize,
    /// The same bound per tenant supervisor.
    pub supervisor_calls_max: usize,
}

/// Default bound on calls in flight to the root (all tenants together).
pub const ROOT_CALLS_MAX: usize = 10_000;

/// Tenants whose services `Engine::start` resumes at once. Each resumed
/// tenant's services read the log (checkpoints, registries, cursors: about
/// 25 reads), and every read waits its turn on the store's small read pool.
/// Starting all tenants at once queued 250,000 reads at 10,000 tenants, and
/// any request made meanwhile waited behind all of them (past the 5 s call
/// timeout). Waiting for each tenant's services to start, this many at a
/// time, keeps the queue to a few hundred reads: enough to keep the pool
/// busy, few enough that nothing waits long behind recovery.
pub const RECOVERY_TENANTS_CONCURRENT: usize = 16;

/// Default passivation: an installation actor idle for 5 minutes goes.
pub const PASSIVATE_IDLE_MS_DEFAULT: u64 = 5 * 60 * 1000;

impl Default for TreeSettings {
    fn default() -> Self {
        TreeSettings {
            policy: RestartPolicy::default(),
            snapshots: SnapshotPolicy::DEFAULT,
            mailbox_messages_max: MAILBOX_MESSAGES_MAX,
            passivate_idle_ms: Some(PASSIVATE_IDLE_MS_DEFAULT),
            root_calls_max: ROOT_CALLS_MAX,
            supervisor_calls_max: MAILBOX_MESSAGES_MAX,
        }
    }
}

/// Event dispatch settings (see `crate::dispatcher`).
#[derive(Clone, Debug)]
pub struct DispatchConfig {
    /// Events one lane reads per page; also the most hook records appended
    /// in one batch.
    pub lane_page_events: usize,
    /// A lane with no matching event in this many writes a checkpoint
    /// record, so a restart does not rescan a long unmatched stretch.
    pub checkpoint_every_events: u64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            lane_page_events: crate::dispatcher::LANE_PAGE_EVENTS,
            checkpoint_every_events: crate::dispatcher::CHECKPOINT_EVERY_EVENTS,
        }
    }
}

/// Everything the engine needs. [`EngineConfig::new`] fills the defaults.
#[derive(Clone)]
pub struct EngineConfig {
    pub store: Arc<dyn EventStore>,
    /// Bundles, files, read models and the key file live under here.
    pub data_dir: PathBuf,
    /// Where plugin bundles are kept; `None`: `<data_dir>/bundles`. A
    /// shared store here lets any node load any installation's bundle.
    pub bundles: Option<Arc<dyn BundleBlobs>>,
    /// Where `ctx.files` are kept; `None`: `<data_dir>/files`. A shared
    /// store here lets any node serve any installation's files.
    pub files: Option<Arc<dyn extensor_core::files::FileBackend>>,
    pub sandbox: SandboxConfig,
    pub zip: ZipLimits,
    pub secret_key: SecretKey,
    pub tree: TreeSettings,
    pub dispatch: DispatchConfig,
    /// Real SMTP delivery of `ctx.email.send`; `None`: the email API answers
    /// "not configured".
    pub smtp: Option<SmtpConfig>,
    /// The email outbox's retry and rate settings.
    pub outbox: crate::outbox::OutboxConfig,
    pub llm: Option<LlmConfig>,
    /// The order filter and generator-hook chains run in.
    pub filter_order: FilterOrder,
    /// Heap bytes all warm isolates of the process may hold together
    /// (`runtime::WARM_ISOLATES_BYTES_MAX_DEFAULT`; see there for the
    /// eviction order).
    pub warm_isolates_bytes_max: usize,
    /// Tenants that start stopped (suspended ones): nothing of theirs runs,
    /// not even for a moment during recovery, until `resume_tenant`.
    pub stopped_tenants: Vec<TenantId>,
    /// How often route traffic is written as `route.accessed` records
    /// (`route_access::FLUSH_MS_DEFAULT`).
    pub route_access_flush_ms: u64,
    /// Which tenants' single-owner work runs here: every tenant (the
    /// default, one node) or those whose lease the node holds
    /// (`Ownership::leased`, kept by the `cluster` module).
    pub ownership: crate::ownership::Ownership,
}

impl EngineConfig {
    /// Defaults for everything but the store, the data directory and the key.
    pub fn new(store: Arc<dyn EventStore>, data_dir: PathBuf, secret_key: SecretKey) -> Self {
        EngineConfig {
            store,
            data_dir,
            bundles: None,
            files: None,
            sandbox: SandboxConfig::default(),
            zip: ZipLimits::default(),
            secret_key,
            tree: TreeSettings::default(),
            dispatch: DispatchConfig::default(),
            smtp: None,
            outbox: crate::outbox::OutboxConfig::default(),
            llm: None,
            filter_order: FilterOrder::InstallOrder,
            warm_isolates_bytes_max: runtime::WARM_ISOLATES_BYTES_MAX_DEFAULT,
            stopped_tenants: Vec::new(),
            route_access_flush_ms: crate::route_access::FLUSH_MS_DEFAULT,
            ownership: crate::ownership::Ownership::default(),
        }
    }
}

/// The engine: cheap to clone, every clone is the same engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

/// The engine's internals. Its fields are private to `engine` and its
/// submodules; sibling services are handed narrow boundaries instead
/// (`LaneHost` for the dispatcher, `JobRunner` and `SchedulerStarter` for
/// the scheduler).
pub(crate) struct Inner {
    store: Arc<dyn EventStore>,
    data_dir: PathBuf,
    sandbox: Sandbox,
    zip: ZipLimits,
    secret_box: SecretBox,
    bundles: Arc<dyn BundleBlobs>,
    board: StatusBoard,
    root: ActorRef<RootMsg>,
    dispatch: DispatchConfig,
    filter_order: FilterOrder,
    directory: directory::Directory,
    runtimes: runtime::Runtimes,
    services: runtime::Platform,
    /// Set once shutdown starts: no new invocations or publishes.
    closing: AtomicBool,
    /// Told to lanes so they stop after their current event.
    closing_tx: watch::Sender<bool>,
    in_flight: InFlight,
    follower: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Bounds calls in flight to the root and to each tenant supervisor
    /// (their ractor mailboxes are unbounded; these gates are not).
    root_gate: Semaphore,
    supervisor_gates: std::sync::Mutex<HashMap<TenantId, Arc<Semaphore>>>,
    tree: TreeSettings,
    stats: invoke::Stats,
    /// Every tenant's job scheduler (see `crate::scheduler`).
    schedulers: crate::scheduler::Schedulers,
    /// Tenants whose webhook dispatcher starts with their supervisor.
    webhook_tenants: crate::webhooks::service::WebhookTenants,
    /// Tenants whose email outbox starts with their supervisor.
    outbox_tenants: crate::outbox::OutboxTenants,
    /// Dispatch lanes still reading their start revision: recovery waits
    /// for them, so the store's read queue stays bounded.
    lanes_starting: Arc<InFlight>,
    /// Plugin route traffic since the last `route.accessed` flush.
    route_access: Arc<crate::route_access::RouteAccess>,
    /// The tenants whose single-owner work runs on this node.
    ownership: crate::ownership::Ownership,
}

/// Counts invocations and publishes in progress, for graceful shutdown.
#[derive(Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// Held while one unit of work runs.
pub(crate) struct InFlightGuard<'a>(&'a InFlight);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Held by a starting lane until its start-up reads are done.
pub(crate) struct OwnedInFlightGuard(Arc<InFlight>);

impl Drop for OwnedInFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    pub(crate) fn enter_owned(self: &Arc<Self>) -> OwnedInFlightGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        OwnedInFlightGuard(self.clone())
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Inner {
    /// Registers one unit of work, refused once shutdown started.
    pub fn begin(&self) -> Result<InFlightGuard<'_>, Error> {
        self.in_flight.count.fetch_add(1, Ordering::AcqRel);
        let guard = InFlightGuard(&self.in_flight);
        if self.closing.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        Ok(guard)
    }

    /// See [`Engine::outbox_wake`].
    pub async fn outbox_wake(&self, tenant: &TenantId) -> Result<(), Error> {
        if !self.ownership.owns(tenant) {
            // The owner's log follower sees the `email.queued` and wakes it.
            return Ok(());
        }
        let name = crate::outbox::SERVICE_NAME;
        let cell = self
            .supervisor_call(tenant, |reply| TenantSupervisorMsg::Service { name, reply })
            .await??;
        let outbox: ActorRef<crate::outbox::OutboxMsg> = cell.into();
        outbox
            .send_message(crate::outbox::OutboxMsg::Wake)
            .map_err(|_| Error::Stopped {
                actor: format!("/tenants/{tenant}/{name}"),
            })
    }

    /// Starts the tenant's route-access flusher if it is not running (a
    /// tenant's first counted route request in this process). If it cannot
    /// start now the counts wait in memory for its next start.
    pub async fn route_flusher(&self, tenant: &TenantId) {
        let name = crate::route_access::SERVICE_NAME;
        let started = self
            .supervisor_call(tenant, |reply| TenantSupervisorMsg::Service { name, reply })
            .await;
        if let Err(e) | Ok(Err(e)) = started.map(|r| r.map(drop)) {
            tracing::warn!(tenant = %tenant, error = %e, "route access flusher not started");
        }
    }

    /// A call to the root, through its gate.
    pub async fn root_call<R: Send + 'static>(
        &self,
        build: impl FnOnce(ractor::RpcReplyPort<R>) -> RootMsg,
    ) -> Result<R, Error> {
        self.root_call_within(build, CALL_TIMEOUT_MS).await
    }

    /// A root call with its own timeout (stops, which wait on a subtree).
    pub async fn root_call_within<R: Send + 'static>(
        &self,
        build: impl FnOnce(ractor::RpcReplyPort<R>) -> RootMsg,
        timeout_ms: u64,
    ) -> Result<R, Error> {
        let _slot = self
            .root_gate
            .try_acquire()
            .map_err(|_| Error::Backpressure {
                actor: "/".into(),
                depth_max: self.tree.root_calls_max,
            })?;
        call("/", &self.root, build, timeout_ms).await
    }

    /// The tenant's supervisor, through the root (never a cached reference).
    pub async fn supervisor(
        &self,
        tenant: &TenantId,
    ) -> Result<ActorRef<TenantSupervisorMsg>, Error> {
        let tenant = tenant.clone();
        self.root_call(|reply| RootMsg::Tenant { tenant, reply })
            .await?
    }

    /// A call to the tenant's supervisor, through its gate.
    pub async fn supervisor_call<R: Send + 'static>(
        &self,
        tenant: &TenantId,
        build: impl FnOnce(ractor::RpcReplyPort<R>) -> TenantSupervisorMsg,
    ) -> Result<R, Error> {
        let path = format!("/tenants/{tenant}");
        let gate = self
            .supervisor_gates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.tree.supervisor_calls_max)))
            .clone();
        let _slot = gate.try_acquire().map_err(|_| Error::Backpressure {
            actor: path.clone(),
            depth_max: self.tree.supervisor_calls_max,
        })?;
        let sup = self.supervisor(tenant).await?;
        call(&path, &sup, build, CALL_TIMEOUT_MS).await
    }

    pub async fn tenant_handle(&self, tenant: &TenantId) -> Result<Handle<Tenant>, Error> {
        self.supervisor_call(tenant, |reply| TenantSupervisorMsg::TenantHandle { reply })
            .await?
    }

    pub async fn installation_handle(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
    ) -> Result<Handle<PluginInstallation>, Error> {
        let id = id.clone();
        self.supervisor_call(tenant, |reply| TenantSupervisorMsg::InstallationHandle {
            id,
            reply,
        })
        .await?
    }

    /// The tenant's state; `NotFound` if it was never created.
    pub async fn existing_tenant(&self, tenant: &TenantId) -> Result<Loaded<Tenant>, Error> {
        let loaded = self
            .tenant_handle(tenant)
            .await?
            .query(CALL_TIMEOUT_MS)
            .await?;
        if loaded.state.status == TenantStatus::New {
            return Err(Error::not_found("tenant", tenant));
        }
        self.directory.tenant_exists(tenant);
        Ok(loaded)
    }

    /// `NotFound` unless the tenant was created. A tenant once created
    /// never goes back, so a positive answer is remembered and the hot
    /// paths (publish) skip the actor round trip.
    pub async fn require_tenant(&self, tenant: &TenantId) -> Result<(), Error> {
        if self.directory.is_known_tenant(tenant) {
            return Ok(());
        }
        self.existing_tenant(tenant).await.map(drop)
    }
}

/// Where a tenant service finds the engine: set once at start; a service
/// outliving the engine finds nothing and stops.
#[derive(Clone, Default)]
pub(crate) struct EngineSlot(Arc<std::sync::OnceLock<Weak<Inner>>>);

impl EngineSlot {
    pub fn get(&self) -> Option<Arc<Inner>> {
        self.0.get().and_then(Weak::upgrade)
    }
}

/// The per-tenant service children, in one place: the event dispatcher
/// (started with every tenant supervisor), the webhook dispatcher (with it
/// for tenants in `webhook_tenants`, else on first use) and the job
/// scheduler (with it for tenants with enabled jobs, else on demand) and
/// the email outbox (with it for tenants with pending mail, else when mail
/// is queued) and the route-access flusher (with it for tenants with
/// counts in memory, else on a tenant's first counted route request).
fn tenant_services(
    slot: &EngineSlot,
    webhooks: crate::webhooks::WebhookConfig,
    webhook_tenants: &crate::webhooks::service::WebhookTenants,
    schedulers: &crate::scheduler::Schedulers,
    outbox: crate::outbox::OutboxService,
    routes: crate::route_access::RouteAccessService,
    config: &EngineConfig,
) -> Vec<Arc<dyn TenantService>> {
    vec![
        Arc::new(outbox),
        Arc::new(routes),
        Arc::new(DispatcherService {
            engine: Arc::new(slot.clone()),
        }),
        Arc::new(crate::webhooks::service::WebhooksTenantService {
            config: webhooks,
            tenants: webhook_tenants.clone(),
        }),
        Arc::new(scheduling::SchedulerService::new(
            slot.clone(),
            schedulers.clone(),
            config.sandbox.job_deadline_ms,
        )),
    ]
}

/// The webhook engine's settings, from the engine's: the same sandbox
/// limits and network policy (SSRF guard), tenant secrets sealed with the
/// same platform key.
fn webhook_config(
    config: &EngineConfig,
    sandbox: &Sandbox,
    board: &StatusBoard,
    slot: &EngineSlot,
) -> Result<crate::webhooks::WebhookConfig, Error> {
    let http =
        extensor_js::host::net::GuardedHttp::new(config.sandbox.network.clone()).map_err(|e| {
            Error::Spawn {
                actor: "/webhooks".into(),
                reason: e.to_string(),
            }
        })?;
    let secrets = crate::webhooks::secrets::TenantSecrets {
        store: config.store.clone(),
        secret_box: SecretBox::new(config.secret_key.clone()),
    };
    let mut webhooks = crate::webhooks::WebhookConfig::new(
        config.store.clone(),
        sandbox.clone(),
        Arc::new(http),
        Arc::new(secrets),
    );
    webhooks.disable_after_failing_ms = crate::webhooks::WebhookConfig::disable_after_from_env()
        .map_err(|reason| Error::Spawn {
            actor: "/webhooks".into(),
            reason,
        })?;
    webhooks.board = Some(board.clone());
    webhooks.warm = Some(Arc::new(runtime::WebhookWarm(slot.clone())));
    Ok(webhooks)
}

impl Engine {
    /// Starts the tree, rebuilds the installation index from the log, starts
    /// following the log, and restarts dispatch for every tenant with
    /// enabled hooks, jobs or webhooks (each resumes from its checkpoint),
    /// [`RECOVERY_TENANTS_CONCURRENT`] tenants at a time; returns once every
    /// tenant's services have started.
    pub async fn start(config: EngineConfig) -> Result<Engine, Error> {
        let bundles: Arc<dyn BundleBlobs> =
            match &config.bundles {
                Some(shared) => shared.clone(),
                None => Arc::new(BundleStore::open(&config.data_dir).map_err(|source| {
                    Error::Platform {
                        what: "bundle store",
                        source,
                    }
                })?),
            };
        let services = runtime::Platform::new(&config)?;
        // One sandbox for plugins and webhook transforms: one set of spare
        // isolates, made now so no request waits for V8's snapshot or start.
        let sandbox = Sandbox::new(config.sandbox.clone());
        sandbox.make_spares().await;
        let board = StatusBoard::default();
        let (closing_tx, _) = watch::channel(false);
        // Services reach the engine through this slot, filled once the
        // engine exists (the root must be spawned first).
        let slot = EngineSlot::default();
        let schedulers = crate::scheduler::Schedulers::with_starter(Arc::new(slot.clone()));
        let webhook_tenants = crate::webhooks::service::WebhookTenants::default();
        let outbox_tenants = crate::outbox::OutboxTenants::default();
        let route_access = Arc::new(crate::route_access::RouteAccess::default());
        let outbox = crate::outbox::OutboxService {
            store: config.store.clone(),
            mailer: services.mailer.clone(),
            secret_box: SecretBox::new(config.secret_key.clone()),
            config: config.outbox,
            tenants: outbox_tenants.clone(),
            redact: Some(runtime::email_redactor(slot.clone())),
        };
        let tree = TreeConfig {
            store: config.store.clone(),
            board: board.clone(),
            policy: config.tree.policy,
            snapshots: config.tree.snapshots,
            mailbox_messages_max: config.tree.mailbox_messages_max,
            passivate_idle_ms: config.tree.passivate_idle_ms,
            services: tenant_services(
                &slot,
                webhook_config(&config, &sandbox, &board, &slot)?,
                &webhook_tenants,
                &schedulers,
                outbox,
                crate::route_access::RouteAccessService {
                    access: route_access.clone(),
                    store: config.store.clone(),
                    flush_ms: config.route_access_flush_ms,
                },
                &config,
            ),
            ownership: config.ownership.clone(),
        };
        let (root, _) = ractor::Actor::spawn(None, Root, tree)
            .await
            .map_err(|e| Error::Spawn {
                actor: "/".into(),
                reason: e.to_string(),
            })?;
        let inner = Arc::new(Inner {
            store: config.store.clone(),
            data_dir: config.data_dir.clone(),
            sandbox: sandbox.clone(),
            zip: config.zip.clone(),
            secret_box: SecretBox::new(config.secret_key.clone()),
            bundles,
            board,
            root,
            dispatch: config.dispatch.clone(),
            filter_order: config.filter_order,
            directory: directory::Directory::default(),
            runtimes: runtime::Runtimes::new(config.warm_isolates_bytes_max, sandbox.clone()),
            services,
            closing: AtomicBool::new(false),
            closing_tx,
            in_flight: InFlight::default(),
            follower: std::sync::Mutex::new(None),
            root_gate: Semaphore::new(config.tree.root_calls_max.max(1)),
            supervisor_gates: std::sync::Mutex::default(),
            tree: config.tree.clone(),
            stats: invoke::Stats::default(),
            schedulers,
            webhook_tenants,
            outbox_tenants,
            lanes_starting: Arc::default(),
            route_access,
            ownership: config.ownership.clone(),
        });
        let _ = slot.0.set(Arc::downgrade(&inner));
        let engine = Engine { inner };
        for tenant in &config.stopped_tenants {
            engine.stop_tenant(tenant).await?;
        }
        engine.recover().await?;
        Ok(engine)
    }

    /// Index rebuild, log follower, tenant services resumed (bounded).
    async fn recover(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let after = inner
            .directory
            .rebuild(&*inner.store)
            .await
            .map_err(|source| Error::Platform {
                what: "installation index",
                source,
            })?;
        let follower = directory::follow(Arc::downgrade(inner), after);
        *inner.follower.lock().unwrap_or_else(|p| p.into_inner()) = Some(follower);
        let mut tenants = inner.directory.tenants_with_hooks();
        tenants.extend(inner.directory.tenants_with_jobs());
        // Pending webhook deliveries resume with their tenant's supervisor.
        let with_webhooks = crate::webhooks::service::tenants_with_webhooks(&*inner.store)
            .await
            .map_err(|source| Error::Platform {
                what: "webhook index",
                source,
            })?;
        inner.webhook_tenants.extend(with_webhooks.iter().cloned());
        tenants.extend(with_webhooks);
        // Pending email resumes with its tenant's supervisor too.
        let with_mail = crate::outbox::tenants_with_pending(&*inner.store)
            .await
            .map_err(|source| Error::Platform {
                what: "outbox index",
                source,
            })?;
        inner.outbox_tenants.extend(with_mail.iter().cloned());
        tenants.extend(with_mail);
        tenants.sort();
        tenants.dedup();
        // On a shared store this node owns no tenant yet: the cluster loop
        // resumes each as it takes its lease (`Engine::own`).
        tenants.retain(|t| !self.tenant_stopped(t) && inner.ownership.owns(t));
        futures::stream::iter(tenants)
            .for_each_concurrent(RECOVERY_TENANTS_CONCURRENT, |tenant| async move {
                if let Err(e) = self.resume(&tenant).await {
                    tracing::warn!(tenant = %tenant, error = %e, "tenant services not resumed");
                }
            })
            .await;
        Ok(())
    }

    /// Starts the tenant's supervisor (which starts its dispatcher, and its
    /// webhook dispatcher and scheduler if it has webhooks or enabled jobs)
    /// and waits until its services have started:
    /// the dispatcher call queues behind the supervisor's `StartServices`.
    /// Then waits (up to [`CALL_TIMEOUT_MS`]) until no lane is reading
    /// its start revision, so at most [`RECOVERY_TENANTS_CONCURRENT`]
    /// tenants' lanes read at once; a lane stuck retrying does not hold
    /// recovery past that.
    async fn resume(&self, tenant: &TenantId) -> Result<(), Error> {
        self.inner.supervisor(tenant).await?;
        self.dispatcher(tenant).await?;
        let lanes = self.inner.lanes_starting.wait_idle();
        if tokio::time::timeout(Duration::from_millis(CALL_TIMEOUT_MS), lanes)
            .await
            .is_err()
        {
            tracing::warn!(tenant = %tenant, "lanes still starting after the call timeout");
        }
        Ok(())
    }

    /// Stops taking work, lets in-flight invocations and publishes finish
    /// up to `deadline`, then stops the tree. Everything acknowledged was
    /// durable when it was acknowledged; hooks cut short run again on the
    /// next start (at-least-once).
    pub async fn shutdown(&self, deadline: Duration) {
        let inner = &self.inner;
        inner.closing.store(true, Ordering::Release);
        let _ = inner.closing_tx.send(true);
        if tokio::time::timeout(deadline, inner.in_flight.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = inner.in_flight.count.load(Ordering::Acquire),
                "shutdown deadline passed with work in flight"
            );
        }
        if let Some(f) = inner
            .follower
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            f.abort();
        }
        let _ = inner.root.stop_and_wait(None, Some(deadline)).await;
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.inner.store
    }

    /// Every tenant's job scheduler: run-now and job views.
    pub fn schedulers(&self) -> &crate::scheduler::Schedulers {
        &self.inner.schedulers
    }

    pub fn secret_box(&self) -> &SecretBox {
        &self.inner.secret_box
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.inner.sandbox
    }

    /// Every warm isolate pool, in eviction order (least recently used
    /// first), with what its idle isolates hold.
    pub fn warm_pools(&self) -> Vec<WarmPool> {
        self.inner.runtimes.warm_pools()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.inner.data_dir
    }

    pub fn status_board(&self) -> &StatusBoard {
        &self.inner.board
    }

    // ----- tenants -----

    /// The tenant actor's handle (through its supervisor).
    pub async fn tenant_handle(&self, tenant: &TenantId) -> Result<Handle<Tenant>, Error> {
        self.inner.tenant_handle(tenant).await
    }

    /// An installation actor's handle (ops, fault drills). Commands should
    /// go through the lifecycle methods, which keep the index current.
    pub async fn installation_handle(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
    ) -> Result<Handle<PluginInstallation>, Error> {
        self.inner.installation_handle(tenant, id).await
    }

    /// The tenant's webhook dispatcher, through its supervisor (started on
    /// first use; from then on it also starts with the supervisor after a
    /// restart). Do not keep it: after a restart it is stale.
    pub async fn webhooks(
        &self,
        tenant: &TenantId,
    ) -> Result<ActorRef<crate::webhooks::DispatcherMsg>, Error> {
        let name = crate::webhooks::service::SERVICE_NAME;
        self.inner.webhook_tenants.insert(tenant);
        let cell = self
            .inner
            .supervisor_call(tenant, |reply| TenantSupervisorMsg::Service { name, reply })
            .await??;
        Ok(cell.into())
    }

    /// Wakes the tenant's email outbox (started if needed) to send what
    /// was just queued. A failed wake loses nothing: the message is in the
    /// log and the outbox reads it when it next starts or wakes.
    pub async fn outbox_wake(&self, tenant: &TenantId) -> Result<(), Error> {
        self.inner.outbox_wake(tenant).await
    }

    /// The tenant's dispatcher actor, through its supervisor (started if
    /// needed). Do not keep it: after a restart it is stale.
    pub async fn dispatcher(
        &self,
        tenant: &TenantId,
    ) -> Result<ActorRef<crate::dispatcher::DispatcherMsg>, Error> {
        let name = crate::dispatcher::SERVICE_NAME;
        let cell = self
            .inner
            .supervisor_call(tenant, |reply| TenantSupervisorMsg::Service { name, reply })
            .await??;
        Ok(cell.into())
    }

    /// Runs a command on the tenant aggregate.
    pub async fn tenant_execute(
        &self,
        tenant: &TenantId,
        command: TenantCommand,
        principal: Principal,
    ) -> Result<Loaded<Tenant>, Error> {
        let meta = EventMeta::new(Some(tenant.clone()), principal);
        let handle = self.inner.tenant_handle(tenant).await?;
        handle.execute(command, meta, CALL_TIMEOUT_MS).await
    }

    /// The tenant's state; `NotFound` if it was never created.
    pub async fn tenant(&self, tenant: &TenantId) -> Result<Loaded<Tenant>, Error> {
        self.inner.existing_tenant(tenant).await
    }

    // ----- ops -----

    /// The live supervision tree.
    pub async fn tree(&self) -> Result<TreeSnapshot, Error> {
        self.inner
            .root_call(|reply| RootMsg::Snapshot { reply })
            .await
    }

    /// Restarts a failed actor by its tree path:
    /// `/tenants/<t>/tenant`, `/tenants/<t>/installations/<ins>` or
    /// `/tenants/<t>/<service>`. Unknown paths are `NotFound`.
    pub async fn restart_actor(&self, path: &str) -> Result<(), Error> {
        if let Some((tenant, name)) = crate::webhooks::service::endpoint_path(path) {
            // Only an endpoint the tree shows: a path that names none is
            // refused before any tenant's services start.
            if self.inner.board.get(path).is_none() {
                return Err(Error::not_found("actor", path));
            }
            let dispatcher = self.webhooks(&tenant).await?;
            return crate::webhooks::service::restart_endpoint(&dispatcher, &tenant, name).await;
        }
        match parse_actor_path(path)? {
            (tenant, None) => {
                self.inner
                    .root_call(|reply| RootMsg::RestartTenant { tenant, reply })
                    .await?
            }
            (tenant, Some(key)) => {
                self.inner
                    .root_call(|reply| RootMsg::RestartActor { tenant, key, reply })
                    .await?
            }
        }
    }

    /// Stops every actor of the tenant; requests for it are refused until
    /// [`resume_tenant`](Self::resume_tenant).
    pub async fn stop_tenant(&self, tenant: &TenantId) -> Result<(), Error> {
        let tenant = tenant.clone();
        self.inner
            .root_call_within(
                |reply| RootMsg::StopTenant { tenant, reply },
                crate::supervision::STOP_CALL_TIMEOUT_MS,
            )
            .await
    }

    /// Lets a stopped tenant serve again; its dispatcher resumes from its
    /// checkpoints.
    pub async fn resume_tenant(&self, tenant: &TenantId) -> Result<(), Error> {
        let t = tenant.clone();
        self.inner
            .root_call(|reply| RootMsg::ResumeTenant { tenant: t, reply })
            .await?;
        let inner = &self.inner;
        if inner.directory.has_hooks(tenant)
            || inner.directory.has_jobs(tenant)
            || inner.webhook_tenants.contains(tenant)
            || inner.outbox_tenants.contains(tenant)
            || inner.route_access.has_tenant(tenant)
        {
            inner.supervisor(tenant).await?;
        }
        Ok(())
    }

    /// Whether an operator stopped the tenant (or it is suspended): then
    /// every request for it is refused.
    pub fn tenant_stopped(&self, tenant: &TenantId) -> bool {
        self.inner
            .board
            .get(&format!("/tenants/{tenant}"))
            .is_some_and(|i| i.status == crate::supervision::ActorStatus::Stopped)
    }
}

/// Every service name a tenant supervisor may run (the tree shows them at
/// `/tenants/<t>/<name>`), so each can be restarted by its path.
const SERVICE_NAMES: [&str; 5] = [
    crate::outbox::SERVICE_NAME,
    crate::route_access::SERVICE_NAME,
    crate::dispatcher::SERVICE_NAME,
    crate::webhooks::service::SERVICE_NAME,
    crate::scheduler::SERVICE_NAME,
];

/// A tree path: the tenant, and the child (`None`: the tenant supervisor
/// itself, `/tenants/<t>`).
fn parse_actor_path(path: &str) -> Result<(TenantId, Option<ChildKey>), Error> {
    let not_found = || Error::not_found("actor", path);
    let rest = path.strip_prefix("/tenants/").ok_or_else(not_found)?;
    let mut parts = rest.split('/');
    let tenant: TenantId = parts
        .next()
        .and_then(|t| t.parse().ok())
        .ok_or_else(not_found)?;
    let key = match (parts.next(), parts.next(), parts.next()) {
        (None, None, None) => None,
        (Some("tenant"), None, None) => Some(ChildKey::Tenant),
        (Some("installations"), Some(id), None) => {
            Some(ChildKey::Installation(id.parse().map_err(|_| not_found())?))
        }
        (Some(name), None, None) => Some(ChildKey::Service(
            SERVICE_NAMES
                .into_iter()
                .find(|s| *s == name)
                .ok_or_else(not_found)?,
        )),
        _ => return Err(not_found()),
    };
    Ok((tenant, key))
}
