//! One node of several on a shared store: its registration, heartbeat and
//! tenant leases ([`ClusterNode`]).
//!
//! Every [`HEARTBEAT_INTERVAL_MS`] the node renews its registration and its
//! leases in one call ([`Cluster::renew`]), reads the live nodes, and
//! rebalances: the tenants it should own ([`owner_of`], rendezvous over the
//! live nodes) and does not hold it tries to take; those it holds and
//! should not (a node joined) it stops, then releases; a lease that expired
//! under it (it renewed too late) it stops at once. The lease only decides
//! who *starts* a tenant's single-owner services: each of them claims its
//! own streams with an epoch as it starts, and that claim is what keeps a
//! stale owner from running or recording anything (docs/ARCHITECTURE.md,
//! "Several nodes").
//!
//! **Self-fencing.** The store's lease lasts `lease_ttl_ms` from the
//! store's now at the renewal, which is no earlier than when the node sent
//! it. A node that has not renewed successfully for
//! `lease_ttl_ms - fence_margin` since the last renewal it *sent* fences
//! itself (`Engine::fence`): it stops every tenant's owned work and the API
//! answers 503 `node_fenced`, with half the TTL left before any other node
//! can take its leases. It unfences on its next successful renewal and takes
//! leases again like a node that just joined.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use extensor_core::cluster::{Cluster, NodeRecord, Renewal, owner_of};
use extensor_core::ids::{NodeId, TenantId};
use futures::StreamExt;
use tokio::sync::watch;

use crate::engine::{Engine, RECOVERY_TENANTS_CONCURRENT};

/// How often a node renews its registration and leases, and rebalances.
pub const HEARTBEAT_INTERVAL_MS: u64 = 1_000;
/// How long a lease (and a registration) lasts after its last renewal,
/// by the store's clock, unless set otherwise: a node killed with
/// `kill -9` has its tenants taken over after at most this plus one
/// heartbeat (and the services' start).
pub const LEASE_TTL_MS_DEFAULT: u64 = 6_000;
/// The shortest lease the node accepts: three heartbeats, so one slow
/// renewal does not fence it.
pub const LEASE_TTL_MS_MIN: u64 = 3 * HEARTBEAT_INTERVAL_MS;
/// The longest: the takeover bound the issue allows.
pub const LEASE_TTL_MS_MAX: u64 = 60_000;
/// Nodes `GET /api/ops/cluster` and `extensor cluster status` list.
pub const NODES_LISTED_MAX: usize = 256;
/// Tenants listed per node there (the count is always exact).
pub const TENANTS_LISTED_PER_NODE_MAX: usize = 1_000;
/// The longest the balancer waits on one registry call (take, release,
/// register): a store that stops answering must not hold it forever, or
/// it could not rebalance once the store is back.
pub const CLUSTER_CALL_TIMEOUT_MS: u64 = 5_000;
/// Leases one heartbeat tries to take: a node joining a store of 10,000
/// tenants takes its share over a few heartbeats, in bounded queries.
pub const ACQUIRE_TENANTS_PER_HEARTBEAT_MAX: usize = 2_000;

/// The node's lease settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseSettings {
    pub ttl_ms: u64,
    pub heartbeat_ms: u64,
}

impl LeaseSettings {
    /// A lease of `ttl_ms`, refused outside
    /// [`LEASE_TTL_MS_MIN`]..=[`LEASE_TTL_MS_MAX`].
    pub fn new(ttl_ms: u64) -> Result<Self, String> {
        if !(LEASE_TTL_MS_MIN..=LEASE_TTL_MS_MAX).contains(&ttl_ms) {
            return Err(format!(
                "lease TTL {ttl_ms} ms: must be between {LEASE_TTL_MS_MIN} and {LEASE_TTL_MS_MAX} ms"
            ));
        }
        Ok(Self {
            ttl_ms,
            heartbeat_ms: HEARTBEAT_INTERVAL_MS,
        })
    }

