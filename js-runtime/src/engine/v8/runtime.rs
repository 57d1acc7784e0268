//! One deno_core `JsRuntime` made from the snapshot: loading the bundle,
//! running invocations under the deadline, and turning what V8 reports into
//! [`JsError`]s.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use deno_core::error::{CoreError, CoreErrorKind};
use deno_core::v8;
use deno_core::{JsRuntime, PollEventLoopOptions, RuntimeOptions};
use serde_json::Value;

use super::buffers::{BufferBudget, allocator};
use super::heap::{HeapPeak, committed_bytes};
use super::loader::{BUNDLE_URL_PREFIX, BundleLoader, module_url};
use super::ops::{HostState, Phase, extensor_host};
use super::snapshot::startup_snapshot;
use super::stack::limit_stack;
use super::watchdog;
use crate::config::{DeadlineKind, RESULT_BYTES_MAX};
use crate::engine::{Finished, InvokeJob, IsolateSpec, Loaded, RawOutcome};
use crate::error::{JsError, Problem};
use crate::host::CallContext;
use crate::logs::{LogCapture, cut};

/// Globals removed from every isolate before its bundle loads: the
/// bootstrap's entry point (first: Rust takes it) and deno_core's own.
const START_GLOBALS: [&str; 3] = ["__extensorEntry", "Deno", "__bootstrap"];
/// Error messages and stacks handed back to the host are cut to this.
const ERROR_TEXT_BYTES_MAX: usize = 8 * 1024;
/// After an invocation, an isolate whose used heap is over this share of
/// its limit is discarded rather than reused: the next call would start cramped.
const REUSE_HEAP_SHARE_MAX: f64 = 0.5;
/// How far the near-heap-limit callback lifts the limit, as a multiple of
/// the configured one, so the terminated script can unwind instead of V8
/// aborting the process. The isolate is discarded right after.
const HEAP_UNWIND_FACTOR: usize = 2;

pub(super) struct Engine {
    runtime: JsRuntime,
    host: Rc<HostState>,
    /// `invoke(index, inputJson, infoJson)` from the bootstrap.
    entry: v8::Global<v8::Function>,
    heap_exhausted: Rc<Cell<bool>>,
    /// Array-buffer bytes, outside the V8 heap, under the same limit.
    buffers: Arc<BufferBudget>,
    /// The deadline of what runs now, for naming it in `Timeout`.
    deadline_ms: u64,
    /// After `runtime`, so it outlives the isolate whose GC callback uses it.
    heap_peak: HeapPeak,
}

/// A runtime made from the snapshot, sanitised and limited in heap, but
/// not yet given an installation: what a spare isolate (`spare`) holds
/// until one needs it. Nothing of any installation has touched it, and it
/// is assigned once, so no state passes between installations.
pub(super) struct Blank {
    runtime: JsRuntime,
    loader: Rc<BundleLoader>,
    entry: v8::Global<v8::Function>,
    heap_exhausted: Rc<Cell<bool>>,
    buffers: Arc<BufferBudget>,
    heap_bytes_max: usize,
    heap_peak: HeapPeak,
}

impl Blank {
    /// Everything of an isolate's start that does not depend on its
    /// installation: the V8 heap (`heap_bytes_max`, fixed once the isolate
    /// exists) deserialised from the snapshot, the heap callbacks, and the
    /// bootstrap's globals taken away.
    pub fn new(heap_bytes_max: usize) -> Result<Blank, JsError> {
        let snapshot = startup_snapshot()?;
        let buffers = BufferBudget::new(heap_bytes_max);
        let params = v8::CreateParams::default()
            .heap_limits(0, heap_bytes_max)
            .array_buffer_allocator(allocator(&buffers));
        let loader = Rc::new(BundleLoader::default());
        let mut runtime = JsRuntime::try_new(RuntimeOptions {
            module_loader: Some(loader.clone()),
            extensions: vec![extensor_host::init()],
            startup_snapshot: Some(snapshot),
            // The bootstrap captured its four ops in the snapshot (as the
            // slow, serialisable op functions), and nothing else calls an
            // op: re-binding deno_core's whole op table per isolate (about
            // 0.1 ms of the cold start, `DENO_STARTUP_PHASES=1`) is skipped.
            skip_op_registration: true,
            create_params: Some(params),
            ..Default::default()
        })
        .map_err(|e| JsError::Internal(format!("V8 runtime: {e}")))?;
        let heap_peak = HeapPeak::watch(runtime.v8_isolate());
        let heap_exhausted = Rc::new(Cell::new(false));
        let (flag, handle) = (
            heap_exhausted.clone(),
            runtime.v8_isolate().thread_safe_handle(),
        );
        runtime.add_near_heap_limit_callback(move |current, initial| {
            flag.set(true);
            handle.terminate_execution();
            current.max(initial.saturating_mul(HEAP_UNWIND_FACTOR))
        });
        let entry = start(&mut runtime)?;
        Ok(Blank {
            runtime,
            loader,
            entry,
            heap_exhausted,
            buffers,
            heap_bytes_max,
            heap_peak,
        })
    }

