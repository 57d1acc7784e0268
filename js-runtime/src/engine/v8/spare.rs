//! V8 isolates made ahead of demand ("spares"), so a new installation's
//! first isolate does not wait for V8 to deserialise the start-up snapshot,
//! which is most of a V8 cold start (docs/BENCHMARKS.md).
//!
//! A spare is an isolate thread that has made its runtime (`Blank`) and
//! waits for an installation. Taking one hands it an [`Assignment`] over a
//! channel; the thread then loads the bundle and serves invocations as any
//! isolate thread does. Every isolate thread starts this way: an isolate
//! that finds no suitable spare gets a thread of its own, made with its
//! assignment already queued, so there is one start path, not two.
//!
//! **Architecture Invariant:** a spare serves exactly one installation,
//! once. It is made before any tenant is known and nothing of a tenant
//! reaches it until its assignment, so no state passes between tenants.
//!
//! Limits: V8 fixes an isolate's heap limit when the isolate is made, so a
//! spare is made with the platform's heap limit and serves only
//! installations with that limit (a manifest that tightens `memory_mb` gets
//! a thread of its own, as before). The stack limit is set at assignment,
//! on the spare's own thread, whose stack is sized for the platform's limit.
//!
//! Ownership: the sandbox owns the spares (through `Spares`). Dropping it
//! closes each waiting spare's channel, and the thread drops its runtime
//! and ends; nothing here outlives its owner.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::{Notify, oneshot};

use super::runtime::{Blank, Engine};
use super::{Msg, THREAD_STACK_MARGIN_BYTES, Terminator, V8_STACK_BYTES};
use crate::config::Limits;
use crate::engine::gate::Gate;
use crate::engine::{
    Alive, Answer, IsolateSpec, Loaded, Next, next_message, refuse_the_rest, run_queued,
};
use crate::error::JsError;

/// What a thread needs to become one installation's isolate.
pub(super) struct Assignment {
    pub spec: Arc<IsolateSpec>,
    pub rx: mpsc::Receiver<Msg>,
    pub terminate: Terminator,
    pub gate: Arc<Gate>,
    pub ready: oneshot::Sender<Result<Loaded, JsError>>,
}

/// One sandbox's spares.
pub(crate) struct Spares {
    /// How many to keep waiting (0: none are made).
    count: usize,
    /// The heap limit spares are made with: the platform's.
    heap_bytes_max: usize,
    /// The largest JS stack limit a spare's thread has room for.
    stack_bytes_max: usize,
    /// Spares made (or being made) and not yet taken, oldest first.
    waiting: Mutex<VecDeque<Spare>>,
    signals: Arc<Signals>,
}

struct Spare {
    assign: mpsc::Sender<Assignment>,
    /// Its runtime exists (or failed to); an assignment now waits for no V8 start.
    made: Arc<AtomicBool>,
}

#[derive(Default)]
struct Signals {
    /// Threads holding a runtime that no installation has yet.
    unassigned: Arc<AtomicUsize>,
    /// Isolates that started from a spare, ever.
    used: AtomicU64,
    /// A spare finished making its runtime.
    made: Notify,
}

impl Spares {
    /// Spares for isolates under `limits` (the platform's); `count` of 0
    /// makes none.
    pub fn new(count: usize, limits: &Limits) -> Spares {
        Spares {
            count,
            heap_bytes_max: limits.heap_bytes_max,
            stack_bytes_max: limits.stack_bytes_max,
            waiting: Mutex::default(),
            signals: Arc::default(),
        }
    }

    /// Makes spares until `count` wait. A thread that cannot be spawned
    /// leaves the rest unmade: an isolate's own start reports that error.
    pub fn fill(&self) {
        let mut waiting = lock(&self.waiting);
        while waiting.len() < self.count {
            let (tx, rx) = mpsc::channel();
            let made = Arc::new(AtomicBool::new(false));
            let spawned = spawn(
                (self.heap_bytes_max, self.stack_bytes_max),
                rx,
                made.clone(),
                self.signals.clone(),
            );
            if spawned.is_err() {
                return;
            }
            waiting.push_back(Spare { assign: tx, made });
        }
    }

