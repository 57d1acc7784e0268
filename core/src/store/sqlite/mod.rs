//! The embedded event store: one SQLite file in WAL mode, one writer thread
//! with group commit, a small pool of read-only connections.
//!
//! **Durability:** an append resolves only after the transaction holding it
//! is committed with `synchronous=FULL` (the WAL is fsynced). A crash can
//! lose appends nobody was told about, never an acknowledged one, and never
//! part of a group: a group is one transaction.

mod rows;
pub mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};

pub use schema::{DB_FILE_NAME, OpenMode};
pub use writer::{GROUP_COMMIT_EVENTS_MAX, WRITE_QUEUE_MAX, WriterStats};

use self::schema::map_err;
use self::writer::{Writer, WriterMsg};
use super::{
    AppendResult, EventStore, EventStream, ExpectedRevision, READ_EVENTS_MAX, ReadFilter,
    SnapshotRecord,
};
use crate::error::Error;
use crate::event::{NewEvent, RecordedEvent, StreamId};

/// Read-only connections kept open. Reads beyond this wait their turn; with
/// 2 cores more would only add contention.
pub const READ_CONNECTIONS_MAX: usize = 4;
/// Live events buffered per subscriber before it is considered lagging and
/// sent back to catch up from the file.
pub const LIVE_BUFFER_EVENTS: usize = 16_384;
/// SQLite's page size in our files (its default).
const PAGE_BYTES: u64 = 4_096;
/// How often the store's one head poller reads the log's head, so that
/// subscribers see appends by another process sharing the file. One read
/// per interval per store, however many subscribers there are: 20,000 idle
/// subscriptions (two per tenant at 10,000 tenants) each polling on their
/// own kept the read pool saturated and every other read waiting.
pub const HEAD_POLL_MS: u64 = 500;

/// How to open the embedded store.
#[derive(Clone, Debug)]
pub struct SqliteConfig {
    pub data_dir: PathBuf,
    pub mode: OpenMode,
    /// Refuse appends once the file would grow past this (`store_full`),
    /// rather than filling the disk. `None`: bounded by the disk only.
    pub store_bytes_max: Option<u64>,
}

impl SqliteConfig {
    pub fn new(data_dir: impl Into<PathBuf>, mode: OpenMode) -> Self {
        Self {
            data_dir: data_dir.into(),
            mode,
            store_bytes_max: None,
        }
    }
}

/// A cheap-to-clone handle on the embedded store.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    data_dir: PathBuf,
    /// `None` when opened read-only.
    writer: Option<mpsc::Sender<WriterMsg>>,
    live: broadcast::Sender<Arc<RecordedEvent>>,
    stats: Arc<WriterStats>,
    readers: Mutex<Vec<Connection>>,
    read_permits: Semaphore,
    /// Reads served since the store was opened.
    reads: AtomicU64,
    /// The newest head known to hold another process's appends, from the
    /// head poller; subscribers in the live phase watch it.
    external_head: watch::Sender<u64>,
    /// Whether the head poller was started (once, on the first subscription).
    head_poller: AtomicBool,
}

