//! Several nodes on one store: the node registry and the tenant leases.
//!
//! Every `extensor serve` sharing a store is a *node* with a fresh
//! [`NodeId`]. It registers in the store ([`Cluster::join`]) and renews its
//! registration and its leases together ([`Cluster::renew`]); the store's
//! own clock decides expiry, never a node's. A tenant's single-owner work
//! (hook dispatch, scheduler, webhook deliveries, outbox) runs only on the
//! node holding the tenant's lease. A lease carries a *token* that grows by
//! one each time the lease changes hands, so log lines and the cluster view
//! tell one ownership from the next; a stale owner is stopped by the
//! per-stream epoch claims its services already make, not by the token.
//!
//! Which node *should* own a tenant is [`owner_of`]: rendezvous hashing over
//! the live nodes, so a node joining or leaving moves only the tenants it
//! gains or loses. The trait is the backend's; the PostgreSQL store has one
//! (tables beside the log). The embedded store is one node and needs none.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::ids::{NodeId, TenantId};

/// One node as the registry shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    pub id: NodeId,
    /// Where its API listens (`host:port`).
    pub address: String,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,
    /// Its registration has not expired by the store's clock.
    pub live: bool,
    /// How many tenant leases it holds (unexpired).
    pub tenants_owned: u64,
    /// The tenants it holds, at most the `tenants_max` asked for, by id.
    pub tenants: Vec<TenantId>,
}

/// One tenant lease a node holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub tenant: TenantId,
    /// Grows by one each time the lease passes to a node (never reset).
    pub token: u64,
}

/// What one renewal found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Renewal {
    /// Every node whose registration is live (this one included), by id.
    pub live: Vec<NodeId>,
    /// The leases this node still holds, each renewed.
    pub held: Vec<Lease>,
}

/// The registry and the leases, kept in a shared store.
pub trait Cluster: Send + Sync {
    /// Registers the node, live for `ttl_ms` from the store's now.
    fn join<'a>(
        &'a self,
        node: &'a NodeId,
        address: &'a str,
        ttl_ms: u64,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Extends the node's registration and every unexpired lease it holds
    /// by `ttl_ms` from the store's now. A lease that expired meanwhile is
    /// not renewed (another node may hold it now) and is not in `held`.
    fn renew<'a>(&'a self, node: &'a NodeId, ttl_ms: u64) -> BoxFuture<'a, Result<Renewal, Error>>;

    /// Takes each lease in `tenants` that is free (never held, released or
    /// expired) for `ttl_ms`; returns those taken.
    fn acquire<'a>(
        &'a self,
        node: &'a NodeId,
        tenants: &'a [TenantId],
        ttl_ms: u64,
    ) -> BoxFuture<'a, Result<Vec<Lease>, Error>>;

    /// Gives up the node's leases of `tenants` now (its work for them has
    /// stopped), so their next owner need not wait for expiry.
    fn release<'a>(
        &'a self,
        node: &'a NodeId,
        tenants: &'a [TenantId],
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// A clean stop: every lease released, the registration expired.
    fn leave<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, Result<(), Error>>;

    /// The nodes registered, live ones first, at most `nodes_max`, each
    /// with at most `tenants_max` of its tenants.
    fn nodes(
        &self,
        nodes_max: usize,
        tenants_max: usize,
    ) -> BoxFuture<'_, Result<Vec<NodeRecord>, Error>>;
}

/// The node among `live` that should own `tenant`: the highest
/// SHA-256(node ‖ 0 ‖ tenant). Every node computes the same answer from
/// the same live set, and a node joining takes only the tenants it now
/// wins, a node leaving gives up only its own. `None` if `live` is empty.
pub fn owner_of<'a>(tenant: &TenantId, live: &'a [NodeId]) -> Option<&'a NodeId> {
    live.iter()
        .max_by(|a, b| weight(a, tenant).cmp(&weight(b, tenant)))
}

fn weight<'n>(node: &'n NodeId, tenant: &TenantId) -> ([u8; 8], &'n str) {
    let mut h = Sha256::new();
    h.update(node.as_str().as_bytes());
    h.update([0]);
    h.update(tenant.as_str().as_bytes());
    let digest = h.finalize();
    let mut top = [0u8; 8];
    top.copy_from_slice(&digest[..8]);
    // Ties (practically impossible) go to the larger id, the same on
    // every node.
    (top, node.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<NodeId> {
        (0..n).map(|_| NodeId::generate()).collect()
    }

    #[test]
    fn every_node_agrees_and_the_order_of_the_live_set_does_not_matter() {
        let live = nodes(3);
        let mut reversed = live.clone();
        reversed.reverse();
        for _ in 0..100 {
            let t = TenantId::generate();
            assert_eq!(owner_of(&t, &live), owner_of(&t, &reversed));
        }
        assert_eq!(owner_of(&TenantId::generate(), &[]), None);
    }

    #[test]
    fn a_node_joining_takes_only_what_it_wins_and_spreads_the_load() {
        let three = nodes(3);
        let tenants: Vec<TenantId> = (0..3_000).map(|_| TenantId::generate()).collect();
        let mut four = three.clone();
        four.push(NodeId::generate());
        let mut moved = 0;
        let mut per_node = std::collections::HashMap::new();
        for t in &tenants {
            let before = owner_of(t, &three).unwrap();
            let after = owner_of(t, &four).unwrap();
            if before != after {
                assert_eq!(after, &four[3], "a tenant moved between two old nodes");
                moved += 1;
            }
            *per_node.entry(after.clone()).or_insert(0) += 1;
        }
        // About a quarter moves to the new node; every node gets a share.
        assert!((500..1_000).contains(&moved), "{moved} moved");
        assert!(
            per_node.values().all(|n| (500..1_000).contains(n)),
            "{per_node:?}"
        );
    }
}
