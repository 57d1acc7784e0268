//! QuickJS isolates through rquickjs.
//!
//! Each isolate is its own `Runtime` (own heap, own limits) living on its own
//! OS thread for its whole life. Pinning avoids the stack-top trap (QuickJS
//! measures stack depth from where the runtime was entered; a runtime hopping
//! threads sees bogus depths) and keeps JS off tokio's workers. The host talks
//! to the thread over a channel; host calls made by JS run as tokio tasks
//! whose results come back over the same channel.
//!
//! The deadline is enforced three ways, because each alone has holes:
//! QuickJS's interrupt handler (JS running), a check between promise jobs
//! (busy promise chains), and `recv_timeout` while JS awaits the host; the
//! async side also gives up after deadline + grace (long native operations).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use extensor_core::manifest::Permission;
use rquickjs::allocator::{Allocator, RustAllocator};
use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::{Declared, WriteOptions};
use rquickjs::promise::PromiseState;
use rquickjs::{
    Context, Ctx, Exception, Function, Module, Object, Persistent, Promise, Runtime,
    Value as JsValue,
};
use tokio::sync::oneshot;

use super::gate::Gate;
use super::host_call::{Admitted, admit};
use super::{
    Alive, Answer, Finished, InvokeJob, IsolateSpec, Loaded, Next, PRELUDE, Queue, RawOutcome,
    SDK_SOURCE, await_answer, refuse_the_rest, run_queued,
};
use crate::bundle::{SDK_MODULE, Sources};
use crate::config::{DEADLINE_GRACE_MS, DeadlineKind, RESULT_BYTES_MAX};
use crate::error::JsError;
use crate::host::CallContext;
use crate::host::calls::{HostCalls, Settled, envelope};
use crate::logs::{LogCapture, LogLevel, cut};
use crate::plugin::{HandlerKind, Registration};

/// The isolate thread's native stack beyond the JS stack limit: room for
/// QuickJS's own C frames, rquickjs glue and the host-call plumbing.
const THREAD_STACK_MARGIN_BYTES: usize = 2 * 1024 * 1024;
/// Handlers one bundle may register (the manifest caps declarations at 256).
const REGISTRATIONS_MAX: usize = 1_024;
/// Characters of a registration key (event type, route, job name).
const REGISTRATION_KEY_CHARS_MAX: usize = 300;
/// Error messages and stacks handed back to the host are cut to this.
const ERROR_TEXT_BYTES_MAX: usize = 8 * 1024;
/// After an invocation, an isolate holding more than this share of its heap
/// limit is discarded rather than reused: the next call would start cramped.
const REUSE_HEAP_SHARE_MAX: f64 = 0.5;

enum Msg {
    /// Invocation number `seq` of this isolate (see `gate`).
    Invoke(Arc<InvokeJob>, u64, oneshot::Sender<Answer>),
    Memory(oneshot::Sender<usize>),
    HostDone {
        seq: u64,
        id: u64,
        settled: Settled,
    },
    Shutdown,
}

/// The host's handle on one isolate thread.
pub(crate) struct Isolate {
    /// Invocations queue here while the thread is busy; it runs them back
    /// to back.
    queue: Queue<Msg>,
    kill: Arc<AtomicBool>,
    pub registrations: Vec<Registration>,
    pub loaded_heap_bytes: usize,
}

