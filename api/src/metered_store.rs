//! The event store as the server uses it: the backend, with every append's
//! latency recorded (`extensor_store_append_seconds{outcome}`: `ok`,
//! `conflict` for an expected-revision mismatch, `error` for the rest).
//! Everything else is passed through unchanged.

use std::sync::Arc;
use std::time::Instant;

use extensor_core::Error;
use extensor_core::event::{NewEvent, RecordedEvent, StreamId};
use extensor_core::ids::EventId;
use extensor_core::store::{
    AppendResult, EventStore, EventStream, ExpectedRevision, ReadFilter, SnapshotRecord,
};
use futures::future::BoxFuture;

pub struct MeteredStore(pub Arc<dyn EventStore>);

impl EventStore for MeteredStore {
    fn append(
        &self,
        stream: StreamId,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'_, Result<AppendResult, Error>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.0.append(stream, expected, events).await;
            let outcome = match &result {
                Ok(_) => "ok",
                Err(Error::Conflict { .. }) => "conflict",
                Err(_) => "error",
            };
            metrics::histogram!("extensor_store_append_seconds", "outcome" => outcome)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }

    fn read_stream(
        &self,
        stream: StreamId,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>> {
        self.0.read_stream(stream, from, limit)
    }

    fn read_all(
        &self,
        after: u64,
        filter: ReadFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>> {
        self.0.read_all(after, filter, limit)
    }

    fn read_all_backward(
        &self,
        before: u64,
        after: u64,
        filter: ReadFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, Error>> {
        self.0.read_all_backward(before, after, filter, limit)
    }

    fn read_event(&self, event_id: EventId) -> BoxFuture<'_, Result<Option<RecordedEvent>, Error>> {
        self.0.read_event(event_id)
    }

    fn subscribe_all(&self, after: u64, filter: ReadFilter) -> EventStream {
        self.0.subscribe_all(after, filter)
    }

    fn stream_revision(&self, stream: StreamId) -> BoxFuture<'_, Result<Option<u64>, Error>> {
        self.0.stream_revision(stream)
    }

    fn head_position(&self) -> BoxFuture<'_, Result<u64, Error>> {
        self.0.head_position()
    }

    fn save_snapshot(&self, snapshot: SnapshotRecord) -> BoxFuture<'_, Result<(), Error>> {
        self.0.save_snapshot(snapshot)
    }

    fn load_snapshot(
        &self,
        stream: StreamId,
        aggregate: String,
        snapshot_version: u32,
    ) -> BoxFuture<'_, Result<Option<SnapshotRecord>, Error>> {
        self.0.load_snapshot(stream, aggregate, snapshot_version)
    }

    fn delete_snapshots(&self) -> BoxFuture<'_, Result<u64, Error>> {
        self.0.delete_snapshots()
    }
}
