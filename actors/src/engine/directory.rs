//! The installation index: every installation of every tenant, folded from
//! the installation streams, kept in memory for listing, dispatch matching,
//! secrets lookup and routing without an actor round trip.
//!
//! It is rebuilt from the log at start and then follows the log (one
//! subscription for the whole engine), so writes by another process sharing
//! the store show up too; the engine also catches an installation up right
//! after its own commands so a caller reads its own writes.
//!
//! The follower also wakes each tenant's dispatch lanes when the tenant's
//! business stream grows (the per-tenant [`TenantHub`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use extensor_core::aggregate::{Aggregate, DomainEvent};
use extensor_core::event::{RecordedEvent, StreamId};
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::installation::{
    InstallationEvent, InstallationStatus, InstalledVersion, PluginInstallation,
};
use extensor_core::manifest::Slug;
use extensor_core::store::{EventStore, READ_EVENTS_MAX, ReadFilter};
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::watch;

use super::Inner;

/// Pause before resubscribing after the follower's subscription failed.
const FOLLOW_RETRY_MS: u64 = 200;

/// One installation as the index knows it.
#[derive(Clone, Debug)]
pub(crate) struct Known {
    pub state: PluginInstallation,
    /// Revision of the installation stream folded so far.
    pub revision: u64,
    /// Global position of its first `plugin.installed`: the install order.
    pub installed_at: u64,
    /// Global position of its latest `plugin.enabled` (0 if never): hooks
    /// run only for business events after it.
    pub enabled_at: u64,
    pub installed_time: Option<DateTime<Utc>>,
}

/// What callers see of an installation (secrets: keys only).
#[derive(Clone, Debug, Serialize)]
pub struct InstallationView {
    pub installation_id: InstallationId,
    pub tenant: TenantId,
    pub slug: Slug,
    pub status: InstallationStatus,
    pub current: InstalledVersion,
    /// The version [`roll_back`](crate::engine::Engine::roll_back) restores.
    pub previous: Option<InstalledVersion>,
    pub secret_keys: Vec<String>,
    pub installed_at_position: u64,
    pub installed_at: Option<DateTime<Utc>>,
}

impl Known {
    pub fn is_enabled(&self) -> bool {
        self.state.status == InstallationStatus::Enabled
    }

    pub fn view(&self) -> Option<InstallationView> {
        let s = &self.state;
        if !s.status.is_installed() {
            return None;
        }
        Some(InstallationView {
            installation_id: s.id.clone()?,
            tenant: s.tenant.clone()?,
            slug: s.slug.clone()?,
            status: s.status,
            current: s.current.clone()?,
            previous: s.previous.clone(),
            secret_keys: s.secrets.keys().cloned().collect(),
            installed_at_position: self.installed_at,
            installed_at: self.installed_time,
        })
    }

    /// Whether an enabled installation hooks `event_type`.
    pub fn hooks(&self, event_type: &str) -> bool {
        self.is_enabled()
            && self.state.current.as_ref().is_some_and(|v| {
                v.manifest
                    .events
                    .iter()
                    .any(|p| extensor_js::plugin::event_matches(event_type, p))
            })
    }

    pub fn has_hooks(&self) -> bool {
        self.is_enabled()
            && self
                .state
                .current
                .as_ref()
                .is_some_and(|v| !v.manifest.events.is_empty())
    }
}

/// The newest business events kept per tenant so that lanes woken by an
/// append take it from memory instead of reading it back from the store.
/// Small: a lane further behind reads pages from the store.
pub const RECENT_EVENTS_MAX: usize = 32;

/// Per-tenant wake-ups.
pub(crate) struct TenantHub {
    /// The business stream's last known revision (+1; 0 = empty).
    pub head: watch::Sender<u64>,
    /// Bumped whenever one of the tenant's installations changes.
    pub generation: watch::Sender<u64>,
    /// The newest events, contiguous by revision.
    recent: std::sync::Mutex<std::collections::VecDeque<RecordedEvent>>,
}

impl TenantHub {
    fn remember(&self, ev: &RecordedEvent) {
        let mut ring = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match ring.back().map(|l| l.revision) {
            Some(last) if ev.revision <= last => return,
            Some(last) if ev.revision != last + 1 => ring.clear(),
            _ => {}
        }
        if ring.len() == RECENT_EVENTS_MAX {
            ring.pop_front();
        }
        ring.push_back(ev.clone());
    }

    /// Up to `limit` events from revision `from`, if memory holds `from`.
    pub fn recent_from(&self, from: u64, limit: usize) -> Option<Vec<RecordedEvent>> {
        let ring = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let first = ring.front()?.revision;
        if from < first || from > ring.back()?.revision {
            return None;
        }
        let skip = usize::try_from(from - first).ok()?;
        Some(ring.iter().skip(skip).take(limit).cloned().collect())
    }
}

