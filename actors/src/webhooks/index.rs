//! The deliveries index: a SQLite read model of every webhook's deliveries,
//! one file per tenant (`<data_dir>/webhook_index/<tenant>.sqlite`), so a
//! listing filtered by status or event type reads an index instead of
//! walking the deliveries stream backwards (up to
//! [`QUERY_SCAN_EVENTS_MAX`](super::query::QUERY_SCAN_EVENTS_MAX) records
//! for a filter that matches nothing).
//!
//! The index is a projection of the streams and only a cache: it is brought
//! up to date right before each query (the records appended since its last
//! sync, at most [`INDEX_SYNC_RECORDS_MAX`] per query; a query that finds
//! it further behind answers from the stream itself and leaves the rest of
//! the catching up to the following queries), one writer per tenant at a
//! time. Deleting the files loses nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use extensor_core::Error;
use extensor_core::aggregate::DomainEvent;
use extensor_core::event::RecordedEvent;
use extensor_core::ids::{DeliveryId, TenantId};
use extensor_core::store::{EventStore, READ_EVENTS_MAX};
use extensor_core::webhook::deliveries_stream;
use extensor_core::webhook::delivery::{DeliveryEvent, DeliveryStatus};
use extensor_core::webhook::ledger::is_endpoint_record;
use extensor_core::webhook::registry::WebhookName;
use rusqlite::{OptionalExtension, params};

use crate::tenant_locks::TenantLocks;

use super::query::{self, DeliveryQuery, DeliveryView, QUERY_LIMIT_MAX};

/// The directory of the index files, under the data directory.
pub const INDEX_DIR: &str = "webhook_index";

/// Records one query indexes at most before it answers: a webhook with a
/// long unindexed history is caught up over several queries (each
/// answering from the stream meanwhile), never in one expensive request.
pub const INDEX_SYNC_RECORDS_MAX: u64 = 50_000;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS synced (
    webhook TEXT PRIMARY KEY,
    revision INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    webhook TEXT NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    view TEXT NOT NULL,
    PRIMARY KEY (webhook, id)
);
CREATE INDEX IF NOT EXISTS deliveries_by_seq ON deliveries (webhook, seq);
CREATE INDEX IF NOT EXISTS deliveries_by_status ON deliveries (webhook, status, seq);
CREATE INDEX IF NOT EXISTS deliveries_by_type ON deliveries (webhook, event_type, seq);";

fn index_err(e: impl ToString) -> Error {
    Error::InvalidValue {
        what: "webhook deliveries index",
        value: String::new(),
        reason: e.to_string(),
    }
}

