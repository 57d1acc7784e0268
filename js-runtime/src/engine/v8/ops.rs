//! The only ops plugin code can reach, through the bootstrap's closure: one
//! to register handlers, one to log, and a start/wait pair for every `ctx`
//! host call (op name + JSON arguments, like the QuickJS host function).
//! Checks live in the engine-neutral `host_call` layer.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use deno_core::error::ModuleLoaderError as JsErrorBox;
use deno_core::{OpState, op2};
use extensor_core::manifest::Permission;

use super::super::IsolateSpec;
use super::super::host_call::{Admitted, admit};
use crate::error::JsError;
use crate::host::CallContext;
use crate::host::calls::{HostCalls, Settled, envelope};
use crate::logs::{LogCapture, LogLevel};
use crate::plugin::{HandlerKind, Registration};

/// Handlers one bundle may register (the manifest caps declarations at 256).
const REGISTRATIONS_MAX: usize = 1_024;
/// Characters of a registration key (event type, route, job name).
const REGISTRATION_KEY_CHARS_MAX: usize = 300;

deno_core::extension!(
    extensor_host,
    ops = [
        op_extensor_register,
        op_extensor_log,
        op_extensor_call_start,
        op_extensor_call_wait
    ],
);

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Loading,
    Ready,
}

/// Per-isolate state the ops reach through `OpState`.
pub(super) struct HostState {
    pub spec: Arc<IsolateSpec>,
    pub phase: Cell<Phase>,
    pub registrations: RefCell<Vec<Registration>>,
    pub logs: RefCell<LogCapture>,
    pub denied: Cell<Option<Permission>>,
    /// The running invocation's context; `None` between invocations.
    pub call_cx: RefCell<Option<CallContext>>,
    /// The isolate's host-call budget (count and bytes in flight, held
    /// from the call until JS has its answer).
    pub host_calls: HostCalls,
    /// Started calls by id, until JS waits for them.
    calls: RefCell<HashMap<u32, AbortOnDrop<Settled>>>,
    next_call: Cell<u32>,
}

impl HostState {
    pub fn new(spec: Arc<IsolateSpec>) -> HostState {
        HostState {
            spec,
            phase: Cell::new(Phase::Loading),
            registrations: RefCell::default(),
            logs: RefCell::default(),
            denied: Cell::new(None),
            call_cx: RefCell::default(),
            host_calls: HostCalls::default(),
            calls: RefCell::default(),
            next_call: Cell::new(0),
        }
    }
}

fn host(state: &OpState) -> Rc<HostState> {
    state.borrow::<Rc<HostState>>().clone()
}

/// Records a registration and returns its handler index.
#[op2(fast)]
fn op_extensor_register(
    state: &mut OpState,
    #[string] kind: String,
    #[string] key: String,
    #[string] extra: String,
) -> Result<u32, JsErrorBox> {
    let host = host(state);
    if host.phase.get() != Phase::Loading {
        return Err(JsErrorBox::generic(
            "handlers can only be registered while the bundle loads (at module top level)",
        ));
    }
    let Some(kind) = HandlerKind::parse(&kind) else {
        return Err(JsErrorBox::type_error("unknown handler kind"));
    };
    let mut regs = host.registrations.borrow_mut();
    if regs.len() >= REGISTRATIONS_MAX || key.chars().count() > REGISTRATION_KEY_CHARS_MAX {
        return Err(JsErrorBox::generic("too many handlers or a name too long"));
    }
    let schedule = (kind == HandlerKind::Job).then_some(extra);
    regs.push(Registration {
        kind,
        key,
        schedule,
    });
    Ok((regs.len() - 1) as u32)
}

#[op2(fast)]
fn op_extensor_log(state: &mut OpState, #[string] level: &str, #[string] message: &str) {
    host(state)
        .logs
        .borrow_mut()
        .push(LogLevel::parse(level), message);
}

/// What [`op_extensor_call_start`] hands JS: the id of an admitted call to
/// wait for, or at once the refusal envelope (no promise, no event loop).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Started {
    Admitted(u32),
    Refused(String),
}

/// Starts one `ctx` host call: the engine-neutral checks run here,
/// synchronously, then the isolate's host-call budget (`host::calls`), so a
/// refused call never reaches the host and a fan-out loop sees the bounds
/// exactly as on QuickJS.
#[op2]
#[serde]
fn op_extensor_call_start(
    state: &mut OpState,
    #[string] op: String,
    #[string] args: String,
) -> Started {
    let host = host(state);
    let cx = host.call_cx.borrow().clone();
    let admitted = admit(&host.spec, cx, &op, &args).map_err(|refused| {
        if refused.denied.is_some() {
            host.denied.set(refused.denied);
        }
        refused.error
    });
    let (Admitted { op, cx }, ticket) =
        match admitted.and_then(|a| Ok((a, host.host_calls.admit(args.len())?))) {
            Ok(started) => started,
            Err(error) => return Started::Refused(envelope(Err(error))),
        };
    let services = host.spec.services.clone();
    // Host I/O runs on the installation's runtime, as on QuickJS; the task is
    // aborted if it is dropped with its isolate (deadline, discard).
    let task = AbortOnDrop(
        host.spec
            .tokio
            .spawn(async move { ticket.finish(op.run(&services, &cx).await) }),
    );
    let id = host.next_call.get().wrapping_add(1);
    host.next_call.set(id);
    host.calls.borrow_mut().insert(id, task);
    Started::Admitted(id)
}

/// Waits for a started call and resolves to its `{ok}` / `{error}` envelope;
/// the prelude turns errors into thrown JS errors. Lazy: first polled by
/// the event loop, after the JS that started it yields, so completions are
/// delivered (and leave the host-call budget) only then, as on QuickJS.
#[op2(async(lazy), fast)]
#[string]
async fn op_extensor_call_wait(state: Rc<RefCell<OpState>>, id: u32) -> String {
    let pending = host(&state.borrow()).calls.borrow_mut().remove(&id);
    let Some(task) = pending else {
        return envelope(Err(JsError::InvalidArgument {
            op: "ctx",
            message: "no such host call".into(),
        }));
    };
    match task.join().await {
        // The ticket (count and bytes) is released as JS takes the envelope.
        Ok(mut settled) => std::mem::take(&mut settled.envelope),
        Err(e) => envelope(Err(JsError::Internal(format!("host call task: {e}")))),
    }
}

/// No host call outlives the isolate that started it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
