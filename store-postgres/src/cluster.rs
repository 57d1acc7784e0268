//! The node registry and tenant leases of several nodes on one database
//! (`cluster_nodes`, `tenant_leases`; migration 4): the PostgreSQL
//! [`Cluster`]. Every expiry is computed and compared with the database's
//! `now()`, so nodes' clocks never decide who owns a tenant.
//!
//! A `PgCluster` has its own sessions ([`CLUSTER_SESSIONS_MAX`]), so a
//! renewal never queues behind the store's reads and appends: a node busy
//! with work must not fence itself for want of a pooled session.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use extensor_core::Error;
use extensor_core::cluster::{Cluster, Lease, NodeRecord, Renewal};
use extensor_core::ids::{NodeId, TenantId};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio_postgres::Row;

use crate::errors::corrupt;
use crate::location::Location;
use crate::pool::{Lease as Session, Pool};

/// Sessions of the registry: one for the node's renewals, one for its
/// rebalancing (taking and releasing leases), so neither waits for the
/// other.
pub const CLUSTER_SESSIONS_MAX: usize = 2;
/// Live nodes a renewal reads: more than any deployment of one store runs,
/// so the answer stays one small row set.
pub const LIVE_NODES_MAX: i64 = 1_024;
/// A node whose registration expired this long ago is forgotten (deleted)
/// when another node joins, so the registry does not grow with restarts.
pub const DEAD_NODE_FORGET_MS: u64 = 60 * 60 * 1000;

/// The registry and leases in one PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct PgCluster {
    pool: Arc<Pool>,
}

impl PgCluster {
    pub(crate) fn new(location: Location) -> Self {
        Self {
            pool: Arc::new(Pool::new(location, CLUSTER_SESSIONS_MAX)),
        }
    }

    /// The session, marked so that a caller giving up mid-call (its
    /// timeout) closes it rather than leaving a reply in flight on it.
    async fn session(&self) -> Result<Session<'_>, Error> {
        let mut s = self.pool.get().await?;
        s.in_transaction = true;
        Ok(s)
    }
}

fn ms(ttl_ms: u64) -> f64 {
    ttl_ms as f64
}

fn ids(tenants: &[TenantId]) -> Vec<&str> {
    tenants.iter().map(TenantId::as_str).collect()
}

fn lease_of(row: &Row, location: &Location) -> Result<Lease, Error> {
    let tenant: String = row.get(0);
    let token: i64 = row.get(1);
    Ok(Lease {
        tenant: tenant
            .parse()
            .map_err(|e| corrupt(location, format!("tenant_leases: {e}")))?,
        token: token.max(0) as u64,
    })
}

