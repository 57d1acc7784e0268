//! Reading events back out of rows. Every column is re-validated: a row
//! edited by hand (`psql`) gives an error naming its position, never a panic.

use extensor_core::Error;
use extensor_core::event::{RecordedEvent, StreamId};
use extensor_core::store::ReadFilter;
use extensor_core::store::event_row::{EventColumns, decode_event_row};
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
    decode_event_row(&Columns(row), position, last_stream, &bad)
}

/// A PostgreSQL row as [`EventColumns`].
struct Columns<'a>(&'a Row);

impl EventColumns for Columns<'_> {
    fn text(&self, column: usize) -> Result<&str, String> {
        self.0.try_get(column).map_err(|e| e.to_string())
    }
    fn opt_text(&self, column: usize) -> Result<Option<&str>, String> {
        self.0.try_get(column).map_err(|e| e.to_string())
    }
    fn int(&self, column: usize) -> Result<i64, String> {
        self.0.try_get(column).map_err(|e| e.to_string())
    }
    fn bytes(&self, column: usize) -> Result<&[u8], String> {
        self.0.try_get(column).map_err(|e| e.to_string())
    }
}
