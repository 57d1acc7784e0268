//! `GET /api/session`: who the caller's token is, so a client (the
//! console) can show only the actions its role may take. The server still
//! checks every operation; this only describes.

use extensor_core::role::Role;
use poem_openapi::param::Header;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::auth::BearerAuth;
use crate::error::ApiError;
use crate::ratelimit::RateClass;
use crate::state::State;
use crate::tags::ApiTags;

/// The caller, as the server sees its token.
#[derive(Object)]
pub struct SessionView {
    /// True for the platform-admin token.
    pub platform_admin: bool,
    /// With `X-Tenant-Slug`: the tenant's id (`ten_…`).
    pub tenant: Option<String>,
    /// With `X-Tenant-Slug`: its slug.
    pub slug: Option<String>,
    /// With `X-Tenant-Slug`: `viewer`, `developer`, `admin` or `owner`
    /// (the platform admin acts as `owner` in every tenant).
    pub role: Option<String>,
}

pub struct SessionApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Status")]
impl SessionApi {
    /// Who this token is: platform admin, or its role in a tenant
    #[oai(path = "/session", method = "get", operation_id = "getSession")]
    async fn session(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to describe the token in (its slug). A tenant token
        /// names its tenant, so it may leave this out; the platform-admin
        /// token without it is described as the platform admin.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
    ) -> Result<Json<SessionView>, ApiError> {
        let platform_admin = state.platform_admin(&auth).is_ok();
        if tenant.0.is_none() && platform_admin {
            return Ok(Json(SessionView {
                platform_admin,
                tenant: None,
                slug: None,
                role: None,
            }));
        }
        // A tenant token names its tenant, so the slug may be left out.
        let ctx = state.tenant_access(&auth, &tenant.0, Role::Viewer, RateClass::Management)?;
        Ok(Json(SessionView {
            platform_admin,
            tenant: Some(ctx.tenant.to_string()),
            slug: Some(ctx.slug),
            role: Some(ctx.role.as_str().to_owned()),
        }))
    }
}
