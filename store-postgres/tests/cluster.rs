//! The node registry and tenant leases on PostgreSQL, from two store
//! instances (two processes' worth of sessions) on one database: a lease
//! has one holder at a time, passes on only when released or expired by the
//! database's clock, and its token grows each time it changes hands.

mod support;

use std::time::{Duration, Instant};

use extensor_core::cluster::{Cluster, Lease};
use extensor_core::ids::{NodeId, TenantId};
use support::TestStore;

const TTL_MS: u64 = 60_000;

fn tenants(leases: &[Lease]) -> Vec<TenantId> {
    let mut t: Vec<TenantId> = leases.iter().map(|l| l.tenant.clone()).collect();
    t.sort();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_has_one_holder_and_passes_on_release_or_expiry() {
    let a = TestStore::fresh().await;
    let b = TestStore::open_on(a.db.clone()).await;
    let (ca, cb) = (a.store.cluster(), b.store.cluster());
    let (n1, n2) = (NodeId::generate(), NodeId::generate());
    ca.join(&n1, "127.0.0.1:1", TTL_MS).await.unwrap();
    cb.join(&n2, "127.0.0.1:2", TTL_MS).await.unwrap();
    let (t1, t2) = (TenantId::generate(), TenantId::generate());
    let both = [t1.clone(), t2.clone()];

    let taken = ca.acquire(&n1, &both, TTL_MS).await.unwrap();
    let mut sorted = both.to_vec();
    sorted.sort();
    assert_eq!(tenants(&taken), sorted);
    assert!(taken.iter().all(|l| l.token == 1), "{taken:?}");
    assert!(cb.acquire(&n2, &both, TTL_MS).await.unwrap().is_empty());
    // Taking a lease one already holds takes nothing new.
    assert!(ca.acquire(&n1, &both, TTL_MS).await.unwrap().is_empty());

    let renewal = ca.renew(&n1, TTL_MS).await.unwrap();
    assert_eq!(tenants(&renewal.held), sorted);
    assert!(renewal.live.contains(&n1) && renewal.live.contains(&n2));

    // Released: the other node takes it at once, with the next token.
    ca.release(&n1, std::slice::from_ref(&t1)).await.unwrap();
    let moved = cb.acquire(&n2, &both, TTL_MS).await.unwrap();
    assert_eq!(
        moved,
        vec![Lease {
            tenant: t1.clone(),
            token: 2
        }]
    );
    assert_eq!(
        tenants(&ca.renew(&n1, TTL_MS).await.unwrap().held),
        vec![t2.clone()]
    );

    // Expired by the database's clock (set back with SQL, as time passing
    // would): not renewed for its old holder, taken by the other.
    let psql = a.psql().await;
    psql.execute(
        "UPDATE tenant_leases SET expires_at = now() - interval '1 second' WHERE tenant = $1",
        &[&t2.as_str()],
    )
    .await
    .unwrap();
    assert!(ca.renew(&n1, TTL_MS).await.unwrap().held.is_empty());
    let expired = cb.acquire(&n2, &both, TTL_MS).await.unwrap();
    assert_eq!(
        expired,
        vec![Lease {
            tenant: t2,
            token: 2
        }]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lease_is_free_only_once_its_ttl_has_passed() {
    let a = TestStore::fresh().await;
    let b = TestStore::open_on(a.db.clone()).await;
    let (ca, cb) = (a.store.cluster(), b.store.cluster());
    let (n1, n2) = (NodeId::generate(), NodeId::generate());
    ca.join(&n1, "127.0.0.1:1", TTL_MS).await.unwrap();
    cb.join(&n2, "127.0.0.1:2", TTL_MS).await.unwrap();
    let t = [TenantId::generate()];
    let ttl_ms = 1_500;
    let taken_at = Instant::now();
    assert_eq!(ca.acquire(&n1, &t, ttl_ms).await.unwrap().len(), 1);
    assert!(cb.acquire(&n2, &t, TTL_MS).await.unwrap().is_empty());
    // The positive marker: the other node gets it, after the TTL.
    let deadline = taken_at + Duration::from_secs(30);
    let lease = loop {
        let got = cb.acquire(&n2, &t, TTL_MS).await.unwrap();
        if let Some(l) = got.into_iter().next() {
            break l;
        }
        assert!(Instant::now() < deadline, "the lease never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(taken_at.elapsed() >= Duration::from_millis(ttl_ms));
    assert_eq!(lease.token, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_lists_nodes_with_their_tenants_and_a_leaving_node_frees_them() {
    let a = TestStore::fresh().await;
    let b = TestStore::open_on(a.db.clone()).await;
    let (ca, cb) = (a.store.cluster(), b.store.cluster());
    let (n1, n2) = (NodeId::generate(), NodeId::generate());
    ca.join(&n1, "127.0.0.1:1", TTL_MS).await.unwrap();
    cb.join(&n2, "127.0.0.1:2", TTL_MS).await.unwrap();
    let owned: Vec<TenantId> = (0..5).map(|_| TenantId::generate()).collect();
    ca.acquire(&n1, &owned, TTL_MS).await.unwrap();

    let nodes = cb.nodes(10, 3).await.unwrap();
    assert_eq!(nodes.len(), 2);
    let first = nodes.iter().find(|n| n.id == n1).expect("n1 listed");
    assert!(first.live && first.address == "127.0.0.1:1");
    assert_eq!(first.tenants_owned, 5);
    assert_eq!(first.tenants.len(), 3, "listed up to the bound");
    assert!(first.last_heartbeat >= first.started_at);
    assert_eq!(cb.nodes(1, 0).await.unwrap().len(), 1, "nodes bounded too");

    ca.leave(&n1).await.unwrap();
    let nodes = cb.nodes(10, 10).await.unwrap();
    let gone = nodes.iter().find(|n| n.id == n1).expect("n1 still listed");
    assert!(!gone.live && gone.tenants_owned == 0, "{gone:?}");
    assert_eq!(nodes[0].id, n2, "live nodes first");
    assert_eq!(cb.acquire(&n2, &owned, TTL_MS).await.unwrap().len(), 5);
    assert!(!cb.renew(&n2, TTL_MS).await.unwrap().live.contains(&n1));
}
