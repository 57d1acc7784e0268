//! Firing an instant: the occurrences claimed for one instant are fired by
//! one task that sleeps until that instant, not by one sleeping task each.
//!
//! Why: 10,000 jobs on the same cron minute made 10,000 timers expire
//! together; waking them and letting each take its slot, await the wave and
//! call its runner cost tens of milliseconds on two cores before the last
//! one ran (docs/BENCHMARKS.md, "Job scheduler"). One timer per instant
//! wakes one task, which takes the slots of every idle job in a loop,
//! awaits the instant's wave once, then polls every run once in a loop
//! (invoking its job) before it hands each run to its own task. The runs
//! are built (boxed) at claim time, so starting one costs an atomic, a
//! lock of its job's counters and one poll.
//!
//! What a single task per occurrence gave is kept:
//! - an occurrence is fired (`ARMED` → `FIRED`) or cancelled (→
//!   `CANCELLED`) exactly once, whichever comes first, and a fired run is
//!   never cut short by a cancel;
//! - a job that is busy at the instant gets its occurrence back through
//!   [`SchedulerMsg::Due`] for its overlap policy;
//! - the wave (`job.wave_started`) is appended only if some scheduled run
//!   of the instant actually starts, and before any of them is invoked;
//! - no run outlives the scheduler: the runs' tasks are aborted when the
//!   firing task is dropped ([`Runs`]), and that task is in the actor's
//!   set, aborted at its stop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::Poll;

use chrono::{DateTime, Utc};
use extensor_core::event::EventMeta;
use extensor_core::job_runs::RunTrigger;
use futures::future::BoxFuture;
use ractor::ActorRef;
use tokio::task::JoinHandle;

use super::{Claim, JobKey, SchedulerMsg, ended};
use crate::jobs::{JobRecorder, RunTaskEnd, Waves};

/// The occurrence's run has not been fired or cancelled.
const ARMED: u8 = 0;
/// Its instant came: its run is (or is about to be) going and is never
/// aborted by a cancel; it finishes within its deadline and records its end.
const FIRED: u8 = 1;
/// Cancelled before its instant: it never runs.
const CANCELLED: u8 = 2;

/// Who got to a claimed occurrence first: its instant or a cancel.
#[derive(Clone, Default)]
pub(super) struct FireState(Arc<AtomicU8>);

