//! The engine boundary. Everything engine-specific lives below this module;
//! the rest of the crate speaks [`IsolateSpec`], [`InvokeJob`] and
//! [`RawOutcome`], and holds an [`Isolate`] whichever engine runs it.
//! `quickjs` and `v8` (cargo feature `v8`) are siblings with the same
//! handle API; `host_call` is the engine-neutral half of every `ctx` call,
//! `gate` the handshake that lets invocations queue on a busy isolate
//! thread (its [`Queue`] here), so a busy isolate goes from one invocation
//! straight to the next instead of sleeping until the host hands it one.

mod gate;
pub(crate) mod host_call;
mod quickjs;
#[cfg(feature = "v8")]
mod v8;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

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

    /// Heap bytes it held right after the bundle loaded.
    pub fn loaded_heap_bytes(&self) -> usize {
        match self {
            Isolate::QuickJs(i) => i.loaded_heap_bytes,
            #[cfg(feature = "v8")]
            Isolate::V8(i) => i.loaded_heap_bytes,
        }
    }

    /// Queues one invocation and waits for its answer; the isolate must be
    /// discarded if the answer's `discard` is set. [`Answer::NotRun`] when
    /// the isolate closed before the invocation started (run it elsewhere).
    pub async fn invoke(&self, job: Arc<InvokeJob>) -> Answer {
        match self {
            Isolate::QuickJs(i) => i.invoke(job).await,
            #[cfg(feature = "v8")]
            Isolate::V8(i) => i.invoke(job).await,
        }
    }

    /// Killed or discarded: nothing more runs on it.
    pub fn is_closed(&self) -> bool {
        match self {
            Isolate::QuickJs(i) => i.is_closed(),
            #[cfg(feature = "v8")]
            Isolate::V8(i) => i.is_closed(),
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
    pub tokio: tokio::runtime::Handle,
    pub engine: JsEngine,
    /// The sandbox's count of isolate threads alive ([`Alive`]).
    pub alive: Arc<AtomicUsize>,
    /// Heap bytes the warm isolates of all the sandbox's pools held after
    /// their last invocation, kept by the pools (`pool::HeapShare`).
    pub warm_heap: Arc<AtomicUsize>,
    /// The sandbox's isolates made ahead of demand (only V8 takes them).
    #[cfg_attr(not(feature = "v8"), allow(dead_code))]
    pub spares: Arc<Spares>,
}

/// Isolates made before an installation needs them, so its first isolate
/// skips the engine's own start. V8 only: deserialising V8's start-up
/// snapshot is most of its cold start, while a whole QuickJS cold start is
/// a fraction of a V8 one (docs/BENCHMARKS.md). Owned by the sandbox.
pub(crate) struct Spares {
    #[cfg(feature = "v8")]
    v8: v8::Spares,
}

impl Spares {
    /// `count` spares (none unless the engine is V8) made with the
    /// platform's `limits`, lazily: at the first isolate start that could
    /// use one, or at [`ready`](Self::ready).
    pub fn new(engine: JsEngine, count: usize, limits: &Limits) -> Spares {
        let count = if engine == JsEngine::V8 { count } else { 0 };
        #[cfg(not(feature = "v8"))]
        let _ = (count, limits);
        Spares {
            #[cfg(feature = "v8")]
            v8: v8::Spares::new(count, limits),
        }
    }

    /// Makes the spares now and waits until their runtimes exist.
    pub async fn ready(&self) {
        #[cfg(feature = "v8")]
        self.v8.ready().await;
    }

    /// Spare threads alive that no installation has taken.
    pub fn unassigned(&self) -> usize {
        #[cfg(feature = "v8")]
        return self.v8.unassigned();
        #[cfg(not(feature = "v8"))]
        0
    }

    /// Isolates started from a spare, ever.
    pub fn used(&self) -> u64 {
        #[cfg(feature = "v8")]
        return self.v8.used();
        #[cfg(not(feature = "v8"))]
        0
    }
}

impl std::fmt::Debug for Spares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spares")
            .field("unassigned", &self.unassigned())
            .field("used", &self.used())
            .finish()
    }
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
    /// Heap bytes it holds once loaded (as [`Finished::heap_bytes`]), sent
    /// with the answer so a new isolate needs no second round trip.
    pub heap_bytes: usize,
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
    /// The most heap bytes the isolate held at any point of the invocation
    /// (at least `heap_bytes`): QuickJS counts every allocation, V8 samples
    /// its heap before every garbage collection and at the end.
    pub heap_peak_bytes: usize,
}