impl Isolate {
    /// Spawns the thread, creates the runtime and evaluates the bundle.
    pub async fn start(spec: Arc<IsolateSpec>) -> Result<Isolate, JsError> {
        let (tx, rx) = mpsc::channel();
        let kill = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = oneshot::channel();
        let limit = spec.limits.deadline(DeadlineKind::Interactive)
            + Duration::from_millis(DEADLINE_GRACE_MS);
        let deadline_ms = spec.limits.deadline_ms;
        let thread_tx = tx.clone();
        let thread_kill = kill.clone();
        let gate = Arc::new(Gate::default());
        let thread_gate = gate.clone();
        std::thread::Builder::new()
            .name("extensor-js".into())
            .stack_size(spec.limits.stack_bytes_max + THREAD_STACK_MARGIN_BYTES)
            .spawn(move || {
                {
                    let _alive = Alive::enter(&spec.alive);
                    isolate_main(spec, &rx, thread_tx, thread_kill, &thread_gate, ready_tx);
                }
                refuse_the_rest(&rx, |msg| {
                    if let Msg::Invoke(_, _, reply) = msg {
                        let _ = reply.send(Answer::NotRun);
                    }
                });
            })
            .map_err(|e| JsError::Internal(format!("spawn isolate thread: {e}")))?;
        let queue = Queue::new(tx, gate);
        match tokio::time::timeout(limit, ready_rx).await {
            Ok(Ok(Ok(loaded))) => Ok(Isolate {
                queue,
                kill,
                registrations: loaded.registrations,
                loaded_heap_bytes: loaded.heap_bytes,
            }),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(JsError::Internal(
                "isolate thread ended during start".into(),
            )),
            Err(_) => {
                queue.gate.close(|| kill.store(true, Ordering::Relaxed));
                queue.send(Msg::Shutdown);
                Err(JsError::Timeout { deadline_ms })
            }
        }
    }

    pub fn is_closed(&self) -> bool {
        self.queue.gate.is_closed()
    }

    /// Queues one invocation; gives up (and kills the isolate) once it has
    /// run for deadline + grace.
    pub async fn invoke(&self, job: Arc<InvokeJob>) -> Answer {
        let deadline = job.deadline;
        let (reply_tx, reply_rx) = oneshot::channel();
        let Some(seq) = self
            .queue
            .send_invocation(|seq| Msg::Invoke(job, seq, reply_tx))
        else {
            return Answer::NotRun;
        };
        await_answer(reply_rx, &self.queue.gate, seq, deadline, || {
            self.kill.store(true, Ordering::Relaxed)
        })
        .await
    }

    /// Bytes QuickJS has allocated for this isolate (`malloc_size`).
    pub async fn memory_bytes(&self) -> Option<usize> {
        let (tx, rx) = oneshot::channel();
        if !self.queue.send(Msg::Memory(tx)) {
            return None;
        }
        rx.await.ok()
    }
}

impl Drop for Isolate {
    fn drop(&mut self) {
        // If the thread is still busy (abandoned on timeout), the kill flag
        // makes the interrupt handler stop it at the next check.
        self.queue
            .gate
            .close(|| self.kill.store(true, Ordering::Relaxed));
        self.queue.send(Msg::Shutdown);
    }
}

