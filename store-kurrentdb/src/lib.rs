//! Extensor's KurrentDB (EventStoreDB) event store: the core's
//! `EventStore` on a KurrentDB server, through the official `kurrentdb`
//! gRPC client. Built into the binary with `--features kurrentdb`.
//!
//! **Untested here:** no KurrentDB server can run where this project is
//! built and tested. The conformance suite compiles in CI and runs against
//! a server only when asked (`EXTENSOR_TEST_KURRENTDB_URL` and
//! `cargo test -p extensor-store-kurrentdb -- --ignored`); see
//! docs/OPERATIONS.md.
//!
//! # Layout
//!
//! - `lib.rs`: [`KurrentStore`], its settings, and its `EventStore`
//!   implementation.
//! - `log`: the one log stream (`<namespace>-log`) every event goes to:
//!   how positions, revisions and the chain are kept (the design and its
//!   cost are in docs/ARCHITECTURE.md), and the in-memory index of streams
//!   and event ids rebuilt from it.
//! - `snapshots`: the snapshot cache, one stream per snapshot key, and an
//!   epoch that `delete_snapshots` advances.
//! - `errors`: the client's errors as the core's, naming the server.

mod errors;
mod log;
mod snapshots;

use std::str::FromStr;
use std::sync::Arc;

use extensor_core::Error;
use extensor_core::event::{NewEvent, RecordedEvent, StreamId};
use extensor_core::ids::EventId;
use extensor_core::store::{
    AppendResult, EventStore, EventStream, ExpectedRevision, ReadFilter, SnapshotRecord,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use kurrentdb::{Client, ClientSettings};

pub use errors::Location;

/// The namespace a server store uses unless told otherwise: streams are
/// `extensor-log`, `extensor-snap-…`.
pub const NAMESPACE_DEFAULT: &str = "extensor";
/// The variable naming the server the ignored conformance tests run on.
pub const TEST_SERVER_URL_VAR: &str = "EXTENSOR_TEST_KURRENTDB_URL";

/// Where the store is and which streams are its own.
#[derive(Clone, Debug)]
pub struct KurrentConfig {
    /// `kurrentdb://…` or `esdb://…` (the client's connection string).
    pub url: String,
    /// Prefix of every stream this store writes; several stores (or test
    /// runs) share one server under different namespaces.
    pub namespace: String,
}

impl KurrentConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            namespace: NAMESPACE_DEFAULT.into(),
        }
    }
}

/// A cheap-to-clone handle on a KurrentDB store.
#[derive(Clone)]
pub struct KurrentStore {
    inner: Arc<log::Log>,
}

impl KurrentStore {
    /// Connects and reads the log once to build the index: an unreachable
    /// server fails here, naming it.
    pub async fn open(config: KurrentConfig) -> Result<Self, Error> {
        let location = Location::new(&config.url);
        let settings = ClientSettings::from_str(&config.url).map_err(|e| Error::StoreOpen {
            path: location.path(),
            detail: format!("not a KurrentDB connection string: {e}"),
        })?;
        let client = Client::new(settings).map_err(|e| Error::StoreOpen {
            path: location.path(),
            detail: e.to_string(),
        })?;
        let log = log::Log::new(client, location, &config.namespace);
        log.refresh().await?;
        Ok(Self {
            inner: Arc::new(log),
        })
    }

    /// Where the store is (the URL without its password).
    pub fn location(&self) -> &Location {
        &self.inner.location
    }

    /// The prefix of this store's streams.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }
}

impl EventStore for KurrentStore {
    fn append(
        &self,
        stream: StreamId,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'_, Result<AppendResult, Error>> {
        self.inner.append(stream, expected, events).boxed()
    }

    fn read_stream(
        &self,
        stream: StreamId,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>> {
        self.inner.read_stream(stream, from, limit).boxed()
    }

    fn read_all(
        &self,
        after: u64,
        filter: ReadFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>> {
        async move { self.inner.read_all(after, &filter, limit).await }.boxed()
    }

    fn read_all_backward(
        &self,
        before: u64,
        after: u64,
        filter: ReadFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>> {
        async move {
            self.inner
                .read_all_backward(before, after, &filter, limit)
                .await
        }
        .boxed()
    }

    fn read_event(&self, event_id: EventId) -> BoxFuture<'_, Result<Option<RecordedEvent>, Error>> {
        self.inner.read_event(event_id).boxed()
    }

    fn subscribe_all(&self, after: u64, filter: ReadFilter) -> EventStream {
        self.inner.subscribe(after, filter)
    }

    fn stream_revision(&self, stream: StreamId) -> BoxFuture<'_, Result<Option<u64>, Error>> {
        self.inner.stream_revision(stream).boxed()
    }

    fn head_position(&self) -> BoxFuture<'_, Result<u64, Error>> {
        self.inner.head_position().boxed()
    }

    fn save_snapshot(&self, snapshot: SnapshotRecord) -> BoxFuture<'_, Result<(), Error>> {
        snapshots::save(&self.inner, snapshot).boxed()
    }

    fn load_snapshot(
        &self,
        stream: StreamId,
        aggregate: String,
        snapshot_version: u32,
    ) -> BoxFuture<'_, Result<Option<SnapshotRecord>, Error>> {
        async move { snapshots::load(&self.inner, &stream, &aggregate, snapshot_version).await }
            .boxed()
    }

    fn delete_snapshots(&self) -> BoxFuture<'_, Result<u64, Error>> {
        snapshots::delete_all(&self.inner).boxed()
    }
}
