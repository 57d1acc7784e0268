//! Restarts, status records, bounded mailboxes and timed calls: the one
//! place the tree's failure handling lives. ractor itself has no restart
//! strategies and unbounded mailboxes, so every supervisor and caller goes
//! through these helpers instead of re-implementing them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::rpc::CallResult;
use ractor::{ActorRef, Message, RpcReplyPort};
use serde::Serialize;
use tokio::sync::watch;

use crate::error::Error;

/// Default first restart delay: long enough not to spin on a fault that
/// fails at start, short enough that a one-off panic is invisible.
pub const RESTART_BACKOFF_INITIAL_MS: u64 = 100;
/// Default ceiling of the doubling restart delay.
pub const RESTART_BACKOFF_MAX_MS: u64 = 30_000;
/// Default: this many failures within the window mark the actor failed.
pub const RESTART_FAILURES_MAX: u32 = 5;
/// Default window over which failures are counted.
pub const RESTART_WINDOW_MS: u64 = 60_000;
/// Default mailbox bound per actor: a tenant's burst fits, a stuck actor
/// cannot hold more than this in memory.
pub const MAILBOX_MESSAGES_MAX: usize = 1_000;
/// Default timeout of a call between actors.
pub const CALL_TIMEOUT_MS: u64 = 5_000;
/// How long a stopping supervisor waits for its children to stop: ractor
/// does not stop a supervisor's children with it, so ours do it themselves.
pub const CHILDREN_STOP_TIMEOUT_MS: u64 = 5_000;
/// Timeout of an operator's stop call to the root: the root waits up to
/// `CHILDREN_STOP_TIMEOUT_MS` for the tenant's supervisor, which waits as
/// long for its children (a child busy in a handler, e.g. an SMTP send to a
/// relay that is down, stops when the handler returns). A stop that took
/// that long still happened, so the caller must not be told it timed out.
pub const STOP_CALL_TIMEOUT_MS: u64 = CHILDREN_STOP_TIMEOUT_MS + CALL_TIMEOUT_MS;

/// How a supervisor restarts a failed child. Documented in
/// `docs/ARCHITECTURE.md`; every supervisor uses this one type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RestartPolicy {
    /// Delay before the first restart after a quiet period.
    pub backoff_initial_ms: u64,
    /// The delay doubles per recent failure up to this.
    pub backoff_max_ms: u64,
    /// More than this many failures within `window_ms` → failed.
    pub failures_max: u32,
    pub window_ms: u64,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            backoff_initial_ms: RESTART_BACKOFF_INITIAL_MS,
            backoff_max_ms: RESTART_BACKOFF_MAX_MS,
            failures_max: RESTART_FAILURES_MAX,
            window_ms: RESTART_WINDOW_MS,
        }
    }
}

/// What a supervisor does after a child failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartDecision {
    /// Start the child again after this delay.
    RestartAfter(Duration),
    /// Too many failures in the window: leave it failed for an operator.
    GiveUp,
}

/// The failures of one child within the policy's window.
#[derive(Clone, Debug, Default)]
pub struct FailureHistory {
    recent: VecDeque<DateTime<Utc>>,
}

impl FailureHistory {
    /// Records a failure at `now` and decides what to do about it.
    pub fn record(&mut self, policy: &RestartPolicy, now: DateTime<Utc>) -> RestartDecision {
        let window =
            chrono::Duration::milliseconds(i64::try_from(policy.window_ms).unwrap_or(i64::MAX));
        while self.recent.front().is_some_and(|t| now - *t > window) {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        let failures = u32::try_from(self.recent.len()).unwrap_or(u32::MAX);
        if failures > policy.failures_max {
            return RestartDecision::GiveUp;
        }
        RestartDecision::RestartAfter(backoff(policy, failures))
    }

    /// Forgets every failure: an operator restart starts afresh.
    pub fn clear(&mut self) {
        self.recent.clear();
    }
}

/// `initial × 2^(failures-1)`, capped at the policy's maximum.
pub fn backoff(policy: &RestartPolicy, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(63);
    let ms = policy
        .backoff_initial_ms
        .saturating_mul(1u64.checked_shl(doublings).unwrap_or(u64::MAX))
        .min(policy.backoff_max_ms);
    Duration::from_millis(ms)
}

/// Where an actor is in its life, as the ops view shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorStatus {
    Starting,
    Running,
    Passivated,
    Restarting,
    Failed,
    /// Stopped by an operator; serves nothing until resumed.
    Stopped,
}

