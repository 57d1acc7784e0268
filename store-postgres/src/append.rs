//! One append: one transaction that takes the log's append lock, so that
//! appends from every node commit one at a time, in position order.
//!
//! Holding the lock from reading the head to the commit is what makes the
//! log a chain: position order = commit order = chain order, and a reader
//! never sees position `n + 1` without `n` (the next append cannot read the
//! head until this one is visible). The cost is that appends to one store
//! are serial: each holds the lock for three round trips and its commit's
//! WAL flush (measured in docs/BENCHMARKS.md).

use std::collections::HashSet;

use extensor_core::Error;
use extensor_core::event::{NewEvent, RecordedEvent, StreamId};
use extensor_core::store::chain::{ChainHead, chain_next, check_append};
use extensor_core::store::{AppendResult, ExpectedRevision};
use tokio_postgres::types::ToSql;

use crate::errors::{corrupt, map_err};
use crate::pool::{Lease, Pool};
use crate::rows::big;
use crate::schema::NOTIFY_CHANNEL;

const LOCK: &str = "SELECT id FROM append_lock WHERE id = 1 FOR UPDATE";
const HEAD: &str = "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1";
const REVISION: &str = "SELECT max(revision) FROM events WHERE stream = $1";
const STORED_IDS: &str = "SELECT event_id FROM events WHERE event_id = ANY($1) LIMIT 1";
const INSERT: &str = "INSERT INTO events (position, stream, revision, event_id, event_type, \
     schema_version, recorded_at, tenant, principal, correlation_id, causation_id, payload, \
     prev_hash, hash) \
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
     $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
     $13::bytea[], $14::bytea[])";
const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// Appends `events` to `stream` if its revision satisfies `expected`; all or
/// nothing, acknowledged once committed (durable per the server's
/// `synchronous_commit`).
pub(crate) async fn append(
    pool: &Pool,
    stream: &StreamId,
    expected: ExpectedRevision,
    events: &[NewEvent],
) -> Result<AppendResult, Error> {
    check_append(stream, events)?;
    refuse_repeated_ids(stream, events)?;
    let mut lease = pool.get().await?;
    lease.in_transaction = true;
    let outcome = locked(&mut lease, stream, expected, events).await;
    let finish = match outcome {
        Ok(_) => "COMMIT",
        Err(_) => "ROLLBACK",
    };
    let location = lease.location().clone();
    let finished = lease.client().batch_execute(finish).await;
    match (outcome, finished) {
        (Ok(result), Ok(())) => {
            lease.in_transaction = false;
            Ok(result)
        }
        // Not committed (or not known to be): the session is dropped, which
        // rolls back whatever is left of it.
        (Ok(_), Err(e)) => Err(map_err(&location, e)),
        (Err(e), Ok(())) => {
            lease.in_transaction = false;
            Err(e)
        }
        (Err(e), Err(_)) => Err(e),
    }
}

/// Inside the transaction: lock, check, insert, notify.
async fn locked(
    lease: &mut Lease<'_>,
    stream: &StreamId,
    expected: ExpectedRevision,
    events: &[NewEvent],
) -> Result<AppendResult, Error> {
    let location = lease.location().clone();
    let (lock, head, revision, stored) = (
        lease.prepare(LOCK).await?,
        lease.prepare(HEAD).await?,
        lease.prepare(REVISION).await?,
        lease.prepare(STORED_IDS).await?,
    );
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let client = lease.client();
    // Pipelined: BEGIN and the lock in one round trip, then (under the lock,
    // in a snapshot taken after it) the head, the stream's revision and any
    // already-stored id in another.
    let no_params: [&(dyn ToSql + Sync); 0] = [];
    let (begin, locked) = futures::join!(
        client.batch_execute("BEGIN"),
        client.query(&lock, &no_params)
    );
    begin.map_err(|e| map_err(&location, e))?;
    locked.map_err(|e| map_err(&location, e))?;
    let stream_name = stream.as_str();
    let (stream_param, ids_param): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) =
        ([&stream_name], [&ids]);
    let (head, revision, stored) = futures::join!(
        client.query_opt(&head, &no_params),
        client.query_one(&revision, &stream_param),
        client.query_opt(&stored, &ids_param),
    );
    let head = read_head(head.map_err(|e| map_err(&location, e))?, &location)?;
    let actual: Option<i64> = revision.map_err(|e| map_err(&location, e))?.get(0);
    let actual = actual.map(|r| r.max(0) as u64);
    if let Some(row) = stored.map_err(|e| map_err(&location, e))? {
        return Err(Error::DuplicateEventId {
            stream: stream.to_string(),
            event_id: row.get::<_, String>(0),
        });
    }
    if !expected.admits(actual) {
        return Err(Error::Conflict {
            stream: stream.to_string(),
            expected,
            actual,
        });
    }
    let (result, recorded) = place(head, stream, actual, events);
    insert(lease, &recorded, result.last_position).await?;
    Ok(result)
}

