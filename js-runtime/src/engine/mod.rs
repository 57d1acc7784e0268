//! The engine boundary. Everything engine-specific lives below this module;
//! the rest of the crate speaks [`IsolateSpec`], [`InvokeJob`] and
//! [`RawOutcome`], and holds an [`Isolate`] whichever engine runs it.
//! `quickjs` and `v8` (cargo feature `v8`) are siblings with the same
//! handle API; `host_call` is the engine-neutral half of every `ctx` call.

pub(crate) mod host_call;
mod quickjs;
#[cfg(feature = "v8")]
mod v8;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use extensor_core::manifest::Permission;
use serde_json::Value;

use crate::bundle::Sources;
use crate::config::{JsEngine, Limits};
use crate::error::JsError;
use crate::host::{HostServices, InstallationScope};
use crate::logs::LogEntry;
use crate::plugin::Registration;

/// Evaluated once per isolate (QuickJS) or once per process into the
/// start-up snapshot (V8): the SDK object, `console`, and `ctx`.
pub(crate) const PRELUDE: &str = include_str!("../prelude.js");
/// The `extensor:sdk` module: re-exports the frozen object the prelude built.
pub(crate) const SDK_SOURCE: &str = "const s = globalThis.__extensorSdk;\n\
export const hook = s.hook, route = s.route, job = s.job, llmFilter = s.llmFilter, generatorHook = s.generatorHook;\n\
export default s;\n";

/// One warm isolate of either engine, owned by an installation's pool.
pub(crate) enum Isolate {
    QuickJs(quickjs::Isolate),
    #[cfg(feature = "v8")]
    V8(v8::Isolate),
}

impl Isolate {
    /// Starts an isolate of the spec's engine and evaluates the bundle.
    pub async fn start(spec: Arc<IsolateSpec>) -> Result<Isolate, JsError> {
        match spec.engine {
            JsEngine::QuickJs => quickjs::Isolate::start(spec).await.map(Isolate::QuickJs),
            #[cfg(feature = "v8")]
            JsEngine::V8 => v8::Isolate::start(spec).await.map(Isolate::V8),
            #[cfg(not(feature = "v8"))]
            JsEngine::V8 => Err(JsError::Internal(
                "this build has no V8 engine (cargo feature `v8`)".into(),
            )),
        }
    }

    /// What the bundle registered while it loaded.
    pub fn registrations(&self) -> &[Registration] {
        match self {
            Isolate::QuickJs(i) => &i.registrations,
            #[cfg(feature = "v8")]
            Isolate::V8(i) => &i.registrations,
        }
    }

    /// Runs one invocation; the isolate must be discarded if `discard` is set.
    pub async fn invoke(&self, job: InvokeJob) -> Finished {
        match self {
            Isolate::QuickJs(i) => i.invoke(job).await,
            #[cfg(feature = "v8")]
            Isolate::V8(i) => i.invoke(job).await,
        }
    }

    /// Bytes the engine holds for this isolate's heap.
    pub async fn memory_bytes(&self) -> Option<usize> {
        match self {
            Isolate::QuickJs(i) => i.memory_bytes().await,
            #[cfg(feature = "v8")]
            Isolate::V8(i) => i.memory_bytes().await,
        }
    }
}

/// Everything needed to create an isolate for one installation.
pub(crate) struct IsolateSpec {
    pub sources: Arc<Sources>,
    pub entry: String,
    pub limits: Limits,
    pub permissions: BTreeSet<Permission>,
    pub allowed_hosts: Arc<Vec<String>>,
    pub scope: InstallationScope,
    pub services: HostServices,
    pub plugin_info: Value,
    pub tokio: tokio::runtime::Handle,
    pub engine: JsEngine,
    /// The sandbox's count of isolate threads alive ([`Alive`]).
    pub alive: Arc<AtomicUsize>,
}

/// Counts one isolate thread for as long as it runs: made first thing on
/// the thread and dropped last, after the engine's runtime and heap, so the
/// count falling is the marker that an isolate's memory is gone.
pub(crate) struct Alive(Arc<AtomicUsize>);

impl Alive {
    pub fn enter(count: &Arc<AtomicUsize>) -> Alive {
        count.fetch_add(1, Ordering::SeqCst);
        Alive(count.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One call into JS: which handler, with what input, under what deadline.
pub(crate) struct InvokeJob {
    /// Index into the isolate's registrations.
    pub handler: usize,
    pub input_json: String,
    /// `{tenant, plugin, invocation}` as given to `ctx`.
    pub info_json: String,
    pub deadline: Duration,
    pub causation_id: Option<String>,
    pub chain_depth: u32,
}

pub(crate) struct RawOutcome {
    pub value: Value,
}

/// What one isolate reports after evaluating the bundle.
pub(crate) struct Loaded {
    pub registrations: Vec<Registration>,
}

/// The JS result plus the logs captured whatever happened.
pub(crate) struct Finished {
    pub result: Result<RawOutcome, JsError>,
    pub logs: Vec<LogEntry>,
    /// The isolate hit a limit or is crowded and must not be reused.
    pub discard: bool,
    /// Heap bytes the isolate holds after the invocation (what keeping it
    /// warm costs); the installation sums these for the process-wide cap.
    pub heap_bytes: usize,
}

impl Finished {
    /// An invocation that produced no outcome; the isolate is not reused.
    pub(crate) fn failed(e: JsError) -> Finished {
        Finished {
            result: Err(e),
            logs: Vec::new(),
            discard: true,
            heap_bytes: 0,
        }
    }
}

/// The host side of one invocation, shared by both engines: waits for the
/// isolate thread's answer up to the deadline plus
/// [`DEADLINE_GRACE_MS`](crate::config::DEADLINE_GRACE_MS) (for native work
/// that never checks for interrupts), then calls `kill` so the thread's JS
/// stops and the isolate is discarded.
pub(crate) async fn await_finished(
    reply: tokio::sync::oneshot::Receiver<Finished>,
    deadline: Duration,
    kill: impl FnOnce(),
) -> Finished {
    let deadline_ms = deadline.as_millis() as u64;
    let limit = deadline + Duration::from_millis(crate::config::DEADLINE_GRACE_MS);
    match tokio::time::timeout(limit, reply).await {
        Ok(Ok(finished)) => finished,
        Ok(Err(_)) => Finished::failed(JsError::Internal(
            "isolate thread ended during the invocation".into(),
        )),
        Err(_) => {
            kill();
            Finished::failed(JsError::Timeout { deadline_ms })
        }
    }
}
