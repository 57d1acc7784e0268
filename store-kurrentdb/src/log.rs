//! The log: every Extensor event, of every stream, is one KurrentDB event
//! in the one stream `<namespace>-log`. The event's KurrentDB revision r is
//! its global position r + 1, so positions are dense (1..n, no gaps) by
//! construction, and its data is the whole recorded event as JSON (hashes
//! included), so the chain is verified from what the server holds.
//!
//! Every append is a compare-and-set on that stream's revision: it is
//! placed after the head this store has read (chain link, stream revision,
//! duplicate ids checked against the index), then appended with the head's
//! revision as the expected one. A writer on another node that got there
//! first makes it fail with a wrong expected version; the writer then
//! reads what was appended, checks again and retries. So the chain is
//! extended serially by the server, and the per-stream expected revision is
//! checked against the stream's last event as of the same head.
//!
//! The index (each stream's positions by revision, each event id's
//! position) is built from the log when the store opens and kept current
//! by reading the log's tail before each append and stream read: memory
//! grows with the log (an entry per event), and opening reads the
//! whole log once. docs/ARCHITECTURE.md weighs this.

use std::collections::{HashMap, HashSet};

use extensor_core::Error;
use extensor_core::event::{NewEvent, RecordedEvent, StreamId};
use extensor_core::ids::EventId;
use extensor_core::store::chain::{ChainHead, chain_next, check_append};
use extensor_core::store::{
    AppendResult, EventStream, ExpectedRevision, READ_EVENTS_MAX, ReadFilter,
};
use futures::StreamExt;
use kurrentdb::{
    AppendToStreamOptions, Client, EventData, ReadStreamOptions, StreamPosition, StreamState,
    SubscribeToStreamOptions,
};
use tokio::sync::Mutex;

use crate::errors::{Location, corrupt, io};

/// Events read from the server per page.
const PAGE_EVENTS: usize = 1_000;
/// Appends lost to other writers in a row before one gives up: each loss
/// means another append was committed, so this is only reached when the
/// log is moving faster than this node can read it.
const APPEND_RACES_MAX: usize = 1_000;

pub(crate) struct Log {
    pub client: Client,
    pub location: Location,
    pub namespace: String,
    stream: String,
    /// Held by an append from its catch-up to its commit: this node's
    /// writers queue here rather than race each other on the server.
    index: Mutex<Index>,
}

struct Index {
    head: ChainHead,
    /// Each stream's positions, indexed by revision.
    streams: HashMap<StreamId, Vec<u64>>,
    ids: HashMap<EventId, u64>,
}

impl Index {
    fn add(&mut self, rec: &RecordedEvent, location: &Location) -> Result<(), Error> {
        let positions = self.streams.entry(rec.stream.clone()).or_default();
        if rec.position != self.head.position + 1 || rec.revision != positions.len() as u64 {
            return Err(corrupt(
                location,
                format!(
                    "log event at position {} is stream `{}` revision {}; expected position {} revision {}",
                    rec.position,
                    rec.stream,
                    rec.revision,
                    self.head.position + 1,
                    positions.len()
                ),
            ));
        }
        positions.push(rec.position);
        self.ids.insert(rec.event_id.clone(), rec.position);
        self.head = ChainHead {
            position: rec.position,
            hash: rec.hash,
            recorded_at_micros: rec.recorded_at.timestamp_micros(),
        };
        Ok(())
    }

    fn revision_of(&self, stream: &StreamId) -> Option<u64> {
        self.streams.get(stream).map(|p| p.len() as u64 - 1)
    }

    /// The events as they would be recorded after the current head, with
    /// the append's checks.
    fn place(
        &self,
        stream: &StreamId,
        expected: ExpectedRevision,
        events: &[NewEvent],
    ) -> Result<(Vec<RecordedEvent>, AppendResult), Error> {
        if let Some(e) = events.iter().find(|e| self.ids.contains_key(&e.event_id)) {
            return Err(Error::DuplicateEventId {
                stream: stream.to_string(),
                event_id: e.event_id.to_string(),
            });
        }
        let actual = self.revision_of(stream);
        if !expected.admits(actual) {
            return Err(Error::Conflict {
                stream: stream.to_string(),
                expected,
                actual,
            });
        }
        let first_revision = actual.map_or(0, |r| r + 1);
        let mut head = self.head;
        let records: Vec<RecordedEvent> = events
            .iter()
            .enumerate()
            .map(|(i, e)| chain_next(&mut head, stream, first_revision + i as u64, e))
            .collect();
        let result = AppendResult {
            first_position: self.head.position + 1,
            last_position: head.position,
            next_expected: first_revision + records.len() as u64 - 1,
        };
        Ok((records, result))
    }
}

