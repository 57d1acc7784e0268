//! The single writer: one OS thread owns the write connection and commits
//! appends in groups.
//!
//! Concurrent appends queue on a bounded channel. The writer takes whatever
//! is queued (up to [`GROUP_COMMIT_EVENTS_MAX`]), checks each request's
//! expected revision, inserts every request (one that fails on insert is
//! answered alone and the rest replayed, so one bad request never takes its
//! neighbours down), commits the whole group in one durable transaction,
//! and only then answers every request and publishes the events to live
//! subscribers. Snapshots queued beside the appends are saved in the same
//! transaction. A crash before the commit loses the group, which nobody was
//! told about; a crash after it loses nothing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::schema::map_err;
use crate::error::Error;
use crate::event::{Hash, NewEvent, RecordedEvent, StreamId};
use crate::store::chain::{ChainHead, chain_next, check_append};
use crate::store::{AppendResult, ExpectedRevision, SNAPSHOT_BYTES_MAX, SnapshotRecord};

/// At most this many events go into one transaction. Bounds the time one
/// commit holds the write lock and the memory a group needs.
pub const GROUP_COMMIT_EVENTS_MAX: usize = 4_096;
/// Appends waiting for the writer. A full queue makes callers wait
/// (backpressure) instead of growing memory.
pub const WRITE_QUEUE_MAX: usize = 4_096;
/// When the previous group held several appends, the writer waits up to this
/// long for the current group to fill to that size before committing. The
/// callers of the last group are just being woken and re-submitting; without
/// the wait the writer commits the first one alone and groups stay small.
/// A lone writer never waits (its previous group had one append).
const GROUP_FILL_WAIT_US: u64 = 300;

pub enum WriterMsg {
    Append {
        stream: StreamId,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
        reply: oneshot::Sender<Result<AppendResult, Error>>,
    },
    SaveSnapshot {
        snapshot: SnapshotRecord,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    DeleteSnapshots {
        reply: oneshot::Sender<Result<u64, Error>>,
    },
    /// Finish what is queued, then stop; answered once the thread is done.
    Shutdown { reply: oneshot::Sender<()> },
}

/// An append taken off the queue: stream, expectation, events, reply.
type QueuedAppend = (
    StreamId,
    ExpectedRevision,
    Vec<NewEvent>,
    oneshot::Sender<Result<AppendResult, Error>>,
);

/// A snapshot taken off the queue, saved in the next group's transaction.
type QueuedSnapshot = (SnapshotRecord, oneshot::Sender<Result<(), Error>>);

/// What one transaction commits: the appends and snapshots queued together.
#[derive(Default)]
struct Group {
    appends: Vec<QueuedAppend>,
    snapshots: Vec<QueuedSnapshot>,
    events: usize,
}

pub struct Writer {
    conn: Connection,
    path: PathBuf,
    live: broadcast::Sender<Arc<RecordedEvent>>,
    stats: Arc<WriterStats>,
    /// Last committed revision per stream. Valid only while the log's head is
    /// the position we last committed; otherwise another process appended
    /// and the cache is dropped.
    revisions: HashMap<StreamId, Option<u64>>,
    committed_head: Option<u64>,
}

/// Streams whose revision the writer remembers; past this the cache is
/// dropped and refilled from the index as streams are appended to again.
const REVISION_CACHE_STREAMS_MAX: usize = 100_000;

type Outcome = Result<(AppendResult, Vec<RecordedEvent>), Error>;
/// A committed group: each append's outcome, each snapshot's.
type Committed = (Vec<Outcome>, Vec<Result<(), Error>>);

enum GroupFailure {
    /// The append at this index failed on insert; replay the rest.
    Request(usize, Error),
    /// The transaction failed; nothing of the group was committed.
    Whole(Error),
}

/// Counters the writer keeps for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed (one per group).
    pub groups: std::sync::atomic::AtomicU64,
    /// Appends acknowledged.
    pub appends: std::sync::atomic::AtomicU64,
    /// Events committed.
    pub events: std::sync::atomic::AtomicU64,
    /// Position of the last event published to this process's live
    /// subscribers. The head poller treats a head beyond it as another
    /// process's append (see `SqliteStore::subscribe_all`).
    pub published_position: std::sync::atomic::AtomicU64,
}