    /// Gives the runtime its installation: the bundle, the host state its
    /// ops reach, and its stack limit. Must run on the thread that runs the
    /// isolate from now on (the stack limit is an address on it), and the
    /// spec's heap limit must be the one the heap was made with.
    pub fn assign(mut self, spec: Arc<IsolateSpec>) -> Engine {
        let limits = spec.limits;
        assert_eq!(
            limits.heap_bytes_max, self.heap_bytes_max,
            "a V8 runtime was assigned to an installation with another heap limit"
        );
        self.loader.assign(spec.sources.clone());
        limit_stack(self.runtime.v8_isolate(), limits.stack_bytes_max);
        let host = Rc::new(HostState::new(spec));
        self.runtime.op_state().borrow_mut().put(host.clone());
        Engine {
            runtime: self.runtime,
            host,
            entry: self.entry,
            heap_exhausted: self.heap_exhausted,
            buffers: self.buffers,
            deadline_ms: limits.deadline_ms,
            heap_peak: self.heap_peak,
        }
    }
}

impl Engine {
    pub fn handle(&mut self) -> v8::IsolateHandle {
        self.runtime.v8_isolate().thread_safe_handle()
    }

    /// Evaluates the entry module (and what it imports) under the interactive deadline.
    pub async fn load(&mut self) -> Result<Loaded, JsError> {
        let spec = self.host.spec.clone();
        let started = Instant::now();
        let deadline = started + spec.limits.deadline(DeadlineKind::Interactive);
        self.deadline_ms = spec.limits.deadline_ms;
        let url = module_url(&spec.entry)
            .filter(|_| spec.sources.modules.contains_key(&spec.entry))
            .ok_or_else(|| {
                JsError::InvalidBundle(vec![Problem::new(
                    spec.entry.clone(),
                    "entry file is missing",
                )])
            })?;
        let watch = watchdog::arm(self.handle(), deadline);
        let result = self.evaluate(&url, deadline).await;
        let result = self.settle(result, watch.fired());
        drop(watch);
        self.host.phase.set(Phase::Ready);
        result?;
        let heap_bytes = self.memory_bytes();
        let registrations = self.host.registrations.borrow().clone();
        Ok(Loaded {
            registrations,
            heap_bytes,
        })
    }

