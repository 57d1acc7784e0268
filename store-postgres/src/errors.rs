//! How PostgreSQL's errors become the core's, each naming the store (its
//! URL without the password) in place of a file path.

use extensor_core::Error;
use tokio_postgres::error::SqlState;

use crate::location::Location;

/// Maps a driver error on an open store.
pub(crate) fn map_err(location: &Location, e: tokio_postgres::Error) -> Error {
    let path = location.path();
    let detail = describe(&e);
    match e.code() {
        Some(c) if *c == SqlState::DISK_FULL || *c == SqlState::PROGRAM_LIMIT_EXCEEDED => {
            Error::StoreFull { path, detail }
        }
        Some(c) if *c == SqlState::DATA_CORRUPTED || *c == SqlState::INDEX_CORRUPTED => {
            Error::StoreCorrupt { path, detail }
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => Error::StoreOpen {
            path,
            detail: format!("{detail} (create the database first, or fix the URL)"),
        },
        Some(c)
            if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                || *c == SqlState::INSUFFICIENT_PRIVILEGE =>
        {
            Error::StoreOpen { path, detail }
        }
        _ => Error::StoreIo { path, detail },
    }
}

/// Maps a failure to connect.
pub(crate) fn connect_err(location: &Location, e: tokio_postgres::Error) -> Error {
    match map_err(location, e) {
        Error::StoreIo { path, detail } => Error::StoreOpen {
            path,
            detail: format!("cannot connect: {detail}"),
        },
        other => other,
    }
}

/// The server's message when there is one, else the driver's error chain.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} ({})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            s.push_str(": ");
            s.push_str(detail);
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}

/// A row that does not decode, naming its position.
pub(crate) fn corrupt(location: &Location, detail: String) -> Error {
    Error::StoreCorrupt {
        path: location.path(),
        detail,
    }
}