impl SqliteStore {
    /// Opens the store in `config.data_dir`, creating it if the mode allows.
    pub fn open(config: SqliteConfig) -> Result<Self, Error> {
        let path = schema::db_path(&config.data_dir);
        let (live, _) = broadcast::channel(LIVE_BUFFER_EVENTS);
        let stats = Arc::new(WriterStats::default());
        let writer = match config.mode {
            OpenMode::ReadOnly => {
                // Fails fast, naming the file, if there is no store there.
                drop(schema::open_reader(&config.data_dir)?);
                None
            }
            OpenMode::CreateIfMissing => {
                let pages_max = config.store_bytes_max.map(|b| (b / PAGE_BYTES).max(1));
                let conn = schema::open_writer(&config.data_dir, pages_max)?;
                Some(spawn_writer(
                    conn,
                    path.clone(),
                    live.clone(),
                    stats.clone(),
                )?)
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                data_dir: config.data_dir,
                writer,
                live,
                stats,
                readers: Mutex::new(Vec::new()),
                read_permits: Semaphore::new(READ_CONNECTIONS_MAX),
                reads: AtomicU64::new(0),
                external_head: watch::channel(0).0,
                head_poller: AtomicBool::new(false),
            }),
        })
    }

    /// Group-commit counters since the store was opened.
    pub fn writer_stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// Reads served since the store was opened (every query through the
    /// read pool: metrics, benchmarks and tests of read amplification).
    pub fn reads(&self) -> u64 {
        self.inner.reads.load(Ordering::Relaxed)
    }

    /// Starts the store's head poller if it is not running; it lives as
    /// long as the store and reads only while someone subscribes.
    fn start_head_poller(&self) {
        if self.inner.head_poller.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(poll_head(Arc::downgrade(&self.inner)));
    }

    /// The SQLite file backing this store.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Lets queued appends finish, then stops the writer. Appends after this
    /// fail with `store_closed`; reads keep working.
    pub async fn close(&self) {
        let Some(writer) = &self.inner.writer else {
            return;
        };
        let (reply, done) = oneshot::channel();
        if writer.send(WriterMsg::Shutdown { reply }).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Runs `f` on a pooled read-only connection, off the async threads.
    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &Path) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let _permit = self
            .inner
            .read_permits
            .acquire()
            .await
            .map_err(|_| Error::StoreClosed)?;
        self.inner.reads.fetch_add(1, Ordering::Relaxed);
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match inner.readers.lock().map_err(|_| Error::StoreClosed)?.pop() {
                Some(c) => c,
                None => schema::open_reader(&inner.data_dir)?,
            };
            let out = f(&conn, &inner.path);
            if let Ok(mut pool) = inner.readers.lock() {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| Error::StoreIo {
            path: self.inner.path.clone(),
            detail: format!("read task failed: {e}"),
        })?
    }

    /// Sends the writer a request built around a reply channel and waits for
    /// the answer.
    async fn ask_writer<T>(
        &self,
        message: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> WriterMsg,
    ) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(message(reply)).await?;
        rx.await.map_err(|_| Error::StoreClosed)?
    }

    async fn send(&self, msg: WriterMsg) -> Result<(), Error> {
        let Some(writer) = &self.inner.writer else {
            return Err(Error::StoreIo {
                path: self.inner.path.clone(),
                detail: "the store was opened read-only".into(),
            });
        };
        writer.send(msg).await.map_err(|_| Error::StoreClosed)
    }
}

/// The store's one head poller: every [`HEAD_POLL_MS`], while anyone
/// subscribes, it reads the log's head. A head beyond what this process has
/// published is either one of our own groups between its commit and its
/// broadcast (published by the next tick) or another process's appends; so
/// a head still unpublished one tick later is announced to the subscribers,
/// which then catch up from the file. Ends when the store is dropped.
async fn poll_head(store: Weak<Inner>) {
    // If the runtime this task runs on shuts down while the store lives on
    // (it is used from another runtime), the next subscription starts a new
    // poller.
    struct Running(Weak<Inner>);
    impl Drop for Running {
        fn drop(&mut self) {
            if let Some(inner) = self.0.upgrade() {
                inner.head_poller.store(false, Ordering::Release);
            }
        }
    }
    let _running = Running(store.clone());
    let mut suspect: Option<u64> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(HEAD_POLL_MS)).await;
        let Some(inner) = store.upgrade() else {
            return;
        };
        if inner.external_head.receiver_count() == 0 {
            suspect = None;
            continue;
        }
        let store = SqliteStore { inner };
        let head = match store.head_position().await {
            Ok(head) => head,
            Err(e) => {
                tracing::debug!(error = %e, "head poll failed; next tick retries");
                continue;
            }
        };
        let published = store.inner.stats.published_position.load(Ordering::Acquire);
        if let Some(external) = suspect.filter(|s| *s > published) {
            store.inner.external_head.send_if_modified(|known| {
                let newer = external > *known;
                *known = (*known).max(external);
                newer
            });
        }
        suspect = (head > published).then_some(head);
    }
}

