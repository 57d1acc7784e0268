//! Write-only plugin secrets: `POST /api/plugins/{id}/secrets {key, value}`,
//! `GET /api/plugins/{id}/secrets` (keys and update times only),
//! `DELETE /api/plugins/{id}/secrets/{key}`. No endpoint ever returns a
//! value; the log holds only AES-SIV ciphertext.

use chrono::{DateTime, Utc};
use extensor_actors::engine::SecretInfo;
use extensor_core::role::Role;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::auth::BearerAuth;
use crate::error::ApiError;
use crate::plugins::{admit, plugin_id};
use crate::state::State;
use crate::tags::ApiTags;

#[derive(Object)]
pub struct SetSecret {
    /// `A-Z`, `0-9` and `_`, as the plugin reads it with `ctx.secrets.get`.
    pub key: String,
    /// The secret. Write-only: it is never returned.
    pub value: String,
}

/// A secret's key and when it was last set; never its value.
#[derive(Object)]
pub struct SecretKeyView {
    pub key: String,
    pub updated_at: DateTime<Utc>,
}

impl From<SecretInfo> for SecretKeyView {
    fn from(s: SecretInfo) -> Self {
        Self {
            key: s.key,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Object)]
pub struct SecretKeyList {
    pub secrets: Vec<SecretKeyView>,
}

#[derive(ApiResponse)]
pub enum RemoveSecretResponse {
    /// The secret is gone.
    #[oai(status = 204)]
    Removed,
}

pub struct SecretsApi;

#[OpenApi(prefix_path = "/api/plugins", tag = "ApiTags::Secrets")]
impl SecretsApi {
    /// Set a plugin secret (write-only)
    #[oai(
        path = "/:id/secrets",
        method = "post",
        operation_id = "setPluginSecret"
    )]
    async fn set(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug).
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<String>,
        /// The plugin's id (`ins_…`).
        id: Path<String>,
        body: Json<SetSecret>,
    ) -> Result<Json<SecretKeyView>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Admin)?;
        let info = state
            .engine
            .set_secret(
                &ctx.tenant,
                &plugin_id(&id)?,
                &body.key,
                &body.value,
                ctx.principal,
            )
            .await?;
        Ok(Json(info.into()))
    }

    /// List a plugin's secret keys (never values)
    #[oai(
        path = "/:id/secrets",
        method = "get",
        operation_id = "listPluginSecrets"
    )]
    async fn list(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug).
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<String>,
        /// The plugin's id (`ins_…`).
        id: Path<String>,
    ) -> Result<Json<SecretKeyList>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Viewer)?;
        let keys = state
            .engine
            .secret_keys(&ctx.tenant, &plugin_id(&id)?)
            .await?;
        Ok(Json(SecretKeyList {
            secrets: keys.into_iter().map(Into::into).collect(),
        }))
    }

    /// Remove a plugin secret
    #[oai(
        path = "/:id/secrets/:key",
        method = "delete",
        operation_id = "removePluginSecret"
    )]
    async fn remove(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug).
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<String>,
        /// The plugin's id (`ins_…`).
        id: Path<String>,
        /// The secret's key.
        key: Path<String>,
    ) -> Result<RemoveSecretResponse, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Admin)?;
        state
            .engine
            .remove_secret(&ctx.tenant, &plugin_id(&id)?, &key, ctx.principal)
            .await?;
        Ok(RemoveSecretResponse::Removed)
    }
}
