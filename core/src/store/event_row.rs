//! One stored event row back into a [`RecordedEvent`], for every SQL
//! backend (SQLite, PostgreSQL): each column re-validated, so a row edited
//! by hand gives an error naming its position and column, never a panic.
//! The backends differ only in how a column is read ([`EventColumns`]).

use chrono::DateTime;
use serde_json::value::RawValue;

use crate::error::Error;
use crate::event::{Hash, RecordedEvent, StreamId};

/// How a backend reads the columns of one event row, selected in this
/// order: position, stream, revision, event_id, event_type,
/// schema_version, recorded_at (µs since the epoch), tenant, principal,
/// correlation_id, causation_id, payload, prev_hash, hash. An `Err` is the
/// driver's description of what is wrong with the column.
pub trait EventColumns {
    fn text(&self, column: usize) -> Result<&str, String>;
    fn opt_text(&self, column: usize) -> Result<Option<&str>, String>;
    fn int(&self, column: usize) -> Result<i64, String>;
    fn bytes(&self, column: usize) -> Result<&[u8], String>;
}

/// Decodes the row at `position` (already read from column 0). `bad`
/// makes the backend's corruption error from the column's name and what
/// is wrong; `last_stream` is the previous row's stream, reused when equal
/// (consecutive rows often share one), so its name is validated once.
pub fn decode_event_row(
    row: &impl EventColumns,
    position: i64,
    last_stream: Option<&StreamId>,
    bad: &dyn Fn(&str, String) -> Error,
) -> Result<RecordedEvent, Error> {
    let text = |i: usize, what: &str| row.text(i).map_err(|e| bad(what, e));
    let opt_text = |i: usize, what: &str| row.opt_text(i).map_err(|e| bad(what, e));
    let int = |i: usize, what: &str| row.int(i).map_err(|e| bad(what, e));
    let hash = |i: usize, what: &str| -> Result<Hash, Error> {
        let v = row.bytes(i).map_err(|e| bad(what, e))?;
        v.try_into().map_err(|_| bad(what, "not 32 bytes".into()))
    };
    let parse_error = |what: &'static str| move |e: Error| bad(what, e.to_string());
    let stream_text = text(1, "stream")?;
    let stream = match last_stream {
        Some(s) if s.as_str() == stream_text => s.clone(),
        _ => stream_text.parse().map_err(parse_error("stream"))?,
    };
    let recorded = int(6, "recorded_at")?;
    Ok(RecordedEvent {
        position: u64::try_from(position).map_err(|_| bad("position", "negative".into()))?,
        stream,
        revision: u64::try_from(int(2, "revision")?)
            .map_err(|_| bad("revision", "negative".into()))?,
        event_id: text(3, "event_id")?
            .parse()
            .map_err(parse_error("event_id"))?,
        event_type: text(4, "event_type")?.to_owned(),
        schema_version: u32::try_from(int(5, "schema_version")?)
            .map_err(|_| bad("schema_version", "out of range".into()))?,
        recorded_at: DateTime::from_timestamp_micros(recorded)
            .ok_or_else(|| bad("recorded_at", format!("{recorded} is out of range")))?,
        tenant: opt_text(7, "tenant")?
            .map(str::parse)
            .transpose()
            .map_err(parse_error("tenant"))?,
        principal: text(8, "principal")?
            .parse()
            .map_err(parse_error("principal"))?,
        correlation_id: text(9, "correlation_id")?
            .parse()
            .map_err(parse_error("correlation_id"))?,
        causation_id: opt_text(10, "causation_id")?
            .map(str::parse)
            .transpose()
            .map_err(parse_error("causation_id"))?,
        payload: RawValue::from_string(text(11, "payload")?.to_owned())
            .map_err(|e| bad("payload", format!("not valid JSON: {e}")))?,
        prev_hash: hash(12, "prev_hash")?,
        hash: hash(13, "hash")?,
    })
}
