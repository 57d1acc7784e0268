//! Snapshots, a cache beside the log. Each (stream, aggregate) key has
//! its own stream, `<namespace>-snap-<epoch>-<key hash>`, whose last event
//! is the current snapshot. `delete_snapshots` cannot list streams, so it
//! advances the epoch (`<namespace>-snapshot-epoch`) instead: every key
//! saved in the old epoch was registered once, at its stream's first
//! event, in `<namespace>-snapkeys-<epoch>`; those are counted and their
//! streams deleted, and later saves and loads use the new epoch.

use extensor_core::Error;
use extensor_core::event::StreamId;
use extensor_core::store::{SNAPSHOT_BYTES_MAX, SnapshotRecord};
use kurrentdb::{
    AppendToStreamOptions, DeleteStreamOptions, EventData, ReadStreamOptions, StreamPosition,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::errors::{corrupt, io};
use crate::log::Log;

/// Key streams counted and deleted per page by `delete_snapshots`.
const KEYS_PAGE: usize = 1_000;

#[derive(Serialize, Deserialize)]
struct Stored {
    stream: String,
    aggregate: String,
    snapshot_version: u32,
    revision: u64,
    position: u64,
    state: String,
}

#[derive(Serialize, Deserialize)]
struct Epoch {
    epoch: u64,
}

#[derive(Serialize, Deserialize)]
struct Key {
    stream: String,
}

fn key_stream(log: &Log, epoch: u64, stream: &StreamId, aggregate: &str) -> String {
    let digest = Sha256::digest(format!("{stream}\n{aggregate}"));
    let hash = hex::encode(&digest[..16]);
    format!("{}-snap-{epoch}-{hash}", log.namespace)
}

/// The last event of `name` as `T`; `None` for a stream with no events.
async fn last_of<T: for<'de> Deserialize<'de>>(log: &Log, name: &str) -> Result<Option<T>, Error> {
    let options = ReadStreamOptions::default()
        .position(StreamPosition::End)
        .backwards()
        .max_count(1);
    let mut read = match log.client.read_stream(name, &options).await {
        Ok(read) => read,
        Err(kurrentdb::Error::ResourceNotFound | kurrentdb::Error::ResourceDeleted) => {
            return Ok(None);
        }
        Err(e) => return Err(io(&log.location, "read snapshots", e)),
    };
    match read.next().await {
        Ok(Some(ev)) => serde_json::from_slice(&ev.get_original_event().data)
            .map(Some)
            .map_err(|e| corrupt(&log.location, format!("stream `{name}`: {e}"))),
        Ok(None) | Err(kurrentdb::Error::ResourceNotFound | kurrentdb::Error::ResourceDeleted) => {
            Ok(None)
        }
        Err(e) => Err(io(&log.location, "read snapshots", e)),
    }
}

async fn epoch(log: &Log) -> Result<u64, Error> {
    let name = format!("{}-snapshot-epoch", log.namespace);
    Ok(last_of::<Epoch>(log, &name).await?.map_or(0, |e| e.epoch))
}

async fn append_json<T: Serialize>(
    log: &Log,
    name: &str,
    event_type: &str,
    value: &T,
) -> Result<kurrentdb::WriteResult, Error> {
    let data = EventData::json(event_type, value)
        .map_err(|e| corrupt(&log.location, format!("snapshot as JSON: {e}")))?;
    log.client
        .append_to_stream(name, &AppendToStreamOptions::default(), data)
        .await
        .map_err(|e| io(&log.location, "save snapshot", e))
}

pub(crate) async fn save(log: &Log, snapshot: SnapshotRecord) -> Result<(), Error> {
    if snapshot.state.len() > SNAPSHOT_BYTES_MAX {
        return Err(Error::InvalidAppend {
            stream: snapshot.stream.to_string(),
            reason: format!(
                "snapshot is {} bytes; the limit is {SNAPSHOT_BYTES_MAX}",
                snapshot.state.len()
            ),
        });
    }
    let epoch = epoch(log).await?;
    let name = key_stream(log, epoch, &snapshot.stream, &snapshot.aggregate);
    let stored = Stored {
        stream: snapshot.stream.to_string(),
        aggregate: snapshot.aggregate,
        snapshot_version: snapshot.snapshot_version,
        revision: snapshot.revision,
        position: snapshot.position,
        state: snapshot.state,
    };
    let written = append_json(log, &name, "snapshot", &stored).await?;
    // The key stream's first event registers it for `delete_snapshots`.
    if written.next_expected_version == 0 {
        let keys = format!("{}-snapkeys-{epoch}", log.namespace);
        append_json(log, &keys, "snapshot-key", &Key { stream: name }).await?;
    }
    Ok(())
}

pub(crate) async fn load(
    log: &Log,
    stream: &StreamId,
    aggregate: &str,
    snapshot_version: u32,
) -> Result<Option<SnapshotRecord>, Error> {
    let epoch = epoch(log).await?;
    let name = key_stream(log, epoch, stream, aggregate);
    let Some(stored) = last_of::<Stored>(log, &name).await? else {
        return Ok(None);
    };
    if stored.snapshot_version != snapshot_version
        || stored.stream != stream.as_str()
        || stored.aggregate != aggregate
    {
        return Ok(None);
    }
    Ok(Some(SnapshotRecord {
        stream: stream.clone(),
        aggregate: stored.aggregate,
        snapshot_version: stored.snapshot_version,
        revision: stored.revision,
        position: stored.position,
        state: stored.state,
    }))
}

pub(crate) async fn delete_all(log: &Log) -> Result<u64, Error> {
    let current = epoch(log).await?;
    let keys = read_keys(log, current).await?;
    let name = format!("{}-snapshot-epoch", log.namespace);
    append_json(log, &name, "snapshot-epoch", &Epoch { epoch: current + 1 }).await?;
    // The old epoch is unreachable now; deleting its streams only frees
    // space, so a failure is logged, not returned.
    for stream in &keys {
        if let Err(e) = log
            .client
            .delete_stream(stream.as_str(), &DeleteStreamOptions::default())
            .await
        {
            tracing::warn!(stream = %stream, error = %e, "old snapshot stream not deleted");
        }
    }
    Ok(keys.len() as u64)
}

/// Every key stream registered in `epoch`.
async fn read_keys(log: &Log, epoch: u64) -> Result<Vec<String>, Error> {
    let name = format!("{}-snapkeys-{epoch}", log.namespace);
    let mut out = Vec::new();
    loop {
        let options = ReadStreamOptions::default()
            .position(StreamPosition::Position(out.len() as u64))
            .forwards()
            .max_count(KEYS_PAGE);
        let mut read = match log.client.read_stream(name.as_str(), &options).await {
            Ok(read) => read,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(out),
            Err(e) => return Err(io(&log.location, "read snapshot keys", e)),
        };
        let before = out.len();
        loop {
            match read.next().await {
                Ok(Some(ev)) => {
                    let key: Key = serde_json::from_slice(&ev.get_original_event().data)
                        .map_err(|e| corrupt(&log.location, format!("stream `{name}`: {e}")))?;
                    out.push(key.stream);
                }
                Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => break,
                Err(e) => return Err(io(&log.location, "read snapshot keys", e)),
            }
        }
        if out.len() - before < KEYS_PAGE {
            return Ok(out);
        }
    }
}