impl Log {
    pub fn new(client: Client, location: Location, namespace: &str) -> Self {
        Self {
            client,
            location,
            namespace: namespace.to_owned(),
            stream: format!("{namespace}-log"),
            index: Mutex::new(Index {
                head: ChainHead::GENESIS,
                streams: HashMap::new(),
                ids: HashMap::new(),
            }),
        }
    }

    /// Reads the log's tail into the index.
    pub async fn refresh(&self) -> Result<(), Error> {
        let mut index = self.index.lock().await;
        self.catch_up(&mut index).await
    }

    async fn catch_up(&self, index: &mut Index) -> Result<(), Error> {
        loop {
            let from = StreamPosition::Position(index.head.position);
            let page = self
                .read_page(from, Direction::Forwards, PAGE_EVENTS)
                .await?;
            for rec in &page {
                index.add(rec, &self.location)?;
            }
            if page.len() < PAGE_EVENTS {
                return Ok(());
            }
        }
    }

    pub async fn append(
        &self,
        stream: StreamId,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, Error> {
        check_append(&stream, &events)?;
        refuse_repeated_ids(&stream, &events)?;
        let mut index = self.index.lock().await;
        for _ in 0..APPEND_RACES_MAX {
            self.catch_up(&mut index).await?;
            let (records, result) = index.place(&stream, expected, &events)?;
            let data = records
                .iter()
                .map(|r| EventData::json(&r.event_type, r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| corrupt(&self.location, format!("event as JSON: {e}")))?;
            // The head's revision: nothing may have been appended since.
            let state = match index.head.position {
                0 => StreamState::NoStream,
                p => StreamState::StreamRevision(p - 1),
            };
            let options = AppendToStreamOptions::default().stream_state(state);
            match self
                .client
                .append_to_stream(self.stream.as_str(), &options, data)
                .await
            {
                Ok(_) => {
                    for r in &records {
                        index.add(r, &self.location)?;
                    }
                    return Ok(result);
                }
                // Another writer appended first: read it, check again.
                Err(kurrentdb::Error::WrongExpectedVersion { .. }) => continue,
                Err(e) => return Err(io(&self.location, "append", e)),
            }
        }
        Err(Error::StoreIo {
            path: self.location.path(),
            detail: format!(
                "append to `{stream}` lost {APPEND_RACES_MAX} races to other writers in a row"
            ),
        })
    }

    pub async fn read_stream(
        &self,
        stream: StreamId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let positions: Vec<u64> = {
            let mut index = self.index.lock().await;
            self.catch_up(&mut index).await?;
            let from = usize::try_from(from).unwrap_or(usize::MAX);
            index.streams.get(&stream).map_or_else(Vec::new, |p| {
                p.iter()
                    .skip(from)
                    .take(limit.min(READ_EVENTS_MAX))
                    .copied()
                    .collect()
            })
        };
        // One read per run of consecutive positions.
        let mut out = Vec::with_capacity(positions.len());
        for run in positions.chunk_by(|a, b| b == &(a + 1)) {
            let from = StreamPosition::Position(run[0] - 1);
            let page = self.read_page(from, Direction::Forwards, run.len()).await?;
            if page.iter().map(|e| e.position).ne(run.iter().copied()) {
                return Err(corrupt(
                    &self.location,
                    format!(
                        "the log changed under stream `{stream}` at position {}",
                        run[0]
                    ),
                ));
            }
            out.extend(page);
        }
        Ok(out)
    }

    pub async fn read_all(
        &self,
        after: u64,
        filter: &ReadFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let limit = limit.min(READ_EVENTS_MAX);
        let mut out = Vec::new();
        let mut next = after;
        while out.len() < limit {
            let from = StreamPosition::Position(next);
            let page = self
                .read_page(from, Direction::Forwards, PAGE_EVENTS)
                .await?;
            let full = page.len() == PAGE_EVENTS;
            for rec in page {
                next = rec.position;
                if filter.position_max.is_some_and(|max| rec.position > max) {
                    return Ok(out);
                }
                if filter.matches(&rec) {
                    out.push(rec);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
            if !full {
                break;
            }
        }
        Ok(out)
    }

    pub async fn read_all_backward(
        &self,
        before: u64,
        after: u64,
        filter: &ReadFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let limit = limit.min(READ_EVENTS_MAX);
        // The newest position to read: below `before`, at most the head.
        let mut top = before.saturating_sub(1).min(self.head_position().await?);
        let mut out = Vec::new();
        while top > after && out.len() < limit {
            let from = StreamPosition::Position(top - 1);
            let page = self
                .read_page(from, Direction::Backwards, PAGE_EVENTS)
                .await?;
            let Some(last) = page.last().map(|e| e.position) else {
                break;
            };
            for rec in page {
                if rec.position <= after {
                    return Ok(out);
                }
                if filter.matches(&rec) {
                    out.push(rec);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
            top = last - 1;
        }
        Ok(out)
    }

    pub async fn read_event(&self, event_id: EventId) -> Result<Option<RecordedEvent>, Error> {
        let position = {
            let mut index = self.index.lock().await;
            self.catch_up(&mut index).await?;
            index.ids.get(&event_id).copied()
        };
        let Some(position) = position else {
            return Ok(None);
        };
        let from = StreamPosition::Position(position - 1);
        let page = self.read_page(from, Direction::Forwards, 1).await?;
        Ok(page.into_iter().next().filter(|e| e.event_id == event_id))
    }

    pub async fn stream_revision(&self, stream: StreamId) -> Result<Option<u64>, Error> {
        let mut index = self.index.lock().await;
        self.catch_up(&mut index).await?;
        Ok(index.revision_of(&stream))
    }

    /// The last event's position, read from the server (0 when empty).
    pub async fn head_position(&self) -> Result<u64, Error> {
        let page = self
            .read_page(StreamPosition::End, Direction::Backwards, 1)
            .await?;
        Ok(page.first().map_or(0, |e| e.position))
    }

    /// Catch-up then live, from the server's own catch-up subscription to
    /// the log: it reads the stored events after `after`, then delivers new
    /// ones in revision order, so there is no gap and no duplicate at the
    /// switch. The filter is applied here.
    pub fn subscribe(&self, after: u64, filter: ReadFilter) -> EventStream {
        let client = self.client.clone();
        let name = self.stream.clone();
        let location = self.location.clone();
        // Subscriptions start after the given revision; position `after`
        // is revision `after - 1`.
        let start = match after {
            0 => StreamPosition::Start,
            p => StreamPosition::Position(p - 1),
        };
        let options = SubscribeToStreamOptions::default().start_from(start);
        futures::stream::once(async move { client.subscribe_to_stream(name, &options).await })
            .flat_map(move |subscription| {
                let location = location.clone();
                futures::stream::unfold(Some(subscription), move |subscription| {
                    let location = location.clone();
                    async move {
                        let mut subscription = subscription?;
                        let item = match subscription.next().await {
                            Ok(ev) => decode(&location, ev.get_original_event()),
                            Err(e) => Err(io(&location, "subscription", e)),
                        };
                        let next = item.is_ok().then_some(subscription);
                        Some((item, next))
                    }
                })
            })
            .filter(move |item| {
                let keep = item.as_ref().map_or(true, |e| filter.matches(e));
                std::future::ready(keep)
            })
            .boxed()
    }

    /// Up to `count` events of the log from revision `from`.
    async fn read_page(
        &self,
        from: StreamPosition<u64>,
        direction: Direction,
        count: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let options = ReadStreamOptions::default().position(from).max_count(count);
        let options = match direction {
            Direction::Forwards => options.forwards(),
            Direction::Backwards => options.backwards(),
        };
        let mut read = match self
            .client
            .read_stream(self.stream.as_str(), &options)
            .await
        {
            Ok(read) => read,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.location, "read", e)),
        };
        let mut out = Vec::with_capacity(count.min(PAGE_EVENTS));
        loop {
            match read.next().await {
                Ok(Some(ev)) => out.push(decode(&self.location, ev.get_original_event())?),
                Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => return Ok(out),
                Err(e) => return Err(io(&self.location, "read", e)),
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Forwards,
    Backwards,
}

/// One log event back into the recorded event it holds; its place in the
/// log must be the position it records.
fn decode(location: &Location, ev: &kurrentdb::RecordedEvent) -> Result<RecordedEvent, Error> {
    let rec: RecordedEvent = serde_json::from_slice(&ev.data).map_err(|e| {
        corrupt(
            location,
            format!(
                "log event at revision {}: not a recorded event: {e}",
                ev.revision
            ),
        )
    })?;
    if rec.position != ev.revision + 1 {
        return Err(corrupt(
            location,
            format!(
                "log event at revision {} records position {}",
                ev.revision, rec.position
            ),
        ));
    }
    Ok(rec)
}

/// Two events of one append with the same id: say which.
fn refuse_repeated_ids(stream: &StreamId, events: &[NewEvent]) -> Result<(), Error> {
    let mut seen = HashSet::with_capacity(events.len());
    match events.iter().find(|e| !seen.insert(&e.event_id)) {
        Some(e) => Err(Error::DuplicateEventId {
            stream: stream.to_string(),
            event_id: e.event_id.to_string(),
        }),
        None => Ok(()),
    }
}
