//! Appends: one writer task per store instance commits them in groups, each
//! group one transaction that takes the log's append lock, so that appends
//! from every node commit one at a time, in position order.
//!
//! Holding the lock from reading the head to the commit is what makes the
//! log a chain: position order = commit order = chain order, and a reader
//! never sees position `n + 1` without `n` (the next transaction cannot
//! read the head until this one is visible). The cost is that transactions
//! on one store are serial across all nodes: each holds the lock for three
//! round trips and its commit's WAL flush. Group commit spreads that cost
//! over every append queued in this process meanwhile (docs/BENCHMARKS.md).
//!
//! Each append's expected revision and event ids are checked inside the
//! group's transaction, under the lock; an append that fails them is
//! answered with its error and the rest of the group commits without it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use extensor_core::Error;
use extensor_core::event::{NewEvent, RecordedEvent, StreamId};
use extensor_core::store::chain::{ChainHead, chain_next, check_append};
use extensor_core::store::{AppendResult, ExpectedRevision};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;

use crate::errors::{corrupt, map_err};
use crate::pool::{Lease, Pool};
use crate::publisher::Wake;
use crate::rows::big;
use crate::schema::NOTIFY_CHANNEL;

/// Appends waiting for the writer; a full queue makes callers wait
/// (backpressure) instead of growing memory.
pub const WRITE_QUEUE_MAX: usize = 4_096;
/// A group holds at most this many events, and at most
/// [`GROUP_PAYLOAD_BYTES_MAX`] of payload (an append larger than that
/// commits alone): bounds the lock time and the memory of one transaction.
pub const GROUP_EVENTS_MAX: usize = 4_096;
pub const GROUP_PAYLOAD_BYTES_MAX: usize = 16 * 1024 * 1024;

const LOCK: &str = "SELECT id FROM append_lock WHERE id = 1 FOR UPDATE";
const HEAD: &str = "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1";
const REVISIONS: &str =
    "SELECT stream, max(revision) FROM events WHERE stream = ANY($1) GROUP BY stream";
const STORED_IDS: &str = "SELECT event_id FROM events WHERE event_id = ANY($1)";
const INSERT: &str = "INSERT INTO events (position, stream, revision, event_id, event_type, \
     schema_version, recorded_at, tenant, principal, correlation_id, causation_id, payload, \
     prev_hash, hash) \
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
     $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
     $13::bytea[], $14::bytea[])";
const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// One queued append and where its answer goes.
pub(crate) struct Request {
    stream: StreamId,
    expected: ExpectedRevision,
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<AppendResult, Error>>,
}

impl Request {
    fn payload_bytes(&self) -> usize {
        self.events.iter().map(|e| e.payload.get().len()).sum()
    }
}

/// Checks an append and queues it for the writer; resolves once it is
/// committed (durable: sessions run with `synchronous_commit = on`).
pub(crate) async fn append(
    queue: &mpsc::Sender<Request>,
    stream: StreamId,
    expected: ExpectedRevision,
    events: Vec<NewEvent>,
) -> Result<AppendResult, Error> {
    check_append(&stream, &events)?;
    refuse_repeated_ids(&stream, &events)?;
    let (reply, answer) = oneshot::channel();
    let request = Request {
        stream,
        expected,
        events,
        reply,
    };
    queue.send(request).await.map_err(|_| Error::StoreClosed)?;
    answer.await.map_err(|_| Error::StoreClosed)?
}

/// The writer task: takes what is queued, commits it as one group, answers
/// every caller, wakes the publisher. Ends when the store is dropped.
pub(crate) async fn run_writer(
    pool: Arc<Pool>,
    mut queue: mpsc::Receiver<Request>,
    wake: Arc<Wake>,
) {
    let mut carried: Option<Request> = None;
    loop {
        let first = match carried.take() {
            Some(r) => r,
            None => match queue.recv().await {
                Some(r) => r,
                None => return,
            },
        };
        let (mut events, mut bytes) = (first.events.len(), first.payload_bytes());
        let mut group = vec![first];
        while let Ok(next) = queue.try_recv() {
            if events + next.events.len() > GROUP_EVENTS_MAX
                || bytes + next.payload_bytes() > GROUP_PAYLOAD_BYTES_MAX
            {
                carried = Some(next);
                break;
            }
            events += next.events.len();
            bytes += next.payload_bytes();
            group.push(next);
        }
        let outcomes = commit_group(&pool, &group).await;
        answer(group, outcomes, &wake);
    }
}

fn answer(
    group: Vec<Request>,
    outcomes: Result<Vec<Result<AppendResult, Error>>, Error>,
    wake: &Wake,
) {
    match outcomes {
        Ok(outcomes) => {
            let last = outcomes
                .iter()
                .filter_map(|o| o.as_ref().ok().map(|r| r.last_position))
                .max();
            if let Some(last) = last {
                wake.send_modify(|v| *v = (*v).max(last));
            }
            for (request, outcome) in group.into_iter().zip(outcomes) {
                let _ = request.reply.send(outcome);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, appends = group.len(), "group commit failed; no append of it was acknowledged");
            for request in group {
                let _ = request.reply.send(Err(e.copy_for_each_caller()));
            }
        }
    }
}