impl Writer {
    pub fn new(
        conn: Connection,
        path: PathBuf,
        live: broadcast::Sender<Arc<RecordedEvent>>,
        stats: Arc<WriterStats>,
    ) -> Self {
        Self {
            conn,
            path,
            live,
            stats,
            revisions: HashMap::new(),
            committed_head: None,
        }
    }

    /// The writer thread's loop. Returns when every sender is gone or a
    /// shutdown message arrives.
    pub fn run(mut self, mut rx: mpsc::Receiver<WriterMsg>) {
        let mut last_group_len = 0usize;
        while let Some(first) = rx.blocking_recv() {
            let mut group = Group::default();
            let mut shutdown = None;
            let mut next = Some(first);
            let fill_deadline =
                std::time::Instant::now() + std::time::Duration::from_micros(GROUP_FILL_WAIT_US);
            while let Some(msg) = next.take() {
                match msg {
                    WriterMsg::Append {
                        stream,
                        expected,
                        events,
                        reply,
                    } => {
                        group.events += events.len();
                        group.appends.push((stream, expected, events, reply));
                    }
                    WriterMsg::SaveSnapshot { snapshot, reply } => {
                        match check_snapshot(&snapshot) {
                            Ok(()) => group.snapshots.push((snapshot, reply)),
                            Err(e) => {
                                let _ = reply.send(Err(e));
                            }
                        }
                    }
                    WriterMsg::DeleteSnapshots { reply } => {
                        // In queue order: snapshots queued before the delete
                        // are saved (and deleted), none after it is lost.
                        if !group.snapshots.is_empty() {
                            self.commit_group(std::mem::take(&mut group));
                        }
                        let _ = reply.send(self.delete_snapshots());
                    }
                    WriterMsg::Shutdown { reply } => shutdown = Some(reply),
                }
                if shutdown.is_none()
                    && group.events + group.snapshots.len() < GROUP_COMMIT_EVENTS_MAX
                {
                    next = rx.try_recv().ok();
                    while next.is_none()
                        && group.appends.len() < last_group_len
                        && std::time::Instant::now() < fill_deadline
                    {
                        std::thread::yield_now();
                        next = rx.try_recv().ok();
                    }
                }
            }
            last_group_len = group.appends.len();
            if !group.appends.is_empty() || !group.snapshots.is_empty() {
                self.commit_group(group);
            }
            if let Some(reply) = shutdown {
                rx.close();
                // Answer anything that raced in after the shutdown request.
                while let Ok(msg) = rx.try_recv() {
                    refuse(msg);
                }
                let _ = reply.send(());
                return;
            }
        }
    }

    /// Commits a group. The common path runs no savepoints: if one append
    /// fails on insert (a duplicate event id), the transaction is rolled back,
    /// that caller is told, and the group is replayed without it.
    fn commit_group(&mut self, group: Group) {
        let Group {
            appends: mut group,
            snapshots,
            ..
        } = group;
        loop {
            match self.try_group(&group, &snapshots) {
                Ok((outcomes, saved)) => {
                    for ((_, reply), result) in snapshots.into_iter().zip(saved) {
                        let _ = reply.send(result);
                    }
                    return self.acknowledge(group, outcomes);
                }
                Err(GroupFailure::Request(i, err)) => {
                    let (_, _, _, reply) = group.remove(i);
                    let _ = reply.send(Err(err));
                }
                Err(GroupFailure::Whole(err)) => {
                    self.revisions.clear();
                    tracing::error!(error = %err, "group commit failed; no append of the group was acknowledged");
                    fail_all(group.into_iter().map(|g| g.3), &err);
                    for (_, reply) in snapshots {
                        let _ = reply.send(Err(err.copy_for_each_caller()));
                    }
                    return;
                }
            }
        }
    }

