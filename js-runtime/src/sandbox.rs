//! The engine-neutral public API: [`Sandbox`] validates bundles and creates
//! [`Installation`]s; an installation keeps a small pool of warm isolates
//! (`pool`) and runs [`Invocation`]s. Isolates idle longer than
//! [`SandboxConfig::isolate_idle_ms`] are dropped by the installation's
//! reaper task, which lives exactly as long as the installation.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use extensor_core::manifest::ManifestLimits;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::AbortHandle;

use crate::bundle::Bundle;
use crate::config::{DeadlineKind, EMIT_CHAIN_DEPTH_MAX, SandboxConfig};
use crate::engine::{Answer, InvokeJob, Isolate, IsolateSpec, Spares};
use crate::error::{JsError, Problem};
use crate::host::{HostServices, InstallationScope};
use crate::logs::{LogEntry, RecentLogs};
use crate::plugin::{
    Trigger, ValidatedPlugin, check_registrations, find_handler, load_problem, prepare,
};
use crate::pool::{Pool, reap_idle};

/// Tries of one invocation on isolates that closed before it started. Each
/// try follows an isolate discarded by another invocation, so reaching this
/// means a broken pool, never a busy one.
const REDISPATCH_MAX: usize = 16;

/// Platform-wide entry point. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Sandbox {
    config: Arc<SandboxConfig>,
    /// Isolates started by this sandbox and its installations, ever: the
    /// marker tests use to show that a refused request started none.
    started: Arc<AtomicU64>,
    /// Isolate threads of this sandbox running now (each counted until its
    /// engine and heap are gone).
    alive: Arc<AtomicUsize>,
    /// V8 isolates made ahead of demand ([`SandboxConfig::spare_isolates`]).
    spares: Arc<Spares>,
    /// [`warm_heap_bytes`](Self::warm_heap_bytes), kept by the pools.
    warm_heap: Arc<AtomicUsize>,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Sandbox {
        let platform = config.limits_for(&ManifestLimits::default());
        let spares = Spares::new(config.engine, config.spare_isolates, &platform);
        Sandbox {
            config: Arc::new(config),
            started: Arc::default(),
            alive: Arc::default(),
            spares: Arc::new(spares),
            warm_heap: Arc::default(),
        }
    }

    /// Heap bytes the warm isolates of every installation of this sandbox
    /// held after their last invocation: the sum of each installation's
    /// [`Installation::warm_heap_bytes`], kept as isolates start, run and
    /// end, so reading it is O(1). An installation counts until it and its
    /// isolates are dropped.
    pub fn warm_heap_bytes(&self) -> usize {
        self.warm_heap.load(Ordering::Relaxed)
    }

    /// Makes this sandbox's spare isolates now, rather than at the first
    /// isolate start that could use one, and waits until they are ready
    /// (on V8, the first also makes the process's start-up snapshot). The
    /// server calls it at boot, so no request waits for either. Nothing to
    /// do on QuickJS or with [`SandboxConfig::spare_isolates`] at 0.
    pub async fn make_spares(&self) {
        self.spares.ready().await;
    }

    /// Spare isolates alive that no installation has taken yet. Not
    /// counted by [`isolates_alive`](Self::isolates_alive) until taken.
    pub fn spare_isolates(&self) -> usize {
        self.spares.unassigned()
    }

    /// Isolates that started from a spare, ever (each is also counted by
    /// [`isolates_started`](Self::isolates_started)).
    pub fn spare_isolates_used(&self) -> u64 {
        self.spares.used()
    }

    /// Isolates this sandbox (validation and every installation) has started.
    pub fn isolates_started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Isolates of this sandbox alive now: started and not yet ended (an
    /// isolate is counted until its thread has freed its heap). Spares
    /// count from when an isolate takes one ([`spare_isolates`](Self::spare_isolates)).
    pub fn isolates_alive(&self) -> usize {
        self.alive.load(Ordering::SeqCst)
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Validates a bundle: manifest, imports, TypeScript, then one evaluation
    /// whose registrations are checked against the manifest. Every problem is
    /// returned at once. Must be called within a tokio runtime.
    pub async fn validate(&self, bundle: &Bundle) -> Result<Arc<ValidatedPlugin>, Vec<Problem>> {
        let (manifest, sources) = prepare(bundle)?;
        let sources = Arc::new(sources);
        let probe = ValidatedPlugin {
            manifest,
            registrations: Vec::new(),
            sources,
        };
        let scope = InstallationScope {
            tenant_id: "validation".into(),
            installation_id: "validation".into(),
        };
        let spec = self.spec(&probe, scope, HostServices::default());
        let isolate = start_isolate(&self.started, spec)
            .await
            .map_err(|e| load_problem(&probe.manifest.entry, &e))?;
        let problems = check_registrations(&probe.manifest, isolate.registrations());
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Arc::new(ValidatedPlugin {
            registrations: isolate.registrations().to_vec(),
            ..probe
        }))
    }

    /// A runtime for one installation of a validated plugin. Isolates are
    /// created on demand and kept warm; none is shared with another installation.
    /// Call it inside the tokio runtime that should run host calls: the
    /// installation keeps that runtime's handle for them.
    pub fn install(
        &self,
        plugin: Arc<ValidatedPlugin>,
        scope: InstallationScope,
        services: HostServices,
    ) -> Installation {
        let info = InfoFrame::new(&scope, &plugin);
        let spec = self.spec(&plugin, scope, services);
        let pool = Pool::new(
            spec.clone(),
            (self.config.pool_isolates_max, self.config.isolate_queue_max),
            self.started.clone(),
        );
        // At least a millisecond, so a zero setting cannot spin the reaper.
        let after = Duration::from_millis(self.config.isolate_idle_ms.max(1));
        let reaper = spec
            .tokio
            .spawn(reap_idle(pool.members(), after))
            .abort_handle();
        Installation {
            plugin,
            pool,
            reaper,
            recent: Mutex::default(),
            info,
        }
    }

    fn spec(
        &self,
        plugin: &ValidatedPlugin,
        scope: InstallationScope,
        services: HostServices,
    ) -> Arc<IsolateSpec> {
        let m = &plugin.manifest;
        Arc::new(IsolateSpec {
            sources: plugin.sources.clone(),
            entry: m.entry.clone(),
            limits: self.config.limits_for(&m.limits),
            permissions: m.permissions.clone(),
            allowed_hosts: Arc::new(m.allowed_hosts.clone()),
            scope,
            services,
            tokio: tokio::runtime::Handle::current(),
            engine: self.config.engine,
            alive: self.alive.clone(),
            spares: self.spares.clone(),
            warm_heap: self.warm_heap.clone(),
        })
    }
}

