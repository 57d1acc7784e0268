//! The live numbers of the seed's `extensibility` status block, for one
//! tenant or for the whole platform: installations loaded and enabled,
//! webhooks active, jobs scheduled.
//!
//! Plugins and jobs come from the in-memory installation index (no store
//! read). Webhooks come from each registry stream (`webhooks-<tenant>`,
//! read from its snapshot and tail), only for tenants that ever declared
//! one, at most [`WEBHOOK_REGISTRIES_CONCURRENT`] at a time: a platform
//! view costs one registry load per tenant with webhooks.

use extensor_core::aggregate::{self, AsOf};
use extensor_core::ids::TenantId;
use extensor_core::webhook::registry::{TenantWebhooks, WebhookStatus};
use extensor_core::webhook::registry_stream;
use futures::StreamExt;

use super::Engine;
use crate::error::Error;

/// Registry loads in flight at once for a platform-wide view.
pub const WEBHOOK_REGISTRIES_CONCURRENT: usize = 16;
/// Distinct enabled slugs a platform-wide view lists (the count is exact).
pub const STATUS_SLUGS_MAX: usize = 1_000;

/// Which installations and webhooks a status view counts.
#[derive(Clone, Debug)]
pub enum StatusScope {
    Tenant(TenantId),
    Platform,
}

/// The numbers behind the status block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtensibilityCounts {
    /// Installed plugins (enabled or not).
    pub plugins_loaded: u64,
    /// Enabled installations.
    pub plugins_enabled: u64,
    /// Slugs of the enabled ones, sorted and distinct (a platform view
    /// lists at most [`STATUS_SLUGS_MAX`]).
    pub enabled_slugs: Vec<String>,
    /// Webhooks declared and enabled (not disabled, not deleted).
    pub webhooks_active: u64,
    /// Jobs declared by enabled installations: each has a next fire time
    /// in its tenant's scheduler.
    pub jobs_scheduled: u64,
}

impl Engine {
    /// The status block's live numbers for `scope`.
    pub async fn extensibility(&self, scope: &StatusScope) -> Result<ExtensibilityCounts, Error> {
        let tenant = match scope {
            StatusScope::Tenant(t) => Some(t),
            StatusScope::Platform => None,
        };
        let mut counts = ExtensibilityCounts::default();
        let mut slugs = std::collections::BTreeSet::new();
        self.inner.directory.each_installed(tenant, &mut |k| {
            counts.plugins_loaded += 1;
            if !k.is_enabled() {
                return;
            }
            counts.plugins_enabled += 1;
            if let Some(v) = &k.state.current {
                counts.jobs_scheduled += v.manifest.jobs.len() as u64;
            }
            if let Some(s) = &k.state.slug
                && (slugs.len() < STATUS_SLUGS_MAX || tenant.is_some())
            {
                slugs.insert(s.to_string());
            }
        });
        counts.enabled_slugs = slugs.into_iter().collect();
        let with_webhooks: Vec<TenantId> = match tenant {
            Some(t) if self.inner.webhook_tenants.contains(t) => vec![t.clone()],
            Some(_) => Vec::new(),
            None => self.inner.webhook_tenants.all(),
        };
        let store = self.inner.store.clone();
        let mut loads = futures::stream::iter(with_webhooks)
            .map(|t| {
                let store = store.clone();
                async move { active_webhooks(&*store, &t).await }
            })
            .buffer_unordered(WEBHOOK_REGISTRIES_CONCURRENT);
        while let Some(n) = loads.next().await {
            counts.webhooks_active += n?;
        }
        Ok(counts)
    }
}

/// The tenant's enabled webhooks, from its registry stream.
async fn active_webhooks(
    store: &dyn extensor_core::store::EventStore,
    tenant: &TenantId,
) -> Result<u64, Error> {
    let loaded = aggregate::load::<TenantWebhooks>(store, &registry_stream(tenant), AsOf::Latest)
        .await
        .map_err(|source| Error::Platform {
            what: "webhook registry",
            source,
        })?;
    Ok(loaded
        .state
        .webhooks
        .values()
        .filter(|w| w.status == WebhookStatus::Active)
        .count() as u64)
}