/// Positions, revisions and hashes for the events after `head`.
fn place(
    head: ChainHead,
    stream: &StreamId,
    actual: Option<u64>,
    events: &[NewEvent],
) -> (AppendResult, Vec<RecordedEvent>) {
    let mut local = head;
    let first_revision = actual.map_or(0, |r| r + 1);
    let recorded: Vec<RecordedEvent> = events
        .iter()
        .enumerate()
        .map(|(i, ev)| chain_next(&mut local, stream, first_revision + i as u64, ev))
        .collect();
    let result = AppendResult {
        first_position: head.position + 1,
        last_position: local.position,
        next_expected: first_revision + recorded.len() as u64 - 1,
    };
    (result, recorded)
}

/// One multi-row insert and the notification, pipelined.
async fn insert(lease: &mut Lease<'_>, rows: &[RecordedEvent], last: u64) -> Result<(), Error> {
    let location = lease.location().clone();
    let (insert, notify) = (lease.prepare(INSERT).await?, lease.prepare(NOTIFY).await?);
    let col = |f: &dyn Fn(&RecordedEvent) -> Option<String>| -> Vec<Option<String>> {
        rows.iter().map(f).collect()
    };
    let int = |f: &dyn Fn(&RecordedEvent) -> i64| -> Vec<i64> { rows.iter().map(f).collect() };
    let positions = int(&|r| big(r.position));
    let streams = col(&|r| Some(r.stream.as_str().to_owned()));
    let revisions = int(&|r| big(r.revision));
    let ids = col(&|r| Some(r.event_id.as_str().to_owned()));
    let types = col(&|r| Some(r.event_type.clone()));
    let versions = int(&|r| i64::from(r.schema_version));
    let times = int(&|r| r.recorded_at.timestamp_micros());
    let tenants = col(&|r| r.tenant.as_ref().map(|t| t.as_str().to_owned()));
    let principals = col(&|r| Some(r.principal.as_str().to_owned()));
    let correlations = col(&|r| Some(r.correlation_id.as_str().to_owned()));
    let causations = col(&|r| r.causation_id.as_ref().map(|c| c.as_str().to_owned()));
    let payloads = col(&|r| Some(r.payload.get().to_owned()));
    let prev: Vec<&[u8]> = rows.iter().map(|r| &r.prev_hash[..]).collect();
    let hashes: Vec<&[u8]> = rows.iter().map(|r| &r.hash[..]).collect();
    let params: [&(dyn ToSql + Sync); 14] = [
        &positions,
        &streams,
        &revisions,
        &ids,
        &types,
        &versions,
        &times,
        &tenants,
        &principals,
        &correlations,
        &causations,
        &payloads,
        &prev,
        &hashes,
    ];
    let last = last.to_string();
    let client = lease.client();
    let notify_params: [&(dyn ToSql + Sync); 2] = [&NOTIFY_CHANNEL, &last];
    let (inserted, notified) = futures::join!(
        client.execute(&insert, &params),
        client.query_one(&notify, &notify_params),
    );
    inserted.map_err(|e| map_err(&location, e))?;
    notified.map_err(|e| map_err(&location, e))?;
    Ok(())
}

fn read_head(
    row: Option<tokio_postgres::Row>,
    location: &crate::location::Location,
) -> Result<ChainHead, Error> {
    let Some(row) = row else {
        return Ok(ChainHead::GENESIS);
    };
    let position: i64 = row.get(0);
    let hash: &[u8] = row.get(1);
    let hash: extensor_core::event::Hash = hash.try_into().map_err(|_| {
        corrupt(
            location,
            format!("event {position} has a hash that is not 32 bytes"),
        )
    })?;
    Ok(ChainHead {
        position: u64::try_from(position).map_err(|_| {
            corrupt(
                location,
                format!("the head position {position} is negative"),
            )
        })?,
        hash,
        recorded_at_micros: row.get(2),
    })
}

/// Two events of one append with the same id would fail on insert; say
/// which id instead.
fn refuse_repeated_ids(stream: &StreamId, events: &[NewEvent]) -> Result<(), Error> {
    let mut seen = HashSet::with_capacity(events.len());
    match events.iter().find(|e| !seen.insert(e.event_id.as_str())) {
        Some(e) => Err(Error::DuplicateEventId {
            stream: stream.to_string(),
            event_id: e.event_id.to_string(),
        }),
        None => Ok(()),
    }
}
