//! Extensor's PostgreSQL event store: the core's `EventStore` on a shared
//! PostgreSQL database, so several Extensor processes can use one log.
//!
//! # Layout
//!
//! - `lib.rs`: [`PgStore`] and its `EventStore` implementation.
//! - [`location`]: the `postgres://` URL, shown everywhere without its password.
//! - [`schema`]: the tables and the versioned migrations run at start-up.
//! - `pool`: a small bounded pool of sessions with prepared statements.
//! - `append`: the writer task: queued appends committed in groups, one
//!   transaction under the append lock each (how the chain is extended
//!   with many writers on several nodes).
//! - `rows`: the read queries and re-validating row decoding.
//! - `publisher`: one `LISTEN` session and one reader per store instance,
//!   fanning live events out to every subscriber.
//! - [`bundles`]: plugin bundles in the database (`BundleBlobs`), so any
//!   node can load any installation's bundle.
//! - [`cluster`]: the node registry and tenant leases (`PgCluster`), so
//!   several nodes divide single-owner work through the same database.
//! - [`files`]: `ctx.files` in the database (`FileBackend`), so any node
//!   can serve any installation's files.
//! - `errors`: PostgreSQL's errors as the core's, naming the store.
//! - [`test_database`]: a fresh database per test, dropped afterwards.

mod append;
pub mod bundles;
pub mod cluster;
mod errors;
pub mod files;
pub mod location;
mod pool;
mod publisher;
mod rows;
pub mod schema;
pub mod test_database;

use std::sync::Arc;

use extensor_core::Error;
use extensor_core::event::{NewEvent, RecordedEvent, StreamId};
use extensor_core::store::{
    AppendResult, EventStore, EventStream, ExpectedRevision, READ_EVENTS_MAX, ReadFilter,
    SNAPSHOT_BYTES_MAX, SnapshotRecord,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::AbortHandle;

pub use location::Location;
use pool::Pool;
use rows::{COLUMNS, big, decode_all};

/// Sessions a store instance opens for appends and reads together. Appends
/// are serial in the database anyway (see `append`); more sessions would
/// only queue on its lock.
pub const CONNECTIONS_MAX_DEFAULT: usize = 8;
/// Live events buffered per subscriber before it is considered lagging and
/// sent back to catch up from the log.
pub const LIVE_BUFFER_EVENTS: usize = 16_384;

/// Whether opening may create or upgrade the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgOpenMode {
    /// The server: run pending migrations (create the schema if empty).
    Migrate,
    /// Audit commands: the schema must already be this build's; nothing is
    /// changed.
    RequireCurrent,
}

/// How to open the store.
#[derive(Clone, Debug)]
pub struct PgConfig {
    pub location: Location,
    pub mode: PgOpenMode,
    pub connections_max: usize,
}

impl PgConfig {
    pub fn new(location: Location, mode: PgOpenMode) -> Self {
        Self {
            location,
            mode,
            connections_max: CONNECTIONS_MAX_DEFAULT,
        }
    }
}