fn isolate_main(
    spec: Arc<IsolateSpec>,
    rx: &mpsc::Receiver<Msg>,
    tx: mpsc::Sender<Msg>,
    kill: Arc<AtomicBool>,
    gate: &Gate,
    ready: oneshot::Sender<Result<Loaded, JsError>>,
) {
    let engine = match Engine::new(spec, tx, kill) {
        Ok(e) => e,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    match engine.load() {
        Ok(loaded) => {
            if ready.send(Ok(loaded)).is_err() {
                engine.shutdown();
                return;
            }
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            engine.shutdown();
            return;
        }
    }
    while let Some(msg) = engine.next(rx) {
        match msg {
            Msg::Shutdown => break,
            Msg::Invoke(job, seq, reply) => {
                if let Next::Stop = run_queued(gate, seq, reply, || engine.invoke(&job, rx)) {
                    break;
                }
            }
            Msg::Memory(reply) => {
                let _ = reply.send(engine.memory_bytes());
            }
            Msg::HostDone { .. } => {} // late answer to an invocation that already ended
        }
    }
    engine.shutdown();
}

/// State shared between the engine and the deadline interrupt handler.
struct Clock {
    deadline: Cell<Option<Instant>>,
    interrupted: Cell<bool>,
    /// Set by the allocator when the heap limit refused an allocation.
    heap_exhausted: Rc<Cell<bool>>,
    /// Bytes the allocator has handed out, updated on every allocation.
    heap_used: Rc<Cell<usize>>,
    /// The most `heap_used` has been since the running invocation started
    /// (its in-call high-water mark), kept by the allocator.
    heap_peak: Rc<Cell<usize>>,
    kill: Arc<AtomicBool>,
}

impl Clock {
    fn expired(&self) -> bool {
        self.interrupted.get()
            || self.kill.load(Ordering::Relaxed)
            || self.deadline.get().is_some_and(|d| Instant::now() >= d)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Loading,
    Ready,
}

/// Per-isolate state reachable from native functions called by JS.
struct State {
    spec: Arc<IsolateSpec>,
    tx: mpsc::Sender<Msg>,
    clock: Rc<Clock>,
    phase: Cell<Phase>,
    handlers: RefCell<Vec<Persistent<Function<'static>>>>,
    registrations: RefCell<Vec<Registration>>,
    prelude: RefCell<Option<[Persistent<Function<'static>>; 2]>>,
    calls: RefCell<HashMap<u64, Persistent<Function<'static>>>>,
    /// Count and bytes of host calls in flight (engine-neutral, host/calls.rs).
    host_calls: HostCalls,
    next_call: Cell<u64>,
    seq: Cell<u64>,
    logs: RefCell<LogCapture>,
    denied: Cell<Option<Permission>>,
    /// The deadline of what runs now, for naming it in `Timeout`.
    deadline_ms: Cell<u64>,
    call_cx: RefCell<Option<CallContext>>,
}

impl State {
    /// Drops every JS value held from Rust; must run before the runtime goes.
    fn clear(&self) {
        self.handlers.borrow_mut().clear();
        self.prelude.borrow_mut().take();
        self.calls.borrow_mut().clear();
    }

    fn register<'js>(
        &self,
        ctx: &Ctx<'js>,
        kind: &str,
        key: String,
        extra: String,
        f: Function<'js>,
    ) -> rquickjs::Result<()> {
        if self.phase.get() != Phase::Loading {
            return Err(Exception::throw_message(
                ctx,
                "handlers can only be registered while the bundle loads (at module top level)",
            ));
        }
        let Some(kind) = HandlerKind::parse(kind) else {
            return Err(Exception::throw_type(ctx, "unknown handler kind"));
        };
        if self.handlers.borrow().len() >= REGISTRATIONS_MAX
            || key.chars().count() > REGISTRATION_KEY_CHARS_MAX
        {
            return Err(Exception::throw_message(
                ctx,
                "too many handlers or a name too long",
            ));
        }
        let schedule = (kind == HandlerKind::Job).then_some(extra);
        self.registrations.borrow_mut().push(Registration {
            kind,
            key,
            schedule,
        });
        self.handlers.borrow_mut().push(Persistent::save(ctx, f));
        Ok(())
    }

    /// Admits a host call (engine-neutral checks, then the isolate's
    /// host-call budget) and starts it on tokio.
    /// Returns the call id, or the error to hand straight back to JS.
    fn start_call(&self, op: &str, args: &str) -> Result<u64, JsError> {
        let cx = self.call_cx.borrow().clone();
        let Admitted { op, cx } = admit(&self.spec, cx, op, args).map_err(|r| {
            if r.denied.is_some() {
                self.denied.set(r.denied);
            }
            r.error
        })?;
        let ticket = self.host_calls.admit(args.len())?;
        let id = self.next_call.get() + 1;
        self.next_call.set(id);
        let (seq, tx, services) = (self.seq.get(), self.tx.clone(), self.spec.services.clone());
        self.spec.tokio.spawn(async move {
            let settled = ticket.finish(op.run(&services, &cx).await);
            let _ = tx.send(Msg::HostDone { seq, id, settled });
        });
        Ok(id)
    }
}

struct BundleResolver(Arc<Sources>);

impl Resolver for BundleResolver {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _a: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        crate::bundle::resolve(base, name, |p| self.0.modules.contains_key(p))
            .map_err(|why| rquickjs::Error::new_resolving_message(base, name, why))
    }
}

struct BundleLoader(Arc<Sources>);

impl Loader for BundleLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _a: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        if name == SDK_MODULE {
            return Module::declare(ctx.clone(), name, SDK_SOURCE);
        }
        let src = self
            .0
            .modules
            .get(name)
            .ok_or_else(|| rquickjs::Error::new_loading_message(name, "not in the bundle"))?;
        Module::declare(ctx.clone(), name, src.as_str())
    }
}

