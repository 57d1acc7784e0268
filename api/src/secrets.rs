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
use crate::types::Text;

#[derive(Object)]
pub struct SetSecret {
    /// 1 to 128 letters, digits, `_`, `.` and `-`, as the plugin reads it
    /// with `ctx.secrets.get`.
    #[oai(validator(max_length = 128, pattern = r"^[A-Za-z0-9_.\-]+$"))]
    pub key: Text,
    /// The secret, at most 8,192 characters (32 KiB of UTF-8). Write-only:
    /// it is never returned.
    #[oai(validator(max_length = 8192))]
    pub value: Text,
}

/// A secret's key, when it was last set and its revision; never its value.
#[derive(Object)]
pub struct SecretKeyView {
    pub key: String,
    pub updated_at: DateTime<Utc>,
    /// 1 when first set, +1 per change. Send it as `If-Match` to change or
    /// remove the secret only if nobody else has since.
    pub revision: u32,
}

impl From<SecretInfo> for SecretKeyView {
    fn from(s: SecretInfo) -> Self {
        Self {
            key: s.key,
            updated_at: s.updated_at,
            revision: s.revision,
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
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The plugin's id (`ins_…`).
        id: Path<String>,
        /// Change the secret only if it is still at this `revision` (as
        /// listed, e.g. `"2"`); otherwise 412 and nothing changes.
        #[oai(
            name = "If-Match",
            validator(pattern = r#"^("[0-9]{1,9}"|[0-9]{1,9})$"#)
        )]
        if_match: Header<Option<String>>,
        body: Json<SetSecret>,
    ) -> Result<Json<SecretKeyView>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Admin)?;
        let info = state
            .engine
            .set_secret_if(
                &ctx.tenant,
                &plugin_id(&id)?,
                &body.key,
                &body.value,
                if_match.as_deref().map(crate::types::revision_of),
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
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
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
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The plugin's id (`ins_…`).
        id: Path<String>,
        /// The secret's key.
        key: Path<String>,
        /// Remove it only if it is still at this `revision`; otherwise 412.
        #[oai(
            name = "If-Match",
            validator(pattern = r#"^("[0-9]{1,9}"|[0-9]{1,9})$"#)
        )]
        if_match: Header<Option<String>>,
    ) -> Result<RemoveSecretResponse, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Admin)?;
        let if_revision = if_match.as_deref().map(crate::types::revision_of);
        state
            .engine
            .remove_secret_if(
                &ctx.tenant,
                &plugin_id(&id)?,
                &key,
                if_revision,
                ctx.principal,
            )
            .await?;
        Ok(RemoveSecretResponse::Removed)
    }
}