/// A cheap-to-clone handle on a PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Arc<Pool>,
    /// Appends waiting for the writer task.
    queue: mpsc::Sender<append::Request>,
    live: broadcast::Sender<Arc<RecordedEvent>>,
    /// Never announces anything: every append reaches subscribers through
    /// the publisher. Held so that the subscriptions' receiver stays open.
    external_head: watch::Sender<u64>,
    /// The writer, the listener and the publisher; they end with the store.
    tasks: Vec<AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl PgStore {
    /// Connects, migrates or checks the schema per `config.mode`, and starts
    /// the store's listener and publisher on the current runtime.
    pub async fn open(config: PgConfig) -> Result<Self, Error> {
        let location = config.location;
        let setup = pool::connect(&location).await?;
        match config.mode {
            PgOpenMode::Migrate => schema::migrate(&setup, &location).await?,
            PgOpenMode::RequireCurrent => schema::require_current(&setup, &location).await?,
        }
        drop(setup);
        let pool = Arc::new(Pool::new(location, config.connections_max));
        let head = head_position(&pool).await?;
        let (live, _) = broadcast::channel(LIVE_BUFFER_EVENTS);
        let (wake, woken) = watch::channel(head);
        let wake = Arc::new(wake);
        let publisher = tokio::spawn(publisher::publish(pool.clone(), live.clone(), woken, head));
        let listener = tokio::spawn(publisher::listen(pool.clone(), wake.clone()));
        // The writer wakes the publisher after its own commits (the
        // listener does the same for everyone's).
        let (queue, queued) = mpsc::channel(append::WRITE_QUEUE_MAX);
        let writer = tokio::spawn(append::run_writer(pool.clone(), queued, wake));
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                queue,
                live,
                external_head: watch::channel(0).0,
                tasks: vec![
                    writer.abort_handle(),
                    publisher.abort_handle(),
                    listener.abort_handle(),
                ],
            }),
        })
    }

    /// Where the store is (the URL without its password).
    pub fn location(&self) -> &Location {
        self.inner.pool.location()
    }

    /// The node registry and tenant leases in the same database, on
    /// sessions of their own.
    pub fn cluster(&self) -> cluster::PgCluster {
        cluster::PgCluster::new(self.location().clone())
    }

    /// The plugin bundles kept in the same database.
    pub fn bundles(&self) -> bundles::PgBundles {
        bundles::PgBundles {
            pool: self.inner.pool.clone(),
        }
    }

    /// The installations' `ctx.files` kept in the same database.
    pub fn files(&self) -> files::PgFiles {
        files::PgFiles {
            pool: self.inner.pool.clone(),
        }
    }
}

/// Reads matching events after `after`, oldest first.
pub(crate) async fn read_all(
    pool: &Pool,
    after: u64,
    filter: &ReadFilter,
    limit: usize,
) -> Result<Vec<RecordedEvent>, Error> {
    let (sql, params) = rows::forward(after, filter, limit.min(READ_EVENTS_MAX));
    query_events(pool, &sql, &params).await
}

async fn query_events(
    pool: &Pool,
    sql: &str,
    params: &[rows::Param],
) -> Result<Vec<RecordedEvent>, Error> {
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        params.iter().map(|p| p.as_ref() as _).collect();
    let mut lease = pool.get().await?;
    let rows = lease.query(sql, &refs).await?;
    decode_all(&rows, pool.location())
}

pub(crate) async fn head_position(pool: &Pool) -> Result<u64, Error> {
    let mut lease = pool.get().await?;
    let rows = lease
        .query("SELECT coalesce(max(position), 0) FROM events", &[])
        .await?;
    let head: i64 = rows.first().map_or(0, |r| r.get(0));
    Ok(head.max(0) as u64)
}

impl EventStore for PgStore {
    fn append(
        &self,
        stream: StreamId,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'_, Result<AppendResult, Error>> {
        append::append(&self.inner.queue, stream, expected, events).boxed()
    }