/// QuickJS's own memory limit only makes allocations fail, and the error it
/// then throws may itself fail to allocate (plugins see `null`) or be caught.
/// Enforcing the limit in the allocator lets the host know for certain that
/// the heap limit was hit, whatever JS did about it.
struct LimitAllocator {
    inner: RustAllocator,
    used_bytes: usize,
    /// `used_bytes` mirrored for the engine: O(1), unlike QuickJS's own
    /// memory statistics which walk the whole heap.
    used_shared: Rc<Cell<usize>>,
    /// The high-water mark of `used_bytes`; the engine lowers it to the
    /// current use when an invocation starts.
    peak_shared: Rc<Cell<usize>>,
    limit_bytes: usize,
    exhausted: Rc<Cell<bool>>,
}

impl LimitAllocator {
    fn publish(&self) {
        self.used_shared.set(self.used_bytes);
        if self.used_bytes > self.peak_shared.get() {
            self.peak_shared.set(self.used_bytes);
        }
    }

    fn admit(&mut self, more: usize, less: usize) -> bool {
        let after = (self.used_bytes - less.min(self.used_bytes)).saturating_add(more);
        if after > self.limit_bytes {
            self.exhausted.set(true);
            return false;
        }
        true
    }
}

// SAFETY: every pointer is produced and sized by `RustAllocator`, which this
// only wraps; the byte count is bookkeeping and never affects pointers.
unsafe impl Allocator for LimitAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.admit(size, 0) {
            return std::ptr::null_mut();
        }
        let p = self.inner.alloc(size);
        if !p.is_null() {
            self.used_bytes += unsafe { RustAllocator::usable_size(p) };
            self.publish();
        }
        p
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let Some(total) = count.checked_mul(size) else {
            return std::ptr::null_mut();
        };
        if !self.admit(total, 0) {
            return std::ptr::null_mut();
        }
        let p = self.inner.calloc(count, size);
        if !p.is_null() {
            self.used_bytes += unsafe { RustAllocator::usable_size(p) };
            self.publish();
        }
        p
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        if !ptr.is_null() {
            let size = unsafe { RustAllocator::usable_size(ptr) };
            self.used_bytes = self.used_bytes.saturating_sub(size);
            self.publish();
        }
        unsafe { self.inner.dealloc(ptr) }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        let old = if ptr.is_null() {
            0
        } else {
            unsafe { RustAllocator::usable_size(ptr) }
        };
        if !self.admit(new_size, old) {
            return std::ptr::null_mut();
        }
        let p = unsafe { self.inner.realloc(ptr, new_size) };
        if !p.is_null() {
            self.used_bytes =
                self.used_bytes.saturating_sub(old) + unsafe { RustAllocator::usable_size(p) };
            self.publish();
        }
        p
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        unsafe { RustAllocator::usable_size(ptr) }
    }
}

struct Engine {
    state: Rc<State>,
    ctx: Context,
    rt: Runtime,
    /// Messages that arrived while an invocation awaited a host call, in
    /// arrival order; served before the channel.
    held: RefCell<VecDeque<Msg>>,
}

