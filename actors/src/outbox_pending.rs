//! Email outbox depth for `/metrics`: each outbox publishes how many of
//! its tenant's messages are pending after every message it handles; a
//! scrape sums them. One entry per tenant with pending mail (an outbox
//! with none removes its entry), so the map is bounded by the tenants
//! that have mail waiting. Process-wide, like the metrics recorder.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use extensor_core::ids::TenantId;

static PENDING: LazyLock<Mutex<HashMap<TenantId, usize>>> = LazyLock::new(Mutex::default);

fn map() -> std::sync::MutexGuard<'static, HashMap<TenantId, usize>> {
    PENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sets the tenant's pending count (0 removes it).
pub fn set(tenant: &TenantId, pending: usize) {
    let mut m = map();
    if pending == 0 {
        m.remove(tenant);
    } else {
        m.insert(tenant.clone(), pending);
    }
}

/// Messages pending in every outbox of the process.
pub fn total() -> usize {
    map().values().sum()
}
