//! The engine's side of tenant leases: a node that takes a tenant's lease
//! starts its single-owner work ([`Engine::own`]); one giving it up stops
//! that work first ([`Engine::disown`]), and only then does the `cluster` module
//! release the lease. On a shared store the owner also follows what other
//! nodes append for its tenants (`Inner::follow_owned_work`): mail queued by
//! a route another node served, a plugin installed through another node.

use extensor_core::event::RecordedEvent;
use extensor_core::ids::TenantId;

use super::{Engine, Inner};
use crate::error::Error;
use crate::ownership::Ownership;
use crate::supervision::{STOP_CALL_TIMEOUT_MS, call};
use crate::tenant_supervisor::TenantSupervisorMsg;

impl Engine {
    /// Which tenants' single-owner work runs on this node.
    pub fn ownership(&self) -> &Ownership {
        &self.inner.ownership
    }

    /// The node holds `tenant`'s lease now: its hook dispatch, scheduler,
    /// webhook deliveries and outbox start here if it has any of them (each
    /// claims its streams with a newer epoch as it starts, which fences
    /// whatever a previous owner left running). Answered once they started.
    pub async fn own(&self, tenant: &TenantId) -> Result<(), Error> {
        let inner = &self.inner;
        inner.ownership.insert(tenant);
        if self.tenant_stopped(tenant) || !inner.has_owned_work(tenant) {
            return Ok(());
        }
        inner.ensure_services(tenant).await
    }

    /// The node gives up (or lost) `tenant`'s lease: its single-owner work
    /// stops; answered once it has stopped, so the caller may release the
    /// lease. Requests for the tenant are still served here.
    pub async fn disown(&self, tenant: &TenantId) -> Result<(), Error> {
        self.inner.ownership.remove(tenant);
        self.inner.stop_leased(tenant).await
    }

    /// The node could not renew its leases in time: it owns nothing until
    /// [`Engine::unfence`]. Returns the tenants whose work must stop now
    /// ([`Engine::stop_leased`] each).
    pub fn fence(&self) -> Vec<TenantId> {
        self.inner.ownership.fence()
    }

    /// The node renewed again; it owns the tenants it takes leases of anew.
    pub fn unfence(&self) {
        self.inner.ownership.unfence();
    }

    /// Stops `tenant`'s single-owner work without changing what the node
    /// owns (after [`Engine::fence`]).
    pub async fn stop_leased(&self, tenant: &TenantId) -> Result<(), Error> {
        self.inner.stop_leased(tenant).await
    }
}

impl Inner {
    /// Whether the tenant has single-owner work to start with its lease.
    /// One without starts it on first use (a webhook applied, mail queued).
    fn has_owned_work(&self, tenant: &TenantId) -> bool {
        self.directory.has_hooks(tenant)
            || self.directory.has_jobs(tenant)
            || self.webhook_tenants.contains(tenant)
            || self.outbox_tenants.contains(tenant)
    }

    async fn ensure_services(&self, tenant: &TenantId) -> Result<(), Error> {
        self.supervisor_call(tenant, |reply| TenantSupervisorMsg::EnsureServices {
            reply,
        })
        .await
    }

    async fn stop_leased(&self, tenant: &TenantId) -> Result<(), Error> {
        let sup = match self.supervisor(tenant).await {
            Ok(sup) => sup,
            // A stopped (suspended) or failed tenant runs nothing.
            Err(Error::Stopped { .. } | Error::Failed { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let path = format!("/tenants/{tenant}");
        let build = |reply| TenantSupervisorMsg::StopLeased { reply };
        call(&path, &sup, build, STOP_CALL_TIMEOUT_MS).await
    }

    /// Another node's append that concerns work this node owns.
    pub(crate) async fn follow_owned_work(&self, ev: &RecordedEvent) {
        let Some(tenant) = &ev.tenant else {
            return;
        };
        if !self.ownership.owns(tenant) {
            return;
        }
        let started = match ev.stream.category() {
            "outbox" if ev.event_type == crate::outbox::types::QUEUED => {
                self.outbox_tenants.extend([tenant.clone()]);
                self.outbox_wake(tenant).await
            }
            "installation" if self.has_owned_work(tenant) => self.ensure_services(tenant).await,
            _ => Ok(()),
        };
        if let Err(e) = started {
            tracing::warn!(tenant = %tenant, error = %e, "owned work not started");
        }
    }
}

impl Engine {
    /// The tenant's webhook registry on any node: the owner asks its webhook
    /// dispatcher (which holds the newest state it decided on); another
    /// node reads the registry stream from the shared log, so listings
    /// answer everywhere without starting the single-owner dispatcher.
    pub async fn webhook_registry(
        &self,
        tenant: &TenantId,
    ) -> Result<extensor_core::webhook::registry::TenantWebhooks, Error> {
        if self.inner.ownership.owns(tenant) {
            let dispatcher = self.webhooks(tenant).await?;
            let path = format!("/tenants/{tenant}/webhooks");
            let build = |reply| crate::webhooks::DispatcherMsg::Registry { reply };
            let timeout = crate::webhooks::service::SERVICE_CALL_TIMEOUT_MS;
            return call(&path, &dispatcher, build, timeout).await;
        }
        let stream = extensor_core::webhook::registry_stream(tenant);
        let loaded =
            extensor_core::aggregate::load::<extensor_core::webhook::registry::TenantWebhooks>(
                &*self.inner.store,
                &stream,
                extensor_core::aggregate::AsOf::Latest,
            )
            .await
            .map_err(|source| Error::Core {
                actor: format!("/tenants/{tenant}/webhooks"),
                source,
            })?;
        Ok(loaded.state)
    }
}
