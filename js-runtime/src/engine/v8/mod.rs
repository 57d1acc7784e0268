//! V8 isolates through deno_core (cargo feature `v8`).
//!
//! Like QuickJS, each isolate lives on its own OS thread for its whole life,
//! here with a current-thread tokio runtime that drives deno_core's event
//! loop (a `JsRuntime` must be made inside a tokio context). Every isolate
//! starts from the process's start-up snapshot (`snapshot`); ops are in
//! `ops`, module loading in `loader`, the deadline watchdog in `watchdog`,
//! and the runtime itself in `runtime`. No deno_core or V8 type leaves this
//! module: the handle below speaks the engine-neutral job types. Every
//! isolate thread is started by `spare`, either ahead of demand (a spare
//! made before its installation is known) or for one isolate at once, and
//! runs the same loop either way.
//!
//! Limits, each with a typed error and a discarded isolate:
//! - heap: V8's heap limit, with a near-heap-limit callback that terminates
//!   execution (and lifts the limit just enough to unwind) instead of
//!   letting V8 abort the process; array buffers (outside the V8 heap)
//!   have a budget of the same size (`buffers`);
//! - deadline: the watchdog thread terminates running JS; a tokio timeout
//!   covers time spent awaiting host calls; the host side gives up after
//!   deadline + grace;
//! - stack: each isolate's own limit (`limits.stack_bytes_max`, which a
//!   manifest's `stack_kb` tightens), set on its thread right after the
//!   isolate exists (`stack`); the thread's native stack is that limit plus
//!   [`THREAD_STACK_MARGIN_BYTES`];
//! - host calls: the engine-neutral `host_call` layer.
//!
//! `heap` measures what an isolate's heap costs, now and at its in-call peak.

mod buffers;
mod heap;
mod loader;
mod ops;
mod runtime;
mod snapshot;
mod spare;
mod stack;
mod watchdog;

use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use deno_core::v8::IsolateHandle;
use tokio::sync::oneshot;

use super::gate::Gate;
use super::{Answer, InvokeJob, IsolateSpec, Queue, await_answer};
use crate::config::{DEADLINE_GRACE_MS, DeadlineKind};
use crate::error::JsError;
use crate::plugin::Registration;
use spare::Assignment;
pub(crate) use spare::Spares;

/// The isolate thread's native stack beyond the JS stack limit: room for
/// tokio, deno_core's event loop, V8's own C++ frames and its slack.
const THREAD_STACK_MARGIN_BYTES: usize = 2 * 1024 * 1024;
/// V8's process-wide default stack limit (its `--stack-size`, set once per
/// process): what an isolate has until `stack::limit_stack` sets its own,
/// measured down from the top of the isolate's thread, so that thread is
/// never smaller than this.
pub(super) const V8_STACK_BYTES: usize = crate::config::STACK_BYTES_DEFAULT;

enum Msg {
    /// Invocation number `seq` of this isolate (see `gate`).
    Invoke(Arc<InvokeJob>, u64, oneshot::Sender<Answer>),
    Memory(oneshot::Sender<usize>),
}

/// The host's handle on one V8 isolate thread. Dropping it ends the thread.
pub(crate) struct Isolate {
    /// A std channel: between invocations the thread looks for the next
    /// one briefly (`next_message`), then blocks on a futex outside its
    /// tokio runtime, which wakes faster than the runtime's parked I/O
    /// driver (eventfd + epoll). Invocations queue on it while
    /// the thread is busy, and it runs them back to back.
    queue: Queue<Msg>,
    terminate: Terminator,
    pub registrations: Vec<Registration>,
    pub loaded_heap_bytes: usize,
}

/// Stops the isolate's JS from any thread, once the thread has published
/// its handle; before that, the thread sees the closed gate and stops.
#[derive(Clone, Default)]
struct Terminator {
    handle: Arc<OnceLock<IsolateHandle>>,
}

impl Terminator {
    fn terminate(&self) {
        if let Some(h) = self.handle.get() {
            h.terminate_execution();
        }
    }
}

impl Isolate {
    /// Takes a spare (`spare`) or spawns a thread of its own, which loads
    /// the bundle.
    pub async fn start(spec: Arc<IsolateSpec>) -> Result<Isolate, JsError> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let terminate = Terminator::default();
        let gate = Arc::new(Gate::default());
        let limit = spec.limits.deadline(DeadlineKind::Interactive)
            + Duration::from_millis(DEADLINE_GRACE_MS);
        let deadline_ms = spec.limits.deadline_ms;
        spec.spares.v8.assign(Assignment {
            spec: spec.clone(),
            rx,
            terminate: terminate.clone(),
            gate: gate.clone(),
            ready: ready_tx,
        })?;
        match tokio::time::timeout(limit, ready_rx).await {
            Ok(Ok(Ok(loaded))) => Ok(Isolate {
                queue: Queue::new(tx, gate),
                terminate,
                registrations: loaded.registrations,
                loaded_heap_bytes: loaded.heap_bytes,
            }),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(JsError::Internal(
                "isolate thread ended during start".into(),
            )),
            Err(_) => {
                gate.close(|| terminate.terminate());
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
            self.terminate.terminate()
        })
        .await
    }

    /// V8 heap bytes of this isolate (committed heap plus external memory).
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
        // An isolate abandoned mid-invocation stops running JS now; an idle
        // one sees its channel close and ends its thread.
        self.queue.gate.close(|| self.terminate.terminate());
    }
}
