//! `POST /api/tenants`, `GET /api/tenants`: tenants, for the platform admin.
//! Creating a tenant returns its first owner token, shown this once.

use chrono::{DateTime, Utc};
use extensor_core::manifest::Slug;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::auth::BearerAuth;
use crate::directory::TenantEntry;
use crate::error::ApiError;
use crate::state::State;
use crate::tags::ApiTags;
use crate::tenancy::{self, TenancyError};
use crate::tokens::IssuedTokenView;
use crate::types::Text;

#[derive(Object)]
pub struct CreateTenant {
    /// 2 to 64 lowercase letters, digits and single dashes, starting with a
    /// letter and not ending with a dash.
    #[oai(validator(
        min_length = 2,
        max_length = 64,
        pattern = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
    ))]
    pub slug: Text,
    /// Display name, 1 to 200 characters, not all white space.
    #[oai(validator(
        max_length = 200,
        pattern = r"[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    ))]
    pub name: Text,
}

#[derive(Object)]
pub struct TenantView {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

impl From<TenantEntry> for TenantView {
    fn from(t: TenantEntry) -> Self {
        Self {
            id: t.id.to_string(),
            slug: t.slug,
            name: t.name,
            status: t.status.as_str().to_owned(),
            created_at: t.created_at,
        }
    }
}

#[derive(Object)]
pub struct CreatedTenant {
    pub tenant: TenantView,
    /// The first owner token. It is shown only in this response.
    pub owner_token: IssuedTokenView,
}

/// Why the tenant is suspended (kept in the log).
#[derive(Object)]
pub struct SuspendTenant {
    /// 1 to 1000 characters, not only whitespace.
    #[oai(validator(
        max_length = 1000,
        pattern = r"[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    ))]
    pub reason: Text,
}

#[derive(Object)]
pub struct TenantList {
    pub tenants: Vec<TenantView>,
}

#[derive(ApiResponse)]
pub enum CreateTenantResponse {
    /// The tenant was created.
    #[oai(status = 201)]
    Created(Json<CreatedTenant>),
}

pub struct TenantsApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Tenants")]
impl TenantsApi {
    /// Create a tenant and its first owner token
    #[oai(path = "/tenants", method = "post", operation_id = "createTenant")]
    async fn create(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        body: Json<CreateTenant>,
    ) -> Result<CreateTenantResponse, ApiError> {
        let principal = state.platform_admin(&auth)?;
        let slug: Slug = body
            .slug
            .parse()
            .map_err(|e: extensor_core::Error| ApiError::invalid_field("$.slug", e.to_string()))?;
        let created = tenancy::create_tenant(
            state.store.as_ref(),
            &state.directory,
            slug,
            body.0.name.0,
            principal,
        )
        .await
        .map_err(tenancy_error)?;
        let (tenant_id, owner) = created;
        let tenant = state
            .directory
            .tenant(&tenant_id)
            .ok_or_else(|| ApiError::internal("the new tenant is missing from the directory"))?;
        Ok(CreateTenantResponse::Created(Json(CreatedTenant {
            tenant: tenant.into(),
            owner_token: owner.into(),
        })))
    }

    /// List every tenant
    #[oai(path = "/tenants", method = "get", operation_id = "listTenants")]
    async fn list(&self, state: State<'_>, auth: BearerAuth) -> Result<Json<TenantList>, ApiError> {
        state.platform_admin(&auth)?;
        let tenants = state
            .directory
            .tenants()
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Json(TenantList { tenants }))
    }

    /// Suspend a tenant: it serves nothing and its hooks, jobs and webhooks pause
    #[oai(
        path = "/tenants/:id/suspend",
        method = "post",
        operation_id = "suspendTenant"
    )]
    async fn suspend(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant's id (`ten_…`).
        id: poem_openapi::param::Path<String>,
        body: Json<SuspendTenant>,
    ) -> Result<Json<TenantView>, ApiError> {
        let principal = state.platform_admin(&auth)?;
        let tenant = known(&state, &id)?;
        // Durable first: a crash after it leaves the tenant suspended, and
        // the next start stops it before anything of it runs.
        tenancy::set_suspended(
            state.store.as_ref(),
            &state.directory,
            &tenant.id,
            Some(body.0.reason.0),
            principal,
        )
        .await
        .map_err(tenancy_error)?;
        state.engine.stop_tenant(&tenant.id).await?;
        Ok(Json(known(&state, &id)?.into()))
    }

    /// Resume a suspended tenant: everything it paused continues where it stopped
    #[oai(
        path = "/tenants/:id/resume",
        method = "post",
        operation_id = "unsuspendTenant"
    )]
    async fn resume(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant's id (`ten_…`).
        id: poem_openapi::param::Path<String>,
    ) -> Result<Json<TenantView>, ApiError> {
        let principal = state.platform_admin(&auth)?;
        let tenant = known(&state, &id)?;
        tenancy::set_suspended(
            state.store.as_ref(),
            &state.directory,
            &tenant.id,
            None,
            principal,
        )
        .await
        .map_err(tenancy_error)?;
        state.engine.resume_tenant(&tenant.id).await?;
        Ok(Json(known(&state, &id)?.into()))
    }
}

/// The tenant `id` names, if it exists (another form answers 404 too).
fn known(state: &State<'_>, id: &str) -> Result<TenantEntry, ApiError> {
    id.parse::<extensor_core::ids::TenantId>()
        .ok()
        .and_then(|t| state.directory.tenant(&t))
        .ok_or_else(|| ApiError::not_found("tenant", id))
}

/// Maps tenancy failures onto problems.
pub fn tenancy_error(e: TenancyError) -> ApiError {
    match e {
        TenancyError::SlugTaken(slug) => {
            ApiError::conflict("slug_taken", format!("tenant slug `{slug}` is taken"))
        }
        TenancyError::Core(extensor_core::Error::Domain(d)) if d.code == "invalid_field" => {
            ApiError::invalid_field("$.name", d.message)
        }
        TenancyError::Core(e) => e.into(),
        e @ (TenancyError::Random(_) | TenancyError::WeakAdminToken) => {
            ApiError::internal(e.to_string())
        }
    }
}
