//! The SQLite file format of the embedded store, how it is opened, and how
//! SQLite's errors become ours (each naming the file).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::Error;

/// The store's file inside the data directory.
pub const DB_FILE_NAME: &str = "events.sqlite3";
/// Marks a database as ours; anything else is refused rather than modified.
const FORMAT_MARKER: &str = "extensor-event-store";
/// Bumped on any incompatible change to the tables below.
pub const FORMAT_VERSION: u32 = 1;
/// Address space a reader may map of the store file (not memory: pages are
/// shared with the OS page cache).
const READER_MMAP_BYTES: u64 = 1 << 30;
/// How long a connection waits for another process's lock before failing.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// The tables and indexes of a store file (format version [`FORMAT_VERSION`]).
pub const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE events (
    position       INTEGER PRIMARY KEY,
    stream         TEXT    NOT NULL,
    revision       INTEGER NOT NULL,
    event_id       TEXT    NOT NULL UNIQUE,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    recorded_at    INTEGER NOT NULL,
    tenant         TEXT,
    principal      TEXT    NOT NULL,
    correlation_id TEXT    NOT NULL,
    causation_id   TEXT,
    payload        TEXT    NOT NULL,
    prev_hash      BLOB    NOT NULL,
    hash           BLOB    NOT NULL,
    UNIQUE (stream, revision)
) STRICT;
CREATE INDEX events_by_tenant ON events (tenant, position);
CREATE INDEX events_by_type ON events (event_type, position);
CREATE TABLE snapshots (
    stream           TEXT    NOT NULL,
    aggregate        TEXT    NOT NULL,
    snapshot_version INTEGER NOT NULL,
    revision         INTEGER NOT NULL,
    position         INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    PRIMARY KEY (stream, aggregate)
) STRICT;
";

/// Whether opening may create the directory and an empty store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// The server: create the data directory and store if missing.
    CreateIfMissing,
    /// Audit commands: the store must exist; it is opened read-only and no
    /// writer is started, so inspecting a store never changes it.
    ReadOnly,
}

pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_FILE_NAME)
}

/// Opens (and, if allowed, creates) the writer's connection.
pub fn open_writer(data_dir: &Path, pages_max: Option<u64>) -> Result<Connection, Error> {
    let path = db_path(data_dir);
    prepare_dir(data_dir)?;
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| map_err(&path, e))?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(|e| map_err(&path, e))?;
    // WAL lets readers run beside the writer; synchronous=FULL makes every
    // commit durable (the WAL is fsynced) before we acknowledge it.
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(|e| map_err(&path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::StoreOpen {
            path,
            detail: format!("cannot enable WAL mode (got {mode})"),
        });
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;")
        .map_err(|e| map_err(&path, e))?;
    if let Some(pages) = pages_max {
        conn.query_row(&format!("PRAGMA max_page_count={pages}"), [], |_| Ok(()))
            .map_err(|e| map_err(&path, e))?;
    }
    ensure_schema(&conn, &path)?;
    Ok(conn)
}

/// Opens a read-only connection on an existing store.
pub fn open_reader(data_dir: &Path) -> Result<Connection, Error> {
    let path = db_path(data_dir);
    if !path.is_file() {
        return Err(Error::StoreOpen {
            path,
            detail: "no event store here (is --data-dir / EXTENSOR_DATA_DIR right?)".into(),
        });
    }
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| map_err(&path, e))?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(|e| map_err(&path, e))?;
    // Readers scan long ranges: map the file instead of copying every page
    // through read(2) into SQLite's small page cache.
    conn.query_row(&format!("PRAGMA mmap_size={READER_MMAP_BYTES}"), [], |_| {
        Ok(())
    })
    .map_err(|e| map_err(&path, e))?;
    check_marker(&conn, &path)?;
    Ok(conn)
}

fn prepare_dir(data_dir: &Path) -> Result<(), Error> {
    if data_dir.exists() && !data_dir.is_dir() {
        return Err(Error::StoreOpen {
            path: data_dir.to_path_buf(),
            detail: "exists but is not a directory".into(),
        });
    }
    std::fs::create_dir_all(data_dir).map_err(|e| Error::StoreOpen {
        path: data_dir.to_path_buf(),
        detail: format!("cannot create the data directory: {e}"),
    })
}

fn ensure_schema(conn: &Connection, path: &Path) -> Result<(), Error> {
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| map_err(path, e))?;
    if tables == 0 {
        let init = format!(
            "BEGIN IMMEDIATE; {SCHEMA}
             INSERT INTO meta VALUES ('format', '{FORMAT_MARKER}'), ('format_version', '{FORMAT_VERSION}');
             COMMIT;"
        );
        return conn.execute_batch(&init).map_err(|e| map_err(path, e));
    }
    check_marker(conn, path)
}

fn check_marker(conn: &Connection, path: &Path) -> Result<(), Error> {
    let corrupt = |detail: String| Error::StoreCorrupt {
        path: path.to_path_buf(),
        detail,
    };
    let marker: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
            r.get(0)
        })
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("no such table") => {
                Ok(None)
            }
            other => Err(other),
        })
        .map_err(|e| map_err(path, e))?;
    if marker.as_deref() != Some(FORMAT_MARKER) {
        return Err(corrupt(
            "the SQLite database has no Extensor format marker; refusing to touch it".into(),
        ));
    }
    let version: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'format_version'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| map_err(path, e))?;
    if version != FORMAT_VERSION.to_string() {
        return Err(corrupt(format!(
            "store format version {version}; this build reads version {FORMAT_VERSION}"
        )));
    }
    Ok(())
}

/// Maps a SQLite error to ours, naming the file.
pub fn map_err(path: &Path, e: rusqlite::Error) -> Error {
    let path = path.to_path_buf();
    let detail = e.to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
            Error::StoreCorrupt { path, detail }
        }
        Some(ErrorCode::DiskFull) => Error::StoreFull { path, detail },
        Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => {
            Error::StoreOpen { path, detail }
        }
        Some(ErrorCode::ReadOnly) => Error::StoreIo {
            path,
            detail: format!("the store is read-only here: {detail}"),
        },
        _ => Error::StoreIo { path, detail },
    }
}
