//! Running webhook dispatchers. In a server, [`WebhooksTenantService`] makes
//! each tenant's dispatcher a tenant-supervisor child (the engine lists it
//! and starts tenants with webhooks at boot; `Engine::webhooks` reaches it).
//! Without the engine (tools, tests), [`WebhookService`] starts one
//! dispatcher per tenant on first use and offers timed calls to it. Never
//! run both for one tenant: two dispatchers would deliver twice.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use extensor_core::event::EventMeta;
use extensor_core::ids::{DeliveryId, TenantId};
use extensor_core::webhook::registry::{TenantWebhooks, WebhookName, WebhookSource};
use ractor::{Actor, ActorRef, ActorStatus};
use tokio::sync::Mutex;

use super::WebhookConfig;
use super::dispatcher::{Applied, ApplyMode, DispatcherArgs, DispatcherMsg, WebhookDispatcher};
use super::endpoint::EndpointStats;
use super::query::{self, DeliveryQuery, DeliveryView};
use crate::error::Error;
use crate::supervision::call;

/// Timeout of a management call (apply validates code in an isolate).
pub const SERVICE_CALL_TIMEOUT_MS: u64 = 30_000;

pub struct WebhookService {
    config: WebhookConfig,
    dispatchers: Mutex<HashMap<TenantId, ActorRef<DispatcherMsg>>>,
}

fn path(tenant: &TenantId) -> String {
    format!("/tenants/{tenant}/webhooks")
}

impl WebhookService {
    pub fn new(config: WebhookConfig) -> Arc<WebhookService> {
        Arc::new(WebhookService {
            config,
            dispatchers: Mutex::default(),
        })
    }

    /// The tenant's dispatcher, started if it is not running.
    pub async fn start_tenant(&self, tenant: &TenantId) -> Result<ActorRef<DispatcherMsg>, Error> {
        let mut map = self.dispatchers.lock().await;
        if let Some(d) = map.get(tenant)
            && matches!(
                d.get_status(),
                ActorStatus::Running | ActorStatus::Starting | ActorStatus::Upgrading
            )
        {
            return Ok(d.clone());
        }
        let args = DispatcherArgs {
            tenant: tenant.clone(),
            config: self.config.clone(),
        };
        let (actor, _) = Actor::spawn(None, WebhookDispatcher, args)
            .await
            .map_err(|e| Error::Spawn {
                actor: path(tenant),
                reason: e.to_string(),
            })?;
        map.insert(tenant.clone(), actor.clone());
        Ok(actor)
    }

    async fn ask<R: Send + 'static>(
        &self,
        tenant: &TenantId,
        build: impl FnOnce(ractor::RpcReplyPort<R>) -> DispatcherMsg,
    ) -> Result<R, Error> {
        let d = self.start_tenant(tenant).await?;
        call(&path(tenant), &d, build, SERVICE_CALL_TIMEOUT_MS).await
    }

    pub async fn apply(
        &self,
        tenant: &TenantId,
        name: WebhookName,
        source: WebhookSource,
        mode: ApplyMode,
        meta: EventMeta,
    ) -> Result<Applied, Error> {
        self.ask(tenant, |reply| DispatcherMsg::Apply {
            name,
            source,
            mode,
            if_revision: None,
            meta,
            reply,
        })
        .await?
    }

    pub async fn delete(
        &self,
        tenant: &TenantId,
        name: WebhookName,
        meta: EventMeta,
    ) -> Result<(), Error> {
        self.ask(tenant, |reply| DispatcherMsg::Delete { name, meta, reply })
            .await?
    }

    /// `disabled: None` enables; `Some(reason)` disables.
    pub async fn set_enabled(
        &self,
        tenant: &TenantId,
        name: WebhookName,
        disabled: Option<String>,
        meta: EventMeta,
    ) -> Result<(), Error> {
        self.ask(tenant, |reply| DispatcherMsg::SetEnabled {
            name,
            disabled,
            meta,
            reply,
        })
        .await?
    }

    pub async fn registry(&self, tenant: &TenantId) -> Result<TenantWebhooks, Error> {
        self.ask(tenant, |reply| DispatcherMsg::Registry { reply })
            .await
    }

    pub async fn redeliver(
        &self,
        tenant: &TenantId,
        name: WebhookName,
        delivery: DeliveryId,
    ) -> Result<DeliveryId, Error> {
        self.ask(tenant, |reply| DispatcherMsg::Redeliver {
            name,
            delivery,
            reply,
        })
        .await?
    }

    pub async fn replay(
        &self,
        tenant: &TenantId,
        name: WebhookName,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<usize, Error> {
        self.ask(tenant, |reply| DispatcherMsg::Replay {
            name,
            from,
            to,
            reply,
        })
        .await?
    }

    pub async fn send_test(
        &self,
        tenant: &TenantId,
        name: WebhookName,
    ) -> Result<DeliveryId, Error> {
        self.ask(tenant, |reply| DispatcherMsg::SendTest { name, reply })
            .await?
    }

    /// An operator restart of one endpoint ([`restart_endpoint`]).
    pub async fn restart_endpoint(
        &self,
        tenant: &TenantId,
        name: WebhookName,
    ) -> Result<(), Error> {
        let d = self.start_tenant(tenant).await?;
        restart_endpoint(&d, tenant, name).await
    }

    pub async fn stats(
        &self,
        tenant: &TenantId,
        name: WebhookName,
    ) -> Result<EndpointStats, Error> {
        self.ask(tenant, |reply| DispatcherMsg::Stats { name, reply })
            .await?
    }

    /// Deliveries of one webhook, newest first, with their attempts.
    pub async fn deliveries(
        &self,
        tenant: &TenantId,
        name: &WebhookName,
        q: &DeliveryQuery,
    ) -> Result<Vec<DeliveryView>, Error> {
        query::deliveries(&*self.config.store, tenant, name, q)
            .await
            .map_err(|source| Error::Core {
                actor: path(tenant),
                source,
            })
    }

    /// Stops every dispatcher (graceful shutdown); pending deliveries are
    /// in the log and resume at the next start.
    pub async fn shutdown(&self) {
        let map = std::mem::take(&mut *self.dispatchers.lock().await);
        for (_, d) in map {
            let _ = d
                .stop_and_wait(
                    Some("shutdown".into()),
                    Some(std::time::Duration::from_secs(5)),
                )
                .await;
        }
    }
}

