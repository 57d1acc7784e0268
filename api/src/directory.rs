//! The directory: tenants by id and slug, and the token index (token hash →
//! tenant, role, expiry), projected from the `tenant.*` and `platform.*`
//! events and kept live by a subscription. Authentication is one hash and
//! one map lookup under a read lock.
//!
//! The projection is a cache of the log: it is rebuilt from position 0 at
//! start, and every write this process makes is also applied directly
//! (idempotently) so that a token works on the very next request, before the
//! subscription delivers its event.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use extensor_core::aggregate::DomainEvent;
use extensor_core::event::RecordedEvent;
use extensor_core::ids::{TenantId, TokenId};
use extensor_core::role::Role;
use extensor_core::store::{EventStore, READ_EVENTS_MAX, ReadFilter};
use extensor_core::tenant::{TenantEvent, TenantStatus};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The stream holding the platform-admin token's hash.
pub const PLATFORM_ADMIN_STREAM: &str = "platform-admin";
/// Event type: the platform-admin token was set (bootstrap or rotation).
pub const ADMIN_TOKEN_SET: &str = "platform.admin_token_set";
/// The stream category reserving a tenant slug (`tenant_slug-<slug>`).
pub const SLUG_RESERVATION_CATEGORY: &str = "tenant_slug";
/// Event type on a slug reservation stream.
pub const SLUG_RESERVED: &str = "tenant.slug_reserved";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdminTokenSet {
    pub token_hash: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SlugReserved {
    pub tenant_id: TenantId,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantEntry {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: TenantStatus,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenEntry {
    pub tenant: TenantId,
    pub token_id: TokenId,
    pub name: String,
    pub role: Role,
    pub issued_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

#[derive(Default)]
struct Inner {
    tenants: HashMap<TenantId, TenantEntry>,
    by_slug: HashMap<String, TenantId>,
    /// token hash → token.
    tokens: HashMap<String, TokenEntry>,
    /// token id → token hash (for revocation by id).
    token_ids: HashMap<TokenId, String>,
    admin_hash: Option<String>,
}

/// Who a bearer token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenOwner {
    PlatformAdmin,
    Tenant(TokenEntry),
}

/// `sha256:<hex>` of a token, the only form in which tokens are stored.
pub fn token_hash(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

#[derive(Clone, Default)]
pub struct Directory {
    inner: Arc<RwLock<Inner>>,
}

impl Directory {
    /// Replays the directory's events from the start, then follows the log
    /// in the background for as long as the store lives.
    pub async fn load(store: Arc<dyn EventStore>) -> Result<Self, extensor_core::Error> {
        let dir = Directory::default();
        for prefix in ["tenant.", "platform."] {
            let after = dir.catch_up(store.as_ref(), prefix).await?;
            dir.follow(store.clone(), prefix, after);
        }
        Ok(dir)
    }

    async fn catch_up(
        &self,
        store: &dyn EventStore,
        prefix: &str,
    ) -> Result<u64, extensor_core::Error> {
        let mut after = 0;
        loop {
            let page = store
                .read_all(after, filter(prefix), READ_EVENTS_MAX)
                .await?;
            for ev in &page {
                self.apply(ev);
                after = ev.position;
            }
            if page.len() < READ_EVENTS_MAX {
                return Ok(after);
            }
        }
    }

    fn follow(&self, store: Arc<dyn EventStore>, prefix: &'static str, mut after: u64) {
        let dir = self.clone();
        tokio::spawn(async move {
            loop {
                let mut events = store.subscribe_all(after, filter(prefix));
                while let Some(next) = events.next().await {
                    match next {
                        Ok(ev) => {
                            after = ev.position;
                            dir.apply(&ev);
                        }
                        Err(extensor_core::Error::StoreClosed) => return,
                        Err(e) => {
                            tracing::warn!(error = %e, "directory subscription dropped; resubscribing");
                            break;
                        }
                    }
                }
                if store.head_position().await.is_err() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        });
    }

    /// Folds one event in. Unknown types and undecodable payloads are skipped
    /// (the aggregates, not this cache, are where such a log is refused).
    ///
    /// Trust is per stream: the admin token only from `platform-admin`,
    /// tenant facts only from `tenant-<id>`, so the same types appended
    /// anywhere else (a tenant's business stream) change nothing.
    pub fn apply(&self, ev: &RecordedEvent) {
        if !extensor_core::kernel_events::from_owner(&ev.event_type, ev.stream.category()) {
            return;
        }
        if ev.event_type == ADMIN_TOKEN_SET {
            if ev.stream.as_str() != PLATFORM_ADMIN_STREAM {
                return;
            }
            if let Ok(set) = serde_json::from_str::<AdminTokenSet>(ev.payload.get()) {
                self.write().admin_hash = Some(set.token_hash);
            }
            return;
        }
        if ev.stream.category() != "tenant" {
            return;
        }
        let Some(tenant) = ev
            .stream
            .as_str()
            .strip_prefix("tenant-")
            .and_then(|t| t.parse::<TenantId>().ok())
        else {
            return;
        };
        let Ok(decoded) = TenantEvent::decode(&ev.event_type, ev.schema_version, &ev.payload)
        else {
            return;
        };
        self.apply_tenant_event(&tenant, &decoded, ev.recorded_at);
    }

    /// Folds a tenant event this process just wrote (idempotent).
    pub fn apply_tenant_event(&self, tenant: &TenantId, ev: &TenantEvent, at: DateTime<Utc>) {
        let mut inner = self.write();
        match ev {
            TenantEvent::Created(c) => {
                inner
                    .by_slug
                    .insert(c.slug.as_str().to_owned(), tenant.clone());
                inner.tenants.entry(tenant.clone()).or_insert(TenantEntry {
                    id: tenant.clone(),
                    slug: c.slug.as_str().to_owned(),
                    name: c.name.clone(),
                    status: TenantStatus::Active,
                    created_at: at,
                });
            }
            TenantEvent::Renamed { name } => {
                if let Some(t) = inner.tenants.get_mut(tenant) {
                    t.name = name.clone();
                }
            }
            TenantEvent::Suspended { .. } => {
                set_status(&mut inner, tenant, TenantStatus::Suspended)
            }
            TenantEvent::Resumed => set_status(&mut inner, tenant, TenantStatus::Active),
            TenantEvent::TokenIssued(t) => {
                inner
                    .token_ids
                    .insert(t.token_id.clone(), t.token_hash.clone());
                inner
                    .tokens
                    .entry(t.token_hash.clone())
                    .or_insert(TokenEntry {
                        tenant: tenant.clone(),
                        token_id: t.token_id.clone(),
                        name: t.name.clone(),
                        role: t.role,
                        issued_at: t.issued_at,
                        expires_at: t.expires_at,
                        revoked: false,
                    });
            }
            TenantEvent::TokenRevoked { token_id } => {
                if let Some(hash) = inner.token_ids.get(token_id).cloned()
                    && let Some(t) = inner.tokens.get_mut(&hash)
                {
                    t.revoked = true;
                }
            }
            // Tenant secrets are not the directory's business.
            TenantEvent::SecretSet(_) | TenantEvent::SecretRemoved { .. } => {}
        }
    }

    /// Records the platform-admin token hash this process just wrote.
    pub fn set_admin_hash(&self, hash: String) {
        self.write().admin_hash = Some(hash);
    }

    /// Who holds `token`, if anyone (revoked and expired tokens included:
    /// the caller decides, so it can say why a token is refused).
    pub fn lookup(&self, token: &str) -> Option<TokenOwner> {
        let hash = token_hash(token);
        let inner = self.read();
        if inner.admin_hash.as_deref() == Some(hash.as_str()) {
            return Some(TokenOwner::PlatformAdmin);
        }
        inner.tokens.get(&hash).cloned().map(TokenOwner::Tenant)
    }

    pub fn tenant(&self, id: &TenantId) -> Option<TenantEntry> {
        self.read().tenants.get(id).cloned()
    }

    pub fn tenant_by_slug(&self, slug: &str) -> Option<TenantEntry> {
        let inner = self.read();
        let id = inner.by_slug.get(slug)?;
        inner.tenants.get(id).cloned()
    }

    /// Every tenant, oldest first.
    pub fn tenants(&self) -> Vec<TenantEntry> {
        let mut all: Vec<_> = self.read().tenants.values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// A tenant's tokens, oldest first.
    pub fn tokens_of(&self, tenant: &TenantId) -> Vec<TokenEntry> {
        let mut all: Vec<_> = self
            .read()
            .tokens
            .values()
            .filter(|t| &t.tenant == tenant)
            .cloned()
            .collect();
        all.sort_by(|a, b| a.token_id.cmp(&b.token_id));
        all
    }

    pub fn has_admin(&self) -> bool {
        self.read().admin_hash.is_some()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner half-updated in
        // a way that matters (each write is one insert); keep serving.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn set_status(inner: &mut Inner, tenant: &TenantId, status: TenantStatus) {
    if let Some(t) = inner.tenants.get_mut(tenant) {
        t.status = status;
    }
}

fn filter(prefix: &str) -> ReadFilter {
    ReadFilter {
        type_prefix: Some(prefix.to_owned()),
        ..ReadFilter::default()
    }
}