    async fn evaluate(
        &mut self,
        url: &deno_core::ModuleSpecifier,
        deadline: Instant,
    ) -> Result<(), JsError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let id = match tokio::time::timeout(left, self.runtime.load_main_es_module(url)).await {
            Ok(id) => id.map_err(|e| self.classify(e))?,
            Err(_) => return Err(self.timeout()),
        };
        // Evaluation errors (a top-level throw) come out of the event loop
        // as unhandled rejections, not out of the evaluation future.
        let evaluation = self.runtime.mod_evaluate(id);
        let left = deadline.saturating_duration_since(Instant::now());
        let driven = self.runtime.run_event_loop(PollEventLoopOptions::default());
        match tokio::time::timeout(left, driven).await {
            Ok(r) => r.map_err(|e| self.classify(e))?,
            Err(_) => return Err(self.timeout()),
        }
        evaluation.await.map_err(|e| self.classify(e))
    }

    pub async fn invoke(&mut self, job: &InvokeJob) -> Finished {
        let deadline = Instant::now() + job.deadline;
        self.deadline_ms = job.deadline.as_millis() as u64;
        let host = self.host.clone();
        host.denied.set(None);
        *host.logs.borrow_mut() = LogCapture::default();
        *host.call_cx.borrow_mut() = Some(CallContext {
            scope: host.spec.scope.clone(),
            allowed_hosts: host.spec.allowed_hosts.clone(),
            causation_id: job.causation_id.clone(),
            chain_depth: job.chain_depth,
            deadline,
        });
        self.heap_peak.reset();
        let watch = watchdog::arm(self.handle(), deadline);
        let mut result = self.run(job, deadline).await;
        // Still under the deadline and with the call context: what the
        // handler queued but did not await runs now.
        let quiet = match &result {
            Err(e) if e.poisons_isolate() => false,
            _ => match self.turn() {
                Ok(quiet) => quiet,
                Err(e) => {
                    if result.is_ok() {
                        result = Err(e);
                    }
                    false
                }
            },
        };
        let result = self.settle(result, watch.fired());
        drop(watch);
        host.call_cx.borrow_mut().take();
        // One heap statistics call per invocation serves both the reuse
        // check and the heap size reported (each walks V8's spaces).
        let stats = self.runtime.v8_isolate().get_heap_statistics();
        let limit = host.spec.limits.heap_bytes_max as f64 * REUSE_HEAP_SHARE_MAX;
        let crowded =
            stats.used_heap_size() as f64 > limit || self.buffers.used_bytes() as f64 > limit;
        // A call the handler did not await would resolve into the next
        // invocation; an isolate with one still running is not reused.
        let calls_left = host.host_calls.in_flight().0 > 0;
        let discard = result.as_ref().err().is_some_and(JsError::poisons_isolate)
            || crowded
            || calls_left
            || !quiet;
        let logs = std::mem::take(&mut *host.logs.borrow_mut()).finish();
        let heap_bytes = committed_bytes(&stats);
        Finished {
            result,
            logs,
            discard,
            heap_bytes,
            heap_peak_bytes: self.heap_peak.peak(heap_bytes),
        }
    }

    async fn run(&mut self, job: &InvokeJob, deadline: Instant) -> Result<RawOutcome, JsError> {
        let args = self.arguments(job)?;
        let call = self.runtime.call_with_args(&self.entry, &args);
        let left = deadline.saturating_duration_since(Instant::now());
        let driven = self
            .runtime
            .with_event_loop_promise(Box::pin(call), PollEventLoopOptions::default());
        let value = match tokio::time::timeout(left, driven).await {
            Ok(r) => r.map_err(|e| self.classify(e))?,
            // Awaiting the host past the deadline: no JS is running to
            // terminate; the isolate is discarded with its pending calls.
            Err(_) => return Err(self.timeout()),
        };
        let json = self.string(&value);
        if json.len() > RESULT_BYTES_MAX {
            return Err(JsError::InvalidResult {
                reason: format!(
                    "result is {} bytes of JSON; the limit is {RESULT_BYTES_MAX}",
                    json.len()
                ),
            });
        }
        let value: Value = serde_json::from_str(&json).map_err(|e| JsError::InvalidResult {
            reason: e.to_string(),
        })?;
        Ok(RawOutcome { value })
    }

    /// One turn of the event loop once the handler has answered: runs the
    /// microtasks it left queued (a synchronous answer returns before any
    /// ran). `Ok(true)` when nothing is left from this invocation, `Ok(false)`
    /// when work is still pending (the isolate is then not reused), `Err`
    /// for an unhandled rejection, which fails the invocation as it would
    /// have failed an awaited one (left alone, deno_core would report it on
    /// the next poll and fail the next invocation).
    fn turn(&mut self) -> Result<bool, JsError> {
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        match self
            .runtime
            .poll_event_loop(&mut cx, PollEventLoopOptions::default())
        {
            std::task::Poll::Ready(Ok(())) => Ok(true),
            std::task::Poll::Ready(Err(e)) => Err(self.classify(e)),
            std::task::Poll::Pending => Ok(false),
        }
    }

    /// `(handler index, input JSON, ctx info JSON)` as V8 values.
    fn arguments(&mut self, job: &InvokeJob) -> Result<[v8::Global<v8::Value>; 3], JsError> {
        let runtime = &mut self.runtime;
        deno_core::scope!(scope, runtime);
        let too_long = || JsError::InvalidArgument {
            op: "invoke",
            message: "input is too large for a JS string".into(),
        };
        let index = v8::Integer::new_from_unsigned(scope, job.handler as u32);
        let input = v8::String::new(scope, &job.input_json).ok_or_else(too_long)?;
        let info = v8::String::new(scope, &job.info_json).ok_or_else(too_long)?;
        Ok([
            v8::Global::new(scope, v8::Local::<v8::Value>::from(index)),
            v8::Global::new(scope, v8::Local::<v8::Value>::from(input)),
            v8::Global::new(scope, v8::Local::<v8::Value>::from(info)),
        ])
    }

    fn string(&mut self, value: &v8::Global<v8::Value>) -> String {
        let runtime = &mut self.runtime;
        deno_core::scope!(scope, runtime);
        v8::Local::new(scope, value).to_rust_string_lossy(scope)
    }

    /// The limits first: whatever V8 reported after the heap callback or
    /// the watchdog fired is a consequence of that.
    fn settle<T>(&self, r: Result<T, JsError>, deadline_fired: bool) -> Result<T, JsError> {
        if self.heap_exhausted.get() || self.buffers.exhausted() {
            return Err(JsError::HeapLimit {
                limit_bytes: self.host.spec.limits.heap_bytes_max,
            });
        }
        if deadline_fired {
            return Err(self.timeout());
        }
        r
    }

    fn timeout(&self) -> JsError {
        JsError::Timeout {
            deadline_ms: self.deadline_ms,
        }
    }

    /// Turns a deno_core error into ours.
    fn classify(&self, e: CoreError) -> JsError {
        match e.into_kind() {
            CoreErrorKind::Js(js) => self.classify_js(&js),
            CoreErrorKind::PendingPromiseResolution => JsError::InvalidResult {
                reason: "the handler's promise can never settle: nothing it awaits is pending"
                    .into(),
            },
            CoreErrorKind::ExecutionTerminated => self.timeout(),
            other => JsError::InvalidResult {
                reason: cut(&strip_urls(&other.to_string()), ERROR_TEXT_BYTES_MAX),
            },
        }
    }

    /// Classifies a thrown JS value by what V8 throws for each limit.
    fn classify_js(&self, js: &deno_core::error::JsError) -> JsError {
        let name = js.name.clone().unwrap_or_default();
        let message = js.message.clone().unwrap_or_default();
        match (name.as_str(), message.as_str()) {
            ("RangeError", "Maximum call stack size exceeded") => JsError::StackOverflow {
                limit_bytes: self.host.spec.limits.stack_bytes_max,
            },
            ("PermissionDenied", _) if self.host.denied.get().is_some() => {
                JsError::PermissionDenied {
                    permission: self
                        .host
                        .denied
                        .get()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                }
            }
            _ => {
                let message = if js.name.is_none() && js.message.is_none() {
                    let text = js.exception_message.as_str();
                    let text = text.strip_prefix("Uncaught ").unwrap_or(text);
                    text.strip_prefix("(in promise) ")
                        .unwrap_or(text)
                        .to_owned()
                } else {
                    format!("{name}: {message}")
                };
                let stack = self
                    .host
                    .spec
                    .sources
                    .remap_stack(&strip_urls(js.stack.as_deref().unwrap_or("")));
                JsError::Thrown {
                    message: cut(&strip_urls(&message), ERROR_TEXT_BYTES_MAX),
                    stack: cut(&stack, ERROR_TEXT_BYTES_MAX),
                }
            }
        }
    }

    /// The isolate's heap now ([`committed_bytes`]).
    pub fn memory_bytes(&mut self) -> usize {
        committed_bytes(&self.runtime.v8_isolate().get_heap_statistics())
    }
}

