//! Aggregates: pure decision logic over an event-sourced state, and the one
//! place that loads them from a store and runs commands against them.
//!
//! An aggregate is `decide(state, command) -> events` and
//! `apply(state, event)`, both without IO. [`load`] rebuilds the state from
//! the newest usable snapshot plus the events after it; [`execute`] runs
//! decide → append with the expected revision → apply, reloading and retrying
//! a bounded number of times when another writer got there first.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::error::{DomainError, Error};
use crate::event::{EventMeta, NewEvent, RecordedEvent, StreamId};
use crate::store::{EventStore, ExpectedRevision, READ_EVENTS_MAX, SnapshotRecord};

/// How many times [`execute`] reloads and retries after a revision conflict
/// before reporting the conflict to the caller.
pub const CONFLICT_RETRIES_MAX: u32 = 8;

/// A domain event type of one aggregate, with its versioned wire form.
pub trait DomainEvent: Sized {
    /// The event type stored in the envelope, e.g. `plugin.enabled`.
    fn event_type(&self) -> &'static str;
    /// The schema version this code writes for that type.
    fn schema_version(&self) -> u32;
    /// The payload as JSON.
    fn to_payload(&self) -> Result<Box<RawValue>, serde_json::Error>;
    /// Reads a stored payload of any known version, upcasting old ones.
    fn decode(event_type: &str, schema_version: u32, payload: &RawValue) -> Result<Self, String>;
}

pub trait Aggregate:
    Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static
{
    type Command;
    type Event: DomainEvent;
    /// `tenant`, `installation`: names the aggregate in errors and snapshots.
    const KIND: &'static str;
    /// Bump when the serialised state changes shape: older snapshots are then
    /// ignored instead of misread.
    const SNAPSHOT_VERSION: u32;

    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, DomainError>;

    /// Folds one event into the state. An event that cannot follow the
    /// current state means the log is not what this code wrote; the reason is
    /// returned and the rebuild fails naming the event's position.
    fn apply(&mut self, event: &Self::Event) -> Result<(), String>;
}

/// An aggregate's state and where in its stream it stands.
#[derive(Clone, Debug)]
pub struct Loaded<A> {
    pub state: A,
    /// The revision of the last event applied; `None` for a new stream.
    pub revision: Option<u64>,
    /// The global position of the last event applied (0 if none).
    pub position: u64,
    /// How many events were applied since the snapshot it was loaded from
    /// (or from zero), or since the last snapshot [`execute`] wrote.
    pub events_applied: u64,
}

/// When to use and write snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Write a snapshot once this many events were applied since the last
    /// one. `None` never writes snapshots.
    pub every_events: Option<u64>,
}

impl SnapshotPolicy {
    pub const NEVER: SnapshotPolicy = SnapshotPolicy { every_events: None };
    /// The default: cheap enough to write, and a rebuild replays at most this.
    pub const DEFAULT: SnapshotPolicy = SnapshotPolicy {
        every_events: Some(1_000),
    };
}

/// Up to which point to rebuild.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    Latest,
    /// Everything up to and including this global position.
    Position(u64),
    /// Everything recorded at or before this time. Recorded times never go
    /// backwards along the log, so this is a position too.
    Time(chrono::DateTime<chrono::Utc>),
}

impl AsOf {
    fn excludes(&self, ev: &RecordedEvent) -> bool {
        match self {
            AsOf::Latest => false,
            AsOf::Position(p) => ev.position > *p,
            AsOf::Time(t) => ev.recorded_at > *t,
        }
    }
}

/// Rebuilds the aggregate on `stream`: the newest snapshot, if one exists
/// for this code's snapshot version and does not reach past `as_of`, then
/// the events after it.
pub async fn load<A: Aggregate>(
    store: &dyn EventStore,
    stream: &StreamId,
    as_of: AsOf,
) -> Result<Loaded<A>, Error> {
    let mut loaded = match load_snapshot::<A>(store, stream, as_of).await? {
        Some(l) => l,
        None => Loaded {
            state: A::default(),
            revision: None,
            position: 0,
            events_applied: 0,
        },
    };
    loop {
        let from = loaded.revision.map_or(0, |r| r + 1);
        let page = store
            .read_stream(stream.clone(), from, READ_EVENTS_MAX)
            .await?;
        let page_len = page.len();
        for ev in page {
            if as_of.excludes(&ev) {
                return Ok(loaded);
            }
            apply_recorded(&mut loaded, &ev)?;
        }
        if page_len < READ_EVENTS_MAX {
            return Ok(loaded);
        }
    }
}