    /// Starts an isolate: on a spare when one suits the spec's limits
    /// (then makes its replacement), else on a thread of its own.
    pub(super) fn assign(&self, a: Assignment) -> Result<(), JsError> {
        let a = match self.take(&a.spec.limits) {
            Some(spare) => match spare.assign.send(a) {
                Ok(()) => {
                    self.signals.used.fetch_add(1, Ordering::Relaxed);
                    self.fill();
                    return Ok(());
                }
                // Its thread ended (it panicked making its runtime; a
                // runtime that failed is reported to the assignment
                // instead): start on a thread of its own.
                Err(mpsc::SendError(a)) => a,
            },
            None => a,
        };
        if self.suits(&a.spec.limits) {
            // The first isolate that could have used one: start keeping spares.
            self.fill();
        }
        let limits = a.spec.limits;
        let (tx, rx) = mpsc::channel();
        // Cannot fail: `rx` is alive until the thread takes it.
        let _ = tx.send(a);
        // Signals of its own: this thread is no spare (its assignment is
        // already queued), so it must not count in `unassigned`.
        spawn(
            (limits.heap_bytes_max, limits.stack_bytes_max),
            rx,
            Arc::default(),
            Arc::default(),
        )
    }

    /// A spare's heap limit must be the spec's (V8 cannot change it), and
    /// its thread must have room for the spec's stack.
    fn suits(&self, limits: &Limits) -> bool {
        self.count > 0
            && limits.heap_bytes_max == self.heap_bytes_max
            && limits.stack_bytes_max <= self.stack_bytes_max
    }

    /// The spare that has waited longest among those whose runtime is
    /// made; if none is made yet, the oldest.
    fn take(&self, limits: &Limits) -> Option<Spare> {
        if !self.suits(limits) {
            return None;
        }
        let mut waiting = lock(&self.waiting);
        let at = waiting
            .iter()
            .position(|s| s.made.load(Ordering::SeqCst))
            .unwrap_or(0);
        waiting.remove(at)
    }

    /// Waits until `count` spares wait with their runtimes made (making
    /// them if none were made yet).
    pub async fn ready(&self) {
        self.fill();
        loop {
            let made = self.signals.made.notified();
            tokio::pin!(made);
            made.as_mut().enable();
            if lock(&self.waiting)
                .iter()
                .all(|s| s.made.load(Ordering::SeqCst))
            {
                return;
            }
            made.await;
        }
    }

    /// Spare threads alive that no installation has taken.
    pub fn unassigned(&self) -> usize {
        self.signals.unassigned.load(Ordering::SeqCst)
    }

    /// Isolates started from a spare, ever.
    pub fn used(&self) -> u64 {
        self.signals.used.load(Ordering::Relaxed)
    }
}

/// Spawns a thread that makes a runtime with a heap of `heap_bytes_max`
/// and room for a JS stack of `stack_bytes_max`, then serves the first
/// assignment it receives.
fn spawn(
    (heap_bytes_max, stack_bytes_max): (usize, usize),
    assignments: mpsc::Receiver<Assignment>,
    made: Arc<AtomicBool>,
    signals: Arc<Signals>,
) -> Result<(), JsError> {
    std::thread::Builder::new()
        .name("extensor-v8".into())
        .stack_size(stack_bytes_max.max(V8_STACK_BYTES) + THREAD_STACK_MARGIN_BYTES)
        .spawn(move || thread_main(heap_bytes_max, &assignments, &made, &signals))
        .map(drop)
        .map_err(|e| JsError::Internal(format!("spawn isolate thread: {e}")))
}