impl FireState {
    /// Cancels the occurrence if it has not fired; `false` if its run is
    /// going (it then finishes and records itself).
    pub(super) fn cancel(&self) -> bool {
        self.0
            .compare_exchange(ARMED, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Fires the occurrence; `false` if it was cancelled first.
    fn fire(&self) -> bool {
        self.0
            .compare_exchange(ARMED, FIRED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// What the actor and a job's armed occurrences share: whether a run is
/// going, so an occurrence starts only when its job is idle and otherwise
/// goes to the actor for the overlap policy.
#[derive(Debug, Default)]
pub(super) struct RunSlots {
    /// Runs of this job going in this process.
    pub(super) running: usize,
    /// Runs waiting in the actor's queue.
    pub(super) pending: usize,
}

impl RunSlots {
    /// Nothing of the job is going or queued.
    pub(super) fn idle(&self) -> bool {
        self.running == 0 && self.pending == 0
    }
}

pub(super) type SharedSlots = Arc<std::sync::Mutex<RunSlots>>;

pub(super) fn slots(s: &SharedSlots) -> std::sync::MutexGuard<'_, RunSlots> {
    // Only counters live here; a panic elsewhere cannot leave them torn.
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Takes the job's run slot if it is idle (nothing going, nothing queued).
fn take_slot(s: &SharedSlots) -> bool {
    let mut s = slots(s);
    let idle = s.idle();
    if idle {
        s.running += 1;
    }
    idle
}

/// One claimed occurrence waiting for its instant.
pub(super) struct Member {
    pub(super) key: JobKey,
    pub(super) claim: Claim,
    pub(super) recorder: JobRecorder,
    pub(super) slots: SharedSlots,
    pub(super) state: FireState,
    /// Its run (`jobs::run_job`, panics caught), built at claim time. A
    /// future does nothing until polled, so building it early only moves
    /// the allocation off the instant.
    pub(super) run: BoxFuture<'static, std::thread::Result<RunTaskEnd>>,
}

/// The occurrences of one instant and what firing them needs.
pub(super) struct Instant {
    pub(super) at: DateTime<Utc>,
    pub(super) sleep: BoxFuture<'static, ()>,
    /// The scheduler's waves and the meta of a wave record; `None` where
    /// no member is a scheduled occurrence (those start with their own
    /// start record).
    pub(super) waves: Option<(Arc<Waves>, EventMeta)>,
    pub(super) members: Vec<Member>,
}

/// Groups members by their instant, so each instant gets one timer.
pub(super) fn by_instant(members: Vec<Member>) -> BTreeMap<DateTime<Utc>, Vec<Member>> {
    let mut out: BTreeMap<DateTime<Utc>, Vec<Member>> = BTreeMap::new();
    for m in members {
        out.entry(m.claim.scheduled_for).or_default().push(m);
    }
    out
}

/// Sleeps until the instant, fires its members and reports each run's end
/// to the scheduler. Runs in the scheduler's task set.
pub(super) async fn fire(instant: Instant, me: ActorRef<SchedulerMsg>) {
    let Instant {
        at,
        sleep,
        waves,
        members,
    } = instant;
    sleep.await;
    let runnable = take_idle(members, &me);
    let scheduled = runnable
        .iter()
        .any(|m| m.claim.trigger == RunTrigger::Schedule);
    if let (Some((waves, meta)), true) = (&waves, scheduled) {
        // Each run's own start awaits the same cell and sees this result
        // (a failed wave stops every run of the instant there, not run).
        let _ = waves.start(at, meta).await;
    }
    // Outside tokio's cooperative budget: the loop polls 10,000 futures
    // in one task on purpose, and a budget spent part-way would only make
    // the rest of them wait for a later turn.
    let going = tokio::task::unconstrained(start_all(runnable, &me)).await;
    let mut runs = Runs(Vec::with_capacity(going.len()));
    for (key, run) in going {
        let me = me.clone();
        runs.0.push(tokio::spawn(async move {
            let end = run.await;
            let _ = me.send_message(ended(key, &end));
        }));
    }
    for run in &mut runs.0 {
        let _ = run.await;
    }
}

/// The runs of an instant, aborted if its firing task is (the scheduler
/// stopping): no run outlives the scheduler.
struct Runs(Vec<JoinHandle<()>>);

impl Drop for Runs {
    fn drop(&mut self) {
        for run in &self.0 {
            run.abort();
        }
    }
}

/// A run not finished at its first poll, to be driven by its own task.
type Going = (JobKey, BoxFuture<'static, std::thread::Result<RunTaskEnd>>);

/// Polls every run once, in one loop, before any of them is spawned. A
/// scheduled run's start is its instant's wave, already durable, so its
/// first poll invokes its job; no run's recording work (its start record,
/// its end) competes for the cores until every job of the instant has
/// been invoked. Each run then goes on in its own task: a future moved to
/// another task is polled there again, which registers that task's waker
/// (the contract of `Future::poll`), so nothing is lost by the move.
async fn start_all(runnable: Vec<Member>, me: &ActorRef<SchedulerMsg>) -> Vec<Going> {
    let mut runnable = Some(runnable);
    std::future::poll_fn(|cx| {
        let members = runnable.take().unwrap_or_default();
        let mut going = Vec::with_capacity(members.len());
        for Member { key, mut run, .. } in members {
            match run.as_mut().poll(cx) {
                Poll::Pending => going.push((key, run)),
                Poll::Ready(end) => {
                    let _ = me.send_message(ended(key, &end));
                }
            }
        }
        Poll::Ready(going)
    })
    .await
}

/// Fires every member that was not cancelled; those whose job is busy go
/// back to the actor for the overlap policy. Returns the ones to run now,
/// each holding its job's slot.
fn take_idle(members: Vec<Member>, me: &ActorRef<SchedulerMsg>) -> Vec<Member> {
    let mut runnable = Vec::with_capacity(members.len());
    for m in members {
        if !m.state.fire() {
            continue; // cancelled before its instant
        }
        if take_slot(&m.slots) {
            runnable.push(m);
            continue;
        }
        let _ = me.send_message(SchedulerMsg::Due {
            key: m.key,
            claim: m.claim,
            recorder: m.recorder,
        });
    }
    runnable
}