/// One transaction for the group: every append in it committed or failed
/// alone (a conflict or a stored id), or the whole group failed.
async fn commit_group(
    pool: &Pool,
    group: &[Request],
) -> Result<Vec<Result<AppendResult, Error>>, Error> {
    let mut lease = pool.get().await?;
    lease.in_transaction = true;
    let outcome = locked(&mut lease, group).await;
    let finish = match outcome {
        Ok(_) => "COMMIT",
        Err(_) => "ROLLBACK",
    };
    let location = lease.location().clone();
    let finished = lease.client().batch_execute(finish).await;
    match (outcome, finished) {
        (Ok(outcomes), Ok(())) => {
            lease.in_transaction = false;
            Ok(outcomes)
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

/// What the group's checks read under the lock.
struct Seen {
    head: ChainHead,
    revisions: HashMap<String, u64>,
    stored_ids: HashSet<String>,
}

/// Inside the transaction: lock, read, decide each append, insert, notify.
async fn locked(
    lease: &mut Lease<'_>,
    group: &[Request],
) -> Result<Vec<Result<AppendResult, Error>>, Error> {
    let mut seen = read_under_lock(lease, group).await?;
    let mut rows = Vec::new();
    let outcomes: Vec<Result<AppendResult, Error>> = group
        .iter()
        .map(|r| {
            let (result, recorded) = decide(&mut seen, r)?;
            rows.extend(recorded);
            Ok(result)
        })
        .collect();
    if let Some(last) = rows.last().map(|r| r.position) {
        insert(lease, &rows, last).await?;
    }
    Ok(outcomes)
}

/// Takes the lock, then (in a snapshot taken after it) reads the head, the
/// revisions of the group's streams and which of its ids are stored.
async fn read_under_lock(lease: &mut Lease<'_>, group: &[Request]) -> Result<Seen, Error> {
    let location = lease.location().clone();
    let err = |e| map_err(&location, e);
    let (lock, head, revisions, stored) = (
        lease.prepare(LOCK).await?,
        lease.prepare(HEAD).await?,
        lease.prepare(REVISIONS).await?,
        lease.prepare(STORED_IDS).await?,
    );
    let streams: Vec<&str> = group
        .iter()
        .map(|r| r.stream.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let ids: Vec<&str> = group
        .iter()
        .flat_map(|r| r.events.iter().map(|e| e.event_id.as_str()))
        .collect();
    let no_params: [&(dyn ToSql + Sync); 0] = [];
    let (streams_param, ids_param): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) =
        ([&streams], [&ids]);
    let client = lease.client();
    // Pipelined: BEGIN and the lock in one round trip, the reads in another.
    let (begin, locked) = futures::join!(
        client.batch_execute("BEGIN"),
        client.query(&lock, &no_params)
    );
    begin.map_err(err)?;
    locked.map_err(err)?;
    let (head, revisions, stored) = futures::join!(
        client.query_opt(&head, &no_params),
        client.query(&revisions, &streams_param),
        client.query(&stored, &ids_param),
    );
    let head = read_head(head.map_err(err)?, &location)?;
    let revisions = revisions
        .map_err(err)?
        .iter()
        .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1).max(0) as u64))
        .collect();
    let stored_ids = stored.map_err(err)?.iter().map(|row| row.get(0)).collect();
    Ok(Seen {
        head,
        revisions,
        stored_ids,
    })
}

/// Checks one append against what the group has seen so far and places its
/// events; on success the group's view moves past it.
fn decide(seen: &mut Seen, r: &Request) -> Result<(AppendResult, Vec<RecordedEvent>), Error> {
    if let Some(e) = r
        .events
        .iter()
        .find(|e| seen.stored_ids.contains(e.event_id.as_str()))
    {
        return Err(Error::DuplicateEventId {
            stream: r.stream.to_string(),
            event_id: e.event_id.to_string(),
        });
    }
    let actual = seen.revisions.get(r.stream.as_str()).copied();
    if !r.expected.admits(actual) {
        return Err(Error::Conflict {
            stream: r.stream.to_string(),
            expected: r.expected,
            actual,
        });
    }
    let mut head = seen.head;
    let first_revision = actual.map_or(0, |rev| rev + 1);
    let recorded: Vec<RecordedEvent> = r
        .events
        .iter()
        .enumerate()
        .map(|(i, ev)| chain_next(&mut head, &r.stream, first_revision + i as u64, ev))
        .collect();
    let result = AppendResult {
        first_position: seen.head.position + 1,
        last_position: head.position,
        next_expected: first_revision + recorded.len() as u64 - 1,
    };
    seen.head = head;
    seen.revisions
        .insert(r.stream.as_str().to_owned(), result.next_expected);
    seen.stored_ids
        .extend(r.events.iter().map(|e| e.event_id.as_str().to_owned()));
    Ok((result, recorded))
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
