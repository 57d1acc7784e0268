//! Authentication and RBAC. Every protected operation takes the bearer
//! token ([`BearerAuth`], the OpenAPI security scheme `bearerAuth`) and, for
//! tenant operations, the optional `X-Tenant-Slug` header, then asks
//! [`AppState::tenant_access`] or [`AppState::platform_admin`] for the
//! minimum role it needs. The answer is a [`TenantCtx`]: every read and
//! write below it is scoped to `ctx.tenant`.
//!
//! Rules (docs/API.md has the full matrix):
//! - unknown, expired or revoked token → 401 `unauthorized`;
//! - a tenant token acts in its own tenant; with another tenant's slug (or
//!   an unknown slug) → 403 `wrong_tenant`, the same answer either way;
//! - the platform-admin token without `X-Tenant-Slug` on a tenant operation
//!   → 403 `tenant_required`;
//! - a role below the operation's minimum → 403 `forbidden`;
//! - a suspended tenant → 403 `tenant_suspended`;
//! - the platform-admin token acts as owner in any existing tenant.

use chrono::Utc;
use extensor_core::event::Principal;
use extensor_core::ids::TenantId;
use extensor_core::role::Role;
use extensor_core::tenant::TenantStatus;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use crate::directory::{TenantEntry, TokenOwner};
use crate::error::ApiError;
use crate::ratelimit::RateClass;
use crate::state::AppState;

/// Header naming the tenant a request acts in.
pub const TENANT_HEADER: &str = "X-Tenant-Slug";

/// `Authorization: Bearer <token>`: a tenant token (`ext_…`, with a role)
/// or the platform-admin token.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", rename = "bearerAuth")]
pub struct BearerAuth(pub Bearer);

/// A caller admitted into a tenant.
#[derive(Clone, Debug)]
pub struct TenantCtx {
    pub tenant: TenantId,
    pub slug: String,
    pub role: Role,
    /// Recorded on every event the request causes.
    pub principal: Principal,
}

impl AppState {
    /// Admits the caller into its tenant with at least `min`, charging one
    /// call to the tenant's `class` budget. A tenant token names its tenant,
    /// so `slug` (the `X-Tenant-Slug` header) is optional for it, and when
    /// given must agree; the platform-admin token must name the tenant.
    pub fn tenant_access(
        &self,
        auth: &BearerAuth,
        slug: &Option<String>,
        min: Role,
        class: RateClass,
    ) -> Result<TenantCtx, ApiError> {
        let owner = self.token_owner(auth)?;
        let (tenant, role, principal) = match owner {
            TokenOwner::PlatformAdmin => {
                let slug = slug.as_deref().ok_or_else(|| {
                    ApiError::forbidden(format!(
                        "the platform-admin token acts in a tenant only when {TENANT_HEADER} names it"
                    ))
                    .with_code("tenant_required")
                })?;
                let t = self
                    .directory
                    .tenant_by_slug(slug)
                    .ok_or_else(|| ApiError::not_found("tenant", slug))?;
                (t, Role::Owner, Principal::platform_admin())
            }
            TokenOwner::Tenant(tok) => {
                let t = self
                    .directory
                    .tenant(&tok.tenant)
                    .filter(|t| slug.as_deref().is_none_or(|s| t.slug == s))
                    .ok_or_else(|| {
                        ApiError::forbidden(format!(
                            "this token is not valid for tenant `{}`",
                            slug.as_deref()
                                .unwrap_or_default()
                                .chars()
                                .take(80)
                                .collect::<String>()
                        ))
                        .with_code("wrong_tenant")
                    })?;
                (t, tok.role, Principal::token(&tok.token_id))
            }
        };
        self.tenant_serves(&tenant)?;
        if role < min {
            return Err(ApiError::forbidden(format!(
                "this operation needs role {min} or stronger; the token has {role}"
            )));
        }
        self.limiter
            .check(&tenant.id, class)
            .map_err(|wait_s| ApiError::rate_limited(class.as_str(), wait_s))?;
        Ok(TenantCtx {
            tenant: tenant.id,
            slug: tenant.slug,
            role,
            principal,
        })
    }

    /// Refuses every request for a suspended tenant (`403
    /// tenant_suspended`) or one an operator stopped (`503
    /// tenant_stopped`): management calls, publishes, routes (public ones
    /// too), filters and test events alike.
    pub fn tenant_serves(&self, tenant: &TenantEntry) -> Result<(), ApiError> {
        if tenant.status == TenantStatus::Suspended {
            return Err(
                ApiError::forbidden(format!("tenant `{}` is suspended", tenant.slug))
                    .with_code("tenant_suspended"),
            );
        }
        if self.engine.tenant_stopped(&tenant.id) {
            return Err(ApiError::unavailable(
                "tenant_stopped",
                format!("tenant `{}` is stopped by an operator", tenant.slug),
            ));
        }
        Ok(())
    }

    /// Admits only the platform-admin token.
    pub fn platform_admin(&self, auth: &BearerAuth) -> Result<Principal, ApiError> {
        match self.token_owner(auth)? {
            TokenOwner::PlatformAdmin => Ok(Principal::platform_admin()),
            TokenOwner::Tenant(_) => Err(ApiError::forbidden(
                "this operation needs the platform-admin token",
            )),
        }
    }

    fn token_owner(&self, auth: &BearerAuth) -> Result<TokenOwner, ApiError> {
        let owner = self
            .directory
            .lookup(&auth.0.token)
            .ok_or_else(|| ApiError::unauthorized("unknown token"))?;
        if let TokenOwner::Tenant(t) = &owner {
            if t.revoked {
                return Err(ApiError::unauthorized("the token was revoked"));
            }
            if t.expires_at.is_some_and(|e| e <= Utc::now()) {
                return Err(ApiError::unauthorized("the token has expired"));
            }
        }
        Ok(owner)
    }
}
