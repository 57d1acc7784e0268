//! The engine as the event dispatcher's [`LaneHost`]: the dispatcher is
//! handed this boundary and imports nothing of the engine.

use std::sync::Arc;

use extensor_core::event::RecordedEvent;
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::store::EventStore;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::watch;

use super::invoke::{hook_input, refuse_failed, run};
use super::{EngineSlot, Inner};
use crate::dispatcher::{LaneHost, LaneHostSlot, LaneInstallation};
use crate::error::Error;

impl LaneHostSlot for EngineSlot {
    fn host(&self) -> Option<Arc<dyn LaneHost>> {
        self.get().map(|inner| inner as Arc<dyn LaneHost>)
    }
}

impl LaneHost for Inner {
    fn store(&self) -> Arc<dyn EventStore> {
        self.store.clone()
    }

    fn lane_bounds(&self) -> (usize, u64) {
        (
            self.dispatch.lane_page_events,
            self.dispatch.checkpoint_every_events,
        )
    }

    fn lane_starting(&self) -> Box<dyn Send + Sync> {
        Box::new(self.lanes_starting.enter_owned())
    }

    fn hooked_installations(&self, tenant: &TenantId) -> Vec<InstallationId> {
        self.directory
            .for_tenant(tenant)
            .iter()
            .filter(|k| k.has_hooks())
            .filter_map(|k| k.state.id.clone())
            .collect()
    }

    fn installations_changed(&self, tenant: &TenantId) -> watch::Receiver<u64> {
        self.directory.hub(tenant).generation.subscribe()
    }

    fn head(&self, tenant: &TenantId) -> watch::Receiver<u64> {
        self.directory.hub(tenant).head.subscribe()
    }

    fn recent_from(&self, tenant: &TenantId, next: u64, page: usize) -> Option<Vec<RecordedEvent>> {
        self.directory.hub(tenant).recent_from(next, page)
    }

    fn closing(&self) -> watch::Receiver<bool> {
        self.closing_tx.subscribe()
    }

    fn lane_installation(&self, id: &InstallationId, event_type: &str) -> Option<LaneInstallation> {
        let known = self.directory.get(id)?;
        Some(LaneInstallation {
            id: known.state.id.clone()?,
            slug: known
                .state
                .slug
                .as_ref()
                .map_or_else(String::new, |s| s.to_string()),
            enabled: known.is_enabled(),
            enabled_at: known.enabled_at,
            handles: known.hooks(event_type),
        })
    }

    fn refuse_failed(&self, id: &InstallationId) -> Result<(), Error> {
        match self.directory.get(id) {
            Some(known) => refuse_failed(self, &known),
            None => Ok(()),
        }
    }

    fn board_changes(&self) -> watch::Receiver<u64> {
        self.board.changes()
    }

    fn run_hook(
        self: Arc<Self>,
        id: &InstallationId,
        ev: &RecordedEvent,
        chain_depth: u32,
    ) -> BoxFuture<'static, Result<Value, Error>> {
        let known = self.directory.get(id);
        let trigger = extensor_js::Trigger::Hook {
            event_type: ev.event_type.clone(),
        };
        let input = hook_input(ev);
        let event_id = Some(ev.event_id.to_string());
        let id = id.clone();
        Box::pin(async move {
            // Gone since the lane looked it up: the lane stops as it does
            // on shutdown, and the event is not recorded (a lane for the
            // installation, if it comes back, starts from its checkpoint).
            let Some(known) = known else {
                tracing::debug!(installation = %id, "hook not run: installation gone");
                return Err(Error::ShuttingDown);
            };
            let outcome = run(&self, &known, trigger, input, event_id, chain_depth).await?;
            Ok(outcome.value)
        })
    }
}
