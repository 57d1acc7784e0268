//! `GET /api/status`: the seed's extensibility block, live: which
//! capabilities are switched on, plugins loaded and enabled, the sandbox's
//! limits, the platform HTTP allowlist, webhooks active and jobs
//! scheduled. A tenant caller (or the platform admin naming a tenant with
//! `X-Tenant-Slug`) sees its tenant; the platform admin without the header
//! sees the whole platform.

use extensor_actors::engine::StatusScope;
use extensor_core::role::Role;
use poem_openapi::param::Header;
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};

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
            engine: c.engine.as_str().into(),
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
    /// Installed plugins (enabled or not) of the tenant, or of every
    /// tenant in the platform view.
    pub plugins_loaded: u64,
    /// Slugs of the enabled ones, sorted and distinct (the platform view
    /// lists at most 1,000; `enabled_plugins_count` is exact).
    pub enabled_plugins: Vec<String>,
    /// Enabled installations.
    pub enabled_plugins_count: u64,
    pub sandbox: SandboxInfo,
    /// The platform's outbound allowlist; `null`: manifests alone decide.
    pub http_allowlist: Option<Vec<String>>,
    /// Webhooks declared and enabled (neither disabled nor deleted).
    pub webhooks_active: u64,
    /// Jobs declared by enabled plugins, each with a next fire time in its
    /// tenant's scheduler.
    pub jobs_scheduled: u64,
}

/// What a status answer covers.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum StatusScopeView {
    /// One tenant (`tenant` names it).
    Tenant,
    /// Every tenant (the platform admin without `X-Tenant-Slug`).
    Platform,
}

#[derive(Object)]
pub struct Status {
    /// The tenant's slug; `null` in the platform view.
    pub tenant: Option<String>,
    pub scope: StatusScopeView,
    pub features: Features,
    pub extensibility: Extensibility,
}

pub struct StatusApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Status")]
impl StatusApi {
    /// Capabilities and extensibility status of the tenant, or of the platform
    #[oai(path = "/status", method = "get", operation_id = "status")]
    async fn status(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to report on (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused). With the
        /// platform-admin token: that tenant, or without it the whole
        /// platform.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
    ) -> Result<Json<Status>, ApiError> {
        let (slug, scope) = if tenant.0.is_none() && state.platform_admin(&auth).is_ok() {
            (None, StatusScope::Platform)
        } else {
            let ctx = state.tenant_access(&auth, &tenant, Role::Viewer, RateClass::Management)?;
            (Some(ctx.slug), StatusScope::Tenant(ctx.tenant))
        };
        let counts = state.engine.extensibility(&scope).await?;
        let f = state.features;
        Ok(Json(Status {
            scope: match scope {
                StatusScope::Tenant(_) => StatusScopeView::Tenant,
                StatusScope::Platform => StatusScopeView::Platform,
            },
            tenant: slug,
            features: Features {
                extensibility: f.plugins || f.webhooks || f.app_scripts,
                plugins: f.plugins,
                webhooks_as_code: f.webhooks,
                app_scripts: f.app_scripts,
            },
            extensibility: Extensibility {
                plugins_loaded: counts.plugins_loaded,
                enabled_plugins: counts.enabled_slugs,
                enabled_plugins_count: counts.plugins_enabled,
                sandbox: state.sandbox.clone(),
                http_allowlist: state.http_allowlist.clone(),
                webhooks_active: counts.webhooks_active,
                jobs_scheduled: counts.jobs_scheduled,
            },
        }))
    }
}