    /// How long without a successful renewal before the node fences
    /// itself: half the TTL, leaving the other half to stop its work
    /// before any other node can take a lease.
    pub fn fence_after(&self) -> Duration {
        Duration::from_millis(self.ttl_ms / 2)
    }
}

impl Default for LeaseSettings {
    fn default() -> Self {
        Self {
            ttl_ms: LEASE_TTL_MS_DEFAULT,
            heartbeat_ms: HEARTBEAT_INTERVAL_MS,
        }
    }
}

/// The tenants a node may own: every tenant of the store, as the caller
/// (the API's tenant directory) knows them now.
pub type TenantList = Arc<dyn Fn() -> Vec<TenantId> + Send + Sync>;

/// What one node knows of itself, for the cluster view.
#[derive(Clone, Debug)]
pub struct NodeSelf {
    pub id: NodeId,
    pub address: String,
    pub started_at: DateTime<Utc>,
}

/// The running node: its heartbeat and balancer tasks, aborted when
/// dropped.
pub struct ClusterNode {
    me: NodeSelf,
    cluster: Arc<dyn Cluster>,
    engine: Engine,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        for t in self.take_tasks() {
            t.abort();
        }
    }
}

/// What the heartbeat hands the balancer.
#[derive(Clone)]
enum Beat {
    /// Nothing yet.
    Starting,
    /// A renewal that succeeded, and when it was sent.
    Renewed(Renewal, Instant),
    /// The node fenced itself: these tenants' work must stop.
    Fenced(Vec<TenantId>),
}

impl ClusterNode {
    /// Registers the node and starts its heartbeat and balancer. The engine
    /// must have been started with `Ownership::leased()`.
    pub async fn join(
        cluster: Arc<dyn Cluster>,
        engine: Engine,
        address: String,
        settings: LeaseSettings,
        tenants: TenantList,
    ) -> Result<Self, extensor_core::Error> {
        let me = NodeSelf {
            id: NodeId::generate(),
            address,
            started_at: Utc::now(),
        };
        cluster.join(&me.id, &me.address, settings.ttl_ms).await?;
        tracing::info!(node = %me.id, address = %me.address, lease_ttl_ms = settings.ttl_ms, "node joined the cluster");
        let (beats, beat) = watch::channel(Beat::Starting);
        let heart = Heart {
            me: me.clone(),
            cluster: cluster.clone(),
            engine: engine.clone(),
            settings,
            last_sent_ok: Instant::now(),
            beats,
        };
        let balancer = Balancer {
            me: me.clone(),
            cluster: cluster.clone(),
            engine: engine.clone(),
            settings,
            tenants,
            held: BTreeMap::new(),
        };
        // Two tasks: renewing never waits for a rebalance (stopping a
        // tenant's services can take seconds), or a busy node would miss
        // its own renewals and fence itself.
        let tasks = vec![tokio::spawn(heart.beat()), tokio::spawn(balancer.run(beat))];
        Ok(Self {
            me,
            cluster,
            engine,
            tasks: std::sync::Mutex::new(tasks),
        })
    }

    fn take_tasks(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *tasks)
    }

    pub fn me(&self) -> &NodeSelf {
        &self.me
    }

    pub fn cluster(&self) -> &Arc<dyn Cluster> {
        &self.cluster
    }

    /// A clean stop: heartbeat and balancer end, every owned tenant's work
    /// stops, then the leases are released and the registration expired,
    /// so the other nodes take over at their next heartbeat, not after the
    /// TTL.
    pub async fn leave(&self) {
        for t in self.take_tasks() {
            t.abort();
            let _ = t.await;
        }
        let owned = self.engine.fence();
        stop_all(&self.engine, owned).await;
        if let Err(e) = self.cluster.leave(&self.me.id).await {
            tracing::warn!(node = %self.me.id, error = %e, "leases not released; they expire");
        }
        tracing::info!(node = %self.me.id, "node left the cluster");
    }
}

/// The cluster as the API shows it.
pub async fn view(cluster: &dyn Cluster) -> Result<Vec<NodeRecord>, extensor_core::Error> {
    cluster
        .nodes(NODES_LISTED_MAX, TENANTS_LISTED_PER_NODE_MAX)
        .await
}

