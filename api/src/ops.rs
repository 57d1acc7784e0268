//! Operations on the supervision tree (platform admin): `GET /api/ops/tree`,
//! `GET /api/ops/cluster` (the nodes on a shared store and their tenants),
//! `POST /api/ops/actors/{path}/restart` (the tree path URL-encoded as one
//! segment, e.g. `%2Ftenants%2Ften_…%2Finstallations%2Fins_…`), and stopping
//! or resuming a whole tenant; with `EXTENSOR_FAULT_DRILLS=true`, the fault
//! drill `POST /api/ops/actors/{path}/fault-drill` (panics an aggregate
//! actor once, so operators and tests see the supervisor's restarts and
//! the `failed` status on a real server).

use chrono::{DateTime, Utc};
use extensor_actors::ActorInfo;
use extensor_core::ids::TenantId;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::auth::BearerAuth;
use crate::error::ApiError;
use crate::state::{AppState, State};
use crate::tags::ApiTags;

/// Tree paths are short: `/tenants/<id>/installations/<id>`.
const ACTOR_PATH_BYTES_MAX: usize = 256;

/// One actor of the supervision tree.
#[derive(Object)]
pub struct ActorView {
    /// `/tenants/<tenant>`, `/tenants/<tenant>/installations/<ins>`, …
    pub path: String,
    /// `tenant_supervisor`, `tenant`, `installation`, or a service name.
    pub kind: String,
    pub tenant: Option<String>,
    /// The tenant's slug, so an operator finds "acme" without a lookup.
    pub tenant_slug: Option<String>,
    /// For an installation's actor, its plugin's slug.
    pub plugin_slug: Option<String>,
    /// `starting`, `running`, `passivated`, `restarting`, `failed`, `stopped`.
    pub status: String,
    pub started_at: Option<DateTime<Utc>>,
    /// Seconds since it (re)started.
    pub uptime_s: Option<f64>,
    pub restarts: u32,
    pub queue_depth: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

fn label<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl From<ActorInfo> for ActorView {
    fn from(a: ActorInfo) -> Self {
        let now = Utc::now();
        Self {
            kind: label(&a.kind),
            status: label(&a.status),
            uptime_s: a
                .started_at
                .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1e3),
            path: a.path,
            tenant: a.tenant,
            tenant_slug: None,
            plugin_slug: None,
            started_at: a.started_at,
            restarts: a.restarts,
            queue_depth: a.queue_depth as u64,
            last_error: a.last_error,
            last_error_at: a.last_error_at,
        }
    }
}

#[derive(Object)]
pub struct TreeView {
    /// Every actor, ordered by path (a parent before its children).
    pub actors: Vec<ActorView>,
}

#[derive(ApiResponse)]
pub enum OpsDone {
    /// Done.
    #[oai(status = 204)]
    Done,
}

pub struct OpsApi;

#[OpenApi(prefix_path = "/api/ops", tag = "ApiTags::Ops")]
impl OpsApi {
    /// A live snapshot of the supervision tree
    #[oai(path = "/tree", method = "get", operation_id = "opsTree")]
    async fn tree(&self, state: State<'_>, auth: BearerAuth) -> Result<Json<TreeView>, ApiError> {
        state.platform_admin(&auth)?;
        Ok(Json(tree_view(&state).await?))
    }

    /// The nodes sharing this server's store and the tenants each owns
    ///
    /// On the embedded store: this node alone, owning every tenant.
    #[oai(path = "/cluster", method = "get", operation_id = "opsCluster")]
    async fn cluster(
        &self,
        state: State<'_>,
        auth: BearerAuth,
    ) -> Result<Json<crate::cluster::ClusterView>, ApiError> {
        state.platform_admin(&auth)?;
        Ok(Json(crate::cluster::view(&state).await?))
    }

