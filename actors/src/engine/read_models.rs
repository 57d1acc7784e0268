//! `ctx.db.query`'s read models: each tenant's business events projected
//! into `<data_dir>/read_models/<tenant>.sqlite`, table
//! `events(position, revision, id, type, time, data)` (`data` is the JSON
//! payload; query it with `json_extract(data, '$.field')`).
//!
//! The projection is brought up to date right before each query (so a
//! plugin reads what was published before it ran), a bounded number of
//! events per query, one writer per tenant at a time. The query itself runs
//! on a read-only connection through `SqliteReadModels` (authorizer, time and
//! row caps).

use std::path::PathBuf;
use std::sync::{Arc, Weak};

use extensor_core::event::{RecordedEvent, StreamId};
use extensor_core::ids::TenantId;
use extensor_core::store::READ_EVENTS_MAX;
use extensor_js::JsError;
use extensor_js::host::db::SqliteReadModels;
use extensor_js::host::{DbReader, InstallationScope};
use futures::future::BoxFuture;
use serde_json::Value;

use super::Inner;

/// Events projected per query at most; a backlog larger than this is worked
/// off over the following queries instead of stalling one.
pub const READ_MODEL_SYNC_EVENTS_MAX: usize = 50_000;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    revision INTEGER NOT NULL UNIQUE,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    time TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_type ON events (type, position);";

pub(crate) struct EngineDb {
    pub engine: Weak<Inner>,
    pub root: PathBuf,
    pub reader: SqliteReadModels,
    /// One projector per tenant at a time (shared by every installation).
    pub locks: ProjectorLocks,
}

pub(crate) type ProjectorLocks = Arc<crate::tenant_locks::TenantLocks>;

fn host_err(message: impl ToString) -> JsError {
    JsError::Host {
        op: "db",
        message: message.to_string(),
    }
}

impl EngineDb {
    /// Projects the tenant's events not yet in its read-model file.
    async fn sync(&self, tenant: &TenantId, path: PathBuf) -> Result<(), JsError> {
        let inner = self
            .engine
            .upgrade()
            .ok_or_else(|| host_err("engine stopped"))?;
        let lock = self.locks.get(tenant);
        let _one_writer = lock.lock().await;
        std::fs::create_dir_all(&self.root).map_err(host_err)?;
        let p = path.clone();
        let mut next = tokio::task::spawn_blocking(move || next_revision(&p))
            .await
            .map_err(host_err)??;
        let stream = StreamId::business_events(tenant);
        let mut projected = 0;
        while projected < READ_MODEL_SYNC_EVENTS_MAX {
            let page = inner
                .store
                .read_stream(stream.clone(), next, READ_EVENTS_MAX)
                .await
                .map_err(host_err)?;
            let Some(last) = page.last() else { break };
            next = last.revision + 1;
            projected += page.len();
            let full = page.len() == READ_EVENTS_MAX;
            let p = path.clone();
            tokio::task::spawn_blocking(move || insert(&p, &page))
                .await
                .map_err(host_err)??;
            if !full {
                break;
            }
        }
        Ok(())
    }
}

fn open(path: &std::path::Path) -> Result<rusqlite::Connection, JsError> {
    let conn = rusqlite::Connection::open(path).map_err(host_err)?;
    // Another process's projector may hold the file for a moment.
    conn.busy_timeout(std::time::Duration::from_secs(2))
        .map_err(host_err)?;
    conn.execute_batch(SCHEMA).map_err(host_err)?;
    Ok(conn)
}

fn next_revision(path: &std::path::Path) -> Result<u64, JsError> {
    let conn = open(path)?;
    let max: Option<i64> = conn
        .query_row("SELECT max(revision) FROM events", [], |r| r.get(0))
        .map_err(host_err)?;
    Ok(max.map_or(0, |m| m as u64 + 1))
}

fn insert(path: &std::path::Path, events: &[RecordedEvent]) -> Result<(), JsError> {
    let mut conn = open(path)?;
    let tx = conn.transaction().map_err(host_err)?;
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO events (position, revision, id, type, time, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(host_err)?;
        for ev in events {
            stmt.execute(rusqlite::params![
                ev.position as i64,
                ev.revision as i64,
                ev.event_id.as_str(),
                ev.event_type,
                ev.recorded_at.to_rfc3339(),
                ev.payload.get(),
            ])
            .map_err(host_err)?;
        }
    }
    tx.commit().map_err(host_err)
}

impl DbReader for EngineDb {
    fn query<'a>(
        &'a self,
        scope: &'a InstallationScope,
        sql: String,
        params: Vec<Value>,
    ) -> BoxFuture<'a, Result<Vec<Value>, JsError>> {
        Box::pin(async move {
            let tenant: TenantId = scope.tenant_id.parse().map_err(host_err)?;
            let path = self.reader.path_for(scope)?;
            self.sync(&tenant, path).await?;
            self.reader.query(scope, sql, params).await
        })
    }
}