/// A registry call within [`CLUSTER_CALL_TIMEOUT_MS`].
async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, extensor_core::Error>>,
) -> Result<T, extensor_core::Error> {
    let limit = Duration::from_millis(CLUSTER_CALL_TIMEOUT_MS);
    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
        Err(extensor_core::Error::StoreIo {
            path: "cluster registry".into(),
            detail: format!("no answer within {CLUSTER_CALL_TIMEOUT_MS} ms"),
        })
    })
}

async fn stop_all(engine: &Engine, tenants: Vec<TenantId>) {
    futures::stream::iter(tenants)
        .for_each_concurrent(RECOVERY_TENANTS_CONCURRENT, |t| async move {
            if let Err(e) = engine.stop_leased(&t).await {
                tracing::warn!(tenant = %t, error = %e, "owned work not stopped");
            }
        })
        .await;
}

/// The heartbeat: renews, and fences the node when renewals stop.
struct Heart {
    me: NodeSelf,
    cluster: Arc<dyn Cluster>,
    engine: Engine,
    settings: LeaseSettings,
    /// When the last renewal that succeeded was sent.
    last_sent_ok: Instant,
    beats: watch::Sender<Beat>,
}

impl Heart {
    async fn beat(mut self) {
        let period = Duration::from_millis(self.settings.heartbeat_ms);
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let sent = Instant::now();
            let renewed = tokio::time::timeout(
                period,
                self.cluster.renew(&self.me.id, self.settings.ttl_ms),
            )
            .await;
            match renewed {
                Ok(Ok(renewal)) => {
                    self.last_sent_ok = sent;
                    if self.engine.ownership().fenced() {
                        tracing::warn!(node = %self.me.id, "store reachable again; node unfenced");
                        self.engine.unfence();
                    }
                    let _ = self.beats.send(Beat::Renewed(renewal, sent));
                }
                Ok(Err(e)) => self.missed(&e.to_string()),
                Err(_) => self.missed("no answer within the heartbeat interval"),
            }
        }
    }

    /// A renewal failed: fence once the leases may be close to expiring.
    fn missed(&mut self, why: &str) {
        let fenced = self.engine.ownership().fenced();
        tracing::warn!(node = %self.me.id, error = why, fenced, "lease renewal failed");
        if fenced || self.last_sent_ok.elapsed() < self.settings.fence_after() {
            return;
        }
        tracing::error!(
            node = %self.me.id,
            since_ms = self.last_sent_ok.elapsed().as_millis() as u64,
            "no lease renewal in time: node fenced, its tenants' work stops"
        );
        // Nothing owned starts from here on; the balancer stops what runs.
        let owned = self.engine.fence();
        let _ = self.beats.send(Beat::Fenced(owned));
    }
}

/// The balancer: takes, starts, stops and releases leases after each beat.
struct Balancer {
    me: NodeSelf,
    cluster: Arc<dyn Cluster>,
    engine: Engine,
    settings: LeaseSettings,
    tenants: TenantList,
    /// Leases this node holds, with when it took each (a renewal sent
    /// before that cannot have seen it).
    held: BTreeMap<TenantId, Instant>,
}

impl Balancer {
    async fn run(mut self, mut beat: watch::Receiver<Beat>) {
        while beat.changed().await.is_ok() {
            let latest = beat.borrow_and_update().clone();
            match latest {
                Beat::Starting => {}
                Beat::Renewed(renewal, sent) => self.rebalance(renewal, sent).await,
                Beat::Fenced(owned) => {
                    // Held or not, nothing of theirs runs here now.
                    let mut stop: BTreeSet<TenantId> =
                        std::mem::take(&mut self.held).into_keys().collect();
                    stop.extend(owned);
                    stop_all(&self.engine, stop.into_iter().collect()).await;
                }
            }
        }
    }

