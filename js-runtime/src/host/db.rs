//! `ctx.db.query`: read-only SQL over a tenant's read-model SQLite file.
//!
//! Defence in depth: the connection is opened read-only, `query_only` is on,
//! and an authorizer allows only reads, SELECT, recursion and ordinary
//! functions — writes, ATTACH, PRAGMA, transactions and `load_extension` are
//! refused before they run. A progress handler enforces the time cap.
//!
//! Memory is bounded in bytes, not only rows: `sqlite3_limit` caps every
//! string or blob SQLite builds (`randomblob(1e9)`, `printf('%.*c', …)`,
//! `group_concat`) at [`DB_VALUE_BYTES_MAX`], the page cache (which is also
//! the sorter's in-memory budget before it spills to a temp file) is
//! [`DB_CACHE_KIB_MAX`], and the rows handed back are capped at
//! [`DB_ROWS_MAX`] and [`DB_RESULT_BYTES_MAX`] together. Breaking a cap is
//! [`JsError::LimitExceeded`] naming it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Value};

use crate::error::JsError;
use crate::host::{DbReader, InstallationScope};

/// Rows one query may return; more is an error asking for a LIMIT.
pub const DB_ROWS_MAX: usize = 1_000;
/// Bytes of one query's answer as the host holds it (text and column names
/// plus [`DB_CELL_OVERHEAD_BYTES`] per cell): 1,000 rows of wide JSON
/// documents would otherwise be up to a gigabyte.
pub const DB_RESULT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// What one cell costs beyond its text in the JSON answer (a number, the
/// key, quotes, separators): a lower bound, so narrow rows count too.
pub const DB_CELL_OVERHEAD_BYTES: usize = 16;
/// The longest string or blob SQLite may build while running a query
/// (`SQLITE_LIMIT_LENGTH`): larger values fail inside SQLite before they
/// are allocated. Event payloads are capped well below this.
pub const DB_VALUE_BYTES_MAX: usize = 1024 * 1024;
/// Result columns (`SQLITE_LIMIT_COLUMN`): with rows, bounds the cells.
pub const DB_COLUMNS_MAX: usize = 64;
/// Expression nesting (`SQLITE_LIMIT_EXPR_DEPTH`): a deeply nested
/// expression costs parser stack and memory before it runs.
pub const DB_EXPR_DEPTH_MAX: usize = 100;
/// `UNION`ed selects in one statement (`SQLITE_LIMIT_COMPOUND_SELECT`).
pub const DB_COMPOUND_SELECTS_MAX: usize = 16;
/// Page cache per connection, in KiB (`PRAGMA cache_size`); SQLite's sorter
/// keeps this much in memory and spills the rest to a temp file.
pub const DB_CACHE_KIB_MAX: usize = 2 * 1024;
/// Wall time one query may take.
pub const DB_QUERY_MS_MAX: u64 = 2_000;
/// Bound parameters per query.
pub const DB_PARAMS_MAX: usize = 64;
/// SQL text length.
pub const DB_SQL_BYTES_MAX: usize = 16 * 1024;
/// The tenant read model's `events` table as plugins query it: one row per
/// business event. `time` is RFC 3339 as chrono's `to_rfc3339` writes it
/// (`2026-11-24T05:00:00.25+00:00`: fractional seconds only when non-zero),
/// so compare times with `julianday(time)`, not as text; `data` is the JSON
/// payload (`json_extract`). The engine's projection
/// (actors/src/engine/read_models.rs) writes this schema; docs/PLUGINS.md
/// documents it; `extensor plugin test` builds its local read model from it.
pub const EVENTS_READ_MODEL_DDL: &str = "CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    revision INTEGER NOT NULL UNIQUE,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    time TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_type ON events (type, position);";
/// SQLite VM steps between time checks.
const PROGRESS_STEPS: i32 = 1_000;

/// Read models laid out as `root/<tenant_id>.sqlite`.
#[derive(Clone, Debug)]
pub struct SqliteReadModels {
    root: PathBuf,
}

impl SqliteReadModels {
    pub fn new(root: impl Into<PathBuf>) -> SqliteReadModels {
        SqliteReadModels { root: root.into() }
    }

    pub fn path_for(&self, scope: &InstallationScope) -> Result<PathBuf, JsError> {
        let t = &scope.tenant_id;
        if t.is_empty()
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(JsError::Internal(format!(
                "tenant id `{t}` is not a plain name"
            )));
        }
        Ok(self.root.join(format!("{t}.sqlite")))
    }
}

impl DbReader for SqliteReadModels {
    fn query<'a>(
        &'a self,
        scope: &'a InstallationScope,
        sql: String,
        params: Vec<Value>,
    ) -> BoxFuture<'a, Result<Vec<Value>, JsError>> {
        Box::pin(async move {
            let path = self.path_for(scope)?;
            tokio::task::spawn_blocking(move || query_read_only(&path, &sql, &params))
                .await
                .map_err(|e| JsError::Internal(format!("db query task: {e}")))?
        })
    }
}