async fn load_snapshot<A: Aggregate>(
    store: &dyn EventStore,
    stream: &StreamId,
    as_of: AsOf,
) -> Result<Option<Loaded<A>>, Error> {
    let Some(snap) = store
        .load_snapshot(stream.clone(), A::KIND.into(), A::SNAPSHOT_VERSION)
        .await?
    else {
        return Ok(None);
    };
    // A snapshot past the requested point cannot be used; replay instead.
    match as_of {
        AsOf::Position(p) if snap.position > p => return Ok(None),
        AsOf::Time(_) => return Ok(None),
        _ => {}
    }
    match serde_json::from_str::<A>(&snap.state) {
        Ok(state) => Ok(Some(Loaded {
            state,
            revision: Some(snap.revision),
            position: snap.position,
            events_applied: 0,
        })),
        Err(e) => {
            // A snapshot is only a cache: an unreadable one costs a full
            // replay, never a wrong state.
            tracing::warn!(stream = %stream, error = %e, "ignoring unreadable snapshot");
            Ok(None)
        }
    }
}

/// Decodes and applies one stored event, checking it continues the stream.
pub fn apply_recorded<A: Aggregate>(
    loaded: &mut Loaded<A>,
    ev: &RecordedEvent,
) -> Result<(), Error> {
    let expected = loaded.revision.map_or(0, |r| r + 1);
    if ev.revision != expected {
        return Err(Error::Invariant {
            position: ev.position,
            stream: ev.stream.to_string(),
            aggregate: A::KIND,
            reason: format!(
                "revision {} follows revision {expected} - 1 (a gap in the stream)",
                ev.revision
            ),
        });
    }
    let decoded =
        A::Event::decode(&ev.event_type, ev.schema_version, &ev.payload).map_err(|reason| {
            Error::Decode {
                position: ev.position,
                stream: ev.stream.to_string(),
                event_type: ev.event_type.clone(),
                schema_version: ev.schema_version,
                reason,
            }
        })?;
    loaded
        .state
        .apply(&decoded)
        .map_err(|reason| Error::Invariant {
            position: ev.position,
            stream: ev.stream.to_string(),
            aggregate: A::KIND,
            reason,
        })?;
    loaded.revision = Some(ev.revision);
    loaded.position = ev.position;
    loaded.events_applied += 1;
    Ok(())
}

/// What a successful command produced.
#[derive(Clone, Debug)]
pub struct Executed<A> {
    pub state: Loaded<A>,
    /// Positions of the appended events (empty when the command was a no-op).
    pub first_position: Option<u64>,
    pub events: usize,
}

/// Runs `command` against the aggregate on `stream`, rebuilt from the store.
pub async fn execute<A: Aggregate>(
    store: &dyn EventStore,
    stream: &StreamId,
    command: &A::Command,
    meta: &EventMeta,
    policy: SnapshotPolicy,
) -> Result<Executed<A>, Error> {
    let loaded = load::<A>(store, stream, AsOf::Latest).await?;
    execute_from(store, stream, loaded, command, meta, policy).await
}

