//! The store's tables, created and upgraded by versioned migrations that
//! run at start-up.
//!
//! `schema_migrations` records every applied version. Opening takes a
//! session advisory lock so that nodes starting together migrate once; a
//! schema newer than this build knows is refused (an older binary must not
//! write to a newer layout), and a database holding an `events` table that
//! no migration of ours created is refused rather than modified.

use extensor_core::Error;
use tokio_postgres::Client;

use crate::errors::map_err;
use crate::location::Location;

/// The channel appends notify with their last position.
pub const NOTIFY_CHANNEL: &str = "extensor_events";
/// `pg_advisory_lock` key held while migrating ("extensor" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6578_7465_6e73_6f72;

struct Migration {
    version: i32,
    description: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Append only: an applied migration never
/// changes.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "events, snapshots and the append lock",
        sql: "
CREATE TABLE events (
    position       bigint  PRIMARY KEY,
    stream         text    NOT NULL,
    revision       bigint  NOT NULL,
    event_id       text    NOT NULL UNIQUE,
    event_type     text    NOT NULL,
    schema_version bigint  NOT NULL,
    recorded_at    bigint  NOT NULL,
    tenant         text,
    principal      text    NOT NULL,
    correlation_id text    NOT NULL,
    causation_id   text,
    payload        text    NOT NULL,
    prev_hash      bytea   NOT NULL,
    hash           bytea   NOT NULL,
    UNIQUE (stream, revision)
);
CREATE INDEX events_by_tenant ON events (tenant, position);
CREATE TABLE snapshots (
    stream           text    NOT NULL,
    aggregate        text    NOT NULL,
    snapshot_version bigint  NOT NULL,
    revision         bigint  NOT NULL,
    position         bigint  NOT NULL,
    state            text    NOT NULL,
    PRIMARY KEY (stream, aggregate)
);
-- One row. Every append locks it first (SELECT … FOR UPDATE), so appends
-- commit one at a time in position order: see docs/ARCHITECTURE.md.
CREATE TABLE append_lock (id smallint PRIMARY KEY CHECK (id = 1));
INSERT INTO append_lock VALUES (1);
",
    },
    Migration {
        version: 2,
        description: "plugin bundles beside the log",
        sql: "
-- Content-addressed: a row is written once and never changed.
CREATE TABLE bundles (
    digest    text        PRIMARY KEY,
    bytes     bytea       NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
",
    },
    Migration {
        version: 3,
        description: "ctx.files beside the log",
        sql: "
-- One row per file; `path` is the canonical form the core's FilePath gives.
-- COLLATE \"C\": byte order, so listing matches the data directory's and a
-- directory's files are one index range (`a/` up to `a0`).
CREATE TABLE files (
    tenant       text                 NOT NULL,
    installation text                 NOT NULL,
    path         text COLLATE \"C\" NOT NULL,
    size         bigint               NOT NULL,
    bytes        bytea                NOT NULL,
    updated_at   timestamptz          NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, installation, path)
);
",
    },
    Migration {
        version: 4,
        description: "cluster nodes and tenant leases",
        sql: "
-- Beside the log, not in it: a heartbeat a second per node would be most
-- of the log, and none of it is history anyone audits. Expiry is by the
-- database's clock (now()), never a node's.
CREATE TABLE cluster_nodes (
    id             text        PRIMARY KEY,
    address        text        NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    last_heartbeat timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
-- One row per tenant ever leased; the token only grows.
CREATE TABLE tenant_leases (
    tenant     text        PRIMARY KEY,
    node       text        NOT NULL,
    token      bigint      NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX tenant_leases_by_node ON tenant_leases (node, tenant);
",
    },
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Brings the database's schema up to [`SCHEMA_VERSION`], creating it on an
/// empty database.
pub(crate) async fn migrate(client: &Client, location: &Location) -> Result<(), Error> {
    let err = |e| map_err(location, e);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(err)?;
    let result = migrate_locked(client, location).await;
    // Released with the session anyway; unlock so a pooled session is clean.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    result
}

async fn migrate_locked(client: &Client, location: &Location) -> Result<(), Error> {
    let err = |e| map_err(location, e);
    let current = match applied_version(client, location).await? {
        Some(v) => v,
        None => {
            refuse_foreign_tables(client, location).await?;
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (
                        version     integer     PRIMARY KEY,
                        description text        NOT NULL,
                        applied_at  timestamptz NOT NULL DEFAULT now()
                    )",
                )
                .await
                .map_err(err)?;
            0
        }
    };
    refuse_newer(current, location)?;
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let sql = format!(
            "BEGIN; {} INSERT INTO schema_migrations (version, description) VALUES ({}, '{}'); COMMIT;",
            m.sql, m.version, m.description
        );
        if let Err(e) = client.batch_execute(&sql).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(Error::StoreOpen {
                path: location.path(),
                detail: format!(
                    "schema migration {} ({}) failed: {}",
                    m.version,
                    m.description,
                    crate::errors::describe(&e)
                ),
            });
        }
        tracing::info!(
            store = location.shown(),
            version = m.version,
            "applied schema migration"
        );
    }
    Ok(())
}

/// Checks, without changing anything, that the schema is the one this build
/// knows (read-only commands never migrate).
pub(crate) async fn require_current(client: &Client, location: &Location) -> Result<(), Error> {
    match applied_version(client, location).await? {
        None | Some(0) => Err(Error::StoreOpen {
            path: location.path(),
            detail: "no Extensor event store in this database (start `extensor serve --store URL` once to create it)".into(),
        }),
        Some(v) if v < SCHEMA_VERSION => Err(Error::StoreOpen {
            path: location.path(),
            detail: format!(
                "schema version {v} is older than this build's {SCHEMA_VERSION}; start `extensor serve` of this build once to migrate it"
            ),
        }),
        Some(v) => refuse_newer(v, location),
    }
}

/// The newest applied migration, or `None` without a `schema_migrations`.
async fn applied_version(client: &Client, location: &Location) -> Result<Option<i32>, Error> {
    let err = |e| map_err(location, e);
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .map_err(err)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let version: Option<i32> = client
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .await
        .map_err(err)?
        .get(0);
    Ok(Some(version.unwrap_or(0)))
}

fn refuse_newer(version: i32, location: &Location) -> Result<(), Error> {
    if version > SCHEMA_VERSION {
        return Err(Error::StoreOpen {
            path: location.path(),
            detail: format!(
                "schema version {version} is newer than this build understands ({SCHEMA_VERSION}); run a newer extensor"
            ),
        });
    }
    Ok(())
}

async fn refuse_foreign_tables(client: &Client, location: &Location) -> Result<(), Error> {
    let foreign: bool = client
        .query_one(
            "SELECT to_regclass('events') IS NOT NULL OR to_regclass('snapshots') IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| map_err(location, e))?
        .get(0);
    if foreign {
        return Err(Error::StoreCorrupt {
            path: location.path(),
            detail: "the database has an `events` or `snapshots` table but no Extensor schema_migrations; refusing to touch it".into(),
        });
    }
    Ok(())
}
