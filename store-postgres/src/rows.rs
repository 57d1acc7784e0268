//! Reading events back out of rows. Every column is re-validated: a row
//! edited by hand (`psql`) gives an error naming its position, never a panic.

use chrono::DateTime;
use extensor_core::Error;
use extensor_core::event::{Hash, RecordedEvent, StreamId};
use extensor_core::store::ReadFilter;
use serde_json::value::RawValue;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::errors::corrupt;
use crate::location::Location;

pub(crate) const COLUMNS: &str = "position, stream, revision, event_id, event_type, schema_version, \
     recorded_at, tenant, principal, correlation_id, causation_id, payload, prev_hash, hash";

/// A parameter of a query built at run time.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// Clamps a position or revision into PostgreSQL's `bigint`.
pub(crate) fn big(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}

/// `SELECT` of the matching events after `after`, oldest first.
pub(crate) fn forward(after: u64, filter: &ReadFilter, limit: usize) -> (String, Vec<Param>) {
    let (clauses, mut params) = conditions(after, filter);
    params.push(Box::new(limit as i64));
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE {} ORDER BY position LIMIT ${}",
        clauses.join(" AND "),
        params.len()
    );
    (sql, params)
}

/// `SELECT` of the matching events with `after < position < before`,
/// newest first (an index scan backwards, as cheap as the forward one).
pub(crate) fn backward(
    before: u64,
    after: u64,
    filter: &ReadFilter,
    limit: usize,
) -> (String, Vec<Param>) {
    let (mut clauses, mut params) = conditions(after, filter);
    params.push(Box::new(big(before)));
    clauses.push(format!("position < ${}", params.len()));
    params.push(Box::new(limit as i64));
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE {} ORDER BY position DESC LIMIT ${}",
        clauses.join(" AND "),
        params.len()
    );
    (sql, params)
}

/// The `WHERE` conditions of `position > after` and `filter`, numbered
/// `$1…` in the order of their parameters.
fn conditions(after: u64, filter: &ReadFilter) -> (Vec<String>, Vec<Param>) {
    let mut clauses = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let mut push = |clause: &str, p: Param| {
        params.push(p);
        clauses.push(clause.replace('?', &format!("${}", params.len())));
    };
    push("position > ?", Box::new(big(after)));
    if let Some(t) = &filter.tenant {
        push("tenant = ?", Box::new(t.as_str().to_owned()));
    }
    if let Some(s) = &filter.stream {
        push("stream = ?", Box::new(s.as_str().to_owned()));
    }
    if let Some(p) = &filter.type_prefix {
        push("starts_with(event_type, ?)", Box::new(p.clone()));
    }
    if let Some(t) = filter.recorded_from {
        push("recorded_at >= ?", Box::new(t.timestamp_micros()));
    }
    if let Some(t) = filter.recorded_before {
        push("recorded_at < ?", Box::new(t.timestamp_micros()));
    }
    if let Some(p) = filter.position_max {
        push("position <= ?", Box::new(big(p)));
    }
    (clauses, params)
}

/// Decodes rows in order, reusing the validated stream name of the
/// previous row when consecutive rows share it.
pub(crate) fn decode_all(rows: &[Row], location: &Location) -> Result<Vec<RecordedEvent>, Error> {
    let mut out: Vec<RecordedEvent> = Vec::with_capacity(rows.len());
    for row in rows {
        let ev = decode_row(row, location, out.last().map(|e| &e.stream))?;
        out.push(ev);
    }
    Ok(out)
}

/// Turns one row (columns as in [`COLUMNS`]) into an event, naming the
/// position of anything malformed.
pub(crate) fn decode_row(
    row: &Row,
    location: &Location,
    last_stream: Option<&StreamId>,
) -> Result<RecordedEvent, Error> {
    let position: i64 = row
        .try_get(0)
        .map_err(|e| corrupt(location, format!("event position: {e}")))?;
    let bad = |what: &str, detail: String| {
        corrupt(location, format!("event {position}: {what}: {detail}"))
    };
    let text = |i: usize, what: &str| -> Result<&str, Error> {
        row.try_get::<_, &str>(i)
            .map_err(|e| bad(what, e.to_string()))
    };
    let opt_text = |i: usize, what: &str| -> Result<Option<&str>, Error> {
        row.try_get::<_, Option<&str>>(i)
            .map_err(|e| bad(what, e.to_string()))
    };
    let int = |i: usize, what: &str| -> Result<i64, Error> {
        row.try_get::<_, i64>(i)
            .map_err(|e| bad(what, e.to_string()))
    };
    let hash = |i: usize, what: &str| -> Result<Hash, Error> {
        let v = row
            .try_get::<_, &[u8]>(i)
            .map_err(|e| bad(what, e.to_string()))?;
        v.try_into().map_err(|_| bad(what, "not 32 bytes".into()))
    };
    let stream_text = text(1, "stream")?;
    let stream = match last_stream {
        Some(s) if s.as_str() == stream_text => s.clone(),
        _ => stream_text
            .parse()
            .map_err(|e: Error| bad("stream", e.to_string()))?,
    };
    let recorded = int(6, "recorded_at")?;
    Ok(RecordedEvent {
        position: u64::try_from(position).map_err(|_| bad("position", "negative".into()))?,
        stream,
        revision: u64::try_from(int(2, "revision")?)
            .map_err(|_| bad("revision", "negative".into()))?,
        event_id: text(3, "event_id")?
            .parse()
            .map_err(|e: Error| bad("event_id", e.to_string()))?,
        event_type: text(4, "event_type")?.to_owned(),
        schema_version: u32::try_from(int(5, "schema_version")?)
            .map_err(|_| bad("schema_version", "out of range".into()))?,
        recorded_at: DateTime::from_timestamp_micros(recorded)
            .ok_or_else(|| bad("recorded_at", format!("{recorded} is out of range")))?,
        tenant: opt_text(7, "tenant")?
            .map(str::parse)
            .transpose()
            .map_err(|e: Error| bad("tenant", e.to_string()))?,
        principal: text(8, "principal")?
            .parse()
            .map_err(|e: Error| bad("principal", e.to_string()))?,
        correlation_id: text(9, "correlation_id")?
            .parse()
            .map_err(|e: Error| bad("correlation_id", e.to_string()))?,
        causation_id: opt_text(10, "causation_id")?
            .map(str::parse)
            .transpose()
            .map_err(|e: Error| bad("causation_id", e.to_string()))?,
        payload: RawValue::from_string(text(11, "payload")?.to_owned())
            .map_err(|e| bad("payload", format!("not valid JSON: {e}")))?,
        prev_hash: hash(12, "prev_hash")?,
        hash: hash(13, "hash")?,
    })
}
