//! One aggregate (a tenant or a plugin installation) as an actor. It
//! rebuilds its state from its stream when it starts, runs commands through
//! `aggregate::execute_from` on that in-memory state (decide → append with
//! the expected revision → apply; rebuilt only if another writer moved the
//! stream; bounded conflict retries) and answers queries from memory. A restart is
//! therefore always correct: the state comes back from the log, not from the
//! crashed actor's memory.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use extensor_core::aggregate::{self, Aggregate, AsOf, Loaded, SnapshotPolicy};
use extensor_core::event::{EventMeta, StreamId};
use extensor_core::store::EventStore;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::error::Error;
use crate::supervision::Mailbox;

/// The tenant aggregate's actor.
pub type TenantActor = AggregateActor<extensor_core::tenant::Tenant>;
/// A plugin installation aggregate's actor.
pub type InstallationActor = AggregateActor<extensor_core::installation::PluginInstallation>;

/// An aggregate that can live in an actor: its commands cross threads in
/// messages and `execute` holds its events across awaits.
pub trait ActorAggregate: Aggregate<Command: Send + Sync, Event: Send> {}
impl<A> ActorAggregate for A where A: Aggregate<Command: Send + Sync, Event: Send> {}

/// The actor; stateless itself, its state is [`AggregateState`].
pub struct AggregateActor<A>(PhantomData<fn() -> A>);

impl<A> Default for AggregateActor<A> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

/// What the actor needs to start.
pub struct AggregateArgs {
    pub store: Arc<dyn EventStore>,
    pub stream: StreamId,
    pub mailbox: Mailbox,
    pub snapshots: SnapshotPolicy,
    /// Stop after this long without a message (passivation); the supervisor
    /// starts the actor again on its next request. `None`: never.
    pub passivate_idle_ms: Option<u64>,
}

/// The exit reason of a passivated actor, so its supervisor can tell an
/// idle stop from any other.
pub const PASSIVATED: &str = "passivated";

pub struct AggregateState<A> {
    store: Arc<dyn EventStore>,
    stream: StreamId,
    mailbox: Mailbox,
    snapshots: SnapshotPolicy,
    loaded: Loaded<A>,
    passivate_idle_ms: Option<u64>,
    last_message: Instant,
}

pub enum AggregateMsg<A: Aggregate> {
    /// Runs a command; answers the state after it.
    Execute {
        command: A::Command,
        meta: EventMeta,
        reply: RpcReplyPort<Result<Loaded<A>, Error>>,
    },
    /// Answers the current state.
    Query { reply: RpcReplyPort<Loaded<A>> },
    /// Panics in the handler: lets tests and fault drills exercise the
    /// supervisor with a real panic rather than a simulated one.
    Panic,
    /// The actor's own idle timer (not sent through the mailbox gate).
    IdleCheck,
}

impl<A: ActorAggregate> AggregateState<A> {
    async fn execute(
        &mut self,
        command: &A::Command,
        meta: &EventMeta,
    ) -> Result<Loaded<A>, Error> {
        let current = self.loaded.clone();
        let executed = aggregate::execute_from::<A>(
            &*self.store,
            &self.stream,
            current,
            command,
            meta,
            self.snapshots,
        )
        .await
        .map_err(|source| Error::Core {
            actor: self.mailbox.path().into(),
            source,
        })?;
        self.loaded = executed.state;
        Ok(self.loaded.clone())
    }

    /// Arms the idle timer to fire when the actor would have been idle for
    /// the whole passivation period since its last message.
    fn arm_idle_timer(&self, myself: &ActorRef<AggregateMsg<A>>) {
        let Some(idle_ms) = self.passivate_idle_ms else {
            return;
        };
        let remaining = Duration::from_millis(idle_ms).saturating_sub(self.last_message.elapsed());
        myself.send_after(remaining, || AggregateMsg::IdleCheck);
    }

    /// Stops the actor if it stayed idle, otherwise re-arms the timer.
    fn idle_check(&self, myself: &ActorRef<AggregateMsg<A>>) {
        let idle = self
            .passivate_idle_ms
            .is_some_and(|ms| self.last_message.elapsed() >= Duration::from_millis(ms));
        if idle {
            myself.stop(Some(PASSIVATED.into()));
        } else {
            self.arm_idle_timer(myself);
        }
    }
}

impl<A: ActorAggregate> Actor for AggregateActor<A> {
    type Msg = AggregateMsg<A>;
    type State = AggregateState<A>;
    type Arguments = AggregateArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: AggregateArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let loaded = aggregate::load::<A>(&*args.store, &args.stream, AsOf::Latest)
            .await
            .map_err(|source| Error::Core {
                actor: args.mailbox.path().into(),
                source,
            })?;
        let state = AggregateState {
            store: args.store,
            stream: args.stream,
            mailbox: args.mailbox,
            snapshots: args.snapshots,
            loaded,
            passivate_idle_ms: args.passivate_idle_ms,
            last_message: Instant::now(),
        };
        state.arm_idle_timer(&myself);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, AggregateMsg::IdleCheck) {
            // Only gated messages hold a mailbox slot.
            state.mailbox.taken();
            state.last_message = Instant::now();
        }
        match msg {
            AggregateMsg::Execute {
                command,
                meta,
                reply,
            } => {
                let result = state.execute(&command, &meta).await;
                // The caller may have timed out and gone; that is its choice.
                let _ = reply.send(result);
            }
            AggregateMsg::Query { reply } => {
                let _ = reply.send(state.loaded.clone());
            }
            AggregateMsg::Panic => panic!("fault drill in {}", state.mailbox.path()),
            AggregateMsg::IdleCheck => state.idle_check(&myself),
        }
        Ok(())
    }
}