#[derive(Default)]
pub(crate) struct Directory {
    /// Shared, so a lookup on the request path is a reference count, not a
    /// copy of the manifest; folding copies one only while a caller holds it.
    installations: RwLock<HashMap<InstallationId, Arc<Known>>>,
    by_tenant: RwLock<HashMap<TenantId, Vec<InstallationId>>>,
    hubs: RwLock<HashMap<TenantId, Arc<TenantHub>>>,
    /// Tenants seen created (creation is irreversible).
    known_tenants: RwLock<std::collections::HashSet<TenantId>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Directory {
    /// Folds every installation event in the log. Returns the position read
    /// up to, where the follower starts.
    pub async fn rebuild(&self, store: &dyn EventStore) -> Result<u64, extensor_core::Error> {
        let mut after = 0;
        let filter = ReadFilter {
            type_prefix: Some("plugin.".into()),
            ..ReadFilter::default()
        };
        loop {
            let page = store
                .read_all(after, filter.clone(), READ_EVENTS_MAX)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.position;
            for ev in &page {
                if ev.stream.category() == "installation" {
                    self.fold(ev);
                }
            }
        }
        // Whatever was appended meanwhile is read again by the follower;
        // folding is idempotent by revision.
        Ok(after)
    }

    /// Folds one stored installation event if it is the next one of its
    /// stream; earlier ones are ignored. Returns `false` only for a gap
    /// (an event past the next one), which `catch_up` fills.
    pub fn fold(&self, ev: &RecordedEvent) -> bool {
        let Some(id) = ev
            .stream
            .as_str()
            .strip_prefix("installation-")
            .and_then(|s| s.parse::<InstallationId>().ok())
        else {
            return true;
        };
        let Ok(decoded) = InstallationEvent::decode(&ev.event_type, ev.schema_version, &ev.payload)
        else {
            tracing::warn!(
                position = ev.position,
                "undecodable installation event skipped"
            );
            return true;
        };
        let mut all = write(&self.installations);
        let known = Arc::make_mut(all.entry(id.clone()).or_insert_with(|| {
            Arc::new(Known {
                state: PluginInstallation::default(),
                revision: u64::MAX,
                installed_at: 0,
                enabled_at: 0,
                installed_time: None,
            })
        }));
        let expected = known.revision.wrapping_add(1);
        if ev.revision != expected {
            // Already folded (old) is fine; past the next one is a gap.
            return known.revision != u64::MAX && ev.revision <= known.revision;
        }
        if let Err(reason) = known.state.apply(&decoded) {
            tracing::warn!(position = ev.position, %reason, "installation event does not apply");
            return true;
        }
        known.revision = ev.revision;
        match decoded {
            InstallationEvent::Installed(_) => {
                known.installed_at = ev.position;
                known.installed_time = Some(ev.recorded_at);
            }
            InstallationEvent::Enabled => known.enabled_at = ev.position,
            _ => {}
        }
        let tenant = known.state.tenant.clone();
        drop(all);
        if let Some(tenant) = tenant {
            let mut by_tenant = write(&self.by_tenant);
            let list = by_tenant.entry(tenant.clone()).or_default();
            if !list.contains(&id) {
                list.push(id);
            }
            drop(by_tenant);
            self.hub(&tenant).generation.send_modify(|g| *g += 1);
        }
        true
    }

    /// Reads the installation's stream past what is folded and folds it.
    pub async fn catch_up(
        &self,
        store: &dyn EventStore,
        id: &InstallationId,
    ) -> Result<(), extensor_core::Error> {
        loop {
            let from = read(&self.installations)
                .get(id)
                .map_or(0, |k| k.revision.wrapping_add(1));
            let page = store
                .read_stream(StreamId::installation(id), from, READ_EVENTS_MAX)
                .await?;
            let done = page.len() < READ_EVENTS_MAX;
            for ev in &page {
                self.fold(ev);
            }
            if done {
                return Ok(());
            }
        }
    }

    pub fn get(&self, id: &InstallationId) -> Option<Arc<Known>> {
        read(&self.installations).get(id).cloned()
    }

    /// The installation if it belongs to `tenant` and is installed.
    pub fn get_for(&self, tenant: &TenantId, id: &InstallationId) -> Option<Arc<Known>> {
        self.get(id)
            .filter(|k| k.state.tenant.as_ref() == Some(tenant) && k.state.status.is_installed())
    }

    /// The tenant's installed installations, in install order.
    pub fn for_tenant(&self, tenant: &TenantId) -> Vec<Known> {
        let ids = read(&self.by_tenant)
            .get(tenant)
            .cloned()
            .unwrap_or_default();
        let all = read(&self.installations);
        let mut out: Vec<Known> = ids
            .iter()
            .filter_map(|id| all.get(id))
            .filter(|k| k.state.status.is_installed())
            .map(|k| Known::clone(k))
            .collect();
        out.sort_by_key(|k| k.installed_at);
        out
    }

    /// Calls `f` with every installed installation of `tenant` (of every
    /// tenant for `None`) under the index's read lock, cloning nothing.
    pub fn each_installed(&self, tenant: Option<&TenantId>, f: &mut dyn FnMut(&Known)) {
        // One lock at a time, in `for_tenant`'s order: ids first.
        let ids = tenant.map(|t| read(&self.by_tenant).get(t).cloned().unwrap_or_default());
        let all = read(&self.installations);
        match ids {
            Some(ids) => {
                for id in &ids {
                    if let Some(k) = all.get(id).filter(|k| k.state.status.is_installed()) {
                        f(k);
                    }
                }
            }
            None => all
                .values()
                .filter(|k| k.state.status.is_installed())
                .for_each(|k| f(k)),
        }
    }

    pub fn has_hooks(&self, tenant: &TenantId) -> bool {
        self.for_tenant(tenant).iter().any(Known::has_hooks)
    }

    /// Whether the tenant has an enabled installation that declares jobs:
    /// then its scheduler runs.
    pub fn has_jobs(&self, tenant: &TenantId) -> bool {
        self.for_tenant(tenant).iter().any(|k| {
            k.is_enabled()
                && k.state
                    .current
                    .as_ref()
                    .is_some_and(|v| !v.manifest.jobs.is_empty())
        })
    }

    /// Tenants with an enabled installation that declares jobs: their
    /// schedulers start with the engine.
    pub fn tenants_with_jobs(&self) -> Vec<TenantId> {
        let tenants: Vec<TenantId> = read(&self.by_tenant).keys().cloned().collect();
        tenants.into_iter().filter(|t| self.has_jobs(t)).collect()
    }

    pub fn tenants_with_hooks(&self) -> Vec<TenantId> {
        let tenants: Vec<TenantId> = read(&self.by_tenant).keys().cloned().collect();
        tenants.into_iter().filter(|t| self.has_hooks(t)).collect()
    }

    pub fn tenant_exists(&self, tenant: &TenantId) {
        if !self.is_known_tenant(tenant) {
            write(&self.known_tenants).insert(tenant.clone());
        }
    }

    pub fn is_known_tenant(&self, tenant: &TenantId) -> bool {
        read(&self.known_tenants).contains(tenant)
    }

    pub fn hub(&self, tenant: &TenantId) -> Arc<TenantHub> {
        if let Some(h) = read(&self.hubs).get(tenant) {
            return h.clone();
        }
        write(&self.hubs)
            .entry(tenant.clone())
            .or_insert_with(|| {
                Arc::new(TenantHub {
                    head: watch::channel(0).0,
                    generation: watch::channel(0).0,
                    recent: std::sync::Mutex::default(),
                })
            })
            .clone()
    }

    /// Keeps a stored business event for the lanes and wakes them.
    /// The tenant is the stream's (`events-<tenant>`), never the envelope's
    /// own claim, so a lane only ever sees its own tenant's stream.
    pub fn business_event(&self, ev: &RecordedEvent) {
        let tenant = ev
            .stream
            .as_str()
            .strip_prefix("events-")
            .and_then(|t| t.parse::<TenantId>().ok());
        if let Some(tenant) = &tenant {
            self.hub(tenant).remember(ev);
            self.business_appended(tenant, ev.revision);
        }
    }

    /// Records that the tenant's business stream reached `revision`.
    pub fn business_appended(&self, tenant: &TenantId, revision: u64) {
        self.hub(tenant).head.send_if_modified(|h| {
            let next = revision + 1;
            let moved = next > *h;
            if moved {
                *h = next;
            }
            moved
        });
    }
}

/// Follows the whole log from `after`: installation events update the
/// index, business events wake the tenant's lanes. Resubscribes on error.
pub(crate) fn follow(engine: Weak<Inner>, mut after: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Some(inner) = engine.upgrade() else {
                return;
            };
            let mut events = inner.store.subscribe_all(after, ReadFilter::default());
            drop(inner);
            while let Some(next) = events.next().await {
                let Some(inner) = engine.upgrade() else {
                    return;
                };
                match next {
                    Ok(ev) => {
                        after = ev.position;
                        on_event(&inner, &ev).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, after, "log follower resubscribes");
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(FOLLOW_RETRY_MS)).await;
        }
    })
}

async fn on_event(inner: &Inner, ev: &RecordedEvent) {
    match ev.stream.category() {
        "installation" => {
            if !inner.directory.fold(ev)
                && let Some(id) = ev
                    .stream
                    .as_str()
                    .strip_prefix("installation-")
                    .and_then(|s| s.parse::<InstallationId>().ok())
                && let Err(e) = inner.directory.catch_up(&*inner.store, &id).await
            {
                tracing::warn!(error = %e, "installation index catch-up failed");
            }
        }
        "events" => inner.directory.business_event(ev),
        _ => {}
    }
    if inner.ownership.is_leased() {
        inner.follow_owned_work(ev).await;
    }
}
