//! Write-only tenant secrets, the values webhooks reference as
//! `${SECRET:NAME}`: `PUT /api/secrets/{key} {value}`, `GET /api/secrets`
//! (keys and update times only), `DELETE /api/secrets/{key}`. No endpoint
//! ever returns a value; the log holds only AES-SIV ciphertext (the same
//! platform key and store as plugin secrets, bound to tenant and key).

use chrono::Utc;
use extensor_actors::webhooks::secrets::TenantSecrets;
use extensor_core::event::EventMeta;
use extensor_core::installation::secret_key_problem;
use extensor_core::role::Role;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::auth::{BearerAuth, TenantCtx};
use crate::error::ApiError;
use crate::ratelimit::RateClass;
use crate::secrets::{SecretKeyList, SecretKeyView};
use crate::state::{Feature, State};
use crate::tags::ApiTags;
use crate::types::Text;

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct SecretValue {
    /// The secret, 1 to 8,192 characters (32 KiB of UTF-8). Write-only: it
    /// is never returned.
    #[oai(validator(min_length = 1, max_length = 8192))]
    pub value: Text,
}

#[derive(ApiResponse)]
pub enum RemoveTenantSecretResponse {
    /// The secret is gone (webhooks that reference it fail their next
    /// attempt after they restart, naming it).
    #[oai(status = 204)]
    Removed,
}

/// Admission for tenant secrets: their one consumer is webhooks-as-code, so
/// the webhooks switch governs them.
fn admit(
    state: &State<'_>,
    auth: &BearerAuth,
    tenant: &Option<String>,
    min: Role,
) -> Result<TenantCtx, ApiError> {
    state.features.require(Feature::Webhooks)?;
    state.tenant_access(auth, tenant, min, RateClass::Management)
}

fn secrets(state: &State<'_>) -> TenantSecrets {
    TenantSecrets {
        store: state.store.clone(),
        secret_box: state.engine.secret_box().clone(),
    }
}

fn check_key(key: &str) -> Result<(), ApiError> {
    match secret_key_problem(key) {
        Some(reason) => Err(ApiError::invalid_field("path:key", reason)),
        None => Ok(()),
    }
}

pub struct TenantSecretsApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Secrets")]
impl TenantSecretsApi {
    /// Set a tenant secret (write-only), for `${SECRET:KEY}` in webhooks
    #[oai(
        path = "/secrets/:key",
        method = "put",
        operation_id = "setTenantSecret"
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
        /// 1 to 128 letters, digits, `_`, `.` and `-`, as webhooks reference
        /// it: `${SECRET:KEY}`.
        #[oai(validator(max_length = 128, pattern = r"^[A-Za-z0-9_.\-]+$"))]
        key: Path<String>,
        body: Json<SecretValue>,
    ) -> Result<Json<SecretKeyView>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Admin)?;
        check_key(&key)?;
        // 1 to 8,192 characters (the validator): within the store's
        // SECRET_PLAINTEXT_BYTES_MAX of UTF-8.
        let meta = EventMeta::new(Some(ctx.tenant.clone()), ctx.principal.clone());
        secrets(&state)
            .set(&ctx.tenant, &key, &body.value, &meta)
            .await?;
        let (updated_at, revision) = secrets(&state)
            .keys(&ctx.tenant)
            .await?
            .into_iter()
            .find(|(k, _, _)| *k == *key)
            .map_or_else(|| (Utc::now(), 1), |(_, at, revision)| (at, revision));
        Ok(Json(SecretKeyView {
            key: key.0,
            updated_at,
            revision,
        }))
    }

    /// List the tenant's secret keys (never values)
    #[oai(path = "/secrets", method = "get", operation_id = "listTenantSecrets")]
    async fn list(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
    ) -> Result<Json<SecretKeyList>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Viewer)?;
        let keys = secrets(&state).keys(&ctx.tenant).await?;
        Ok(Json(SecretKeyList {
            secrets: keys
                .into_iter()
                .map(|(key, updated_at, revision)| SecretKeyView {
                    key,
                    updated_at,
                    revision,
                })
                .collect(),
        }))
    }

    /// Remove a tenant secret
    #[oai(
        path = "/secrets/:key",
        method = "delete",
        operation_id = "removeTenantSecret"
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
        /// The secret's key (1 to 128 letters, digits, `_`, `.` and `-`).
        #[oai(validator(max_length = 128, pattern = r"^[A-Za-z0-9_.\-]+$"))]
        key: Path<String>,
    ) -> Result<RemoveTenantSecretResponse, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Admin)?;
        if secret_key_problem(&key).is_some() {
            return Err(ApiError::not_found("secret", &key));
        }
        let meta = EventMeta::new(Some(ctx.tenant.clone()), ctx.principal.clone());
        secrets(&state).remove(&ctx.tenant, &key, &meta).await?;
        Ok(RemoveTenantSecretResponse::Removed)
    }
}
