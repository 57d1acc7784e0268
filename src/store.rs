//! `--store URL` / `EXTENSOR_STORE_URL`: which event store every command
//! opens. Unset (or empty): the embedded SQLite store in `--data-dir`;
//! `postgres://…` (or `postgresql://…`): the shared PostgreSQL store, with
//! plugin bundles and `ctx.files` beside the log; `kurrentdb://…` or
//! `esdb://…` (the KurrentDB client's schemes): the KurrentDB store, in a
//! build with the `kurrentdb` feature (bundles and files stay in the data
//! directory).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use extensor_core::bundles::BundleBlobs;
use extensor_core::cluster::Cluster;
use extensor_core::files::FileBackend;
use extensor_core::store::EventStore;
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_store_postgres::{Location, PgConfig, PgOpenMode, PgStore};

/// The backend a `--store` value names.
pub enum StoreChoice {
    Embedded,
    /// Boxed: a parsed URL is large and the embedded choice is empty.
    Postgres(Box<Location>),
    /// The KurrentDB connection string.
    #[cfg(feature = "kurrentdb")]
    Kurrent(String),
}

/// The schemes the KurrentDB client takes (each also with `+discover`).
const KURRENTDB_SCHEMES: &[&str] = &["kurrentdb", "kurrent", "kdb", "esdb"];

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
            Some(s) if KURRENTDB_SCHEMES.contains(&s.trim_end_matches("+discover")) => {
                Self::kurrent(url)
            }
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

    #[cfg(feature = "kurrentdb")]
    fn kurrent(url: &str) -> Result<Self> {
        Ok(StoreChoice::Kurrent(url.to_owned()))
    }

    #[cfg(not(feature = "kurrentdb"))]
    fn kurrent(_url: &str) -> Result<Self> {
        bail!(
            "--store / EXTENSOR_STORE_URL: this extensor was built without the KurrentDB \
             backend; build it with `cargo build --release --features kurrentdb`, or use \
             postgres://… or the embedded store"
        )
    }

    /// How the store is named in messages (no password).
    pub fn describe(&self, data_dir: &Path) -> String {
        match self {
            StoreChoice::Embedded => format!("data dir {}", data_dir.display()),
            StoreChoice::Postgres(l) => {
                format!("store {}, data dir {}", l.shown(), data_dir.display())
            }
            #[cfg(feature = "kurrentdb")]
            StoreChoice::Kurrent(url) => format!(
                "store {}, data dir {}",
                extensor_store_kurrentdb::Location::new(url).shown(),
                data_dir.display()
            ),
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

/// What a shared store keeps beside the log, so that any node can serve
/// any installation.
pub struct Shared {
    pub bundles: Arc<dyn BundleBlobs>,
    /// `ctx.files`.
    pub files: Arc<dyn FileBackend>,
    /// The node registry and tenant leases, so several nodes divide the
    /// tenants' single-owner work.
    pub cluster: Arc<dyn Cluster>,
}

/// An open store; [`Opened::close`] lets the embedded store's queued
/// appends finish.
pub struct Opened {
    pub store: Arc<dyn EventStore>,
    /// `None`: bundles and files live in the data directory.
    pub shared: Option<Shared>,
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
                shared: None,
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
                shared: Some(Shared {
                    bundles: Arc::new(store.bundles()),
                    files: Arc::new(store.files()),
                    cluster: Arc::new(store.cluster()),
                }),
                store: Arc::new(store),
                embedded: None,
            })
        }
        #[cfg(feature = "kurrentdb")]
        StoreChoice::Kurrent(url) => {
            // The server's own access control decides what may be
            // written; read-only commands simply append nothing.
            let config = extensor_store_kurrentdb::KurrentConfig::new(url.clone());
            let store = extensor_store_kurrentdb::KurrentStore::open(config).await?;
            Ok(Opened {
                store: Arc::new(store),
                shared: None,
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

    /// Without the feature, a KurrentDB URL is refused naming the feature;
    /// with it, every scheme of the client selects the backend.
    #[test]
    fn kurrentdb_urls_need_the_feature() {
        for url in [
            "kurrentdb://db:2113?tls=false",
            "esdb://admin:pw@db:2113",
            "ESDB+discover://a,b,c:2113",
            "kdb://db",
        ] {
            let parsed = StoreChoice::parse(Some(url));
            #[cfg(not(feature = "kurrentdb"))]
            {
                let err = parsed.err().expect(url).to_string();
                assert!(err.contains("--features kurrentdb"), "{url}: {err}");
            }
            #[cfg(feature = "kurrentdb")]
            assert!(matches!(parsed, Ok(StoreChoice::Kurrent(_))), "{url}");
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