/// Takes the bootstrap's entry point and removes [`START_GLOBALS`] before
/// the bundle can see them, through V8's API rather than a script (which
/// every isolate would have to compile). A global that cannot be removed
/// (not configurable) fails the start, as `delete` in strict mode would.
fn start(runtime: &mut JsRuntime) -> Result<v8::Global<v8::Function>, JsError> {
    let fail = |what: String| JsError::Internal(format!("V8 start: {what}"));
    deno_core::scope!(scope, runtime);
    let global = scope.get_current_context().global(scope);
    let mut entry = None;
    for name in START_GLOBALS {
        let key = v8::String::new(scope, name).ok_or_else(|| fail(format!("name `{name}`")))?;
        if entry.is_none() {
            entry = global.get(scope, key.into());
        }
        if global.delete(scope, key.into()) != Some(true) {
            return Err(fail(format!("`{name}` could not be removed")));
        }
    }
    let function = entry
        .and_then(|e| v8::Local::<v8::Function>::try_from(e).ok())
        .ok_or_else(|| fail("no entry point".into()))?;
    Ok(v8::Global::new(scope, function))
}

/// Bundle files appear to V8 under a synthetic URL; plugin authors know
/// them by their bundle paths.
fn strip_urls(text: &str) -> String {
    text.replace(BUNDLE_URL_PREFIX, "")
}