impl Finished {
    /// An invocation that produced no outcome; the isolate is not reused.
    pub(crate) fn failed(e: JsError) -> Finished {
        Finished {
            result: Err(e),
            logs: Vec::new(),
            discard: true,
            heap_bytes: 0,
            heap_peak_bytes: 0,
        }
    }
}

/// What an isolate thread answers to one queued invocation.
pub(crate) enum Answer {
    Ran(Finished),
    /// The isolate closed (killed, or discarded after an earlier
    /// invocation) before this one started: nothing of it ran.
    NotRun,
}

/// The host's side of an isolate thread's queue: numbers invocations in
/// the order they are sent (the [`gate`]'s `seq`), so the order the thread
/// sees is the order of the numbers.
pub(crate) struct Queue<M> {
    tx: Mutex<(u64, mpsc::Sender<M>)>,
    pub gate: Arc<gate::Gate>,
}

impl<M> Queue<M> {
    pub fn new(tx: mpsc::Sender<M>, gate: Arc<gate::Gate>) -> Queue<M> {
        Queue {
            tx: Mutex::new((0, tx)),
            gate,
        }
    }

    /// Sends a message that is not an invocation; `false` if the thread is gone.
    pub fn send(&self, msg: M) -> bool {
        lock(&self.tx).1.send(msg).is_ok()
    }

    /// Sends invocation number `seq` (made by `make`); `None` if the thread is gone.
    pub fn send_invocation(&self, make: impl FnOnce(u64) -> M) -> Option<u64> {
        let mut tx = lock(&self.tx);
        let seq = tx.0 + 1;
        tx.1.send(make(seq)).ok()?;
        tx.0 = seq;
        Some(seq)
    }
}

/// The host side of one queued invocation, shared by both engines: waits
/// for the isolate thread's answer until the invocation has run for its
/// deadline plus [`DEADLINE_GRACE_MS`](crate::config::DEADLINE_GRACE_MS)
/// (for native work that never checks for interrupts), then calls
/// `terminate` through the gate, which closes the isolate. Time spent
/// queued behind other invocations does not count: each of those has the
/// same limit of its own.
pub(crate) async fn await_answer(
    mut reply: tokio::sync::oneshot::Receiver<Answer>,
    gate: &gate::Gate,
    seq: u64,
    deadline: Duration,
    terminate: impl Fn(),
) -> Answer {
    let limit = deadline + Duration::from_millis(crate::config::DEADLINE_GRACE_MS);
    let mut until = Instant::now() + limit;
    let mut waiting = Waiting {
        gate,
        seq,
        terminate: &terminate,
        answered: false,
    };
    loop {
        let waited = Wait {
            until,
            seq,
            deadline,
        };
        match await_once(&mut reply, waited, gate, &terminate).await {
            Ok(answer) => {
                waiting.answered = true;
                return answer;
            }
            Err(at) => until = at,
        }
    }
}

struct Wait {
    until: Instant,
    seq: u64,
    deadline: Duration,
}

/// One wait for the answer, up to `until`; `Err` with when to look again.
async fn await_once(
    reply: &mut tokio::sync::oneshot::Receiver<Answer>,
    w: Wait,
    gate: &gate::Gate,
    terminate: &impl Fn(),
) -> Result<Answer, Instant> {
    let deadline_ms = w.deadline.as_millis() as u64;
    let limit = w.deadline + Duration::from_millis(crate::config::DEADLINE_GRACE_MS);
    match tokio::time::timeout_at(w.until.into(), reply).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Ok(Answer::Ran(Finished::failed(JsError::Internal(
            "isolate thread ended during the invocation".into(),
        )))),
        Err(_) => match gate.overdue(w.seq, limit, terminate) {
            gate::Overdue::Wait(at) => Err(at),
            gate::Overdue::Killed => Ok(Answer::Ran(Finished::failed(JsError::Timeout {
                deadline_ms,
            }))),
            gate::Overdue::Abandon => Ok(Answer::NotRun),
        },
    }
}

/// An invocation the host still waits for; if the waiting future is
/// dropped first (the HTTP caller went away), the gate skips or stops it.
struct Waiting<'a, F: Fn()> {
    gate: &'a gate::Gate,
    seq: u64,
    terminate: &'a F,
    answered: bool,
}

impl<F: Fn()> Drop for Waiting<'_, F> {
    fn drop(&mut self) {
        if !self.answered {
            self.gate.cancel(self.seq, self.terminate);
        }
    }
}

/// What an isolate thread does after one message.
pub(crate) enum Next {
    /// Takes the next message.
    Continue,
    /// Stops: the isolate is discarded or closed.
    Stop,
}

