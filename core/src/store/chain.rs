//! What every backend does to an append before it stores it: the request
//! checks, and placing each event after the log's head in the hash chain.
//! Shared so that a PostgreSQL and a SQLite log built from the same appends
//! hold the same chain.

use chrono::{DateTime, Utc};

use super::APPEND_EVENTS_MAX;
use crate::error::Error;
use crate::event::{GENESIS_HASH, Hash, NewEvent, RecordedEvent, StreamId};

/// The last committed event: where the next one goes and what it links to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainHead {
    pub position: u64,
    pub hash: Hash,
    pub recorded_at_micros: i64,
}

impl ChainHead {
    /// The head of an empty log.
    pub const GENESIS: ChainHead = ChainHead {
        position: 0,
        hash: GENESIS_HASH,
        recorded_at_micros: i64::MIN,
    };
}

/// The checks every append passes before anything is written: 1 to
/// [`APPEND_EVENTS_MAX`] events, each valid for `stream`.
pub fn check_append(stream: &StreamId, events: &[NewEvent]) -> Result<(), Error> {
    if events.is_empty() || events.len() > APPEND_EVENTS_MAX {
        return Err(Error::InvalidAppend {
            stream: stream.to_string(),
            reason: format!(
                "an append carries 1 to {APPEND_EVENTS_MAX} events, not {}",
                events.len()
            ),
        });
    }
    events.iter().try_for_each(|e| e.validate(stream))
}

/// Places `ev` after `head` in the chain and advances `head`.
pub fn chain_next(
    head: &mut ChainHead,
    stream: &StreamId,
    revision: u64,
    ev: &NewEvent,
) -> RecordedEvent {
    // The clock may step back; recorded_at never does, so time order and
    // position order agree for every reader.
    let now = Utc::now().timestamp_micros().max(head.recorded_at_micros);
    let mut rec = RecordedEvent {
        position: head.position + 1,
        stream: stream.clone(),
        revision,
        event_id: ev.event_id.clone(),
        event_type: ev.event_type.clone(),
        schema_version: ev.schema_version,
        recorded_at: DateTime::from_timestamp_micros(now).unwrap_or_default(),
        tenant: ev.meta.tenant.clone(),
        principal: ev.meta.principal.clone(),
        correlation_id: ev.meta.correlation_id.clone(),
        causation_id: ev.meta.causation_id.clone(),
        payload: ev.payload.clone(),
        prev_hash: head.hash,
        hash: GENESIS_HASH,
    };
    rec.hash = rec.compute_hash();
    *head = ChainHead {
        position: rec.position,
        hash: rec.hash,
        recorded_at_micros: now,
    };
    rec
}
