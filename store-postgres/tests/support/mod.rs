//! Shared by this crate's tests: a store on a fresh database that is
//! dropped with the last handle on it.

#![allow(dead_code)] // each test file uses a part of it

use std::sync::Arc;

use extensor_core::Error;
use extensor_core::event::{NewEvent, RecordedEvent, StreamId};
use extensor_core::ids::EventId;
use extensor_core::store::{
    AppendResult, EventStore, EventStream, ExpectedRevision, ReadFilter, SnapshotRecord,
};
use extensor_store_postgres::test_database::TestDatabase;
use extensor_store_postgres::{PgConfig, PgOpenMode, PgStore};
use futures::future::BoxFuture;

/// A [`PgStore`] that keeps its test database alive.
#[derive(Clone)]
pub struct TestStore {
    pub store: PgStore,
    pub db: Arc<TestDatabase>,
}

impl TestStore {
    /// A store on a new, empty database.
    pub async fn fresh() -> Self {
        let db = TestDatabase::create()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Self::open_on(Arc::new(db)).await
    }

    /// Another store instance (another pool, listener and publisher: what
    /// a second process would have) on the same database.
    pub async fn open_on(db: Arc<TestDatabase>) -> Self {
        let store = PgStore::open(PgConfig::new(db.location().clone(), PgOpenMode::Migrate))
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", db.url()));
        Self { store, db }
    }

    /// A plain session on the test database, for editing rows as `psql` would.
    pub async fn psql(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(self.db.url(), tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(connection);
        client
    }
}

impl EventStore for TestStore {
    fn append(
        &self,
        stream: StreamId,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'_, Result<AppendResult, Error>> {
        self.store.append(stream, expected, events)
    }
    fn read_stream(
        &self,
        stream: StreamId,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>> {
        self.store.read_stream(stream, from, limit)
    }
    fn read_all(
        &self,
        after: u64,
        filter: ReadFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>> {
        self.store.read_all(after, filter, limit)
    }
    fn read_all_backward(
        &self,
        before: u64,
        after: u64,
        filter: ReadFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>> {
        self.store.read_all_backward(before, after, filter, limit)
    }
    fn read_event(&self, id: EventId) -> BoxFuture<'_, Result<Option<RecordedEvent>, Error>> {
        self.store.read_event(id)
    }
    fn subscribe_all(&self, after: u64, filter: ReadFilter) -> EventStream {
        self.store.subscribe_all(after, filter)
    }
    fn stream_revision(&self, stream: StreamId) -> BoxFuture<'_, Result<Option<u64>, Error>> {
        self.store.stream_revision(stream)
    }
    fn head_position(&self) -> BoxFuture<'_, Result<u64, Error>> {
        self.store.head_position()
    }
    fn save_snapshot(&self, s: SnapshotRecord) -> BoxFuture<'_, Result<(), Error>> {
        self.store.save_snapshot(s)
    }
    fn load_snapshot(
        &self,
        stream: StreamId,
        aggregate: String,
        version: u32,
    ) -> BoxFuture<'_, Result<Option<SnapshotRecord>, Error>> {
        self.store.load_snapshot(stream, aggregate, version)
    }
    fn delete_snapshots(&self) -> BoxFuture<'_, Result<u64, Error>> {
        self.store.delete_snapshots()
    }
}
