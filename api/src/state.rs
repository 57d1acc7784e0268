//! What every handler shares: the store, the directory, the limiter and the
//! settings. Handlers receive it as `State<'_>` (poem `Data`), which keeps
//! the API types free of it so the OpenAPI document can be generated
//! without a running server.

use std::sync::Arc;

use extensor_core::store::EventStore;
use poem::web::Data;

use crate::directory::Directory;
use crate::error::ApiError;
use crate::ratelimit::RateLimiter;

/// The handler parameter giving access to [`AppState`].
pub type State<'a> = Data<&'a Arc<AppState>>;

/// The `FEATURE_*` switches (default on). `FEATURE_EXTENSIBILITY=false`
/// turns every capability off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    pub plugins: bool,
    pub webhooks: bool,
    pub app_scripts: bool,
}

/// One capability a `FEATURE_*` switch governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    Plugins,
    Webhooks,
    AppScripts,
}

impl Default for Features {
    fn default() -> Self {
        Self {
            plugins: true,
            webhooks: true,
            app_scripts: true,
        }
    }
}

impl Features {
    /// Reads `FEATURE_EXTENSIBILITY`, `FEATURE_PLUGINS`,
    /// `FEATURE_WEBHOOKS_AS_CODE`, `FEATURE_APP_SCRIPTS`.
    pub fn from_env() -> Result<Self, String> {
        let all = switch("FEATURE_EXTENSIBILITY")?;
        Ok(Self {
            plugins: all && switch("FEATURE_PLUGINS")?,
            webhooks: all && switch("FEATURE_WEBHOOKS_AS_CODE")?,
            app_scripts: all && switch("FEATURE_APP_SCRIPTS")?,
        })
    }

    /// `Err(404 feature_disabled)` when `feature` is off.
    pub fn require(&self, feature: Feature) -> Result<(), ApiError> {
        let (on, name) = match feature {
            Feature::Plugins => (self.plugins, "FEATURE_PLUGINS"),
            Feature::Webhooks => (self.webhooks, "FEATURE_WEBHOOKS_AS_CODE"),
            Feature::AppScripts => (self.app_scripts, "FEATURE_APP_SCRIPTS"),
        };
        if on {
            Ok(())
        } else {
            Err(ApiError::feature_disabled(name))
        }
    }
}

fn switch(name: &str) -> Result<bool, String> {
    match std::env::var(name) {
        Err(_) => Ok(true),
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "on" | "yes" => Ok(true),
            "0" | "false" | "off" | "no" => Ok(false),
            _ => Err(format!("{name}=`{v}`: expected true or false")),
        },
    }
}

pub struct AppState {
    pub store: Arc<dyn EventStore>,
    /// Plugins, dispatch, routes, the supervision tree.
    pub engine: extensor_actors::Engine,
    pub directory: Directory,
    pub limiter: RateLimiter,
    pub features: Features,
    /// For `GET /api/status`.
    pub sandbox: crate::status::SandboxInfo,
    pub http_allowlist: Option<Vec<String>>,
    /// Open server-sent event streams (bounded per owner) and their end at
    /// shutdown.
    pub streams: crate::streams::Streams,
    /// `EXTENSOR_FAULT_DRILLS`: whether `POST /api/ops/actors/{path}/fault-drill`
    /// may panic actors (off unless set).
    pub fault_drills: bool,
    /// How far `GET /api/audit/verify` has verified the chain.
    pub verified: tokio::sync::Mutex<crate::audit::VerifiedPrefix>,
    /// The webhook deliveries index that listings read.
    pub webhook_index: Arc<extensor_actors::webhooks::index::DeliveryIndex>,
    /// This server as a node: its id, and on a shared store its
    /// registration and leases.
    pub node: crate::cluster::NodeState,
}
