//! Which tenants' single-owner work this node runs.
//!
//! A tenant's hook dispatch, scheduler, webhook deliveries and outbox
//! (the tenant services whose `leased()` says so) run only on the
//! node that owns the tenant. On the embedded store a node owns every
//! tenant ([`Ownership::everything`]); on a shared store it owns the
//! tenants whose lease it holds ([`Ownership::leased`], kept by
//! the `cluster` module). A *fenced* node (it could not renew its leases in
//! time) owns nothing, whatever its set says, until it renews again.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use extensor_core::ids::TenantId;

/// Cheap to clone; every clone is the same set.
#[derive(Clone)]
pub struct Ownership(Arc<Inner>);

struct Inner {
    mode: Mode,
    owned: RwLock<HashSet<TenantId>>,
    fenced: AtomicBool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Everything,
    Leased,
}

impl Default for Ownership {
    /// One node on its own store: it owns every tenant.
    fn default() -> Self {
        Self::everything()
    }
}

impl Ownership {
    /// The only node: every tenant is its own.
    pub fn everything() -> Self {
        Self::with(Mode::Everything)
    }

    /// One of several nodes: a tenant is its own while it holds the lease.
    /// Owns nothing until the cluster loop takes leases.
    pub fn leased() -> Self {
        Self::with(Mode::Leased)
    }

    fn with(mode: Mode) -> Self {
        Self(Arc::new(Inner {
            mode,
            owned: RwLock::default(),
            fenced: AtomicBool::new(false),
        }))
    }

    /// Whether tenants are divided between nodes by leases.
    pub fn is_leased(&self) -> bool {
        self.0.mode == Mode::Leased
    }

    /// Whether this node may run `tenant`'s single-owner work now.
    pub fn owns(&self, tenant: &TenantId) -> bool {
        if self.fenced() {
            return false;
        }
        match self.0.mode {
            Mode::Everything => true,
            Mode::Leased => self.read().contains(tenant),
        }
    }

    /// The tenants held (empty on a single node, which holds no leases).
    pub fn owned(&self) -> Vec<TenantId> {
        let mut owned: Vec<TenantId> = self.read().iter().cloned().collect();
        owned.sort();
        owned
    }

    /// Whether the node is fenced: its leases may have passed to others.
    pub fn fenced(&self) -> bool {
        self.0.fenced.load(Ordering::Acquire)
    }

    pub(crate) fn insert(&self, tenant: &TenantId) {
        self.write().insert(tenant.clone());
    }

    pub(crate) fn remove(&self, tenant: &TenantId) -> bool {
        self.write().remove(tenant)
    }

    /// Fences the node (see [`Ownership::fenced`]); returns the tenants it
    /// held, whose work must now stop.
    pub(crate) fn fence(&self) -> Vec<TenantId> {
        self.0.fenced.store(true, Ordering::Release);
        let mut owned: Vec<TenantId> = self.write().drain().collect();
        owned.sort();
        owned
    }

    pub(crate) fn unfence(&self) {
        self.0.fenced.store(false, Ordering::Release);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashSet<TenantId>> {
        self.0
            .owned
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<TenantId>> {
        self.0
            .owned
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