fn time(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

fn node_of(row: &Row, location: &Location) -> Result<NodeRecord, Error> {
    let bad = |e: Error| corrupt(location, format!("cluster_nodes: {e}"));
    let id: String = row.get(0);
    let tenants: Vec<String> = row.get(6);
    Ok(NodeRecord {
        id: id.parse().map_err(bad)?,
        address: row.get(1),
        started_at: time(row.get(2)),
        last_heartbeat: time(row.get(3)),
        live: row.get(4),
        tenants_owned: row.get::<_, i64>(5).max(0) as u64,
        tenants: tenants
            .into_iter()
            .map(|t| t.parse().map_err(bad))
            .collect::<Result<_, _>>()?,
    })
}

const UPSERT_NODE: &str = "INSERT INTO cluster_nodes (id, address, expires_at) \
     VALUES ($1, $2, now() + $3::float8 * interval '1 millisecond') \
     ON CONFLICT (id) DO UPDATE SET address = excluded.address, \
     last_heartbeat = now(), expires_at = excluded.expires_at";

impl Cluster for PgCluster {
    fn join<'a>(
        &'a self,
        node: &'a NodeId,
        address: &'a str,
        ttl_ms: u64,
    ) -> BoxFuture<'a, Result<(), Error>> {
        async move {
            let mut s = self.session().await?;
            let forget = ms(DEAD_NODE_FORGET_MS);
            s.execute(
                "DELETE FROM cluster_nodes \
                 WHERE expires_at < now() - $1::float8 * interval '1 millisecond'",
                &[&forget],
            )
            .await?;
            s.execute(UPSERT_NODE, &[&node.as_str(), &address, &ms(ttl_ms)])
                .await?;
            s.in_transaction = false;
            Ok(())
        }
        .boxed()
    }

    fn renew<'a>(&'a self, node: &'a NodeId, ttl_ms: u64) -> BoxFuture<'a, Result<Renewal, Error>> {
        async move {
            let mut s = self.session().await?;
            let location = s.location().clone();
            let ttl = ms(ttl_ms);
            s.execute(
                "UPDATE cluster_nodes SET last_heartbeat = now(), \
                 expires_at = now() + $2::float8 * interval '1 millisecond' WHERE id = $1",
                &[&node.as_str(), &ttl],
            )
            .await?;
            let held = s
                .query(
                    "UPDATE tenant_leases SET expires_at = now() + $2::float8 * interval '1 millisecond' \
                     WHERE node = $1 AND expires_at > now() RETURNING tenant, token",
                    &[&node.as_str(), &ttl],
                )
                .await?;
            let live = s
                .query(
                    "SELECT id FROM cluster_nodes WHERE expires_at > now() ORDER BY id LIMIT $1",
                    &[&LIVE_NODES_MAX],
                )
                .await?;
            s.in_transaction = false;
            let live = live
                .iter()
                .map(|r| {
                    r.get::<_, String>(0)
                        .parse()
                        .map_err(|e| corrupt(&location, format!("cluster_nodes: {e}")))
                })
                .collect::<Result<_, _>>()?;
            let held = held
                .iter()
                .map(|r| lease_of(r, &location))
                .collect::<Result<_, _>>()?;
            Ok(Renewal { live, held })
        }
        .boxed()
    }

    fn acquire<'a>(
        &'a self,
        node: &'a NodeId,
        tenants: &'a [TenantId],
        ttl_ms: u64,
    ) -> BoxFuture<'a, Result<Vec<Lease>, Error>> {
        async move {
            if tenants.is_empty() {
                return Ok(Vec::new());
            }
            let mut s = self.session().await?;
            let location = s.location().clone();
            let rows = s
                .query(
                    "INSERT INTO tenant_leases AS l (tenant, node, token, expires_at) \
                     SELECT t, $1, 1, now() + $3::float8 * interval '1 millisecond' \
                     FROM unnest($2::text[]) AS t \
                     ON CONFLICT (tenant) DO UPDATE SET node = excluded.node, \
                     token = l.token + 1, expires_at = excluded.expires_at \
                     WHERE l.expires_at <= now() RETURNING tenant, token",
                    &[&node.as_str(), &ids(tenants), &ms(ttl_ms)],
                )
                .await?;
            s.in_transaction = false;
            rows.iter().map(|r| lease_of(r, &location)).collect()
        }
        .boxed()
    }

    fn release<'a>(
        &'a self,
        node: &'a NodeId,
        tenants: &'a [TenantId],
    ) -> BoxFuture<'a, Result<(), Error>> {
        async move {
            if tenants.is_empty() {
                return Ok(());
            }
            let mut s = self.session().await?;
            s.execute(
                "UPDATE tenant_leases SET expires_at = now() \
                 WHERE node = $1 AND tenant = ANY($2::text[]) AND expires_at > now()",
                &[&node.as_str(), &ids(tenants)],
            )
            .await?;
            s.in_transaction = false;
            Ok(())
        }
        .boxed()
    }

    fn leave<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, Result<(), Error>> {
        async move {
            let mut s = self.session().await?;
            s.execute(
                "UPDATE tenant_leases SET expires_at = now() \
                 WHERE node = $1 AND expires_at > now()",
                &[&node.as_str()],
            )
            .await?;
            s.execute(
                "UPDATE cluster_nodes SET expires_at = now() WHERE id = $1",
                &[&node.as_str()],
            )
            .await?;
            s.in_transaction = false;
            Ok(())
        }
        .boxed()
    }

    fn nodes(
        &self,
        nodes_max: usize,
        tenants_max: usize,
    ) -> BoxFuture<'_, Result<Vec<NodeRecord>, Error>> {
        async move {
            let mut s = self.session().await?;
            let location = s.location().clone();
            let rows = s
                .query(
                    "SELECT n.id, n.address, \
                     (extract(epoch FROM n.started_at) * 1000)::bigint, \
                     (extract(epoch FROM n.last_heartbeat) * 1000)::bigint, \
                     n.expires_at > now() AS live, \
                     (SELECT count(*) FROM tenant_leases l \
                      WHERE l.node = n.id AND l.expires_at > now()), \
                     ARRAY(SELECT l.tenant FROM tenant_leases l \
                      WHERE l.node = n.id AND l.expires_at > now() ORDER BY l.tenant LIMIT $2) \
                     FROM cluster_nodes n ORDER BY live DESC, n.started_at DESC, n.id LIMIT $1",
                    &[&(nodes_max as i64), &(tenants_max as i64)],
                )
                .await?;
            s.in_transaction = false;
            rows.iter().map(|r| node_of(r, &location)).collect()
        }
        .boxed()
    }
}
