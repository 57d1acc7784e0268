//! `POST /api/tokens`, `GET /api/tokens`, `DELETE /api/tokens/{id}`: a
//! tenant's API tokens (owner and admin). The token itself appears only in
//! the response that issues it; only its hash is stored.

use chrono::{DateTime, Utc};
use extensor_core::ids::TokenId;
use extensor_core::role::Role;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::auth::BearerAuth;
use crate::directory::TokenEntry;
use crate::error::ApiError;
use crate::ratelimit::RateClass;
use crate::state::State;
use crate::tags::ApiTags;
use crate::tenancy::{self, IssuedToken};
use crate::tenants::tenancy_error;
use crate::types::{RoleName, Text};

#[derive(Object)]
pub struct CreateToken {
    /// What the token is for, 1 to 100 characters, not all white space.
    #[oai(validator(
        max_length = 100,
        pattern = r"[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    ))]
    pub name: Text,
    /// At most the caller's own role.
    pub role: RoleName,
    /// When the token stops working; never, if absent.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token just issued. `token` is shown only in this response.
#[derive(Object)]
pub struct IssuedTokenView {
    pub id: String,
    /// The bearer token. Store it now: it cannot be read again.
    pub token: String,
    pub name: String,
    pub role: RoleName,
    pub issued_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<IssuedToken> for IssuedTokenView {
    fn from(t: IssuedToken) -> Self {
        Self {
            id: t.token_id.to_string(),
            token: t.token,
            name: t.name,
            role: t.role.into(),
            issued_at: t.issued_at,
            expires_at: t.expires_at,
        }
    }
}

/// A token as listed: never its secret.
#[derive(Object)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: RoleName,
    pub issued_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

impl From<TokenEntry> for TokenView {
    fn from(t: TokenEntry) -> Self {
        Self {
            id: t.token_id.to_string(),
            name: t.name,
            role: t.role.into(),
            issued_at: t.issued_at,
            expires_at: t.expires_at,
            revoked: t.revoked,
        }
    }
}

#[derive(Object)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
}

#[derive(ApiResponse)]
pub enum CreateTokenResponse {
    /// The token was issued.
    #[oai(status = 201)]
    Created(Json<IssuedTokenView>),
}

#[derive(ApiResponse)]
pub enum RevokeTokenResponse {
    /// The token is revoked (revoking twice is fine).
    #[oai(status = 204)]
    Revoked,
}

pub struct TokensApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Tokens")]
impl TokensApi {
    /// Issue a token in the caller's tenant
    #[oai(path = "/tokens", method = "post", operation_id = "createToken")]
    async fn create(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        body: Json<CreateToken>,
    ) -> Result<CreateTokenResponse, ApiError> {
        let ctx = state.tenant_access(&auth, &tenant, Role::Admin, RateClass::Management)?;
        let role: Role = body.role.into();
        if role > ctx.role {
            return Err(ApiError::forbidden(format!(
                "a {} cannot issue a {role} token",
                ctx.role
            )));
        }
        if body.expires_at.is_some_and(|e| e <= Utc::now()) {
            return Err(ApiError::invalid_field(
                "$.expires_at",
                "must be in the future",
            ));
        }
        let issued = tenancy::issue_token(
            state.store.as_ref(),
            &state.directory,
            &ctx.tenant,
            body.0.name.0,
            role,
            body.0.expires_at,
            ctx.principal,
        )
        .await
        .map_err(|e| match tenancy_error(e) {
            ApiError::Unprocessable(p) if p.0.errors.iter().any(|f| f.path == "$.name") => {
                ApiError::Unprocessable(p)
            }
            other => other,
        })?;
        Ok(CreateTokenResponse::Created(Json(issued.into())))
    }

    /// List the tenant's tokens (never their secrets)
    #[oai(path = "/tokens", method = "get", operation_id = "listTokens")]
    async fn list(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
    ) -> Result<Json<TokenList>, ApiError> {
        let ctx = state.tenant_access(&auth, &tenant, Role::Admin, RateClass::Management)?;
        let tokens = state
            .directory
            .tokens_of(&ctx.tenant)
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Json(TokenList { tokens }))
    }

    /// Revoke a token
    #[oai(path = "/tokens/:id", method = "delete", operation_id = "revokeToken")]
    async fn revoke(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The token's id (`tok_…`).
        id: Path<String>,
    ) -> Result<RevokeTokenResponse, ApiError> {
        let ctx = state.tenant_access(&auth, &tenant, Role::Admin, RateClass::Management)?;
        let token_id: TokenId = id.parse().map_err(|_| ApiError::not_found("token", &id))?;
        let known = state
            .directory
            .tokens_of(&ctx.tenant)
            .iter()
            .any(|t| t.token_id == token_id);
        if !known {
            return Err(ApiError::not_found("token", &id));
        }
        tenancy::revoke_token(
            state.store.as_ref(),
            &state.directory,
            &ctx.tenant,
            token_id,
            ctx.principal,
        )
        .await
        .map_err(tenancy_error)?;
        Ok(RevokeTokenResponse::Revoked)
    }
}