/// One call into a plugin.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Invocation {
    /// Unique per invocation; plugins see it as `ctx.invocation.id`.
    pub id: String,
    pub trigger: Trigger,
    /// The handler's first argument (the event, the request, …).
    pub input: Value,
    /// The triggering event, for causation and dedup (`ctx.invocation.eventId`).
    pub event_id: Option<String>,
    /// How many emits deep this invocation is (0 for external events).
    pub chain_depth: u32,
}

/// A successful invocation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub value: Value,
    pub logs: Vec<LogEntry>,
    pub duration: Duration,
}

/// A failed invocation: the error, and the lines logged before it (none
/// when the code never ran).
#[derive(Debug)]
pub struct InvokeFailure {
    pub error: JsError,
    pub logs: Vec<LogEntry>,
}

impl From<JsError> for InvokeFailure {
    fn from(error: JsError) -> InvokeFailure {
        InvokeFailure {
            error,
            logs: Vec::new(),
        }
    }
}

/// An installation's runtime: a bounded pool of warm isolates.
pub struct Installation {
    plugin: Arc<ValidatedPlugin>,
    pool: Pool,
    /// The task dropping isolates idle too long; aborted with the installation.
    reaper: AbortHandle,
    recent: Mutex<RecentLogs>,
    info: InfoFrame,
}

/// The `ctx` info JSON of every invocation (`{installation, invocation,
/// plugin, tenant}`) is the same but for its `invocation`: the rest is
/// printed once per installation, in the key order serde_json's maps print
/// (as when the whole object was built as a `Value` per invocation).
struct InfoFrame {
    /// `{"installation":{…},"invocation":`
    head: String,
    /// `,"plugin":{…},"tenant":{…}}`
    tail: String,
}

/// `ctx.invocation`, its fields in that same key order.
#[derive(Serialize)]
struct InvocationInfo<'a> {
    #[serde(rename = "chainDepth")]
    chain_depth: u32,
    #[serde(rename = "eventId")]
    event_id: &'a Option<String>,
    id: &'a str,
    /// Through a `Value` so its keys print sorted too.
    trigger: Value,
}

impl InfoFrame {
    fn new(scope: &InstallationScope, plugin: &ValidatedPlugin) -> InfoFrame {
        let m = &plugin.manifest;
        let plugin = json!({"slug": m.slug.as_str(), "version": m.version.to_string()});
        InfoFrame {
            head: format!(
                "{{\"installation\":{},\"invocation\":",
                json!({"id": scope.installation_id})
            ),
            tail: format!(
                ",\"plugin\":{plugin},\"tenant\":{}}}",
                json!({"id": scope.tenant_id})
            ),
        }
    }

    fn around(&self, inv: &Invocation) -> String {
        let info = InvocationInfo {
            chain_depth: inv.chain_depth,
            event_id: &inv.event_id,
            id: &inv.id,
            trigger: serde_json::to_value(&inv.trigger).unwrap_or(Value::Null),
        };
        // Strings, numbers and a `Value`: printing them cannot fail.
        let invocation = serde_json::to_string(&info).unwrap_or_else(|_| "null".into());
        let mut out = String::with_capacity(self.head.len() + invocation.len() + self.tail.len());
        out.push_str(&self.head);
        out.push_str(&invocation);
        out.push_str(&self.tail);
        out
    }
}