/// What kind of actor a record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    TenantSupervisor,
    Tenant,
    Installation,
    /// A tenant's event dispatcher.
    Dispatcher,
    /// Another tenant service child (webhooks, scheduler).
    Service,
}

impl ActorKind {
    /// The name the ops view and `/metrics` use.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::TenantSupervisor => "tenant_supervisor",
            ActorKind::Tenant => "tenant",
            ActorKind::Installation => "installation",
            ActorKind::Dispatcher => "dispatcher",
            ActorKind::Service => "service",
        }
    }
}

/// Messages waiting in the bounded mailboxes of one kind of actor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailboxDepth {
    /// All of them together.
    pub messages: usize,
    /// The fullest single mailbox.
    pub max: usize,
}

/// One actor in the ops view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActorInfo {
    /// `/tenants/<tenant>/installations/<installation>`.
    pub path: String,
    pub kind: ActorKind,
    pub tenant: Option<String>,
    pub status: ActorStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub restarts: u32,
    pub queue_depth: usize,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// A live snapshot of the whole tree, ordered by path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TreeSnapshot {
    pub actors: Vec<ActorInfo>,
}

/// A record and the mailbox its queue depth is read from.
type Record = (ActorInfo, Option<Mailbox>);

/// The shared table supervisors write their children's records into and
/// the ops view reads. A mutex suffices: it is touched on lifecycle events,
/// not per message (queue depth is read from the mailbox gate).
#[derive(Clone, Debug)]
pub struct StatusBoard {
    records: Arc<Mutex<BTreeMap<String, Record>>>,
    /// Bumped on every change so watchers wait on a notification, not a
    /// polling sleep.
    changes: Arc<watch::Sender<u64>>,
}

impl Default for StatusBoard {
    fn default() -> Self {
        Self {
            records: Arc::default(),
            changes: Arc::new(watch::channel(0).0),
        }
    }
}

impl StatusBoard {
    /// Inserts or replaces the record at `info.path`.
    pub fn put(&self, info: ActorInfo, mailbox: Option<Mailbox>) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        records.insert(info.path.clone(), (info, mailbox));
        drop(records);
        self.changes.send_modify(|v| *v += 1);
    }

    /// Changes the record at `path`, if there is one.
    pub fn update(&self, path: &str, change: impl FnOnce(&mut ActorInfo)) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((info, _)) = records.get_mut(path) {
            change(info);
        }
        drop(records);
        self.changes.send_modify(|v| *v += 1);
    }

    /// Removes the record at `path` (an actor that no longer exists, such
    /// as a deleted webhook's endpoint).
    pub fn remove(&self, path: &str) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        records.remove(path);
        drop(records);
        self.changes.send_modify(|v| *v += 1);
    }

    /// A receiver that changes whenever any record changes (a paused hook
    /// lane waits on it for its installation's operator restart).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Waits until the record at `path` satisfies `done`, at most
    /// `timeout_ms`. For tests and the ops CLI ("restart and wait").
    pub async fn wait_until(
        &self,
        path: &str,
        done: impl Fn(&ActorInfo) -> bool,
        timeout_ms: u64,
    ) -> Result<ActorInfo, Error> {
        let mut changes = self.changes.subscribe();
        let wait = async {
            loop {
                changes.borrow_and_update();
                if let Some(info) = self.get(path).filter(|i| done(i)) {
                    return Ok(info);
                }
                if changes.changed().await.is_err() {
                    return Err(Error::Stopped { actor: path.into() });
                }
            }
        };
        tokio::time::timeout(Duration::from_millis(timeout_ms), wait)
            .await
            .map_err(|_| Error::Timeout {
                actor: path.into(),
                ms: timeout_ms,
            })?
    }

    /// The last error of the actor at `path` if it is failed (given up on
    /// by its supervisor); `None` otherwise. Asked before every
    /// invocation, so it copies only the error of a failed actor.
    pub fn failure(&self, path: &str) -> Option<String> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let (info, _) = records.get(path)?;
        (info.status == ActorStatus::Failed).then(|| info.last_error.clone().unwrap_or_default())
    }

    /// One record, looked up by path. Never through [`snapshot`](Self::snapshot):
    /// supervisors call this on every child start, inside their handlers,
    /// and a copy of the whole tree per start made starting N actors cost
    /// O(N²) (at 10,000 tenants the root's handler fell behind its callers'
    /// timeouts).
    pub fn get(&self, path: &str) -> Option<ActorInfo> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        records.get(path).map(|(info, mailbox)| {
            let mut info = info.clone();
            info.queue_depth = mailbox.as_ref().map_or(0, Mailbox::depth);
            info
        })
    }

    /// Mailbox depths by actor kind, for `/metrics`: one walk of the
    /// records (O(actors), like [`snapshot`](Self::snapshot), without
    /// copying them); only a scrape calls it.
    pub fn mailbox_depths(&self) -> Vec<(ActorKind, MailboxDepth)> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(ActorKind, MailboxDepth)> = Vec::new();
        for (info, mailbox) in records.values() {
            let depth = mailbox.as_ref().map_or(0, Mailbox::depth);
            let slot = match out.iter_mut().find(|(k, _)| *k == info.kind) {
                Some((_, d)) => d,
                None => {
                    out.push((info.kind, MailboxDepth::default()));
                    &mut out.last_mut().expect("just pushed").1
                }
            };
            slot.messages += depth;
            slot.max = slot.max.max(depth);
        }
        out
    }

    pub fn snapshot(&self) -> TreeSnapshot {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let actors = records
            .values()
            .map(|(info, mailbox)| {
                let mut info = info.clone();
                info.queue_depth = mailbox.as_ref().map_or(0, Mailbox::depth);
                info
            })
            .collect();
        TreeSnapshot { actors }
    }
}

