//! Plugin route traffic counted in memory and flushed as `route.accessed`
//! records (`extensor_core::route_access`), one per route and interval.
//!
//! The request path pays one counter update: a shared lock on one of
//! [`SHARDS`] maps (chosen by tenant) and two or three relaxed atomic
//! adds on the route's own [`RouteCell`]; nothing is allocated unless the
//! route is new to the process. Each tenant with traffic has a flusher, a
//! tenant service child (`/tenants/<t>/routes`, under the same supervision
//! and restart policy as the others): every flush interval, and once more
//! when it stops, it takes the counts and appends one record per route
//! with a count in one append. If the append fails the counts are put
//! back, so they go out with the next flush; the counters live beside the
//! actor (the engine owns them), so a crashed flusher loses nothing
//! either. A graceful shutdown stops the flushers after the last request
//! finished, so every access is in the log; a `kill -9` loses what was
//! counted since the last flush (at most one interval).
//!
//! Memory is bounded per tenant: at most [`ROUTES_PER_TENANT_MAX`] routes
//! and [`TENANT_ROUTE_BYTES_MAX`] bytes, and [`ROUTE_BYTES_MAX`] for the
//! process. A route past a cap is counted in the tenant's overflow record
//! (`route` = `*`), so no access is dropped from the counts; a route with
//! no traffic in an interval leaves memory at the flush.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use extensor_core::event::{EventMeta, NewEvent, Principal};
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::route_access::{
    self as records, LATENCY_BUCKETS, OVERFLOW_ROUTE, ROUTE_ACCESSED,
    ROUTE_ACCESSED_SCHEMA_VERSION, RouteAccessed,
};
use extensor_core::store::{APPEND_EVENTS_MAX, EventStore, ExpectedRevision};
use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use tokio::task::JoinHandle;

use crate::error::Error;

/// The flusher's name in the tree: `/tenants/<t>/routes`.
pub const SERVICE_NAME: &str = "routes";
/// How often counts are written (`EXTENSOR_ROUTE_ACCESS_FLUSH_SECS`): one
/// record per active route per minute keeps the log small at any traffic.
pub const FLUSH_MS_DEFAULT: u64 = 60_000;
/// Lock shards: tenants spread over this many maps, so a flush (which
/// takes its shard exclusively for a moment) holds up few others.
pub const SHARDS: usize = 16;
/// Distinct routes counted per tenant; more go to its overflow record.
pub const ROUTES_PER_TENANT_MAX: usize = 256;
/// Bytes one tenant's route counters may hold (cells and names).
pub const TENANT_ROUTE_BYTES_MAX: usize = 512 * 1024;
/// Bytes all tenants' route counters may hold together.
pub const ROUTE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// One route's counts since the last flush.
pub struct RouteCell {
    count: AtomicU64,
    errors: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS],
}

