//! `GET /api/status`: the seed's extensibility block for the caller's
//! tenant: which capabilities are switched on, plugins loaded and enabled,
//! the sandbox's limits and the platform HTTP allowlist.

use extensor_core::role::Role;
use poem_openapi::param::Header;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::auth::BearerAuth;
use crate::error::ApiError;
use crate::ratelimit::RateClass;
use crate::state::State;
use crate::tags::ApiTags;

/// The sandbox settings every plugin runs under (manifests may lower them).
#[derive(Object, Clone, Debug)]
pub struct SandboxInfo {
    pub engine: String,
    pub heap_bytes_max: u64,
    pub deadline_ms: u64,
    pub job_deadline_ms: u64,
    pub pool_isolates_max: u64,
}

impl From<&extensor_js::SandboxConfig> for SandboxInfo {
    fn from(c: &extensor_js::SandboxConfig) -> Self {
        Self {
            engine: "quickjs".into(),
            heap_bytes_max: c.heap_bytes_max as u64,
            deadline_ms: c.deadline_ms,
            job_deadline_ms: c.job_deadline_ms,
            pool_isolates_max: c.pool_isolates_max as u64,
        }
    }
}

#[derive(Object)]
pub struct Features {
    pub extensibility: bool,
    pub plugins: bool,
    pub webhooks_as_code: bool,
    pub app_scripts: bool,
}

#[derive(Object)]
pub struct Extensibility {
    /// Installed plugins of this tenant (enabled or not).
    pub plugins_loaded: u64,
    /// Slugs of the enabled ones.
    pub enabled_plugins: Vec<String>,
    pub sandbox: SandboxInfo,
    /// The platform's outbound allowlist; `null`: manifests alone decide.
    pub http_allowlist: Option<Vec<String>>,
}

#[derive(Object)]
pub struct Status {
    pub tenant: String,
    pub features: Features,
    pub extensibility: Extensibility,
}

pub struct StatusApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Status")]
impl StatusApi {
    /// Capabilities and plugin status of the tenant
    #[oai(path = "/status", method = "get", operation_id = "status")]
    async fn status(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
    ) -> Result<Json<Status>, ApiError> {
        let ctx = state.tenant_access(&auth, &tenant, Role::Viewer, RateClass::Management)?;
        let plugins = state.engine.installations(&ctx.tenant).await?;
        let f = state.features;
        Ok(Json(Status {
            tenant: ctx.slug,
            features: Features {
                extensibility: f.plugins || f.webhooks || f.app_scripts,
                plugins: f.plugins,
                webhooks_as_code: f.webhooks,
                app_scripts: f.app_scripts,
            },
            extensibility: Extensibility {
                plugins_loaded: plugins.len() as u64,
                enabled_plugins: plugins
                    .iter()
                    .filter(|p| {
                        p.status == extensor_core::installation::InstallationStatus::Enabled
                    })
                    .map(|p| p.slug.to_string())
                    .collect(),
                sandbox: state.sandbox.clone(),
                http_allowlist: state.http_allowlist.clone(),
            },
        }))
    }
}