    /// Restart an actor (typically a failed one) by its tree path
    #[oai(
        path = "/actors/:path/restart",
        method = "post",
        operation_id = "restartActor"
    )]
    async fn restart(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The actor's tree path, URL-encoded as one segment.
        path: Path<String>,
    ) -> Result<OpsDone, ApiError> {
        state.platform_admin(&auth)?;
        if path.is_empty() || path.len() > ACTOR_PATH_BYTES_MAX {
            return Err(ApiError::not_found("actor", &path));
        }
        state.engine.restart_actor(&path).await?;
        Ok(OpsDone::Done)
    }

    /// Panic an installation's actor once (a fault drill; needs
    /// `EXTENSOR_FAULT_DRILLS=true`)
    ///
    /// The supervisor restarts it with backoff; drills past the
    /// `RestartPolicy`'s failures mark it `failed` (503 `actor_failed` here
    /// from then on) until an operator restarts it.
    #[oai(
        path = "/actors/:path/fault-drill",
        method = "post",
        operation_id = "faultDrill"
    )]
    async fn fault_drill(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The installation actor's tree path
        /// (`/tenants/<ten_…>/installations/<ins_…>`), URL-encoded as one segment.
        path: Path<String>,
    ) -> Result<OpsDone, ApiError> {
        state.platform_admin(&auth)?;
        if !state.fault_drills {
            return Err(ApiError::feature_disabled("EXTENSOR_FAULT_DRILLS"));
        }
        let not_found = || ApiError::not_found("actor", &path);
        let rest = path.strip_prefix("/tenants/").ok_or_else(not_found)?;
        let (tenant, ins) = match rest.split('/').collect::<Vec<_>>().as_slice() {
            [t, "installations", i] => (
                known_tenant(&state, t).map_err(|_| not_found())?,
                crate::plugins::plugin_id(i).map_err(|_| not_found())?,
            ),
            _ => return Err(not_found()),
        };
        let handle = state.engine.installation_handle(&tenant, &ins).await?;
        handle.panic()?;
        Ok(OpsDone::Done)
    }

    /// Stop every actor of a tenant; its requests are refused until resumed
    #[oai(
        path = "/tenants/:id/stop",
        method = "post",
        operation_id = "stopTenant"
    )]
    async fn stop_tenant(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant's id (`ten_…`).
        id: Path<String>,
    ) -> Result<OpsDone, ApiError> {
        state.platform_admin(&auth)?;
        let tenant = known_tenant(&state, &id)?;
        state.engine.stop_tenant(&tenant).await?;
        Ok(OpsDone::Done)
    }

    /// Resume a stopped tenant
    #[oai(
        path = "/tenants/:id/resume",
        method = "post",
        operation_id = "resumeTenant"
    )]
    async fn resume_tenant(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant's id (`ten_…`).
        id: Path<String>,
    ) -> Result<OpsDone, ApiError> {
        state.platform_admin(&auth)?;
        let tenant = known_tenant(&state, &id)?;
        if state
            .directory
            .tenant(&tenant)
            .is_some_and(|t| t.status == extensor_core::tenant::TenantStatus::Suspended)
        {
            return Err(ApiError::conflict(
                "tenant_suspended",
                "the tenant is suspended; `POST /api/tenants/{id}/resume` lifts it",
            ));
        }
        state.engine.resume_tenant(&tenant).await?;
        Ok(OpsDone::Done)
    }
}

/// The tree with every actor's slugs: what `GET /api/ops/tree` answers and
/// `GET /api/ops/tree/stream` sends.
pub async fn tree_view(state: &AppState) -> Result<TreeView, ApiError> {
    let tree = state.engine.tree().await?;
    let mut actors: Vec<ActorView> = tree.actors.into_iter().map(Into::into).collect();
    for a in &mut actors {
        label_slugs(state, a).await;
    }
    Ok(TreeView { actors })
}

/// Fills the tenant and plugin slugs from the directory and the
/// installation index (both in memory).
async fn label_slugs(state: &AppState, a: &mut ActorView) {
    let Some(tenant) = a.tenant.as_deref().and_then(|t| t.parse::<TenantId>().ok()) else {
        return;
    };
    a.tenant_slug = state.directory.tenant(&tenant).map(|t| t.slug);
    let installation = a
        .path
        .split_once("/installations/")
        .and_then(|(_, id)| id.parse::<extensor_core::ids::InstallationId>().ok());
    if let Some(id) = installation {
        a.plugin_slug = state
            .engine
            .installation(&tenant, &id)
            .await
            .ok()
            .map(|v| v.slug.to_string());
    }
}

fn known_tenant(state: &State<'_>, id: &str) -> Result<TenantId, ApiError> {
    id.parse::<TenantId>()
        .ok()
        .filter(|t| state.directory.tenant(t).is_some())
        .ok_or_else(|| ApiError::not_found("tenant", id))
}