/// Runs one read-only statement against the SQLite file at `path` and
/// returns rows as JSON objects keyed by column name.
pub fn query_read_only(path: &Path, sql: &str, params: &[Value]) -> Result<Vec<Value>, JsError> {
    if sql.len() > DB_SQL_BYTES_MAX || params.len() > DB_PARAMS_MAX {
        return Err(bad(format!(
            "SQL over {DB_SQL_BYTES_MAX} bytes or over {DB_PARAMS_MAX} parameters"
        )));
    }
    let mut conn = open(path)?;
    let started = Instant::now();
    let cap = Duration::from_millis(DB_QUERY_MS_MAX);
    conn.progress_handler(PROGRESS_STEPS, Some(move || started.elapsed() > cap))
        .map_err(|e| host(e.to_string()))?;
    let mut stmt = conn.prepare(sql).map_err(|e| bad(e.to_string()))?;
    if !stmt.readonly() {
        return Err(bad("only read-only statements are allowed".into()));
    }
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let values: Vec<SqlValue> = params.iter().map(to_sql).collect::<Result<_, _>>()?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(values))
        .map_err(|e| classify(e, started, cap))?;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = rows.next().map_err(|e| classify(e, started, cap))? {
        if out.len() == DB_ROWS_MAX {
            return Err(limit(
                "DB_ROWS_MAX",
                DB_ROWS_MAX,
                format!("more than {DB_ROWS_MAX} rows (add a LIMIT)"),
            ));
        }
        let mut obj = Map::new();
        for (i, name) in names.iter().enumerate() {
            let v = row.get_ref(i).map_err(|e| host(e.to_string()))?;
            bytes += name.len() + DB_CELL_OVERHEAD_BYTES + cell_bytes(v);
            if bytes > DB_RESULT_BYTES_MAX {
                return Err(limit(
                    "DB_RESULT_BYTES_MAX",
                    DB_RESULT_BYTES_MAX,
                    format!(
                        "the answer passed {DB_RESULT_BYTES_MAX} bytes at row {}",
                        out.len() + 1
                    ),
                ));
            }
            obj.insert(name.clone(), from_sql(v));
        }
        out.push(Value::Object(obj));
    }
    Ok(out)
}

/// Bytes a cell's value adds to the answer beyond the per-cell overhead.
fn cell_bytes(v: ValueRef<'_>) -> usize {
    match v {
        ValueRef::Text(t) => t.len(),
        _ => 0,
    }
}

/// The `sqlite3_limit` caps every read-model connection runs under.
fn set_limits(conn: &Connection) -> Result<(), JsError> {
    use rusqlite::limits::Limit;
    let caps = [
        (Limit::SQLITE_LIMIT_LENGTH, DB_VALUE_BYTES_MAX),
        (Limit::SQLITE_LIMIT_SQL_LENGTH, DB_SQL_BYTES_MAX),
        (Limit::SQLITE_LIMIT_VARIABLE_NUMBER, DB_PARAMS_MAX),
        (Limit::SQLITE_LIMIT_COLUMN, DB_COLUMNS_MAX),
        (Limit::SQLITE_LIMIT_EXPR_DEPTH, DB_EXPR_DEPTH_MAX),
        (Limit::SQLITE_LIMIT_COMPOUND_SELECT, DB_COMPOUND_SELECTS_MAX),
        (Limit::SQLITE_LIMIT_ATTACHED, 0),
    ];
    for (which, value) in caps {
        let value = i32::try_from(value).map_err(|e| host(e.to_string()))?;
        conn.set_limit(which, value)
            .map_err(|e| host(format!("sqlite3_limit: {e}")))?;
    }
    Ok(())
}

fn open(path: &Path) -> Result<Connection, JsError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)
        .map_err(|e| host(format!("open read models: {e}")))?;
    set_limits(&conn)?;
    conn.execute_batch(&format!(
        "PRAGMA query_only = 1; PRAGMA cache_size = -{DB_CACHE_KIB_MAX}"
    ))
    .map_err(|e| host(e.to_string()))?;
    conn.authorizer(Some(authorize))
        .map_err(|e| host(e.to_string()))?;
    Ok(conn)
}

fn authorize(cx: AuthContext<'_>) -> Authorization {
    match cx.action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => {
            Authorization::Allow
        }
        AuthAction::Function { function_name }
            if !function_name.eq_ignore_ascii_case("load_extension") =>
        {
            Authorization::Allow
        }
        _ => Authorization::Deny,
    }
}

fn to_sql(v: &Value) -> Result<SqlValue, JsError> {
    Ok(match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => {
            return Err(bad(format!(
                "parameter {other} is not a string, number, boolean or null"
            )));
        }
    })
}

