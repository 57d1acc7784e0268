//! Plugin lifecycle: upload (install or upgrade), enable, disable, roll
//! back, uninstall, and write-only secrets. Commands go through the
//! installation's actor (decide → append with the expected revision →
//! apply); the index is caught up right after, so the caller reads its own
//! write.

use chrono::{DateTime, Utc};
use extensor_core::event::{EventMeta, Principal};
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::installation::{InstallationCommand, InstalledVersion};
use extensor_js::Bundle;
use serde::Serialize;

use super::directory::InstallationView;
use super::runtime::secret_context;
use super::{Engine, Inner};
use crate::error::Error;
use crate::supervision::CALL_TIMEOUT_MS;
use crate::tenant_supervisor::TenantSupervisorMsg;

/// What an upload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadAction {
    /// A new installation (it starts disabled).
    Installed,
    /// A new version of an installed slug; secrets kept, the previous
    /// version kept for rollback.
    Upgraded,
    /// The identical bundle is already the current version: nothing changed.
    Unchanged,
}

#[derive(Clone, Debug, Serialize)]
pub struct UploadOutcome {
    pub installation_id: InstallationId,
    pub action: UploadAction,
    pub version: semver::Version,
    pub bundle_digest: String,
}

/// A secret's key and when it was last set; never its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretInfo {
    pub key: String,
    pub updated_at: DateTime<Utc>,
    /// 1 when first set, +1 per change: what `If-Match` names.
    pub revision: u32,
}

impl Inner {
    /// Runs a command on the installation's actor, then folds its events
    /// into the index.
    pub(crate) async fn installation_execute(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
        command: InstallationCommand,
        principal: Principal,
    ) -> Result<(), Error> {
        let meta = EventMeta::new(Some(tenant.clone()), principal);
        let handle = self.installation_handle(tenant, id).await?;
        handle.execute(command, meta, CALL_TIMEOUT_MS).await?;
        self.directory
            .catch_up(&*self.store, id)
            .await
            .map_err(|source| Error::Platform {
                what: "installation index",
                source,
            })?;
        self.ensure_scheduler(tenant).await;
        Ok(())
    }

    /// Starts the tenant's scheduler once it has an enabled installation
    /// declaring jobs (an install, enable, upgrade or roll-back may make it
    /// so); it reads the installations from the log when it starts. The
    /// command is durable already, so a failed start is logged, not
    /// returned: run-now and the jobs listing start it again.
    pub(crate) async fn ensure_scheduler(&self, tenant: &TenantId) {
        if !self.directory.has_jobs(tenant) || !self.ownership.owns(tenant) {
            // Not here: the owner's log follower starts it (`leases`).
            return;
        }
        let name = crate::scheduler::SERVICE_NAME;
        let started = self
            .supervisor_call(tenant, |reply| TenantSupervisorMsg::Service { name, reply })
            .await;
        if let Err(e) = started.and_then(|r| r) {
            tracing::warn!(tenant = %tenant, error = %e, "scheduler not started");
        }
    }

    /// The installation of this tenant, or `NotFound`.
    pub(crate) fn view(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
    ) -> Result<InstallationView, Error> {
        self.directory
            .get_for(tenant, id)
            .and_then(|k| k.view())
            .ok_or_else(|| Error::not_found("plugin", id))
    }
}

impl Engine {
    /// Validates an uploaded ZIP (archive caps, manifest, code) and installs
    /// it, or upgrades the installed plugin of the same slug. Nothing is
    /// stored when validation fails; the bundle is durable before the event
    /// naming it is appended.
    pub async fn upload_plugin(
        &self,
        tenant: &TenantId,
        zip: Vec<u8>,
        principal: Principal,
    ) -> Result<UploadOutcome, Error> {
        let inner = &self.inner;
        let _work = inner.begin()?;
        inner.existing_tenant(tenant).await?;
        let bundle = Bundle::from_zip(&zip, &inner.zip).map_err(Error::Validation)?;
        let plugin = inner
            .sandbox
            .validate(&bundle)
            .await
            .map_err(Error::Validation)?;
        let bundle_digest = inner
            .bundles
            .put(zip)
            .await
            .map_err(|source| Error::Platform {
                what: "bundle store",
                source,
            })?;
        let manifest = plugin.manifest.clone();
        let id = InstallationId::for_slug(tenant, &manifest.slug);
        let version = InstalledVersion {
            manifest,
            bundle_digest: bundle_digest.clone(),
        };
        let current = inner.directory.get_for(tenant, &id);
        let (command, action) = match &current {
            Some(k) if k.state.current.as_ref() == Some(&version) => {
                (None, UploadAction::Unchanged)
            }
            Some(_) => (
                Some(InstallationCommand::Upgrade {
                    version: version.clone(),
                }),
                UploadAction::Upgraded,
            ),
            None => (
                Some(InstallationCommand::Install {
                    installation_id: id.clone(),
                    tenant: tenant.clone(),
                    version: version.clone(),
                }),
                UploadAction::Installed,
            ),
        };
        if let Some(command) = command {
            inner
                .installation_execute(tenant, &id, command, principal)
                .await?;
        }
        Ok(UploadOutcome {
            installation_id: id,
            action,
            version: version.manifest.version,
            bundle_digest,
        })
    }

    /// One installation of this tenant.
    pub async fn installation(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
    ) -> Result<InstallationView, Error> {
        self.inner.view(tenant, id)
    }

    /// The tenant's installations, in install order.
    pub async fn installations(&self, tenant: &TenantId) -> Result<Vec<InstallationView>, Error> {
        Ok(self
            .inner
            .directory
            .for_tenant(tenant)
            .iter()
            .filter_map(|k| k.view())
            .collect())
    }