    fn read_stream(
        &self,
        stream: StreamId,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>> {
        async move {
            let sql = format!(
                "SELECT {COLUMNS} FROM events WHERE stream = $1 AND revision >= $2 \
                 ORDER BY revision LIMIT $3"
            );
            let limit = limit.min(READ_EVENTS_MAX) as i64;
            let params: Vec<rows::Param> = vec![
                Box::new(stream.as_str().to_owned()),
                Box::new(big(from)),
                Box::new(limit),
            ];
            query_events(&self.inner.pool, &sql, &params).await
        }
        .boxed()
    }

    fn read_all(
        &self,
        after: u64,
        filter: ReadFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>> {
        async move { read_all(&self.inner.pool, after, &filter, limit).await }.boxed()
    }

    fn read_all_backward(
        &self,
        before: u64,
        after: u64,
        filter: ReadFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>> {
        async move {
            let (sql, params) = rows::backward(before, after, &filter, limit.min(READ_EVENTS_MAX));
            query_events(&self.inner.pool, &sql, &params).await
        }
        .boxed()
    }

    fn read_event(
        &self,
        event_id: extensor_core::ids::EventId,
    ) -> BoxFuture<'_, Result<Option<RecordedEvent>, Error>> {
        async move {
            let sql = format!("SELECT {COLUMNS} FROM events WHERE event_id = $1");
            let params: Vec<rows::Param> = vec![Box::new(event_id.as_str().to_owned())];
            Ok(query_events(&self.inner.pool, &sql, &params).await?.pop())
        }
        .boxed()
    }

    fn subscribe_all(&self, after: u64, filter: ReadFilter) -> EventStream {
        let live = self.inner.live.subscribe();
        let external = self.inner.external_head.subscribe();
        extensor_core::store::subscription::subscribe(self.clone(), live, external, after, filter)
    }

    fn stream_revision(&self, stream: StreamId) -> BoxFuture<'_, Result<Option<u64>, Error>> {
        async move {
            let mut lease = self.inner.pool.get().await?;
            let rows = lease
                .query(
                    "SELECT max(revision) FROM events WHERE stream = $1",
                    &[&stream.as_str()],
                )
                .await?;
            let revision: Option<i64> = rows.first().and_then(|r| r.get(0));
            Ok(revision.map(|r| r.max(0) as u64))
        }
        .boxed()
    }

    fn head_position(&self) -> BoxFuture<'_, Result<u64, Error>> {
        async move { head_position(&self.inner.pool).await }.boxed()
    }

    fn save_snapshot(&self, s: SnapshotRecord) -> BoxFuture<'_, Result<(), Error>> {
        async move {
            if s.state.len() > SNAPSHOT_BYTES_MAX {
                return Err(Error::InvalidAppend {
                    stream: s.stream.to_string(),
                    reason: format!(
                        "snapshot is {} bytes; the limit is {SNAPSHOT_BYTES_MAX}",
                        s.state.len()
                    ),
                });
            }
            let mut lease = self.inner.pool.get().await?;
            lease
                .execute(
                    "INSERT INTO snapshots VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (stream, aggregate) DO UPDATE SET \
                     snapshot_version = excluded.snapshot_version, revision = excluded.revision, \
                     position = excluded.position, state = excluded.state",
                    &[
                        &s.stream.as_str(),
                        &s.aggregate,
                        &i64::from(s.snapshot_version),
                        &big(s.revision),
                        &big(s.position),
                        &s.state,
                    ],
                )
                .await
                .map(|_| ())
        }
        .boxed()
    }

    fn load_snapshot(
        &self,
        stream: StreamId,
        aggregate: String,
        snapshot_version: u32,
    ) -> BoxFuture<'_, Result<Option<SnapshotRecord>, Error>> {
        async move {
            let mut lease = self.inner.pool.get().await?;
            let rows = lease
                .query(
                    "SELECT revision, position, state FROM snapshots \
                     WHERE stream = $1 AND aggregate = $2 AND snapshot_version = $3",
                    &[&stream.as_str(), &aggregate, &i64::from(snapshot_version)],
                )
                .await?;
            let Some(row) = rows.first() else {
                return Ok(None);
            };
            let (revision, position): (i64, i64) = (row.get(0), row.get(1));
            Ok(Some(SnapshotRecord {
                stream,
                aggregate,
                snapshot_version,
                revision: revision.max(0) as u64,
                position: position.max(0) as u64,
                state: row.get(2),
            }))
        }
        .boxed()
    }

    fn delete_snapshots(&self) -> BoxFuture<'_, Result<u64, Error>> {
        async move {
            let mut lease = self.inner.pool.get().await?;
            lease.execute("DELETE FROM snapshots", &[]).await
        }
        .boxed()
    }
}