impl Engine {
    fn new(
        spec: Arc<IsolateSpec>,
        tx: mpsc::Sender<Msg>,
        kill: Arc<AtomicBool>,
    ) -> Result<Engine, JsError> {
        let clock = Rc::new(Clock {
            deadline: Cell::new(None),
            interrupted: Cell::new(false),
            heap_exhausted: Rc::new(Cell::new(false)),
            heap_used: Rc::new(Cell::new(0)),
            heap_peak: Rc::new(Cell::new(0)),
            kill,
        });
        let allocator = LimitAllocator {
            inner: RustAllocator,
            used_bytes: 0,
            used_shared: clock.heap_used.clone(),
            peak_shared: clock.heap_peak.clone(),
            limit_bytes: spec.limits.heap_bytes_max,
            exhausted: clock.heap_exhausted.clone(),
        };
        let rt = Runtime::new_with_alloc(allocator).map_err(internal)?;
        rt.set_max_stack_size(spec.limits.stack_bytes_max);
        let handler_clock = clock.clone();
        rt.set_interrupt_handler(Some(Box::new(move || {
            let fire = handler_clock.expired();
            if fire {
                handler_clock.interrupted.set(true);
            }
            fire
        })));
        rt.set_loader(
            BundleResolver(spec.sources.clone()),
            BundleLoader(spec.sources.clone()),
        );
        let ctx = Context::full(&rt).map_err(internal)?;
        let state = Rc::new(State {
            spec,
            tx,
            clock,
            phase: Cell::new(Phase::Loading),
            handlers: RefCell::default(),
            registrations: RefCell::default(),
            prelude: RefCell::default(),
            calls: RefCell::default(),
            host_calls: HostCalls::default(),
            next_call: Cell::new(0),
            seq: Cell::new(0),
            logs: RefCell::default(),
            denied: Cell::new(None),
            deadline_ms: Cell::new(0),
            call_cx: RefCell::default(),
        });
        ctx.with(|ctx| install(&ctx, &state)).map_err(internal)?;
        Ok(Engine {
            state,
            ctx,
            rt,
            held: RefCell::default(),
        })
    }

    /// Evaluates the entry module (and what it imports) under the interactive deadline.
    fn load(&self) -> Result<Loaded, JsError> {
        let spec = self.state.spec.clone();
        let deadline = Instant::now() + spec.limits.deadline(DeadlineKind::Interactive);
        self.state.clock.deadline.set(Some(deadline));
        self.state.deadline_ms.set(spec.limits.deadline_ms);
        let result = self.ctx.with(|ctx| {
            let src = spec.sources.modules.get(&spec.entry).ok_or_else(|| {
                JsError::InvalidBundle(vec![crate::error::Problem::new(
                    spec.entry.clone(),
                    "entry file is missing",
                )])
            })?;
            let (_module, promise) =
                Module::declare(ctx.clone(), spec.entry.as_str(), src.as_str())
                    .and_then(|m| m.eval())
                    .map_err(|e| self.js_error(&ctx, e))?;
            self.drive(&ctx, &promise, deadline, None).map(|_| ())
        });
        self.state.clock.deadline.set(None);
        self.state.phase.set(Phase::Ready);
        self.reclassify_oom(result).map(|()| Loaded {
            registrations: self.state.registrations.borrow().clone(),
            heap_bytes: self.state.clock.heap_used.get(),
        })
    }

    fn invoke(&self, job: &InvokeJob, rx: &mpsc::Receiver<Msg>) -> Finished {
        let s = &self.state;
        s.seq.set(s.seq.get() + 1);
        let deadline = Instant::now() + job.deadline;
        s.clock.deadline.set(Some(deadline));
        s.clock.interrupted.set(false);
        s.clock.heap_exhausted.set(false);
        s.clock.heap_peak.set(s.clock.heap_used.get());
        s.deadline_ms.set(job.deadline.as_millis() as u64);
        s.denied.set(None);
        *s.logs.borrow_mut() = LogCapture::default();
        *s.call_cx.borrow_mut() = Some(CallContext {
            scope: s.spec.scope.clone(),
            allowed_hosts: s.spec.allowed_hosts.clone(),
            causation_id: job.causation_id.clone(),
            chain_depth: job.chain_depth,
            deadline,
        });
        let result = self.ctx.with(|ctx| self.run_job(&ctx, job, deadline, rx));
        s.call_cx.borrow_mut().take();
        s.calls.borrow_mut().clear();
        s.clock.deadline.set(None);
        let result = self.reclassify_oom(result);
        let crowded = s.clock.heap_used.get() as f64
            > s.spec.limits.heap_bytes_max as f64 * REUSE_HEAP_SHARE_MAX;
        let discard = crowded || result.as_ref().err().is_some_and(JsError::poisons_isolate);
        let logs = std::mem::take(&mut *s.logs.borrow_mut()).finish();
        Finished {
            result,
            logs,
            discard,
            heap_bytes: s.clock.heap_used.get(),
            heap_peak_bytes: s.clock.heap_peak.get().max(s.clock.heap_used.get()),
        }
    }