/// A bounded mailbox in front of a ractor actor: senders reserve a slot
/// before sending and the actor frees it when it takes the message, so a
/// full queue is refused at the sender instead of growing.
#[derive(Clone, Debug)]
pub struct Mailbox {
    path: Arc<str>,
    depth: Arc<AtomicUsize>,
    depth_max: usize,
}

impl Mailbox {
    pub fn new(path: &str, depth_max: usize) -> Self {
        Self {
            path: path.into(),
            depth: Arc::new(AtomicUsize::new(0)),
            depth_max,
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Acquire)
    }

    /// Takes a slot, or refuses with [`Error::Backpressure`].
    fn reserve(&self) -> Result<(), Error> {
        self.depth
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| {
                (d < self.depth_max).then_some(d + 1)
            })
            .map(drop)
            .map_err(|_| Error::Backpressure {
                actor: self.path.to_string(),
                depth_max: self.depth_max,
            })
    }

    /// Called by the actor as it takes a message off its queue.
    pub fn taken(&self) {
        // Saturating: a message sent around the gate must not wrap it.
        let _ = self
            .depth
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1));
    }

    /// Sends without waiting for an answer.
    pub fn cast<M: Message>(&self, actor: &ActorRef<M>, msg: M) -> Result<(), Error> {
        self.reserve()?;
        actor.send_message(msg).map_err(|_| {
            self.taken();
            Error::Stopped {
                actor: self.path.to_string(),
            }
        })
    }

    /// Sends and waits at most `timeout_ms` for the reply.
    pub async fn call<M: Message, R: Send + 'static>(
        &self,
        actor: &ActorRef<M>,
        build: impl FnOnce(RpcReplyPort<R>) -> M,
        timeout_ms: u64,
    ) -> Result<R, Error> {
        self.reserve()?;
        let result = actor
            .call(build, Some(Duration::from_millis(timeout_ms)))
            .await;
        let stopped = || Error::Stopped {
            actor: self.path.to_string(),
        };
        match result {
            Ok(CallResult::Success(reply)) => Ok(reply),
            Ok(CallResult::Timeout) => Err(Error::Timeout {
                actor: self.path.to_string(),
                ms: timeout_ms,
            }),
            Ok(CallResult::SenderError) => Err(stopped()),
            Err(_) => {
                self.taken();
                Err(stopped())
            }
        }
    }
}

