//! The handshake between the host and one isolate thread about the
//! invocations queued on it (issue 20's pipelining): which one runs now and
//! since when, and whether the isolate is closed (killed by the host or
//! discarded by its thread), after which it runs nothing more.
//!
//! Invocations are numbered per isolate in the order they are queued
//! (`seq`, from 1), and the thread runs them in that order, so "not started
//! yet" is `started < seq`. Both sides take the one lock for each decision,
//! which makes the host's kill and the thread's next start exclusive: the
//! host never terminates an invocation other than the overdue one, and an
//! isolate the host killed never starts another invocation.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Gate(Mutex<GateState>);

#[derive(Default)]
struct GateState {
    /// The last invocation the thread started (0: none yet).
    started: u64,
    /// When the running invocation started; `None` between invocations.
    running_since: Option<Instant>,
    /// Killed or discarded: nothing more runs on this isolate.
    closed: bool,
    /// Queued invocations whose caller went away before they started.
    cancelled: Vec<u64>,
}

/// The thread's verdict on the next queued invocation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Begin {
    Run,
    /// Its caller went away while it was queued: answer it as not run.
    Skip,
    /// The isolate is closed: answer it as not run and stop.
    Closed,
}

/// What the host does when its wait for invocation `seq` ran out.
pub(crate) enum Overdue {
    /// Wait again, until this instant.
    Wait(Instant),
    /// It ran past its limit: the isolate was terminated and closed.
    Killed,
    /// It never started and the isolate is closed: run it elsewhere.
    Abandon,
}

impl Gate {
    /// Thread side, before running invocation `seq`.
    pub fn begin(&self, seq: u64) -> Begin {
        let mut s = self.lock();
        if s.closed {
            return Begin::Closed;
        }
        s.started = seq;
        if let Some(i) = s.cancelled.iter().position(|&c| c == seq) {
            s.cancelled.swap_remove(i);
            return Begin::Skip;
        }
        s.running_since = Some(Instant::now());
        Begin::Run
    }

    /// Thread side, after an invocation, whatever its outcome.
    pub fn end(&self) {
        self.lock().running_since = None;
    }

    /// Closes the isolate (the thread discards it, or the host gives up on
    /// it) and stops what runs now with `terminate`.
    pub fn close(&self, terminate: impl FnOnce()) {
        self.lock().closed = true;
        terminate();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Host side, when the wait for invocation `seq` ran out: kills the
    /// isolate if `seq` has been running for `limit` or longer.
    pub fn overdue(&self, seq: u64, limit: Duration, terminate: impl FnOnce()) -> Overdue {
        let mut s = self.lock();
        let now = Instant::now();
        if s.started < seq {
            // Queued behind others; the one running has its own limit.
            return if s.closed {
                Overdue::Abandon
            } else {
                Overdue::Wait(now + limit)
            };
        }
        match s.running_since {
            Some(since) if s.started == seq => {
                if now < since + limit {
                    return Overdue::Wait(since + limit);
                }
                s.closed = true;
                terminate();
                Overdue::Killed
            }
            // Finished: its answer is on the way.
            _ => Overdue::Wait(now + limit),
        }
    }

    /// Host side, when the caller of invocation `seq` went away before its
    /// answer: a queued one is skipped; a running one is terminated and the
    /// isolate closed, as dropping the isolate mid-invocation always did.
    pub fn cancel(&self, seq: u64, terminate: impl FnOnce()) {
        let mut s = self.lock();
        if s.started < seq {
            s.cancelled.push(seq);
        } else if s.started == seq && s.running_since.is_some() {
            s.closed = true;
            terminate();
        }
    }

    /// The state is plain data; a poisoned lock is still consistent.
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
