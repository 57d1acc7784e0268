//! Reading events back out of SQLite rows. Every column is re-validated: a
//! row edited by hand gives an error naming its position, never a panic.

use std::path::Path;

use rusqlite::types::ToSql;
use rusqlite::{Connection, Row};

use super::schema::map_err;
use crate::error::Error;
use crate::event::{RecordedEvent, StreamId};
use crate::store::ReadFilter;
use crate::store::event_row::{EventColumns, decode_event_row};

const COLUMNS: &str =
    "position, stream, revision, event_id, event_type, schema_version, recorded_at,
    tenant, principal, correlation_id, causation_id, payload, prev_hash, hash";

pub fn read_stream(
    conn: &Connection,
    path: &Path,
    stream: &StreamId,
    from: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE stream = ?1 AND revision >= ?2 ORDER BY revision LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(|e| map_err(path, e))?;
    let params: [&dyn ToSql; 3] = [
        &stream.as_str(),
        &(from.min(i64::MAX as u64) as i64),
        &(limit as i64),
    ];
    collect(&mut stmt, path, &params)
}

/// The event with `event_id`, through the column's unique index.
pub fn read_event(
    conn: &Connection,
    path: &Path,
    event_id: &crate::ids::EventId,
) -> Result<Option<RecordedEvent>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE event_id = ?1");
    let mut stmt = conn.prepare_cached(&sql).map_err(|e| map_err(path, e))?;
    let params: [&dyn ToSql; 1] = [&event_id.as_str()];
    Ok(collect(&mut stmt, path, &params)?.pop())
}

pub fn read_all(
    conn: &Connection,
    path: &Path,
    after: u64,
    filter: &ReadFilter,
    limit: usize,
) -> Result<Vec<RecordedEvent>, Error> {
    let (clauses, mut params) = conditions(after, filter);
    params.push(Box::new(limit as i64));
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE {} ORDER BY position LIMIT ?",
        clauses.join(" AND ")
    );
    query(conn, path, &sql, &params)
}

/// Newest first: the matching events with `after < position < before`, from
/// `before` down (an index scan backwards, as cheap as the forward one).
pub fn read_all_backward(
    conn: &Connection,
    path: &Path,
    before: u64,
    after: u64,
    filter: &ReadFilter,
    limit: usize,
) -> Result<Vec<RecordedEvent>, Error> {
    let (sql, params) = backward(before, after, filter, limit);
    query(conn, path, &sql, &params)
}

/// The statement of [`read_all_backward`] and its parameters.
fn backward(
    before: u64,
    after: u64,
    filter: &ReadFilter,
    limit: usize,
) -> (String, Vec<Box<dyn ToSql>>) {
    let (mut clauses, mut params) = conditions(after, filter);
    clauses.push("position < ?".into());
    params.push(Box::new(before.min(i64::MAX as u64) as i64));
    params.push(Box::new(limit as i64));
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE {} ORDER BY position DESC LIMIT ?",
        clauses.join(" AND ")
    );
    (sql, params)
}

/// The `WHERE` conditions of `position > after` and `filter`, with their
/// parameters in order.
fn conditions(after: u64, filter: &ReadFilter) -> (Vec<String>, Vec<Box<dyn ToSql>>) {
    let mut clauses = vec!["position > ?".to_owned()];
    let mut params: Vec<Box<dyn ToSql>> = vec![Box::new(after.min(i64::MAX as u64) as i64)];
    if let Some(t) = &filter.tenant {
        clauses.push("tenant = ?".into());
        params.push(Box::new(t.as_str().to_owned()));
    }
    if let Some(s) = &filter.stream {
        clauses.push("stream = ?".into());
        params.push(Box::new(s.as_str().to_owned()));
    }
    if let Some(p) = &filter.type_prefix {
        clauses.push("substr(event_type, 1, ?) = ?".into());
        params.push(Box::new(p.len() as i64));
        params.push(Box::new(p.clone()));
    }
    if let Some(t) = filter.recorded_from {
        clauses.push("recorded_at >= ?".into());
        params.push(Box::new(t.timestamp_micros()));
    }
    if let Some(t) = filter.recorded_before {
        clauses.push("recorded_at < ?".into());
        params.push(Box::new(t.timestamp_micros()));
    }
    if let Some(p) = filter.position_max {
        clauses.push("position <= ?".into());
        params.push(Box::new(p.min(i64::MAX as u64) as i64));
    }
    (clauses, params)
}