/// A call to an actor without a [`Mailbox`] (supervisors), always timed.
pub async fn call<M: Message, R: Send + 'static>(
    path: &str,
    actor: &ActorRef<M>,
    build: impl FnOnce(RpcReplyPort<R>) -> M,
    timeout_ms: u64,
) -> Result<R, Error> {
    match actor
        .call(build, Some(Duration::from_millis(timeout_ms)))
        .await
    {
        Ok(CallResult::Success(reply)) => Ok(reply),
        Ok(CallResult::Timeout) => Err(Error::Timeout {
            actor: path.into(),
            ms: timeout_ms,
        }),
        Ok(CallResult::SenderError) | Err(_) => Err(Error::Stopped { actor: path.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RestartPolicy {
        RestartPolicy {
            backoff_initial_ms: 100,
            backoff_max_ms: 1_000,
            failures_max: 3,
            window_ms: 60_000,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = policy();
        let ms: Vec<u128> = (1..=6).map(|n| backoff(&p, n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(backoff(&p, u32::MAX).as_millis(), 1_000);
    }

    #[test]
    fn more_than_max_failures_in_the_window_gives_up() {
        let p = policy();
        let mut h = FailureHistory::default();
        let t0 = Utc::now();
        for (i, expected_ms) in [100, 200, 400].into_iter().enumerate() {
            let at = t0 + chrono::Duration::seconds(i as i64);
            assert_eq!(
                h.record(&p, at),
                RestartDecision::RestartAfter(Duration::from_millis(expected_ms))
            );
        }
        assert_eq!(
            h.record(&p, t0 + chrono::Duration::seconds(3)),
            RestartDecision::GiveUp
        );
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let p = policy();
        let mut h = FailureHistory::default();
        let t0 = Utc::now();
        for i in 0..3 {
            h.record(&p, t0 + chrono::Duration::seconds(i));
        }
        // Two minutes later the old failures no longer count: back to the
        // first backoff step.
        let later = t0 + chrono::Duration::seconds(120);
        assert_eq!(
            h.record(&p, later),
            RestartDecision::RestartAfter(Duration::from_millis(100))
        );
    }
}

#[cfg(test)]
mod mailbox_tests {
    use ractor::{Actor, ActorProcessingErr, ActorRef};
    use tokio::sync::oneshot;

    use super::*;

    /// A stand-in for a busy actor: it holds its handler on `Block` until the
    /// test releases it, so the queue behind it fills deterministically.
    struct Gate;

    enum GateMsg {
        Block {
            started: oneshot::Sender<()>,
            release: oneshot::Receiver<()>,
        },
        Noop,
        /// Answers the queue depth seen when taking the message.
        Depth(RpcReplyPort<usize>),
    }

    impl Actor for Gate {
        type Msg = GateMsg;
        type State = Mailbox;
        type Arguments = Mailbox;

        async fn pre_start(
            &self,
            _myself: ActorRef<GateMsg>,
            mailbox: Mailbox,
        ) -> Result<Mailbox, ActorProcessingErr> {
            Ok(mailbox)
        }

        async fn handle(
            &self,
            _myself: ActorRef<GateMsg>,
            msg: GateMsg,
            mailbox: &mut Mailbox,
        ) -> Result<(), ActorProcessingErr> {
            mailbox.taken();
            match msg {
                GateMsg::Block { started, release } => {
                    let _ = started.send(());
                    let _ = release.await;
                }
                GateMsg::Noop => {}
                GateMsg::Depth(reply) => {
                    let _ = reply.send(mailbox.depth());
                }
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_full_mailbox_refuses_instead_of_growing() {
        let mailbox = Mailbox::new("/test/gate", 2);
        let (actor, _) = Actor::spawn(None, Gate, mailbox.clone())
            .await
            .expect("spawn");
        let (started_tx, started) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        let block = GateMsg::Block {
            started: started_tx,
            release: release_rx,
        };
        mailbox.cast(&actor, block).expect("block");
        started.await.expect("actor blocked");

        mailbox.cast(&actor, GateMsg::Noop).expect("first queued");
        mailbox.cast(&actor, GateMsg::Noop).expect("second queued");
        let refused = mailbox.cast(&actor, GateMsg::Noop);
        assert!(matches!(
            refused,
            Err(Error::Backpressure { ref actor, depth_max: 2 }) if actor == "/test/gate"
        ));
        assert_eq!(mailbox.depth(), 2);

        release.send(()).expect("release");
        // The queue is still full until the actor drains it, so this call
        // goes around the gate (the saturating `taken` allows that); it
        // queues behind the two Noops, so its answer proves their slots freed.
        let depth = call("/test/gate", &actor, GateMsg::Depth, 5_000).await;
        assert_eq!(depth.expect("depth"), 0);
        assert_eq!(mailbox.depth(), 0);
        actor.stop(None);
    }

    #[tokio::test]
    async fn a_call_to_a_stuck_actor_times_out_naming_it() {
        let mailbox = Mailbox::new("/test/stuck", 10);
        let (actor, _) = Actor::spawn(None, Gate, mailbox.clone())
            .await
            .expect("spawn");
        let (started_tx, started) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        let block = GateMsg::Block {
            started: started_tx,
            release: release_rx,
        };
        mailbox.cast(&actor, block).expect("block");
        started.await.expect("actor blocked");
        let stuck = mailbox.call(&actor, GateMsg::Depth, 20).await;
        assert!(matches!(
            stuck,
            Err(Error::Timeout { ref actor, ms: 20 }) if actor == "/test/stuck"
        ));
        release.send(()).expect("release");
        actor.stop(None);
    }
}