/// Thread side of one queued invocation, on either engine: asks the gate
/// whether it may start (skipped when its caller went away, answered as not
/// run when the isolate closed meanwhile), runs it with `run`, and answers.
pub(crate) fn run_queued(
    gate: &gate::Gate,
    seq: u64,
    reply: tokio::sync::oneshot::Sender<Answer>,
    run: impl FnOnce() -> Finished,
) -> Next {
    match gate.begin(seq) {
        gate::Begin::Run => {}
        gate::Begin::Skip => return Next::Continue,
        gate::Begin::Closed => {
            let _ = reply.send(Answer::NotRun);
            return Next::Stop;
        }
    }
    if answer(gate, run(), reply) {
        Next::Continue
    } else {
        Next::Stop
    }
}

/// Thread side, after an invocation: closes the gate if the isolate is
/// discarded (by its own verdict, or because the host killed it meanwhile),
/// so nothing queued behind it starts, then answers. `false` when the
/// thread must stop.
fn answer(
    gate: &gate::Gate,
    mut finished: Finished,
    reply: tokio::sync::oneshot::Sender<Answer>,
) -> bool {
    gate.end();
    finished.discard |= gate.is_closed();
    let keep = !finished.discard;
    if !keep {
        gate.close(|| {});
    }
    let _ = reply.send(Answer::Ran(finished));
    keep
}

/// How long an idle isolate thread keeps looking for its next message
/// before it sleeps. Under a steady stream of invocations the next one
/// usually comes within this, and a thread that never slept needs no
/// wake-up: a futex wake, and on a VM whose vCPU halted meanwhile, a
/// wake-up through the hypervisor (40 µs on the benchmark VM, more than a
/// whole warm hook; docs/BENCHMARKS.md). Bounded so that an idle server
/// spends at most this much CPU after each invocation.
pub(crate) const IDLE_LOOK_US: u64 = 50;

/// The thread side's next message: looks for [`IDLE_LOOK_US`], yielding
/// its core to any other runnable thread between looks, then sleeps on
/// the channel. `Err` once the host dropped its handle.
pub(crate) fn next_message<M>(rx: &mpsc::Receiver<M>) -> Result<M, mpsc::RecvError> {
    let until = Instant::now() + Duration::from_micros(IDLE_LOOK_US);
    loop {
        match rx.try_recv() {
            Ok(msg) => return Ok(msg),
            Err(mpsc::TryRecvError::Disconnected) => return Err(mpsc::RecvError),
            Err(mpsc::TryRecvError::Empty) if Instant::now() < until => {
                std::thread::yield_now();
            }
            Err(mpsc::TryRecvError::Empty) => return rx.recv(),
        }
    }
}

/// Thread side, once an isolate is discarded and its engine gone: answers
/// every invocation still queued, or queued later, as not run, until the
/// host drops its handle (which closes the channel).
pub(crate) fn refuse_the_rest<M>(rx: &mpsc::Receiver<M>, not_run: impl Fn(M)) {
    while let Ok(msg) = rx.recv() {
        not_run(msg);
    }
}

/// A poisoned lock only guards plain data here; it is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(all(test, target_os = "linux"))]
mod idle_look_tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::next_message;

    /// User + system CPU of one thread of this process, in clock ticks.
    fn thread_cpu_ticks(tid: &str) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        // Fields after the command name (which may hold spaces): utime and
        // stime are the 12th and 13th of them.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// The look is bounded: a thread with nothing to do sleeps on its
    /// channel after it (its CPU time stops growing), a message wakes it,
    /// and a dropped sender ends it.
    #[test]
    fn an_idle_thread_sleeps_after_its_look_and_wakes_for_a_message() {
        let (tx, rx) = mpsc::channel::<u32>();
        let (tid_tx, tid_rx) = mpsc::channel::<String>();
        let thread = std::thread::spawn(move || {
            let me = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            tid_tx
                .send(me.split(' ').next().unwrap().to_owned())
                .unwrap();
            let first = next_message(&rx);
            let second = next_message(&rx);
            (first, second)
        });
        let tid = tid_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let before = thread_cpu_ticks(&tid);
        std::thread::sleep(Duration::from_millis(400));
        let spent = thread_cpu_ticks(&tid) - before;
        // A thread still looking would have spent ~40 ticks (10 ms each).
        assert!(
            spent <= 2,
            "the idle thread used {spent} ticks of CPU in 400 ms"
        );
        tx.send(7).unwrap();
        drop(tx);
        let (first, second) = thread.join().unwrap();
        assert_eq!(first, Ok(7));
        assert_eq!(second, Err(mpsc::RecvError));
    }
}