fn spawn_writer(
    conn: Connection,
    path: PathBuf,
    live: broadcast::Sender<Arc<RecordedEvent>>,
    stats: Arc<WriterStats>,
) -> Result<mpsc::Sender<WriterMsg>, Error> {
    let (tx, rx) = mpsc::channel(WRITE_QUEUE_MAX);
    let writer = Writer::new(conn, path.clone(), live, stats);
    std::thread::Builder::new()
        .name("extensor-store-writer".into())
        .spawn(move || writer.run(rx))
        .map_err(|e| Error::StoreOpen {
            path,
            detail: format!("cannot start the writer thread: {e}"),
        })?;
    Ok(tx)
}

impl EventStore for SqliteStore {
    fn append(
        &self,
        stream: StreamId,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'_, Result<AppendResult, Error>> {
        self.ask_writer(move |reply| WriterMsg::Append {
            stream,
            expected,
            events,
            reply,
        })
        .boxed()
    }

    fn read_stream(
        &self,
        stream: StreamId,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>> {
        let limit = limit.min(READ_EVENTS_MAX);
        self.with_reader(move |conn, path| rows::read_stream(conn, path, &stream, from, limit))
            .boxed()
    }

    fn read_all(
        &self,
        after: u64,
        filter: ReadFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>> {
        let limit = limit.min(READ_EVENTS_MAX);
        self.with_reader(move |conn, path| rows::read_all(conn, path, after, &filter, limit))
            .boxed()
    }

    fn read_all_backward(
        &self,
        before: u64,
        after: u64,
        filter: ReadFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>> {
        let limit = limit.min(READ_EVENTS_MAX);
        self.with_reader(move |conn, path| {
            rows::read_all_backward(conn, path, before, after, &filter, limit)
        })
        .boxed()
    }

    fn read_event(
        &self,
        event_id: crate::ids::EventId,
    ) -> BoxFuture<'_, Result<Option<RecordedEvent>, Error>> {
        self.with_reader(move |conn, path| rows::read_event(conn, path, &event_id))
            .boxed()
    }

    fn subscribe_all(&self, after: u64, filter: ReadFilter) -> EventStream {
        let live = self.inner.live.subscribe();
        let external = self.inner.external_head.subscribe();
        let subscription =
            super::subscription::subscribe(self.clone(), live, external, after, filter);
        // The poller needs a runtime; the stream is always polled in one.
        let store = self.clone();
        futures::stream::once(async move { store.start_head_poller() })
            .filter_map(|()| futures::future::ready(None))
            .chain(subscription)
            .boxed()
    }

    fn stream_revision(&self, stream: StreamId) -> BoxFuture<'_, Result<Option<u64>, Error>> {
        self.with_reader(move |conn, path| writer::stream_revision(conn, path, &stream))
            .boxed()
    }

    fn head_position(&self) -> BoxFuture<'_, Result<u64, Error>> {
        self.with_reader(|conn, path| {
            conn.query_row("SELECT coalesce(max(position), 0) FROM events", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|p| p as u64)
            .map_err(|e| map_err(path, e))
        })
        .boxed()
    }

    fn save_snapshot(&self, snapshot: SnapshotRecord) -> BoxFuture<'_, Result<(), Error>> {
        self.ask_writer(move |reply| WriterMsg::SaveSnapshot { snapshot, reply })
            .boxed()
    }

    fn load_snapshot(
        &self,
        stream: StreamId,
        aggregate: String,
        snapshot_version: u32,
    ) -> BoxFuture<'_, Result<Option<SnapshotRecord>, Error>> {
        self.with_reader(move |conn, path| {
            conn.query_row(
                "SELECT revision, position, state FROM snapshots
                 WHERE stream = ?1 AND aggregate = ?2 AND snapshot_version = ?3",
                rusqlite::params![stream.as_str(), aggregate, snapshot_version],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()
            .map(|row| {
                row.map(|(revision, position, state)| SnapshotRecord {
                    stream,
                    aggregate,
                    snapshot_version,
                    revision: revision as u64,
                    position: position as u64,
                    state,
                })
            })
            .map_err(|e| map_err(path, e))
        })
        .boxed()
    }

    fn delete_snapshots(&self) -> BoxFuture<'_, Result<u64, Error>> {
        self.ask_writer(|reply| WriterMsg::DeleteSnapshots { reply })
            .boxed()
    }
}