fn from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(format!("<{} byte blob>", b.len())),
    }
}

fn classify(e: rusqlite::Error, started: Instant, cap: Duration) -> JsError {
    if started.elapsed() > cap {
        return host(format!("query ran past {} ms", cap.as_millis()));
    }
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::TooBig) {
        return limit(
            "DB_VALUE_BYTES_MAX",
            DB_VALUE_BYTES_MAX,
            format!("a value the query built is too big ({e})"),
        );
    }
    bad(e.to_string())
}

fn limit(name: &'static str, max: usize, what: String) -> JsError {
    JsError::LimitExceeded {
        op: "ctx.db.query",
        limit: name,
        max: max as u64,
        what,
    }
}

fn bad(message: String) -> JsError {
    JsError::InvalidArgument {
        op: "ctx.db.query",
        message,
    }
}

fn host(message: String) -> JsError {
    JsError::Host {
        op: "ctx.db.query",
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let c = Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE events(id TEXT, type TEXT, n INTEGER); INSERT INTO events VALUES ('e1','a.b',1),('e2','a.c',2);").unwrap();
        (dir, path)
    }

    #[test]
    fn selects_work_with_params() {
        let (_d, path) = fixture();
        let rows = query_read_only(
            &path,
            "SELECT id, n FROM events WHERE n > ? ORDER BY id",
            &[json!(1)],
        )
        .unwrap();
        assert_eq!(rows, vec![json!({"id": "e2", "n": 2})]);
    }

    #[test]
    fn writes_attach_pragma_and_extensions_are_refused() {
        let (_d, path) = fixture();
        for sql in [
            "INSERT INTO events VALUES ('x','y',3)",
            "DELETE FROM events",
            "ATTACH DATABASE '/tmp/x.db' AS x",
            "PRAGMA table_info(events)",
            "SELECT load_extension('/tmp/evil.so')",
            "CREATE TABLE x(a)",
            "SELECT 1; DELETE FROM events",
        ] {
            assert!(query_read_only(&path, sql, &[]).is_err(), "{sql}");
        }
        assert_eq!(
            query_read_only(&path, "SELECT count(*) AS c FROM events", &[]).unwrap(),
            vec![json!({"c": 2})]
        );
    }

    #[test]
    fn row_and_time_caps() {
        let (_d, path) = fixture();
        let err = query_read_only(&path, "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM r LIMIT 5000) SELECT i FROM r", &[]).unwrap_err();
        assert!(err.to_string().contains("DB_ROWS_MAX"), "{err}");
        let err = query_read_only(
            &path,
            "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM r) SELECT count(*) FROM r",
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("ran past"), "{err}");
    }

    #[test]
    fn values_the_query_builds_are_capped_in_bytes() {
        let (_d, path) = fixture();
        for sql in [
            "SELECT randomblob(1000000000) AS b",
            "SELECT zeroblob(2000000) AS b",
            "SELECT printf('%.*c', 5000000, 'x') AS s",
            "SELECT length(replace(hex(randomblob(600000)), 'A', 'AAAA')) AS n",
            "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM r LIMIT 900) \
             SELECT group_concat(hex(randomblob(2000)), '') AS s FROM r",
        ] {
            let err = query_read_only(&path, sql, &[]).unwrap_err();
            assert!(
                matches!(
                    &err,
                    JsError::LimitExceeded {
                        limit: "DB_VALUE_BYTES_MAX",
                        ..
                    }
                ),
                "{sql}: {err}"
            );
        }
    }

    #[test]
    fn an_answer_is_capped_in_bytes_before_rows() {
        let (_d, path) = fixture();
        // 900 rows (under DB_ROWS_MAX) of 8 KiB each: 7 MiB of answer.
        let sql = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM r LIMIT 900) \
                   SELECT i, hex(randomblob(4096)) AS s FROM r";
        let err = query_read_only(&path, sql, &[]).unwrap_err();
        assert!(
            matches!(
                &err,
                JsError::LimitExceeded {
                    limit: "DB_RESULT_BYTES_MAX",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("4194304"), "{err}");
        // Just under the cap answers.
        let sql = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM r LIMIT 400) \
                   SELECT i, hex(randomblob(4096)) AS s FROM r";
        assert_eq!(query_read_only(&path, sql, &[]).unwrap().len(), 400);
    }

    #[test]
    fn too_many_columns_or_deep_expressions_are_refused() {
        let (_d, path) = fixture();
        let cols: Vec<String> = (0..=DB_COLUMNS_MAX)
            .map(|i| format!("{i} AS c{i}"))
            .collect();
        assert!(query_read_only(&path, &format!("SELECT {}", cols.join(", ")), &[]).is_err());
        let deep = format!("SELECT {}1", "NOT ".repeat(200));
        assert!(query_read_only(&path, &deep, &[]).is_err());
    }
}