    async fn lifecycle(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
        command: InstallationCommand,
        principal: Principal,
    ) -> Result<InstallationView, Error> {
        let inner = &self.inner;
        inner.view(tenant, id)?;
        inner
            .installation_execute(tenant, id, command, principal)
            .await?;
        // A changed version or status gets a fresh isolate pool on next use.
        inner.runtimes.remove(id);
        inner.view(tenant, id)
    }

    /// Enables the plugin: its hooks run for events published from now on,
    /// its routes answer.
    pub async fn enable(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
        principal: Principal,
    ) -> Result<InstallationView, Error> {
        self.lifecycle(tenant, id, InstallationCommand::Enable, principal)
            .await
    }

    /// Disables the plugin: no hooks, routes 404, jobs paused.
    pub async fn disable(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
        principal: Principal,
    ) -> Result<InstallationView, Error> {
        self.lifecycle(tenant, id, InstallationCommand::Disable, principal)
            .await
    }

    /// Restores the version before the last upgrade (secrets are kept).
    pub async fn roll_back(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
        principal: Principal,
    ) -> Result<InstallationView, Error> {
        self.lifecycle(tenant, id, InstallationCommand::RollBack, principal)
            .await
    }

    /// Uninstalls: the installation's secrets go with its state, its files
    /// are deleted, its dispatch lane stops and its routes and schedules go
    /// (the dispatcher and the scheduler follow the installation's events).
    pub async fn uninstall(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
        principal: Principal,
    ) -> Result<(), Error> {
        let inner = &self.inner;
        inner.view(tenant, id)?;
        inner
            .installation_execute(tenant, id, InstallationCommand::Uninstall, principal)
            .await?;
        inner.runtimes.remove(id);
        let owner = extensor_core::files::FileOwner {
            tenant: tenant.as_str(),
            installation: id.as_str(),
        };
        // The uninstall is recorded; files left behind are only storage.
        if let Err(e) = inner.services.files.files().remove_all(owner).await {
            tracing::warn!(tenant = %tenant, installation = %id, error = %e, "plugin files not removed");
        }
        Ok(())
    }

    /// Sets a secret; the event holds only its AES-SIV ciphertext, sealed to
    /// this tenant, installation and key. (The brief's signature had no
    /// principal; every command records who issued it, so it takes one.)
    pub async fn set_secret(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
        key: &str,
        plaintext: &str,
        principal: Principal,
    ) -> Result<SecretInfo, Error> {
        self.set_secret_if(tenant, id, key, plaintext, None, principal)
            .await
    }

    /// As [`Engine::set_secret`], only if the key is at `if_revision`
    /// (`If-Match`); otherwise `precondition_failed`. The installation's
    /// actor decides one command at a time, so of two writers that read the
    /// same revision one succeeds and the other is refused.
    pub async fn set_secret_if(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
        key: &str,
        plaintext: &str,
        if_revision: Option<u32>,
        principal: Principal,
    ) -> Result<SecretInfo, Error> {
        let inner = &self.inner;
        inner.view(tenant, id)?;
        if let Some(reason) = extensor_core::installation::secret_key_problem(key) {
            return Err(Error::Validation(vec![extensor_core::FieldProblem::new(
                "$.key", reason,
            )]));
        }
        let ciphertext = inner
            .secret_box
            .encrypt(&secret_context(tenant, id, key), plaintext)
            .map_err(|e| {
                Error::Validation(vec![extensor_core::FieldProblem::new(
                    "$.value",
                    e.to_string(),
                )])
            })?;
        let updated_at = Utc::now();
        let command = InstallationCommand::SetSecret {
            key: key.into(),
            ciphertext,
            updated_at,
            if_revision,
        };
        inner
            .installation_execute(tenant, id, command, principal)
            .await?;
        let revision = inner
            .directory
            .get_for(tenant, id)
            .and_then(|known| known.state.secrets.get(key).map(|s| s.revision))
            .unwrap_or(1);
        Ok(SecretInfo {
            key: key.into(),
            updated_at,
            revision,
        })
    }

    /// Removes a secret; `NotFound` if there is none under `key`.
    pub async fn remove_secret(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
        key: &str,
        principal: Principal,
    ) -> Result<(), Error> {
        self.remove_secret_if(tenant, id, key, None, principal)
            .await
    }

    /// As [`Engine::remove_secret`], only if the key is at `if_revision`.
    pub async fn remove_secret_if(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
        key: &str,
        if_revision: Option<u32>,
        principal: Principal,
    ) -> Result<(), Error> {
        let known = self
            .inner
            .directory
            .get_for(tenant, id)
            .ok_or_else(|| Error::not_found("plugin", id))?;
        if !known.state.secrets.contains_key(key) {
            return Err(Error::not_found("secret", key));
        }
        let command = InstallationCommand::RemoveSecret {
            key: key.into(),
            if_revision,
        };
        self.inner
            .installation_execute(tenant, id, command, principal)
            .await
    }

    /// The secrets' keys, update times and revisions.
    pub async fn secret_keys(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
    ) -> Result<Vec<SecretInfo>, Error> {
        let known = self
            .inner
            .directory
            .get_for(tenant, id)
            .ok_or_else(|| Error::not_found("plugin", id))?;
        Ok(known
            .state
            .secret_keys()
            .map(|(key, updated_at, revision)| SecretInfo {
                key: key.into(),
                updated_at,
                revision,
            })
            .collect())
    }
}