/// Runs `command` starting from `loaded`, a state the caller already holds
/// (an actor's). One indexed query checks that the stream has not moved since;
/// only if it has (another process appended) is the state rebuilt, so a stale
/// state never decides. On a revision conflict it reloads and retries a
/// bounded number of times, then reports the conflict.
pub async fn execute_from<A: Aggregate>(
    store: &dyn EventStore,
    stream: &StreamId,
    mut loaded: Loaded<A>,
    command: &A::Command,
    meta: &EventMeta,
    policy: SnapshotPolicy,
) -> Result<Executed<A>, Error> {
    if store.stream_revision(stream.clone()).await? != loaded.revision {
        loaded = load::<A>(store, stream, AsOf::Latest).await?;
    }
    let mut attempt = 0;
    loop {
        let events = loaded.state.decide(command)?;
        if events.is_empty() {
            return Ok(Executed {
                state: loaded,
                first_position: None,
                events: 0,
            });
        }
        let new_events = to_new_events(&events, meta)?;
        let expected = ExpectedRevision::from_current(loaded.revision);
        match store.append(stream.clone(), expected, new_events).await {
            Ok(result) => {
                for ev in &events {
                    loaded.state.apply(ev).map_err(|reason| Error::Invariant {
                        position: result.last_position,
                        stream: stream.to_string(),
                        aggregate: A::KIND,
                        reason,
                    })?;
                }
                loaded.revision = Some(result.next_expected);
                loaded.position = result.last_position;
                loaded.events_applied += events.len() as u64;
                maybe_snapshot(store, stream, &mut loaded, policy).await;
                return Ok(Executed {
                    state: loaded,
                    first_position: Some(result.first_position),
                    events: events.len(),
                });
            }
            Err(Error::Conflict { .. }) if attempt < CONFLICT_RETRIES_MAX => {
                attempt += 1;
                // Writers that lost the same race would otherwise reload and
                // collide again in lockstep; a random pause spreads them out.
                tokio::time::sleep(conflict_backoff(attempt)).await;
                loaded = load::<A>(store, stream, AsOf::Latest).await?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A random pause of up to 2^attempt milliseconds (capped at 64 ms).
fn conflict_backoff(attempt: u32) -> std::time::Duration {
    use std::hash::{BuildHasher, Hasher};
    let ceiling_us = 1_000u64 << attempt.min(6);
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    std::time::Duration::from_micros(random % ceiling_us)
}

fn to_new_events<E: DomainEvent>(events: &[E], meta: &EventMeta) -> Result<Vec<NewEvent>, Error> {
    events
        .iter()
        .map(|e| {
            let payload = e.to_payload().map_err(|err| Error::InvalidValue {
                what: "event payload",
                value: e.event_type().into(),
                reason: err.to_string(),
            })?;
            Ok(NewEvent {
                event_id: crate::ids::EventId::generate(),
                event_type: e.event_type().into(),
                schema_version: e.schema_version(),
                meta: meta.clone(),
                payload,
            })
        })
        .collect()
}

/// Writes a snapshot when the policy says so. Failure only costs a slower
/// rebuild later, so it is logged, not returned.
async fn maybe_snapshot<A: Aggregate>(
    store: &dyn EventStore,
    stream: &StreamId,
    loaded: &mut Loaded<A>,
    policy: SnapshotPolicy,
) {
    let Some(every) = policy.every_events else {
        return;
    };
    let Some(revision) = loaded.revision else {
        return;
    };
    if (revision + 1) % every != 0 && loaded.events_applied < every {
        return;
    }
    match write_snapshot(store, stream, loaded).await {
        // `events_applied` counts events since the last snapshot; a caller that
        // keeps its state (an actor) must not snapshot on every command after.
        Ok(()) => loaded.events_applied = 0,
        Err(e) => tracing::warn!(stream = %stream, error = %e, "snapshot not written"),
    }
}

/// Stores `loaded` as the stream's snapshot.
pub async fn write_snapshot<A: Aggregate>(
    store: &dyn EventStore,
    stream: &StreamId,
    loaded: &Loaded<A>,
) -> Result<(), Error> {
    let Some(revision) = loaded.revision else {
        return Ok(());
    };
    let state = serde_json::to_string(&loaded.state).map_err(|e| Error::InvalidValue {
        what: "snapshot",
        value: A::KIND.into(),
        reason: e.to_string(),
    })?;
    let record = SnapshotRecord {
        stream: stream.clone(),
        aggregate: A::KIND.into(),
        snapshot_version: A::SNAPSHOT_VERSION,
        revision,
        position: loaded.position,
        state,
    };
    store.save_snapshot(record).await
}

/// Helper for [`DomainEvent::decode`]: parses a payload into `T`.
pub fn parse_payload<T: DeserializeOwned>(payload: &RawValue) -> Result<T, String> {
    serde_json::from_str(payload.get()).map_err(|e| e.to_string())
}

/// Helper for [`DomainEvent::to_payload`].
pub fn to_raw<T: Serialize>(payload: &T) -> Result<Box<RawValue>, serde_json::Error> {
    serde_json::value::to_raw_value(payload)
}

/// Builds a [`DomainError`].
pub fn refuse(
    aggregate: &'static str,
    state: impl Into<String>,
    code: &'static str,
    message: impl Into<String>,
) -> DomainError {
    DomainError {
        aggregate,
        state: state.into(),
        code,
        message: message.into(),
    }
}