/// The tenant supervisor's child name of the webhook dispatcher
/// (`/tenants/<t>/webhooks`).
pub const SERVICE_NAME: &str = "webhooks";

/// Tenants whose webhook dispatcher starts with their supervisor: those
/// that declared a webhook before this process started (filled at
/// recovery from [`tenants_with_webhooks`]) and those whose dispatcher was
/// asked for since (`Engine::webhooks` adds them). Any other tenant has no
/// dispatcher, and no log subscription for one, until first use.
#[derive(Clone, Default)]
pub struct WebhookTenants(Arc<std::sync::Mutex<std::collections::BTreeSet<TenantId>>>);

impl WebhookTenants {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<TenantId>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn insert(&self, tenant: &TenantId) {
        if !self.contains(tenant) {
            self.lock().insert(tenant.clone());
        }
    }

    pub fn extend(&self, tenants: impl IntoIterator<Item = TenantId>) {
        self.lock().extend(tenants);
    }

    pub fn contains(&self, tenant: &TenantId) -> bool {
        self.lock().contains(tenant)
    }

    /// Every tenant in the set.
    pub fn all(&self) -> Vec<TenantId> {
        self.lock().iter().cloned().collect()
    }
}

/// The webhook dispatcher as a tenant-supervisor service child: started
/// with the supervisor for the tenants in `tenants`, on first use
/// (`Engine::webhooks`) for the others, restarted per the tree's policy.
/// The engine lists it in `tenant_services`.
pub struct WebhooksTenantService {
    pub config: WebhookConfig,
    pub tenants: WebhookTenants,
}

impl crate::tenant_supervisor::TenantService for WebhooksTenantService {
    fn name(&self) -> &'static str {
        SERVICE_NAME
    }
    /// Single-owner work: only the node holding the tenant's lease runs it.
    fn leased(&self) -> bool {
        true
    }

    fn wanted_at_start(&self, tenant: &TenantId) -> bool {
        self.tenants.contains(tenant)
    }

    fn spawn(
        &self,
        tenant: TenantId,
        supervisor: ractor::ActorCell,
    ) -> futures::future::BoxFuture<'static, Result<ractor::ActorCell, Error>> {
        let config = self.config.clone();
        Box::pin(async move {
            let actor = path(&tenant);
            let args = DispatcherArgs { tenant, config };
            let (d, _) = Actor::spawn_linked(None, WebhookDispatcher, args, supervisor)
                .await
                .map_err(|e| Error::Spawn {
                    actor,
                    reason: e.to_string(),
                })?;
            Ok(d.get_cell())
        })
    }
}

/// Tenants that ever declared a webhook: their dispatchers start at boot so
/// pending deliveries resume without waiting for a request. One scan of the
/// log by type at start.
pub async fn tenants_with_webhooks(
    store: &dyn extensor_core::store::EventStore,
) -> Result<std::collections::BTreeSet<TenantId>, extensor_core::Error> {
    use extensor_core::store::{READ_EVENTS_MAX, ReadFilter};
    let filter = ReadFilter {
        type_prefix: Some(extensor_core::webhook::registry::types::DECLARED.into()),
        ..ReadFilter::default()
    };
    let mut out = std::collections::BTreeSet::new();
    let mut after = 0;
    loop {
        let page = store
            .read_all(after, filter.clone(), READ_EVENTS_MAX)
            .await?;
        // Trust is per stream: a `webhook.declared` counts only from the
        // tenant's registry stream, never from its business events.
        out.extend(
            page.iter()
                .filter_map(|e| extensor_core::webhook::registry_tenant(&e.stream)),
        );
        match page.last() {
            Some(last) if page.len() == READ_EVENTS_MAX => after = last.position,
            _ => return Ok(out),
        }
    }
}

/// `/tenants/<tenant>/webhooks/<name>`: a webhook endpoint's path in the
/// ops tree, parsed.
pub fn endpoint_path(path: &str) -> Option<(TenantId, WebhookName)> {
    let rest = path.strip_prefix("/tenants/")?;
    let mut parts = rest.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(t), Some(SERVICE_NAME), Some(name), None) => {
            Some((t.parse().ok()?, name.parse().ok()?))
        }
        _ => None,
    }
}

/// An operator restart of one endpoint: its restart history is forgotten,
/// the running one (if any) stops and a new one starts and claims its
/// stream. Answers once the new one is spawned (its start-up runs in it).
pub async fn restart_endpoint(
    dispatcher: &ActorRef<DispatcherMsg>,
    tenant: &TenantId,
    name: WebhookName,
) -> Result<(), Error> {
    call(
        &path(tenant),
        dispatcher,
        |reply| DispatcherMsg::RestartEndpoint { name, reply },
        SERVICE_CALL_TIMEOUT_MS,
    )
    .await?
}