    fn try_group(
        &mut self,
        group: &[QueuedAppend],
        snapshots: &[QueuedSnapshot],
    ) -> Result<Committed, GroupFailure> {
        let path = self.path.clone();
        let whole = |e| GroupFailure::Whole(map_err(&path, e));
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(whole)?;
        // Re-read the head inside the write lock: another process may share
        // this file, and the chain must continue from what is really there.
        let mut head = read_head(&tx, &path).map_err(GroupFailure::Whole)?;
        if self.committed_head != Some(head.position) {
            // Someone else appended since our last commit: cached revisions
            // may be stale.
            self.revisions.clear();
        }
        if self.revisions.len() > REVISION_CACHE_STREAMS_MAX {
            self.revisions.clear();
        }
        let mut tentative: HashMap<StreamId, Option<u64>> = HashMap::new();
        let mut outcomes = Vec::with_capacity(group.len());
        for (i, (stream, expected, events, _)) in group.iter().enumerate() {
            let actual = match tentative.get(stream).or_else(|| self.revisions.get(stream)) {
                Some(r) => *r,
                None => {
                    let r = stream_revision(&tx, &path, stream).map_err(GroupFailure::Whole)?;
                    self.revisions.insert(stream.clone(), r);
                    r
                }
            };
            let outcome = append_one(&tx, &path, &mut head, stream, *expected, actual, events);
            match outcome {
                Err(e @ Error::DuplicateEventId { .. }) => {
                    return Err(GroupFailure::Request(i, e));
                }
                Err(
                    e @ (Error::StoreFull { .. }
                    | Error::StoreIo { .. }
                    | Error::StoreCorrupt { .. }),
                ) => {
                    return Err(GroupFailure::Whole(e));
                }
                Ok((result, recorded)) => {
                    tentative.insert(stream.clone(), Some(result.next_expected));
                    outcomes.push(Ok((result, recorded)));
                }
                Err(e) => outcomes.push(Err(e)),
            }
        }
        // A snapshot that cannot be saved fails alone: it is only a cache.
        let saved = snapshots
            .iter()
            .map(|(snapshot, _)| save_snapshot(&tx, &path, snapshot))
            .collect();
        tx.commit().map_err(whole)?;
        self.revisions.extend(tentative);
        self.committed_head = Some(head.position);
        Ok((outcomes, saved))
    }