    fn run_job<'js>(
        &self,
        ctx: &Ctx<'js>,
        job: &InvokeJob,
        deadline: Instant,
        rx: &mpsc::Receiver<Msg>,
    ) -> Result<RawOutcome, JsError> {
        let err = |e| self.js_error(ctx, e);
        let handler = self.state.handlers.borrow().get(job.handler).cloned();
        let handler =
            handler.ok_or_else(|| JsError::Internal("handler index out of range".into()))?;
        let handler = handler.restore(ctx).map_err(err)?;
        let [make_ctx, run] = self
            .state
            .prelude
            .borrow()
            .clone()
            .ok_or_else(|| JsError::Internal("prelude missing".into()))?;
        let (make_ctx, run) = (
            make_ctx.restore(ctx).map_err(err)?,
            run.restore(ctx).map_err(err)?,
        );
        let js_ctx: JsValue = make_ctx.call((job.info_json.as_str(),)).map_err(err)?;
        let input = ctx.json_parse(job.input_json.as_str()).map_err(err)?;
        let promise: Promise = run.call((handler, input, js_ctx)).map_err(err)?;
        let value = self.drive(ctx, &promise, deadline, Some(rx))?;
        let Some(json) = value.as_string().and_then(|s| s.to_string().ok()) else {
            return Err(JsError::InvalidResult {
                reason: "handler result could not be serialised".into(),
            });
        };
        if json.len() > RESULT_BYTES_MAX {
            return Err(JsError::InvalidResult {
                reason: format!(
                    "result is {} bytes of JSON; the limit is {RESULT_BYTES_MAX}",
                    json.len()
                ),
            });
        }
        let value = serde_json::from_str(&json).map_err(|e| JsError::InvalidResult {
            reason: e.to_string(),
        })?;
        Ok(RawOutcome { value })
    }

    /// Runs promise jobs and host-call completions until `promise` settles.
    fn drive<'js>(
        &self,
        ctx: &Ctx<'js>,
        promise: &Promise<'js>,
        deadline: Instant,
        rx: Option<&mpsc::Receiver<Msg>>,
    ) -> Result<JsValue<'js>, JsError> {
        let timeout = || JsError::Timeout {
            deadline_ms: self.state.deadline_ms.get(),
        };
        loop {
            while ctx.execute_pending_job() {
                if self.state.clock.expired() {
                    return Err(timeout());
                }
            }
            if self.state.clock.expired() {
                return Err(timeout());
            }
            match promise.state() {
                PromiseState::Resolved => {
                    return promise
                        .result::<JsValue>()
                        .unwrap_or(Ok(JsValue::new_null(ctx.clone())))
                        .map_err(|e| self.js_error(ctx, e));
                }
                PromiseState::Rejected => {
                    let _ = promise.result::<JsValue>();
                    let reason = ctx.catch();
                    return Err(self.classify(reason));
                }
                PromiseState::Pending => {}
            }
            let rx = match rx {
                Some(rx) if !self.state.calls.borrow().is_empty() => rx,
                _ => {
                    return Err(JsError::InvalidResult {
                        reason:
                            "the handler's promise can never settle: nothing it awaits is pending"
                                .into(),
                    });
                }
            };
            self.wait_host(ctx, rx, deadline)
                .map_err(|e| e.unwrap_or_else(timeout))?;
        }
    }

    /// Waits for one host-call completion and resolves its promise.
    /// `Err(None)` means the deadline passed or the host abandoned us.
    fn wait_host<'js>(
        &self,
        ctx: &Ctx<'js>,
        rx: &mpsc::Receiver<Msg>,
        deadline: Instant,
    ) -> Result<(), Option<JsError>> {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Msg::HostDone { seq, id, settled }) if seq == self.state.seq.get() => {
                let resolve = self.state.calls.borrow_mut().remove(&id);
                if let Some(resolve) = resolve {
                    let resolve = resolve
                        .restore(ctx)
                        .map_err(|e| Some(self.js_error(ctx, e)))?;
                    resolve
                        .call::<_, ()>((settled.envelope.as_str(),))
                        .map_err(|e| Some(self.js_error(ctx, e)))?;
                }
                Ok(())
            }
            Ok(Msg::HostDone { .. }) => Ok(()),
            Ok(msg @ (Msg::Memory(_) | Msg::Invoke(..))) => {
                // Queued behind this invocation: handled once it is done.
                self.held.borrow_mut().push_back(msg);
                Ok(())
            }
            Ok(Msg::Shutdown) | Err(_) => Err(None),
        }
    }

    /// Turns an rquickjs error (usually a pending JS exception) into ours.
    fn js_error(&self, ctx: &Ctx<'_>, e: rquickjs::Error) -> JsError {
        match e {
            rquickjs::Error::Exception => self.classify(ctx.catch()),
            rquickjs::Error::Allocation => JsError::HeapLimit {
                limit_bytes: self.state.spec.limits.heap_bytes_max,
            },
            other if self.state.clock.interrupted.get() => {
                let _ = other;
                JsError::Timeout {
                    deadline_ms: self.state.deadline_ms.get(),
                }
            }
            other => JsError::InvalidResult {
                reason: cut(&other.to_string(), ERROR_TEXT_BYTES_MAX),
            },
        }
    }

    /// Classifies a thrown JS value by what QuickJS throws for each limit.
    fn classify(&self, v: JsValue<'_>) -> JsError {
        let limits = &self.state.spec.limits;
        if self.state.clock.interrupted.get() {
            return JsError::Timeout {
                deadline_ms: self.state.deadline_ms.get(),
            };
        }
        let Some(obj) = v.as_object() else {
            let text = v
                .as_string()
                .and_then(|s| s.to_string().ok())
                .unwrap_or_else(|| format!("{:?}", v.type_of()));
            return JsError::Thrown {
                message: cut(&text, ERROR_TEXT_BYTES_MAX),
                stack: String::new(),
            };
        };
        let text = |k: &str| {
            obj.get::<_, Option<String>>(k)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        let (name, message, stack) = (text("name"), text("message"), text("stack"));
        if self.state.clock.interrupted.get() {
            return JsError::Timeout {
                deadline_ms: self.state.deadline_ms.get(),
            };
        }
        match (name.as_str(), message.as_str()) {
            ("InternalError", "out of memory") => JsError::HeapLimit {
                limit_bytes: limits.heap_bytes_max,
            },
            ("RangeError", "Maximum call stack size exceeded") => JsError::StackOverflow {
                limit_bytes: limits.stack_bytes_max,
            },
            ("PermissionDenied", _) if self.state.denied.get().is_some() => {
                JsError::PermissionDenied {
                    permission: self
                        .state
                        .denied
                        .get()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                }
            }
            _ => JsError::Thrown {
                message: cut(&format!("{name}: {message}"), ERROR_TEXT_BYTES_MAX),
                stack: cut(
                    &self.state.spec.sources.remap_stack(&stack),
                    ERROR_TEXT_BYTES_MAX,
                ),
            },
        }
    }

    /// Hitting the heap limit ends the invocation even if JS caught the
    /// error (or the error itself failed to allocate and JS saw `null`): the
    /// limit was exceeded and the isolate's state is suspect.
    fn reclassify_oom<T>(&self, r: Result<T, JsError>) -> Result<T, JsError> {
        match r {
            Err(JsError::Timeout { .. }) => r,
            _ if self.state.clock.heap_exhausted.get() => Err(JsError::HeapLimit {
                limit_bytes: self.state.spec.limits.heap_bytes_max,
            }),
            other => other,
        }
    }

    /// The next message: one held while busy, else the channel's.
    fn next(&self, rx: &mpsc::Receiver<Msg>) -> Option<Msg> {
        let held = self.held.borrow_mut().pop_front();
        held.or_else(|| super::next_message(rx).ok())
    }

    fn memory_bytes(&self) -> usize {
        usize::try_from(self.rt.memory_usage().malloc_size).unwrap_or(0)
    }

    fn shutdown(self) {
        self.state.clear();
        // Field order drops the context before the runtime.
        let Engine {
            state,
            ctx,
            rt,
            held,
        } = self;
        // Invocations queued behind the last one never ran here.
        for msg in held.into_inner() {
            if let Msg::Invoke(_, _, reply) = msg {
                let _ = reply.send(Answer::NotRun);
            }
        }
        drop(ctx);
        drop(state);
        rt.run_gc();
        drop(rt);
    }
}