fn thread_main(
    heap_bytes_max: usize,
    assignments: &mpsc::Receiver<Assignment>,
    made: &AtomicBool,
    signals: &Signals,
) {
    let unassigned = Alive::enter(&signals.unassigned);
    // Announced however making the runtime ends, a panic included, so
    // `Spares::ready` (which the server's boot awaits) never waits forever.
    let announce = Announce { made, signals };
    // Timers only: deno_core's delayed V8 tasks and the deadline's tokio
    // timeouts sleep on it; nothing on this thread does I/O (host calls run
    // on the server's runtime), so no I/O driver (an epoll instance and an
    // eventfd per isolate) is built.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| JsError::Internal(format!("isolate runtime: {e}")));
    let _context = rt.as_ref().ok().map(tokio::runtime::Runtime::enter);
    let blank = rt
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|rt| Blank::new(heap_bytes_max).map(|blank| (rt, blank)));
    drop(announce);
    // The sandbox dropped its spares: the runtime goes, then the count.
    let Ok(Assignment {
        spec,
        rx,
        terminate,
        gate,
        ready,
    }) = assignments.recv()
    else {
        return;
    };
    {
        // Counted as the installation's from here, until its heap is gone.
        let _alive = Alive::enter(&spec.alive);
        drop(unassigned);
        match blank {
            Ok((rt, blank)) => serve(rt, blank.assign(spec), &rx, &terminate, &gate, ready),
            Err(e) => {
                let _ = ready.send(Err(e));
            }
        }
    }
    refuse_the_rest(&rx, |msg| {
        if let Msg::Invoke(_, _, reply) = msg {
            let _ = reply.send(Answer::NotRun);
        }
    });
}

/// Marks a spare's runtime made (or failed) and wakes `Spares::ready`
/// when dropped.
struct Announce<'a> {
    made: &'a AtomicBool,
    signals: &'a Signals,
}

impl Drop for Announce<'_> {
    fn drop(&mut self) {
        self.made.store(true, Ordering::SeqCst);
        self.signals.made.notify_waiters();
    }
}

/// Loads the bundle, then runs invocations until the isolate is discarded
/// or its host handle dropped.
fn serve(
    rt: &tokio::runtime::Runtime,
    mut engine: Engine,
    rx: &mpsc::Receiver<Msg>,
    terminate: &Terminator,
    gate: &Gate,
    ready: oneshot::Sender<Result<Loaded, JsError>>,
) {
    let _ = terminate.handle.set(engine.handle());
    if gate.is_closed() {
        return;
    }
    let loaded = rt.block_on(engine.load());
    let failed_load = loaded.is_err();
    if ready.send(loaded).is_err() || failed_load {
        return;
    }
    while let Ok(msg) = next_message(rx) {
        match msg {
            Msg::Invoke(job, seq, reply) => {
                let run = || rt.block_on(engine.invoke(&job));
                if let Next::Stop = run_queued(gate, seq, reply, run) {
                    break;
                }
            }
            Msg::Memory(reply) => {
                let _ = reply.send(engine.memory_bytes());
            }
        }
    }
}

/// A poisoned lock only guards a list of channel ends; it is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::config::SandboxConfig;

    fn platform() -> Limits {
        SandboxConfig::default().limits_for(&Default::default())
    }

    /// Dropping the spares (the sandbox's last handle) ends their threads
    /// and frees their heaps: the count, which each thread drops only after
    /// its runtime, falls to zero.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropped_spares_end_their_threads() {
        let spares = Spares::new(2, &platform());
        spares.ready().await;
        assert_eq!(spares.unassigned(), 2);
        let count = spares.signals.unassigned.clone();
        drop(spares);
        let deadline = Instant::now() + Duration::from_secs(20);
        while count.load(Ordering::SeqCst) > 0 {
            assert!(Instant::now() < deadline, "{count:?} spares still alive");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A count of 0 makes nothing, whatever asks for spares.
    #[tokio::test]
    async fn zero_spares_are_never_made() {
        let spares = Spares::new(0, &platform());
        spares.ready().await;
        spares.fill();
        assert!(!spares.suits(&platform()));
        assert_eq!((spares.unassigned(), lock(&spares.waiting).len()), (0, 0));
    }
}