impl Default for RouteCell {
    fn default() -> Self {
        RouteCell {
            count: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Counts taken out of a cell by a flush.
#[derive(Clone, Debug)]
pub struct Taken {
    pub count: u64,
    pub errors: u64,
    pub buckets: Vec<u64>,
}

impl RouteCell {
    fn record(&self, failed: Failed, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.buckets[records::bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        if failed == Failed::Yes {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes the counts (callers hold the shard exclusively, so no update
    /// falls between the swaps).
    fn take(&self) -> Taken {
        Taken {
            count: self.count.swap(0, Ordering::Relaxed),
            errors: self.errors.swap(0, Ordering::Relaxed),
            buckets: self
                .buckets
                .iter()
                .map(|b| b.swap(0, Ordering::Relaxed))
                .collect(),
        }
    }

    fn give_back(&self, t: &Taken) {
        self.count.fetch_add(t.count, Ordering::Relaxed);
        self.errors.fetch_add(t.errors, Ordering::Relaxed);
        for (b, n) in self.buckets.iter().zip(&t.buckets) {
            b.fetch_add(*n, Ordering::Relaxed);
        }
    }
}

/// Whether an access counts as an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failed {
    Yes,
    No,
}

struct RouteEntry {
    route: Box<str>,
    slug: Box<str>,
    cell: RouteCell,
}

impl RouteEntry {
    fn bytes(&self) -> usize {
        std::mem::size_of::<RouteEntry>() + self.route.len() + self.slug.len()
    }
}

struct TenantRoutes {
    by_installation: HashMap<InstallationId, Vec<RouteEntry>>,
    routes: usize,
    bytes: usize,
    overflow: RouteCell,
    since: DateTime<Utc>,
}

impl TenantRoutes {
    fn new(now: DateTime<Utc>) -> Self {
        TenantRoutes {
            by_installation: HashMap::new(),
            routes: 0,
            bytes: std::mem::size_of::<TenantRoutes>(),
            overflow: RouteCell::default(),
            since: now,
        }
    }

    fn find(&self, installation: &InstallationId, route: &str) -> Option<&RouteCell> {
        self.by_installation
            .get(installation)?
            .iter()
            .find(|e| &*e.route == route)
            .map(|e| &e.cell)
    }
}

/// What one flush took: the route and the counts, to record or put back.
#[derive(Clone, Debug)]
pub struct Flushed {
    pub installation: Option<InstallationId>,
    pub slug: Option<String>,
    pub route: String,
    pub taken: Taken,
}

type Shard = RwLock<HashMap<TenantId, TenantRoutes>>;

/// Every tenant's route counters (the engine holds one).
pub struct RouteAccess {
    shards: Box<[Shard]>,
    hasher: std::collections::hash_map::RandomState,
    bytes: AtomicUsize,
}

impl Default for RouteAccess {
    fn default() -> Self {
        RouteAccess {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            bytes: AtomicUsize::new(0),
        }
    }
}

/// What [`RouteAccess::record`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Counted on a route already known.
    Counted,
    /// Counted for a tenant not counting before: its flusher must run.
    NewTenant,
}

impl RouteAccess {
    fn shard(&self, tenant: &TenantId) -> &Shard {
        &self.shards[(self.hasher.hash_one(tenant) as usize) % SHARDS]
    }

    /// Counts one request to `route` (`GET /users/:id`) of an installation.
    pub fn record(
        &self,
        tenant: &TenantId,
        installation: &InstallationId,
        slug: &str,
        route: &str,
        failed: Failed,
        elapsed: Duration,
    ) -> Recorded {
        let shard = self.shard(tenant);
        {
            let map = shard
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(cell) = map.get(tenant).and_then(|t| t.find(installation, route)) {
                cell.record(failed, elapsed);
                return Recorded::Counted;
            }
        }
        let mut map = shard
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let new_tenant = !map.contains_key(tenant);
        let t = map
            .entry(tenant.clone())
            .or_insert_with(|| TenantRoutes::new(Utc::now()));
        if t.find(installation, route).is_none() {
            // Past a cap the route is counted in the overflow record.
            self.insert(t, installation, slug, route);
        }
        t.find(installation, route)
            .unwrap_or(&t.overflow)
            .record(failed, elapsed);
        if new_tenant {
            Recorded::NewTenant
        } else {
            Recorded::Counted
        }
    }

    /// Adds a new route's cell if the caps leave room; whether it did.
    fn insert(
        &self,
        t: &mut TenantRoutes,
        installation: &InstallationId,
        slug: &str,
        route: &str,
    ) -> bool {
        let entry = RouteEntry {
            route: route.into(),
            slug: slug.into(),
            cell: RouteCell::default(),
        };
        let bytes = entry.bytes();
        if t.routes >= ROUTES_PER_TENANT_MAX
            || t.bytes + bytes > TENANT_ROUTE_BYTES_MAX
            || self.bytes.load(Ordering::Relaxed) + bytes > ROUTE_BYTES_MAX
        {
            return false;
        }
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        t.routes += 1;
        t.bytes += bytes;
        t.by_installation
            .entry(installation.clone())
            .or_default()
            .push(entry);
        true
    }

    /// Whether the tenant has counts in memory (its flusher should run).
    pub fn has_tenant(&self, tenant: &TenantId) -> bool {
        self.shard(tenant)
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(tenant)
    }

    /// Takes the tenant's counts since the last flush: the interval they
    /// cover and every route with a count. Routes without one leave
    /// memory, and so does a tenant with none.
    pub fn take(&self, tenant: &TenantId, now: DateTime<Utc>) -> (DateTime<Utc>, Vec<Flushed>) {
        let mut map = self
            .shard(tenant)
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(t) = map.get_mut(tenant) else {
            return (now, Vec::new());
        };
        let since = std::mem::replace(&mut t.since, now);
        let mut out = Vec::new();
        let mut freed = 0;
        for (installation, list) in &mut t.by_installation {
            list.retain(|e| {
                let taken = e.cell.take();
                if taken.count == 0 {
                    freed += e.bytes();
                    return false;
                }
                out.push(Flushed {
                    installation: Some(installation.clone()),
                    slug: Some(e.slug.to_string()),
                    route: e.route.to_string(),
                    taken,
                });
                true
            });
        }
        t.by_installation.retain(|_, list| !list.is_empty());
        t.routes = t.by_installation.values().map(Vec::len).sum();
        t.bytes -= freed;
        self.bytes.fetch_sub(freed, Ordering::Relaxed);
        let overflow = t.overflow.take();
        if overflow.count > 0 {
            out.push(Flushed {
                installation: None,
                slug: None,
                route: OVERFLOW_ROUTE.into(),
                taken: overflow,
            });
        }
        if out.is_empty() && t.routes == 0 {
            map.remove(tenant);
        }
        (since, out)
    }

    /// Puts counts a flush could not record back, to go out with the next
    /// one (into the overflow record if the route no longer fits).
    pub fn give_back(&self, tenant: &TenantId, since: DateTime<Utc>, flushed: &[Flushed]) {
        let mut map = self
            .shard(tenant)
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let t = map
            .entry(tenant.clone())
            .or_insert_with(|| TenantRoutes::new(since));
        t.since = t.since.min(since);
        for f in flushed {
            if let Some(ins) = &f.installation
                && t.find(ins, &f.route).is_none()
            {
                let slug = f.slug.as_deref().unwrap_or_default();
                self.insert(t, ins, slug, &f.route);
            }
            let cell = f
                .installation
                .as_ref()
                .and_then(|ins| t.find(ins, &f.route))
                .unwrap_or(&t.overflow);
            cell.give_back(&f.taken);
        }
    }
}

/// The records of one flush.
pub fn records_of(
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    flushed: &[Flushed],
) -> Vec<RouteAccessed> {
    flushed
        .iter()
        .map(|f| RouteAccessed {
            installation: f.installation.clone(),
            plugin: f.slug.clone(),
            route: f.route.clone(),
            interval_start: since,
            interval_end: now,
            count: f.taken.count,
            errors: f.taken.errors,
            duration_p50_us: records::quantile_us(&f.taken.buckets, 0.5),
            duration_p99_us: records::quantile_us(&f.taken.buckets, 0.99),
        })
        .collect()
}

/// Appends one flush's records (in pages of at most [`APPEND_EVENTS_MAX`];
/// a tenant has at most [`ROUTES_PER_TENANT_MAX`] + 1, so one page).
async fn append(
    store: &dyn EventStore,
    tenant: &TenantId,
    list: &[RouteAccessed],
) -> Result<(), extensor_core::Error> {
    let stream = records::stream(tenant)?;
    for page in list.chunks(APPEND_EVENTS_MAX) {
        let events = page
            .iter()
            .map(|r| {
                let meta = EventMeta::new(Some(tenant.clone()), Principal::system());
                NewEvent::new(ROUTE_ACCESSED, ROUTE_ACCESSED_SCHEMA_VERSION, meta, r)
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Records only add up: any order, any writer (two processes on one
        // store each append their own).
        store
            .append(stream.clone(), ExpectedRevision::Any, events)
            .await?;
    }
    Ok(())
}

/// Takes the tenant's counts and records them; on failure puts them back.
pub async fn flush(
    access: &RouteAccess,
    store: &dyn EventStore,
    tenant: &TenantId,
) -> Result<usize, extensor_core::Error> {
    let now = Utc::now();
    let (since, flushed) = access.take(tenant, now);
    if flushed.is_empty() {
        return Ok(0);
    }
    let list = records_of(since, now, &flushed);
    match append(store, tenant, &list).await {
        Ok(()) => Ok(list.len()),
        Err(e) => {
            access.give_back(tenant, since, &flushed);
            Err(e)
        }
    }
}

/// The flusher as a tenant service: started with the supervisor for a
/// tenant that has counts in memory, else on the tenant's first counted
/// request.
#[derive(Clone)]
pub struct RouteAccessService {
    pub access: Arc<RouteAccess>,
    pub store: Arc<dyn EventStore>,
    pub flush_ms: u64,
}

impl crate::tenant_supervisor::TenantService for RouteAccessService {
    fn name(&self) -> &'static str {
        SERVICE_NAME
    }

    fn wanted_at_start(&self, tenant: &TenantId) -> bool {
        self.access.has_tenant(tenant)
    }

    fn spawn(
        &self,
        tenant: TenantId,
        supervisor: ActorCell,
    ) -> BoxFuture<'static, Result<ActorCell, Error>> {
        let service = self.clone();
        Box::pin(async move {
            let actor = format!("/tenants/{tenant}/{SERVICE_NAME}");
            let (a, _) = Actor::spawn_linked(None, RouteFlusher, (tenant, service), supervisor)
                .await
                .map_err(|e| Error::Spawn {
                    actor,
                    reason: e.to_string(),
                })?;
            Ok(a.get_cell())
        })
    }
}

pub struct RouteFlusher;

pub enum RouteFlusherMsg {
    /// The interval's timer: record what was counted.
    Flush,
}

pub struct RouteFlusherState {
    tenant: TenantId,
    service: RouteAccessService,
    ticker: Option<JoinHandle<()>>,
}

impl RouteFlusherState {
    async fn flush(&self) {
        let s = &self.service;
        if let Err(e) = flush(&s.access, s.store.as_ref(), &self.tenant).await {
            // The counts are back in memory: the next flush retries them.
            tracing::warn!(tenant = %self.tenant, error = %e, "route access records not written; kept for the next flush");
        }
    }
}

impl Actor for RouteFlusher {
    type Msg = RouteFlusherMsg;
    type State = RouteFlusherState;
    type Arguments = (TenantId, RouteAccessService);

    async fn pre_start(
        &self,
        myself: ActorRef<RouteFlusherMsg>,
        (tenant, service): Self::Arguments,
    ) -> Result<RouteFlusherState, ActorProcessingErr> {
        let every = Duration::from_millis(service.flush_ms.max(1));
        // The ticker is the actor's own: aborted in `post_stop`.
        let ticker = myself.send_interval(every, || RouteFlusherMsg::Flush);
        Ok(RouteFlusherState {
            tenant,
            service,
            ticker: Some(ticker),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RouteFlusherMsg>,
        state: &mut RouteFlusherState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.ticker.take() {
            t.abort();
        }
        // Stopping (shutdown, tenant stop, restart): what was counted since
        // the last tick goes out now.
        state.flush().await;
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<RouteFlusherMsg>,
        msg: RouteFlusherMsg,
        state: &mut RouteFlusherState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RouteFlusherMsg::Flush => state.flush().await,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (TenantId, InstallationId) {
        let t = TenantId::generate();
        let slug = "probe".parse().unwrap();
        let i = InstallationId::for_slug(&t, &slug);
        (t, i)
    }

    #[test]
    fn counts_are_taken_once_and_idle_routes_leave_memory() {
        let a = RouteAccess::default();
        let (t, i) = ids();
        let ms = Duration::from_millis(3);
        assert_eq!(
            a.record(&t, &i, "p", "GET /a", Failed::No, ms),
            Recorded::NewTenant
        );
        assert_eq!(
            a.record(&t, &i, "p", "GET /a", Failed::Yes, ms),
            Recorded::Counted
        );
        a.record(&t, &i, "p", "POST /b", Failed::No, ms);
        let (_, first) = a.take(&t, Utc::now());
        let mut counts: Vec<(String, u64, u64)> = first
            .iter()
            .map(|f| (f.route.clone(), f.taken.count, f.taken.errors))
            .collect();
        counts.sort();
        assert_eq!(counts, [("GET /a".into(), 2, 1), ("POST /b".into(), 1, 0)]);
        // Nothing new: nothing to record, and the routes are gone.
        let (_, second) = a.take(&t, Utc::now());
        assert!(second.is_empty());
        assert!(!a.has_tenant(&t));
        assert_eq!(a.bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn routes_past_the_cap_are_counted_in_the_overflow_record() {
        let a = RouteAccess::default();
        let (t, i) = ids();
        let extra = 10;
        for n in 0..ROUTES_PER_TENANT_MAX + extra {
            a.record(
                &t,
                &i,
                "p",
                &format!("GET /r{n}"),
                Failed::No,
                Duration::ZERO,
            );
        }
        let (_, taken) = a.take(&t, Utc::now());
        assert_eq!(taken.len(), ROUTES_PER_TENANT_MAX + 1);
        let overflow = taken.iter().find(|f| f.installation.is_none()).unwrap();
        assert_eq!(
            (overflow.route.as_str(), overflow.taken.count),
            ("*", extra as u64)
        );
        let total: u64 = taken.iter().map(|f| f.taken.count).sum();
        assert_eq!(total, (ROUTES_PER_TENANT_MAX + extra) as u64);
    }

    #[test]
    fn counts_given_back_go_out_with_the_next_flush() {
        let a = RouteAccess::default();
        let (t, i) = ids();
        a.record(&t, &i, "p", "GET /a", Failed::No, Duration::ZERO);
        let (since, taken) = a.take(&t, Utc::now());
        a.record(&t, &i, "p", "GET /a", Failed::No, Duration::ZERO);
        a.give_back(&t, since, &taken);
        let (since2, again) = a.take(&t, Utc::now());
        assert_eq!(since2, since);
        assert_eq!(again.iter().map(|f| f.taken.count).sum::<u64>(), 2);
    }

    /// A flusher killed without its stop (a crash: ractor runs no
    /// `post_stop` on `Signal::Kill`, so no last flush) loses no count: the
    /// counts live in `RouteAccess`, outside the actor, and the flusher its
    /// supervisor starts next writes them.
    #[tokio::test]
    async fn a_killed_flusher_loses_no_count() {
        use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> = Arc::new(
            SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::CreateIfMissing)).unwrap(),
        );
        let (t, i) = ids();
        let service = RouteAccessService {
            access: Arc::new(RouteAccess::default()),
            store: store.clone(),
            // No tick in this test: only a stop would write.
            flush_ms: 3_600_000,
        };
        let (first, running) = Actor::spawn(None, RouteFlusher, (t.clone(), service.clone()))
            .await
            .unwrap();
        for _ in 0..5 {
            service
                .access
                .record(&t, &i, "p", "GET /a", Failed::No, Duration::ZERO);
        }
        first.kill();
        // Positive marker: the killed actor's task has ended.
        running.await.unwrap();
        let stream = extensor_core::route_access::stream(&t).unwrap();
        assert_eq!(
            store.stream_revision(stream.clone()).await.unwrap(),
            None,
            "a killed flusher wrote nothing"
        );
        service
            .access
            .record(&t, &i, "p", "GET /a", Failed::Yes, Duration::ZERO);
        let (second, running) = Actor::spawn(None, RouteFlusher, (t.clone(), service.clone()))
            .await
            .unwrap();
        second.stop(None);
        running.await.unwrap();
        let records = store.read_stream(stream, 0, 100).await.unwrap();
        let sum = |field: &str| -> u64 {
            records
                .iter()
                .map(|e| {
                    let v: serde_json::Value = serde_json::from_str(e.payload.get()).unwrap();
                    v[field]
                        .as_u64()
                        .unwrap_or_else(|| panic!("no `{field}`: {v}"))
                })
                .sum()
        };
        assert_eq!((sum("count"), sum("errors")), (6, 1));
    }
}