fn query(
    conn: &Connection,
    path: &Path,
    sql: &str,
    params: &[Box<dyn ToSql>],
) -> Result<Vec<RecordedEvent>, Error> {
    let mut stmt = conn.prepare_cached(sql).map_err(|e| map_err(path, e))?;
    let refs: Vec<&dyn ToSql> = params.iter().map(|p| p.as_ref()).collect();
    collect(&mut stmt, path, &refs)
}

fn collect(
    stmt: &mut rusqlite::CachedStatement<'_>,
    path: &Path,
    params: &[&dyn ToSql],
) -> Result<Vec<RecordedEvent>, Error> {
    let mut rows = stmt.query(params).map_err(|e| map_err(path, e))?;
    let mut out = Vec::new();
    // Consecutive rows often share a stream; reuse its validated name.
    let mut last_stream: Option<StreamId> = None;
    while let Some(row) = rows.next().map_err(|e| map_err(path, e))? {
        let ev = decode_row(row, path, last_stream.as_ref())?;
        last_stream = Some(ev.stream.clone());
        out.push(ev);
    }
    Ok(out)
}

/// Turns one row into an event, naming the position of anything malformed.
/// Columns are read as borrowed values, so each field is allocated once.
pub fn decode_row(
    row: &Row<'_>,
    path: &Path,
    last_stream: Option<&StreamId>,
) -> Result<RecordedEvent, Error> {
    let position: i64 = row.get(0).map_err(|e| map_err(path, e))?;
    let bad = |what: &str, detail: String| Error::StoreCorrupt {
        path: path.to_path_buf(),
        detail: format!("event {position}: {what}: {detail}"),
    };
    decode_event_row(&Columns(row), position, last_stream, &bad)
}

/// A SQLite row as [`EventColumns`].
struct Columns<'a, 'r>(&'a Row<'r>);

impl EventColumns for Columns<'_, '_> {
    fn text(&self, column: usize) -> Result<&str, String> {
        let v = self.0.get_ref(column).map_err(|e| e.to_string())?;
        v.as_str().map_err(|e| e.to_string())
    }
    fn opt_text(&self, column: usize) -> Result<Option<&str>, String> {
        let v = self.0.get_ref(column).map_err(|e| e.to_string())?;
        v.as_str_or_null().map_err(|e| e.to_string())
    }
    fn int(&self, column: usize) -> Result<i64, String> {
        self.0.get::<_, i64>(column).map_err(|e| e.to_string())
    }
    fn bytes(&self, column: usize) -> Result<&[u8], String> {
        let v = self.0.get_ref(column).map_err(|e| e.to_string())?;
        v.as_blob().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;

    /// Newest first is an index walk from the top that stops after `limit`
    /// rows: SQLite never sorts the matching rows (no temporary B-tree),
    /// with or without the tenant filter, so the newest page of a long log
    /// costs one page.
    #[test]
    fn newest_first_walks_an_index_backwards_without_sorting() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(super::super::schema::SCHEMA).unwrap();
        let tenant = ReadFilter {
            tenant: Some(TenantId::generate()),
            ..Default::default()
        };
        for filter in [ReadFilter::default(), tenant] {
            let (sql, params) = backward(u64::MAX, 0, &filter, 100);
            let refs: Vec<&dyn ToSql> = params.iter().map(|p| p.as_ref()).collect();
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = stmt
                .query_map(refs.as_slice(), |row| row.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let plan = plan.join("; ");
            assert!(!plan.contains("TEMP B-TREE"), "{filter:?}: {plan}");
            assert!(plan.contains("SEARCH events"), "{filter:?}: {plan}");
        }
    }
}
