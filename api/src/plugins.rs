//! Plugin installations: `POST /api/plugins/upload` (multipart ZIP; a new
//! version of an installed slug upgrades it, keeping its secrets), list,
//! get, enable, disable, roll back to the previous version, uninstall, and
//! the recent console output of one.

use chrono::{DateTime, Utc};
use extensor_actors::engine::{InstallationView, UploadAction};
use extensor_core::ids::InstallationId;
use extensor_core::role::Role;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::types::multipart::Upload;
use poem_openapi::{ApiResponse, Enum, Multipart, Object, OpenApi};
use serde_json::Value;

use crate::auth::{BearerAuth, TenantCtx};
use crate::error::ApiError;
use crate::ratelimit::RateClass;
use crate::state::{Feature, State};
use crate::tags::ApiTags;

/// An upload larger than this is refused before it is read whole (the
/// engine's archive caps then bound what it unpacks).
pub const UPLOAD_BYTES_MAX: usize = 10 * 1024 * 1024;
/// Captured log lines returned by the logs endpoint, newest last.
const LOG_LINES_MAX: usize = 1_000;

/// Only `file`: another part is refused (and declared so, see
/// `document::CLOSED_OBJECTS`).
#[derive(Multipart)]
#[oai(deny_unknown_fields)]
pub struct PluginUpload {
    /// The plugin ZIP: `manifest.json` at its root plus the code.
    pub file: Upload,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum UploadActionView {
    /// A new installation; it starts disabled.
    Installed,
    /// A new version of an installed slug: secrets kept, the previous
    /// version kept for roll back.
    Upgraded,
    /// The identical bundle is already the current version.
    Unchanged,
}

#[derive(Object)]
pub struct UploadResult {
    pub action: UploadActionView,
    pub plugin: PluginView,
}

#[derive(Object)]
pub struct VersionView {
    pub version: String,
    /// `sha256:<hex>` of the uploaded ZIP.
    pub bundle_digest: String,
}

#[derive(Object)]
pub struct PluginView {
    /// `ins_…`, derived from the tenant and the slug.
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// `enabled` or `disabled`.
    pub status: String,
    pub current: VersionView,
    /// What `roll-back` restores, if there is one.
    pub previous: Option<VersionView>,
    pub permissions: Vec<String>,
    /// Names of the plugin's secrets (never their values).
    pub secret_keys: Vec<String>,
    pub installed_at: Option<DateTime<Utc>>,
    /// The validated manifest of the current version.
    pub manifest: Value,
}

impl From<InstallationView> for PluginView {
    fn from(v: InstallationView) -> Self {
        let m = &v.current.manifest;
        Self {
            id: v.installation_id.to_string(),
            slug: v.slug.to_string(),
            name: m.name.clone(),
            description: m.description.clone(),
            status: v.status.as_str().to_owned(),
            current: VersionView {
                version: m.version.to_string(),
                bundle_digest: v.current.bundle_digest.clone(),
            },
            previous: v.previous.as_ref().map(|p| VersionView {
                version: p.manifest.version.to_string(),
                bundle_digest: p.bundle_digest.clone(),
            }),
            permissions: serde_json::to_value(&m.permissions)
                .ok()
                .and_then(|p| serde_json::from_value(p).ok())
                .unwrap_or_default(),
            manifest: serde_json::to_value(m).unwrap_or(Value::Null),
            secret_keys: v.secret_keys,
            installed_at: v.installed_at,
        }
    }
}

#[derive(Object)]
pub struct PluginList {
    pub plugins: Vec<PluginView>,
}

/// One installed plugin's invocations (hooks, routes, jobs, filters) since
/// this server process started; every installed plugin is listed, with
/// zeroes when it has not run.
#[derive(Object)]
pub struct PluginMetricsView {
    /// The plugin's id (`ins_…`).
    pub id: String,
    pub slug: String,
    /// Invocations that ran (refused ones are not counted).
    pub invocations: u64,
    /// Of those, the ones that ended in an error.
    pub errors: u64,
    /// Latency percentiles and maximum in microseconds (0 when none ran;
    /// two significant figures; capped at one minute).
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl From<extensor_actors::engine::PluginStats> for PluginMetricsView {
    fn from(s: extensor_actors::engine::PluginStats) -> Self {
        Self {
            id: s.installation_id.to_string(),
            slug: s.slug,
            invocations: s.invocations,
            errors: s.errors,
            p50_us: s.p50_us,
            p95_us: s.p95_us,
            p99_us: s.p99_us,
            max_us: s.max_us,
        }
    }
}

/// The caller's tenant's plugins, in install order.
#[derive(Object)]
pub struct PluginMetricsList {
    pub plugins: Vec<PluginMetricsView>,
}

#[derive(Object)]
pub struct LogLine {
    /// `log`, `info`, `warn`, `error`, `debug`.
    pub level: String,
    pub time: DateTime<Utc>,
    pub message: String,
}

#[derive(Object)]
pub struct PluginLogs {
    pub logs: Vec<LogLine>,
}

#[derive(ApiResponse)]
pub enum UploadResponse {
    /// Installed (new slug).
    #[oai(status = 201)]
    Created(Json<UploadResult>),
    /// Upgraded, or unchanged.
    #[oai(status = 200)]
    Ok(Json<UploadResult>),
}

#[derive(ApiResponse)]
pub enum UninstallResponse {
    /// Uninstalled: files, secrets, schedules and routes are gone.
    #[oai(status = 204)]
    Uninstalled,
}

/// Parses a plugin id; a malformed one is as absent as an unknown one.
pub fn plugin_id(id: &str) -> Result<InstallationId, ApiError> {
    id.parse().map_err(|_| ApiError::not_found("plugin", id))
}

pub struct PluginsApi;

/// Admission for plugin operations: the feature switch, then the role.
pub fn admit(
    state: &State<'_>,
    auth: &BearerAuth,
    tenant: &Option<String>,
    min: Role,
) -> Result<TenantCtx, ApiError> {
    state.features.require(Feature::Plugins)?;
    state.tenant_access(auth, tenant, min, RateClass::Management)
}

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Plugins")]
impl PluginsApi {
    /// Upload a plugin ZIP (install, or upgrade the installed slug)
    #[oai(
        path = "/plugins/upload",
        method = "post",
        operation_id = "uploadPlugin"
    )]
    async fn upload(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        form: PluginUpload,
    ) -> Result<UploadResponse, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Developer)?;
        if form.file.size() > UPLOAD_BYTES_MAX {
            return Err(ApiError::too_large(format!(
                "the upload is {} bytes; the limit is {UPLOAD_BYTES_MAX}",
                form.file.size()
            )));
        }
        let zip = form.file.into_vec().await.map_err(|e| {
            ApiError::bad_request("invalid_request", format!("reading the upload: {e}"))
        })?;
        let outcome = state
            .engine
            .upload_plugin(&ctx.tenant, zip, ctx.principal)
            .await?;
        let view = state
            .engine
            .installation(&ctx.tenant, &outcome.installation_id)
            .await?;
        let result = |action| {
            Json(UploadResult {
                action,
                plugin: view.into(),
            })
        };
        Ok(match outcome.action {
            UploadAction::Installed => UploadResponse::Created(result(UploadActionView::Installed)),
            UploadAction::Upgraded => UploadResponse::Ok(result(UploadActionView::Upgraded)),
            UploadAction::Unchanged => UploadResponse::Ok(result(UploadActionView::Unchanged)),
        })
    }

    /// List the tenant's plugins
    #[oai(path = "/plugins", method = "get", operation_id = "listPlugins")]
    async fn list(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
    ) -> Result<Json<PluginList>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Viewer)?;
        let plugins = state.engine.installations(&ctx.tenant).await?;
        Ok(Json(PluginList {
            plugins: plugins.into_iter().map(Into::into).collect(),
        }))
    }

    /// Per-plugin invocation counts, errors and latency percentiles
    #[oai(
        path = "/plugins/metrics",
        method = "get",
        operation_id = "getPluginMetrics"
    )]
    async fn metrics(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
    ) -> Result<Json<PluginMetricsList>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Viewer)?;
        let stats = state.engine.plugin_stats(&ctx.tenant).await?;
        Ok(Json(PluginMetricsList {
            plugins: stats.into_iter().map(Into::into).collect(),
        }))
    }

    /// One plugin
    #[oai(path = "/plugins/:id", method = "get", operation_id = "getPlugin")]
    async fn get(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The plugin's id (`ins_…`).
        id: Path<String>,
    ) -> Result<Json<PluginView>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Viewer)?;
        let view = state
            .engine
            .installation(&ctx.tenant, &plugin_id(&id)?)
            .await?;
        Ok(Json(view.into()))
    }

    /// Enable a plugin (hooks, routes and jobs start)
    #[oai(
        path = "/plugins/:id/enable",
        method = "post",
        operation_id = "enablePlugin"
    )]
    async fn enable(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The plugin's id (`ins_…`).
        id: Path<String>,
    ) -> Result<Json<PluginView>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Developer)?;
        let view = state
            .engine
            .enable(&ctx.tenant, &plugin_id(&id)?, ctx.principal)
            .await?;
        Ok(Json(view.into()))
    }

    /// Disable a plugin (hooks stop, routes answer 404, jobs pause)
    #[oai(
        path = "/plugins/:id/disable",
        method = "post",
        operation_id = "disablePlugin"
    )]
    async fn disable(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The plugin's id (`ins_…`).
        id: Path<String>,
    ) -> Result<Json<PluginView>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Developer)?;
        let view = state
            .engine
            .disable(&ctx.tenant, &plugin_id(&id)?, ctx.principal)
            .await?;
        Ok(Json(view.into()))
    }

    /// Restore the version before the last upgrade (secrets kept)
    #[oai(
        path = "/plugins/:id/roll-back",
        method = "post",
        operation_id = "rollBackPlugin"
    )]
    async fn roll_back(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The plugin's id (`ins_…`).
        id: Path<String>,
    ) -> Result<Json<PluginView>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Developer)?;
        let view = state
            .engine
            .roll_back(&ctx.tenant, &plugin_id(&id)?, ctx.principal)
            .await?;
        Ok(Json(view.into()))
    }

    /// Uninstall a plugin (removes its files, secrets, schedules, routes)
    #[oai(
        path = "/plugins/:id",
        method = "delete",
        operation_id = "uninstallPlugin"
    )]
    async fn uninstall(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The plugin's id (`ins_…`).
        id: Path<String>,
    ) -> Result<UninstallResponse, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Admin)?;
        state
            .engine
            .uninstall(&ctx.tenant, &plugin_id(&id)?, ctx.principal)
            .await?;
        Ok(UninstallResponse::Uninstalled)
    }

    /// Recent console output of a plugin
    #[oai(
        path = "/plugins/:id/logs",
        method = "get",
        operation_id = "pluginLogs"
    )]
    async fn logs(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The plugin's id (`ins_…`).
        id: Path<String>,
    ) -> Result<Json<PluginLogs>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Viewer)?;
        let logs = state
            .engine
            .recent_logs(&ctx.tenant, &plugin_id(&id)?)
            .await?;
        let skip = logs.len().saturating_sub(LOG_LINES_MAX);
        Ok(Json(PluginLogs {
            logs: logs
                .into_iter()
                .skip(skip)
                .map(|l| LogLine {
                    level: serde_json::to_value(l.level)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_else(|| "log".into()),
                    time: l.time,
                    message: l.message,
                })
                .collect(),
        }))
    }
}