impl Installation {
    pub fn plugin(&self) -> &ValidatedPlugin {
        &self.plugin
    }

    pub fn scope(&self) -> &InstallationScope {
        &self.pool.spec().scope
    }

    /// Runs one invocation. Whatever happens, captured logs land in
    /// [`recent_logs`](Self::recent_logs); on success they are also returned.
    pub async fn invoke(&self, inv: Invocation) -> Result<Outcome, JsError> {
        self.invoke_with_logs(inv).await.map_err(|f| f.error)
    }

    /// [`invoke`](Self::invoke), and a failure also carries the lines the
    /// code logged before it failed (a job run records them).
    pub async fn invoke_with_logs(&self, inv: Invocation) -> Result<Outcome, InvokeFailure> {
        if inv.chain_depth > EMIT_CHAIN_DEPTH_MAX {
            return Err(JsError::ChainTooDeep {
                depth: inv.chain_depth,
                limit: EMIT_CHAIN_DEPTH_MAX,
            }
            .into());
        }
        let _permit = self.pool.permit().await?;
        // An isolate closed under a queued invocation did not run it: it
        // goes to another (each retry follows a discarded isolate).
        for _ in 0..REDISPATCH_MAX {
            let mut lease = self.pool.lease().await?;
            let Some(handler) = find_handler(lease.isolate.registrations(), &inv.trigger) else {
                // Nothing ran, so the isolate is as good as before: keep it warm.
                return Err(JsError::NoHandler {
                    trigger: inv.trigger.describe(),
                }
                .into());
            };
            let started = Instant::now();
            let finished = match lease
                .isolate
                .invoke(Arc::new(self.job(&inv, handler)))
                .await
            {
                Answer::Ran(finished) => finished,
                Answer::NotRun => {
                    lease.not_run();
                    continue;
                }
            };
            let duration = started.elapsed();
            lease.ran(
                (finished.heap_bytes, finished.heap_peak_bytes),
                finished.discard,
            );
            drop(lease);
            lock(&self.recent).extend(&finished.logs);
            return match finished.result {
                Ok(raw) => Ok(Outcome {
                    value: raw.value,
                    logs: finished.logs,
                    duration,
                }),
                Err(error) => Err(InvokeFailure {
                    error,
                    logs: finished.logs,
                }),
            };
        }
        Err(JsError::Internal(format!(
            "no isolate took the invocation in {REDISPATCH_MAX} tries (each was discarded first)"
        ))
        .into())
    }

    /// Starts isolates until `count` are warm (bounded by the pool size).
    pub async fn prewarm(&self, count: usize) -> Result<(), JsError> {
        self.pool.prewarm(count).await
    }

    /// Isolates currently warm (alive in the pool, busy or idle; a
    /// discarded one has left it).
    pub fn warm_isolates(&self) -> usize {
        self.pool.isolates()
    }

    /// Heap bytes of each warm isolate (QuickJS `malloc_size`; V8's
    /// committed heap plus external memory).
    pub async fn isolate_memory_bytes(&self) -> Vec<usize> {
        self.pool.memory_bytes().await
    }

    /// Heap bytes the warm isolates held after each one's last invocation:
    /// what keeping this pool warm costs. O(pool size), no call into an isolate.
    pub fn warm_heap_bytes(&self) -> usize {
        self.pool.heap_bytes()
    }

    /// The most heap the pool's isolates held together since it was built,
    /// counting each invocation's isolate at its in-call peak (QuickJS:
    /// every allocation counted; V8: sampled before every garbage
    /// collection and at the end of each invocation). At least what
    /// [`warm_heap_bytes`](Self::warm_heap_bytes) has been.
    pub fn heap_peak_bytes(&self) -> usize {
        self.pool.heap_peak_bytes()
    }

    /// The installation's recent log lines, oldest first.
    pub fn recent_logs(&self) -> Vec<LogEntry> {
        lock(&self.recent).snapshot()
    }

    fn job(&self, inv: &Invocation, handler: usize) -> InvokeJob {
        let kind = match inv.trigger {
            Trigger::Job { .. } => DeadlineKind::Job,
            _ => DeadlineKind::Interactive,
        };
        let spec = self.pool.spec();
        InvokeJob {
            handler,
            input_json: inv.input.to_string(),
            info_json: self.info.around(inv),
            deadline: spec.limits.deadline(kind),
            causation_id: inv.event_id.clone(),
            chain_depth: inv.chain_depth,
        }
    }
}

impl Drop for Installation {
    fn drop(&mut self) {
        self.reaper.abort();
    }
}

/// Every isolate starts here, so [`Sandbox::isolates_started`] counts them all.
async fn start_isolate(started: &AtomicU64, spec: Arc<IsolateSpec>) -> Result<Isolate, JsError> {
    started.fetch_add(1, Ordering::Relaxed);
    Isolate::start(spec).await
}

/// A poisoned lock only means another invocation panicked mid-update of a
/// plain list; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
