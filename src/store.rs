//! `--store URL` / `EXTENSOR_STORE_URL`: which event store every command
//! opens. Unset (or empty): the embedded SQLite store in `--data-dir`;
//! `postgres://…` (or `postgresql://…`): the shared PostgreSQL store.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use extensor_core::bundles::BundleBlobs;
use extensor_core::cluster::Cluster;
use extensor_core::store::EventStore;
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_store_postgres::{Location, PgConfig, PgOpenMode, PgStore};

/// The backend a `--store` value names.
pub enum StoreChoice {
    Embedded,
    /// Boxed: a parsed URL is large and the embedded choice is empty.
    Postgres(Box<Location>),
}

impl StoreChoice {
    /// Reads the `--store` value, naming an unsupported scheme.
    pub fn parse(url: Option<&str>) -> Result<Self> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(StoreChoice::Embedded);
        };
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("postgres" | "postgresql") => Location::parse(url)
                .map(|l| StoreChoice::Postgres(Box::new(l)))
                .map_err(|e| anyhow!("--store / EXTENSOR_STORE_URL: {e}")),
            Some(other) => bail!(
                "--store / EXTENSOR_STORE_URL: unsupported store URL scheme `{other}`; \
                 use postgres://user@host:port/database, or leave it unset for the \
                 embedded store in --data-dir"
            ),
            None => bail!(
                "--store / EXTENSOR_STORE_URL: `{}` is not a URL; use \
                 postgres://user@host:port/database, or leave it unset for the \
                 embedded store in --data-dir",
                url.chars().take(80).collect::<String>()
            ),
        }
    }

    /// How the store is named in messages (no password).
    pub fn describe(&self, data_dir: &Path) -> String {
        match self {
            StoreChoice::Embedded => format!("data dir {}", data_dir.display()),
            StoreChoice::Postgres(l) => {
                format!("store {}, data dir {}", l.shown(), data_dir.display())
            }
        }
    }
}

/// Whether a command may change the store.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Create the store (or migrate its schema) if needed; append.
    Write,
    /// Audit commands: the store must exist and is not changed.
    ReadOnly,
}

/// An open store; [`Opened::close`] lets the embedded store's queued
/// appends finish.
pub struct Opened {
    pub store: Arc<dyn EventStore>,
    /// Plugin bundles kept beside the log (`None`: the data directory's).
    pub bundles: Option<Arc<dyn BundleBlobs>>,
    /// The node registry and tenant leases of a shared store (`None`: the
    /// embedded store, one node).
    pub cluster: Option<Arc<dyn Cluster>>,
    embedded: Option<SqliteStore>,
}

impl Opened {
    pub async fn close(self) {
        if let Some(s) = self.embedded {
            s.close().await;
        }
    }
}

/// Opens the chosen store.
pub async fn open(choice: &StoreChoice, data_dir: &Path, access: Access) -> Result<Opened> {
    match choice {
        StoreChoice::Embedded => {
            let mode = match access {
                Access::Write => OpenMode::CreateIfMissing,
                Access::ReadOnly => OpenMode::ReadOnly,
            };
            let store = SqliteStore::open(SqliteConfig::new(data_dir, mode))?;
            Ok(Opened {
                store: Arc::new(store.clone()),
                bundles: None,
                cluster: None,
                embedded: Some(store),
            })
        }
        StoreChoice::Postgres(location) => {
            let mode = match access {
                Access::Write => PgOpenMode::Migrate,
                Access::ReadOnly => PgOpenMode::RequireCurrent,
            };
            let store = PgStore::open(PgConfig::new(location.as_ref().clone(), mode)).await?;
            Ok(Opened {
                bundles: Some(Arc::new(store.bundles())),
                cluster: Some(Arc::new(store.cluster())),
                store: Arc::new(store),
                embedded: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_or_empty_is_the_embedded_store() {
        assert!(matches!(
            StoreChoice::parse(None),
            Ok(StoreChoice::Embedded)
        ));
        assert!(matches!(
            StoreChoice::parse(Some(" ")),
            Ok(StoreChoice::Embedded)
        ));
    }

    #[test]
    fn other_schemes_are_named() {
        for (url, named) in [
            ("mysql://root@db/x", "`mysql`"),
            ("SQLITE:///tmp/x", "`sqlite`"),
            ("db.example:5432", "not a URL"),
        ] {
            let err = StoreChoice::parse(Some(url)).err().expect(url).to_string();
            assert!(err.contains(named), "{url}: {err}");
        }
    }

    #[test]
    fn postgres_urls_parse_and_hide_the_password() {
        let Ok(StoreChoice::Postgres(l)) =
            StoreChoice::parse(Some("postgresql://app:pw@db:5433/events"))
        else {
            panic!("not postgres");
        };
        assert_eq!(l.shown(), "postgres://app@db:5433/events");
    }
}
