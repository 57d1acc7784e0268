//! One async lock per tenant, made on first use. The per-tenant SQLite read
//! models (the `ctx.db` projection in `engine::read_models` and the webhook
//! deliveries index in `webhooks::index`) each allow one syncing writer per
//! tenant file at a time; both take their lock from here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use extensor_core::ids::TenantId;

/// The locks of one read model, by tenant. Grows with the tenants that
/// used the read model, one small entry each.
#[derive(Default)]
pub(crate) struct TenantLocks(Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>);

impl TenantLocks {
    /// The tenant's lock (the same one for every caller).
    pub(crate) fn get(&self, tenant: &TenantId) -> Arc<tokio::sync::Mutex<()>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(tenant.clone())
            .or_default()
            .clone()
    }
}