/// Creation times as fixed-width RFC 3339, so text order is time order.
fn time_key(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The deliveries indexes of a process.
pub struct DeliveryIndex {
    root: PathBuf,
    /// One syncing writer per tenant file at a time.
    locks: TenantLocks,
}

/// Whether the index can answer: `Empty` when the webhook has no
/// deliveries stream yet, `Behind` when the index is further behind the
/// stream than one query may catch up.
enum Synced {
    Empty,
    Current,
    Behind,
}

impl DeliveryIndex {
    pub fn new(root: PathBuf) -> Arc<DeliveryIndex> {
        Arc::new(DeliveryIndex {
            root,
            locks: TenantLocks::default(),
        })
    }

    fn path(&self, tenant: &TenantId) -> PathBuf {
        self.root.join(format!("{tenant}.sqlite"))
    }

    /// Deliveries of one webhook, newest first, as [`query::deliveries`]
    /// answers them, from the index.
    pub async fn deliveries(
        &self,
        store: &dyn EventStore,
        tenant: &TenantId,
        name: &WebhookName,
        q: &DeliveryQuery,
    ) -> Result<Vec<DeliveryView>, Error> {
        let (path, webhook, q2) = (self.path(tenant), name.to_string(), q.clone());
        let from_index = async move {
            tokio::task::spawn_blocking(move || select(&path, &webhook, &q2))
                .await
                .map_err(index_err)?
        };
        let from_stream = query::deliveries(store, tenant, name, q);
        self.answer(store, tenant, name, Vec::new(), from_index, from_stream)
            .await
    }

    /// One delivery of one webhook, from the index.
    pub async fn delivery(
        &self,
        store: &dyn EventStore,
        tenant: &TenantId,
        name: &WebhookName,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryView>, Error> {
        let from_index = self.select_one(tenant, name, id);
        let from_stream = query::delivery(store, tenant, name, id);
        self.answer(store, tenant, name, None, from_index, from_stream)
            .await
    }

    /// Syncs the index, then answers from it when it is current. The index
    /// is a cache: if it fails (a damaged file, a full disk) or is further
    /// behind than one sync may catch up, the answer comes from the stream,
    /// and a failure is logged. Both answers are lazy futures; only the one
    /// chosen runs.
    async fn answer<T>(
        &self,
        store: &dyn EventStore,
        tenant: &TenantId,
        name: &WebhookName,
        empty: T,
        from_index: impl Future<Output = Result<T, Error>>,
        from_stream: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match self.sync(store, tenant, name).await {
            Ok(Synced::Empty) => return Ok(empty),
            Ok(Synced::Current) => match from_index.await {
                Ok(found) => return Ok(found),
                Err(e) => {
                    tracing::warn!(%tenant, webhook = %name, error = %e, "deliveries index unreadable; reading the stream")
                }
            },
            Ok(Synced::Behind) => {}
            Err(e) => {
                tracing::warn!(%tenant, webhook = %name, error = %e, "deliveries index not synced; reading the stream")
            }
        }
        from_stream.await
    }

    async fn select_one(
        &self,
        tenant: &TenantId,
        name: &WebhookName,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryView>, Error> {
        let (path, name, id) = (self.path(tenant), name.to_string(), id.to_string());
        tokio::task::spawn_blocking(move || {
            let conn = open(&path)?;
            let view: Option<String> = conn
                .query_row(
                    "SELECT view FROM deliveries WHERE webhook = ?1 AND id = ?2",
                    params![name, id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(index_err)?;
            view.map(|v| serde_json::from_str(&v).map_err(index_err))
                .transpose()
        })
        .await
        .map_err(index_err)?
    }

    /// Indexes the records appended since the last sync (at most
    /// [`INDEX_SYNC_RECORDS_MAX`]).
    async fn sync(
        &self,
        store: &dyn EventStore,
        tenant: &TenantId,
        name: &WebhookName,
    ) -> Result<Synced, Error> {
        let stream = deliveries_stream(tenant, name);
        let Some(head) = store.stream_revision(stream.clone()).await? else {
            return Ok(Synced::Empty);
        };
        let lock = self.locks.get(tenant);
        let _one_writer = lock.lock().await;
        std::fs::create_dir_all(&self.root).map_err(index_err)?;
        let (path, webhook) = (self.path(tenant), name.to_string());
        let next = {
            let (path, webhook) = (path.clone(), webhook.clone());
            tokio::task::spawn_blocking(move || next_revision(&path, &webhook))
                .await
                .map_err(index_err)??
        };
        let mut from = next;
        while from <= head {
            if from - next >= INDEX_SYNC_RECORDS_MAX {
                return Ok(Synced::Behind);
            }
            let page = store
                .read_stream(stream.clone(), from, READ_EVENTS_MAX)
                .await?;
            let Some(last) = page.last().map(|r| r.revision) else {
                break;
            };
            let (path, webhook) = (path.clone(), webhook.clone());
            tokio::task::spawn_blocking(move || apply_page(&path, &webhook, &page))
                .await
                .map_err(index_err)??;
            from = last + 1;
        }
        Ok(Synced::Current)
    }
}

fn open(path: &Path) -> Result<rusqlite::Connection, Error> {
    let conn = rusqlite::Connection::open(path).map_err(index_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(2))
        .map_err(index_err)?;
    conn.execute_batch(SCHEMA).map_err(index_err)?;
    Ok(conn)
}

fn next_revision(path: &Path, webhook: &str) -> Result<u64, Error> {
    let conn = open(path)?;
    let rev: Option<i64> = conn
        .query_row(
            "SELECT revision FROM synced WHERE webhook = ?1",
            params![webhook],
            |r| r.get(0),
        )
        .optional()
        .map_err(index_err)?;
    Ok(rev.map_or(0, |r| r as u64 + 1))
}

/// Applies one page of records in one transaction, with the new revision.
fn apply_page(path: &Path, webhook: &str, page: &[RecordedEvent]) -> Result<(), Error> {
    let mut conn = open(path)?;
    let tx = conn.transaction().map_err(index_err)?;
    for rec in page {
        if is_endpoint_record(&rec.event_type) {
            continue;
        }
        let ev = DeliveryEvent::decode(&rec.event_type, rec.schema_version, &rec.payload).map_err(
            |reason| Error::Decode {
                position: rec.position,
                stream: rec.stream.to_string(),
                event_type: rec.event_type.clone(),
                schema_version: rec.schema_version,
                reason,
            },
        )?;
        apply_one(&tx, webhook, rec.revision, ev)?;
    }
    if let Some(last) = page.last() {
        tx.execute(
            "INSERT INTO synced (webhook, revision) VALUES (?1, ?2)
             ON CONFLICT (webhook) DO UPDATE SET revision = excluded.revision",
            params![webhook, last.revision as i64],
        )
        .map_err(index_err)?;
    }
    tx.commit().map_err(index_err)
}

fn apply_one(
    tx: &rusqlite::Transaction<'_>,
    webhook: &str,
    revision: u64,
    ev: DeliveryEvent,
) -> Result<(), Error> {
    let id = ev.delivery_id().to_string();
    if let DeliveryEvent::Created(c) = ev {
        let view = DeliveryView {
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            finished_at: None,
            reason: None,
            created: *c,
        };
        tx.execute(
            "INSERT OR REPLACE INTO deliveries
             (webhook, id, seq, event_type, status, created_at, view)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                webhook,
                id,
                revision as i64,
                view.created.event_type,
                view.status.as_str(),
                time_key(view.created.at),
                serde_json::to_string(&view).map_err(index_err)?
            ],
        )
        .map_err(index_err)?;
        return Ok(());
    }
    let found: Option<String> = tx
        .query_row(
            "SELECT view FROM deliveries WHERE webhook = ?1 AND id = ?2",
            params![webhook, id],
            |r| r.get(0),
        )
        .optional()
        .map_err(index_err)?;
    // A record of a delivery created before the index could see it (the
    // stream's records come in order, so this is a record without one).
    let Some(found) = found else { return Ok(()) };
    let mut view: DeliveryView = serde_json::from_str(&found).map_err(index_err)?;
    let end = match ev {
        DeliveryEvent::Attempted(a) => {
            view.attempts.push(*a);
            None
        }
        DeliveryEvent::Delivered(f) => Some((DeliveryStatus::Delivered, f)),
        DeliveryEvent::Failed(f) => Some((DeliveryStatus::Failed, f)),
        DeliveryEvent::Skipped(f) => Some((DeliveryStatus::Skipped, f)),
        DeliveryEvent::Created(_) => None,
    };
    if let Some((status, f)) = end {
        view.status = status;
        view.finished_at = Some(f.at);
        view.reason = f.reason;
    }
    tx.execute(
        "UPDATE deliveries SET status = ?3, view = ?4 WHERE webhook = ?1 AND id = ?2",
        params![
            webhook,
            id,
            view.status.as_str(),
            serde_json::to_string(&view).map_err(index_err)?
        ],
    )
    .map_err(index_err)?;
    Ok(())
}

/// The matching deliveries, newest first.
fn select(path: &Path, webhook: &str, q: &DeliveryQuery) -> Result<Vec<DeliveryView>, Error> {
    let conn = open(path)?;
    let limit = q.limit.clamp(1, QUERY_LIMIT_MAX) as i64;
    let mut sql = String::from("SELECT view FROM deliveries WHERE webhook = ?1");
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(webhook.to_owned())];
    let mut cond = |clause: &str, v: Box<dyn rusqlite::ToSql>| {
        args.push(v);
        sql.push_str(&format!(" AND {clause} ?{}", args.len()));
    };
    if let Some(s) = q.status {
        cond("status =", Box::new(s.as_str()));
    }
    if let Some(t) = &q.event_type {
        cond("event_type =", Box::new(t.clone()));
    }
    if let Some(t) = q.since {
        cond("created_at >=", Box::new(time_key(t)));
    }
    if let Some(t) = q.until {
        cond("created_at <", Box::new(time_key(t)));
    }
    args.push(Box::new(limit));
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ?{}", args.len()));
    let mut stmt = conn.prepare(&sql).map_err(index_err)?;
    let params: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.as_ref()).collect();
    let rows = stmt
        .query_map(params.as_slice(), |r| r.get::<_, String>(0))
        .map_err(index_err)?;
    let mut out = Vec::new();
    for row in rows {
        let text = row.map_err(index_err)?;
        out.push(serde_json::from_str(&text).map_err(index_err)?);
    }
    Ok(out)
}