    /// Answers every caller of a committed group and publishes its events.
    fn acknowledge(&mut self, group: Vec<QueuedAppend>, outcomes: Vec<Outcome>) {
        use std::sync::atomic::Ordering::Relaxed;
        self.stats.groups.fetch_add(1, Relaxed);
        for ((_, _, _, reply), outcome) in group.into_iter().zip(outcomes) {
            match outcome {
                Ok((result, events)) => {
                    self.stats.appends.fetch_add(1, Relaxed);
                    self.stats.events.fetch_add(events.len() as u64, Relaxed);
                    let _ = reply.send(Ok(result));
                    for ev in events {
                        // No receivers is fine: nobody is subscribed right now.
                        let _ = self.live.send(Arc::new(ev));
                    }
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
        // After the broadcast: a head the poller reads beyond this is not
        // one of ours still on its way to the subscribers.
        if let Some(head) = self.committed_head {
            self.stats
                .published_position
                .fetch_max(head, std::sync::atomic::Ordering::Release);
        }
    }

    fn delete_snapshots(&mut self) -> Result<u64, Error> {
        self.conn
            .execute("DELETE FROM snapshots", [])
            .map(|n| n as u64)
            .map_err(|e| map_err(&self.path, e))
    }
}

fn check_snapshot(s: &SnapshotRecord) -> Result<(), Error> {
    if s.state.len() > SNAPSHOT_BYTES_MAX {
        return Err(Error::InvalidAppend {
            stream: s.stream.to_string(),
            reason: format!(
                "snapshot is {} bytes; the limit is {SNAPSHOT_BYTES_MAX}",
                s.state.len()
            ),
        });
    }
    Ok(())
}

fn save_snapshot(
    conn: &Connection,
    path: &std::path::Path,
    s: &SnapshotRecord,
) -> Result<(), Error> {
    conn.prepare_cached("INSERT OR REPLACE INTO snapshots VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .and_then(|mut stmt| {
            stmt.execute(params![
                s.stream.as_str(),
                s.aggregate,
                s.snapshot_version,
                s.revision as i64,
                s.position as i64,
                s.state
            ])
        })
        .map(|_| ())
        .map_err(|e| map_err(path, e))
}

/// Checks and inserts one append. On error nothing of it is kept in `head`;
/// the caller rolls the transaction back if rows were written.
fn append_one(
    tx: &Connection,
    path: &std::path::Path,
    head: &mut ChainHead,
    stream: &StreamId,
    expected: ExpectedRevision,
    actual: Option<u64>,
    events: &[NewEvent],
) -> Result<(AppendResult, Vec<RecordedEvent>), Error> {
    check_append(stream, events)?;
    if !expected.admits(actual) {
        return Err(Error::Conflict {
            stream: stream.to_string(),
            expected,
            actual,
        });
    }
    let mut local = *head;
    let mut recorded = Vec::with_capacity(events.len());
    let first_revision = actual.map_or(0, |r| r + 1);
    for (i, ev) in events.iter().enumerate() {
        let rec = chain_next(&mut local, stream, first_revision + i as u64, ev);
        insert(tx, path, &rec)?;
        recorded.push(rec);
    }
    let last_revision = first_revision + recorded.len() as u64 - 1;
    let result = AppendResult {
        first_position: head.position + 1,
        last_position: local.position,
        next_expected: last_revision,
    };
    *head = local;
    Ok((result, recorded))
}

fn insert(conn: &Connection, path: &std::path::Path, r: &RecordedEvent) -> Result<(), Error> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO events (position, stream, revision, event_id, event_type, schema_version,
                recorded_at, tenant, principal, correlation_id, causation_id, payload, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .map_err(|e| map_err(path, e))?;
    stmt.execute(params![
        r.position as i64,
        r.stream.as_str(),
        r.revision as i64,
        r.event_id.as_str(),
        r.event_type,
        r.schema_version,
        r.recorded_at.timestamp_micros(),
        r.tenant.as_ref().map(|t| t.as_str()),
        r.principal.as_str(),
        r.correlation_id.as_str(),
        r.causation_id.as_ref().map(|c| c.as_str()),
        r.payload.get(),
        &r.prev_hash[..],
        &r.hash[..],
    ])
    .map(|_| ())
    .map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => Error::DuplicateEventId {
            stream: r.stream.to_string(),
            event_id: r.event_id.to_string(),
        },
        _ => map_err(path, e),
    })
}

fn read_head(conn: &Connection, path: &std::path::Path) -> Result<ChainHead, Error> {
    let row = conn
        .query_row(
            "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )
        .optional()
        .map_err(|e| map_err(path, e))?;
    let Some((position, hash, recorded_at_micros)) = row else {
        return Ok(ChainHead::GENESIS);
    };
    let hash: Hash = hash.try_into().map_err(|_| Error::StoreCorrupt {
        path: path.to_path_buf(),
        detail: format!("event {position} has a hash that is not 32 bytes"),
    })?;
    Ok(ChainHead {
        position: position as u64,
        hash,
        recorded_at_micros,
    })
}

pub fn stream_revision(
    conn: &Connection,
    path: &std::path::Path,
    stream: &StreamId,
) -> Result<Option<u64>, Error> {
    conn.prepare_cached("SELECT max(revision) FROM events WHERE stream = ?1")
        .and_then(|mut s| s.query_row([stream.as_str()], |r| r.get::<_, Option<i64>>(0)))
        .map(|r| r.map(|n| n as u64))
        .map_err(|e| map_err(path, e))
}

fn fail_all(
    replies: impl Iterator<Item = oneshot::Sender<Result<AppendResult, Error>>>,
    err: &Error,
) {
    for reply in replies {
        let _ = reply.send(Err(err.copy_for_each_caller()));
    }
}

fn refuse(msg: WriterMsg) {
    match msg {
        WriterMsg::Append { reply, .. } => {
            let _ = reply.send(Err(Error::StoreClosed));
        }
        WriterMsg::SaveSnapshot { reply, .. } => {
            let _ = reply.send(Err(Error::StoreClosed));
        }
        WriterMsg::DeleteSnapshots { reply } => {
            let _ = reply.send(Err(Error::StoreClosed));
        }
        WriterMsg::Shutdown { reply } => {
            let _ = reply.send(());
        }
    }
}
