//! One aggregate (a tenant or a plugin installation) as an actor. It
//! rebuilds its state from its stream when it starts, runs commands through
//! `aggregate::execute` (decide → append with the expected revision → apply,
//! bounded conflict retries) and answers queries from memory. A restart is
//! therefore always correct: the state comes back from the log, not from the
//! crashed actor's memory.

use std::marker::PhantomData;
use std::sync::Arc;

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
}

pub struct AggregateState<A> {
    store: Arc<dyn EventStore>,
    stream: StreamId,
    mailbox: Mailbox,
    snapshots: SnapshotPolicy,
    loaded: Loaded<A>,
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
}

impl<A: ActorAggregate> AggregateState<A> {
    async fn execute(
        &mut self,
        command: &A::Command,
        meta: &EventMeta,
    ) -> Result<Loaded<A>, Error> {
        let executed =
            aggregate::execute::<A>(&*self.store, &self.stream, command, meta, self.snapshots)
                .await
                .map_err(|source| Error::Core {
                    actor: self.mailbox.path().into(),
                    source,
                })?;
        self.loaded = executed.state;
        Ok(self.loaded.clone())
    }
}

impl<A: ActorAggregate> Actor for AggregateActor<A> {
    type Msg = AggregateMsg<A>;
    type State = AggregateState<A>;
    type Arguments = AggregateArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: AggregateArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let loaded = aggregate::load::<A>(&*args.store, &args.stream, AsOf::Latest)
            .await
            .map_err(|source| Error::Core {
                actor: args.mailbox.path().into(),
                source,
            })?;
        Ok(AggregateState {
            store: args.store,
            stream: args.stream,
            mailbox: args.mailbox,
            snapshots: args.snapshots,
            loaded,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.mailbox.taken();
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
        }
        Ok(())
    }
}