/// Installs the native functions and evaluates the prelude.
fn install<'js>(ctx: &Ctx<'js>, state: &Rc<State>) -> rquickjs::Result<()> {
    let host = Object::new(ctx.clone())?;
    let s = state.clone();
    host.set(
        "register",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, kind: String, key: String, extra: String, f: Function<'js>| {
                s.register(&ctx, &kind, key, extra, f)
            },
        )?,
    )?;
    let s = state.clone();
    host.set(
        "log",
        Function::new(ctx.clone(), move |level: String, message: String| {
            s.logs.borrow_mut().push(LogLevel::parse(&level), &message);
        })?,
    )?;
    let s = state.clone();
    host.set(
        "call",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, op: String, args: String| -> rquickjs::Result<Promise<'js>> {
                let (promise, resolve, _reject) = ctx.promise()?;
                match s.start_call(&op, &args) {
                    Ok(id) => {
                        s.calls
                            .borrow_mut()
                            .insert(id, Persistent::save(&ctx, resolve));
                    }
                    Err(e) => resolve.call::<_, ()>((envelope(Err(e)),))?,
                }
                Ok(promise)
            },
        )?,
    )?;
    let (module, promise) = prelude_module(ctx)?.eval()?;
    promise.finish::<()>()?;
    let prelude: Function = module.get("default")?;
    let out: Object = prelude.call((host,))?;
    let make_ctx: Function = out.get("makeCtx")?;
    let run: Function = out.get("run")?;
    *state.prelude.borrow_mut() =
        Some([Persistent::save(ctx, make_ctx), Persistent::save(ctx, run)]);
    Ok(())
}

/// The prelude compiled once per process: parsing it was most of an
/// isolate's cold start. `'static` because QuickJS reads bytecode as ROM
/// data and keeps pointing into it for the runtime's life.
static PRELUDE_BYTECODE: OnceLock<Vec<u8>> = OnceLock::new();

fn prelude_module<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Module<'js, Declared>> {
    if let Some(bytes) = PRELUDE_BYTECODE.get() {
        // SAFETY: the bytes were written by `Module::write` of this same
        // QuickJS build in this process, and live for the whole process.
        return unsafe { Module::load(ctx.clone(), bytes) };
    }
    let source = format!("export default {PRELUDE};");
    let module = Module::declare(ctx.clone(), "extensor:prelude", source)?;
    let bytes = module.write(WriteOptions::default())?;
    let _ = PRELUDE_BYTECODE.set(bytes);
    Ok(module)
}

fn internal(e: rquickjs::Error) -> JsError {
    JsError::Internal(format!("quickjs: {e}"))
}