    async fn rebalance(&mut self, renewal: Renewal, sent: Instant) {
        if !renewal.live.contains(&self.me.id) {
            // Our registration expired (or was forgotten): register again.
            let joined = bounded(self.cluster.join(
                &self.me.id,
                &self.me.address,
                self.settings.ttl_ms,
            ))
            .await;
            if let Err(e) = joined {
                tracing::warn!(node = %self.me.id, error = %e, "registration failed");
            }
            return;
        }
        let renewed: HashSet<&TenantId> = renewal.held.iter().map(|l| &l.tenant).collect();
        // Leases the store no longer gives us (they expired under us):
        // stop their work at once.
        let lost: Vec<TenantId> = self
            .held
            .iter()
            .filter(|(t, taken)| **taken < sent && !renewed.contains(t))
            .map(|(t, _)| t.clone())
            .collect();
        for t in &lost {
            tracing::warn!(node = %self.me.id, tenant = %t, "lease expired under this node");
            self.held.remove(t);
        }
        self.disown_all(lost).await;
        for lease in &renewal.held {
            self.held.entry(lease.tenant.clone()).or_insert(sent);
        }
        let universe = (self.tenants)();
        let mine: HashSet<&TenantId> = universe
            .iter()
            .filter(|t| owner_of(t, &renewal.live) == Some(&self.me.id))
            .collect();
        self.give_up(&mine).await;
        self.take(&mine).await;
    }

    /// Leases held that another live node should have: stop, then release.
    async fn give_up(&mut self, mine: &HashSet<&TenantId>) {
        let surplus: Vec<TenantId> = self
            .held
            .keys()
            .filter(|t| !mine.contains(t))
            .cloned()
            .collect();
        if surplus.is_empty() {
            return;
        }
        self.disown_all(surplus.clone()).await;
        for t in &surplus {
            self.held.remove(t);
        }
        match bounded(self.cluster.release(&self.me.id, &surplus)).await {
            Ok(()) => {
                tracing::info!(node = %self.me.id, tenants = surplus.len(), "leases released to other nodes")
            }
            // Still held in the store until they expire; the work stopped.
            Err(e) => tracing::warn!(node = %self.me.id, error = %e, "leases not released"),
        }
    }

    /// Tenants this node should own: take the free leases, start the work
    /// of every lease held and not yet owned.
    async fn take(&mut self, mine: &HashSet<&TenantId>) {
        let wanted: Vec<TenantId> = mine
            .iter()
            .filter(|t| !self.held.contains_key(**t))
            .take(ACQUIRE_TENANTS_PER_HEARTBEAT_MAX)
            .map(|t| (*t).clone())
            .collect();
        let taken_at = Instant::now();
        let acquired = self
            .cluster
            .acquire(&self.me.id, &wanted, self.settings.ttl_ms);
        match bounded(acquired).await {
            Ok(taken) => {
                for lease in taken {
                    tracing::info!(node = %self.me.id, tenant = %lease.tenant, token = lease.token, "lease taken");
                    self.held.insert(lease.tenant, taken_at);
                }
            }
            Err(e) => tracing::warn!(node = %self.me.id, error = %e, "leases not taken"),
        }
        if self.engine.ownership().fenced() {
            return;
        }
        let owned: HashSet<TenantId> = self.engine.ownership().owned().into_iter().collect();
        let start: Vec<TenantId> = self
            .held
            .keys()
            .filter(|t| !owned.contains(*t))
            .cloned()
            .collect();
        let engine = &self.engine;
        futures::stream::iter(start)
            .for_each_concurrent(RECOVERY_TENANTS_CONCURRENT, |t| async move {
                if let Err(e) = engine.own(&t).await {
                    tracing::warn!(tenant = %t, error = %e, "owned work not started");
                }
            })
            .await;
    }

    async fn disown_all(&self, tenants: Vec<TenantId>) {
        let engine = &self.engine;
        futures::stream::iter(tenants)
            .for_each_concurrent(RECOVERY_TENANTS_CONCURRENT, |t| async move {
                if let Err(e) = engine.disown(&t).await {
                    tracing::warn!(tenant = %t, error = %e, "owned work not stopped");
                }
            })
            .await;
    }
}
