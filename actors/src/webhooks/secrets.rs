//! Tenant secrets (`${SECRET:NAME}`) in the tenant aggregate, encrypted
//! with the platform [`SecretBox`]: set, remove, list keys, and the
//! [`SecretSource`] the webhook engine resolves references with. The log
//! holds only ciphertext; values are decrypted when a webhook (re)starts.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use extensor_core::aggregate::{self, AsOf, SnapshotPolicy};
use extensor_core::event::{EventMeta, StreamId};
use extensor_core::ids::TenantId;
use extensor_core::installation::SecretSet;
use extensor_core::secrets::SecretBox;
use extensor_core::store::EventStore;
use extensor_core::tenant::{Tenant, TenantCommand, secret_context};
use futures::future::BoxFuture;

use super::SecretSource;

/// Tenant secrets on the store, decrypted with the platform key.
#[derive(Clone)]
pub struct TenantSecrets {
    pub store: Arc<dyn EventStore>,
    pub secret_box: SecretBox,
}

impl TenantSecrets {
    /// Encrypts `value` and records it (replacing any earlier value).
    pub async fn set(
        &self,
        tenant: &TenantId,
        key: &str,
        value: &str,
        meta: &EventMeta,
    ) -> Result<(), extensor_core::Error> {
        let ciphertext = self
            .secret_box
            .encrypt(&secret_context(tenant, key), value)?;
        let cmd = TenantCommand::SetSecret(SecretSet {
            key: key.to_owned(),
            ciphertext,
            updated_at: Utc::now(),
        });
        aggregate::execute::<Tenant>(
            &*self.store,
            &StreamId::tenant(tenant),
            &cmd,
            meta,
            SnapshotPolicy::DEFAULT,
        )
        .await
        .map(drop)
    }

    pub async fn remove(
        &self,
        tenant: &TenantId,
        key: &str,
        meta: &EventMeta,
    ) -> Result<(), extensor_core::Error> {
        let cmd = TenantCommand::RemoveSecret {
            key: key.to_owned(),
        };
        aggregate::execute::<Tenant>(
            &*self.store,
            &StreamId::tenant(tenant),
            &cmd,
            meta,
            SnapshotPolicy::DEFAULT,
        )
        .await
        .map(drop)
    }

    /// Keys, when each was last set and its revision; never a value.
    pub async fn keys(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(String, DateTime<Utc>, u32)>, extensor_core::Error> {
        let t = aggregate::load::<Tenant>(&*self.store, &StreamId::tenant(tenant), AsOf::Latest)
            .await?;
        Ok(t.state
            .secrets
            .iter()
            .map(|(k, s)| (k.clone(), s.updated_at, s.revision))
            .collect())
    }

    async fn decrypted(
        &self,
        tenant: &TenantId,
    ) -> Result<BTreeMap<String, String>, extensor_core::Error> {
        let t = aggregate::load::<Tenant>(&*self.store, &StreamId::tenant(tenant), AsOf::Latest)
            .await?;
        let mut out = BTreeMap::new();
        for (key, record) in &t.state.secrets {
            out.insert(
                key.clone(),
                self.secret_box
                    .decrypt(&secret_context(tenant, key), &record.ciphertext)?,
            );
        }
        Ok(out)
    }
}

impl SecretSource for TenantSecrets {
    fn secrets<'a>(
        &'a self,
        tenant: &'a TenantId,
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, String>> {
        Box::pin(async move { self.decrypted(tenant).await.map_err(|e| e.to_string()) })
    }
}
