//! The plugin installation aggregate: one plugin slug within one tenant,
//! installed from a validated manifest and a bundle digest, enabled and
//! disabled, upgraded (and rolled back), holding encrypted secrets, and
//! finally uninstalled. Its id is derived from (tenant, slug), so installing
//! a slug twice hits the same stream and is refused by this aggregate.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::aggregate::{Aggregate, DomainEvent, parse_payload, refuse, to_raw};
use crate::error::DomainError;
use crate::ids::{InstallationId, TenantId};
use crate::manifest::{PluginManifest, Slug};

/// Secrets per installation: configuration values, not a database.
pub const SECRETS_MAX: usize = 100;
/// An encrypted secret (base64 of the AES-SIV ciphertext).
pub const SECRET_CIPHERTEXT_BYTES_MAX: usize = 64 * 1024;
pub const SECRET_KEY_CHARS_MAX: usize = 128;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallationStatus {
    #[default]
    NotInstalled,
    Enabled,
    Disabled,
    Uninstalled,
}

impl InstallationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstallationStatus::NotInstalled => "not installed",
            InstallationStatus::Enabled => "enabled",
            InstallationStatus::Disabled => "disabled",
            InstallationStatus::Uninstalled => "uninstalled",
        }
    }

    pub fn is_installed(self) -> bool {
        matches!(
            self,
            InstallationStatus::Enabled | InstallationStatus::Disabled
        )
    }
}

/// One installed version: what was validated and which bytes it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledVersion {
    pub manifest: PluginManifest,
    /// `sha256:<hex>` of the uploaded ZIP.
    pub bundle_digest: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRecord {
    /// Base64 AES-SIV ciphertext; the plaintext never enters the log.
    pub ciphertext: String,
    pub updated_at: DateTime<Utc>,
    /// 1 when the key is first set, +1 each time it is set again: what a
    /// writer names in `If-Match` so a concurrent change is not lost.
    #[serde(default)]
    pub revision: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInstallation {
    pub id: Option<InstallationId>,
    pub tenant: Option<TenantId>,
    pub slug: Option<Slug>,
    pub status: InstallationStatus,
    pub current: Option<InstalledVersion>,
    /// The version before the last upgrade, for rollback.
    pub previous: Option<InstalledVersion>,
    pub secrets: BTreeMap<String, SecretRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstallationCommand {
    Install {
        installation_id: InstallationId,
        tenant: TenantId,
        version: InstalledVersion,
    },
    Enable,
    Disable,
    Upgrade {
        version: InstalledVersion,
    },
    RollBack,
    SetSecret {
        key: String,
        ciphertext: String,
        updated_at: DateTime<Utc>,
        /// Only if the key is at this revision (`If-Match`).
        if_revision: Option<u32>,
    },
    RemoveSecret {
        key: String,
        /// Only if the key is at this revision (`If-Match`).
        if_revision: Option<u32>,
    },
    Uninstall,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub installation_id: InstallationId,
    pub tenant: TenantId,
    pub slug: Slug,
    #[serde(flatten)]
    pub version: InstalledVersion,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionChange {
    pub from_version: semver::Version,
    #[serde(flatten)]
    pub version: InstalledVersion,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretSet {
    pub key: String,
    pub ciphertext: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstallationEvent {
    Installed(Box<Installed>),
    Enabled,
    Disabled,
    Upgraded(Box<VersionChange>),
    RolledBack(Box<VersionChange>),
    SecretSet(SecretSet),
    SecretRemoved { key: String },
    Uninstalled,
}

/// Event types of the installation stream; the seed's audit names.
pub mod types {
    pub const INSTALLED: &str = "plugin.installed";
    pub const ENABLED: &str = "plugin.enabled";
    pub const DISABLED: &str = "plugin.disabled";
    pub const UPGRADED: &str = "plugin.upgraded";
    pub const ROLLED_BACK: &str = "plugin.rolled_back";
    pub const SECRET_SET: &str = "plugin.secret_set";
    pub const SECRET_REMOVED: &str = "plugin.secret_removed";
    pub const UNINSTALLED: &str = "plugin.uninstalled";
}

#[derive(Serialize, Deserialize)]
struct KeyPayload {
    key: String,
}

impl DomainEvent for InstallationEvent {
    fn event_type(&self) -> &'static str {
        match self {
            InstallationEvent::Installed(_) => types::INSTALLED,
            InstallationEvent::Enabled => types::ENABLED,
            InstallationEvent::Disabled => types::DISABLED,
            InstallationEvent::Upgraded(_) => types::UPGRADED,
            InstallationEvent::RolledBack(_) => types::ROLLED_BACK,
            InstallationEvent::SecretSet(_) => types::SECRET_SET,
            InstallationEvent::SecretRemoved { .. } => types::SECRET_REMOVED,
            InstallationEvent::Uninstalled => types::UNINSTALLED,
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn to_payload(&self) -> Result<Box<RawValue>, serde_json::Error> {
        match self {
            InstallationEvent::Installed(i) => to_raw(i),
            InstallationEvent::Upgraded(c) | InstallationEvent::RolledBack(c) => to_raw(c),
            InstallationEvent::SecretSet(s) => to_raw(s),
            InstallationEvent::SecretRemoved { key } => to_raw(&KeyPayload { key: key.clone() }),
            InstallationEvent::Enabled
            | InstallationEvent::Disabled
            | InstallationEvent::Uninstalled => to_raw(&serde_json::json!({})),
        }
    }

    fn decode(event_type: &str, version: u32, payload: &RawValue) -> Result<Self, String> {
        if version != 1 {
            return Err(format!("unknown version {version} of `{event_type}`"));
        }
        Ok(match event_type {
            types::INSTALLED => InstallationEvent::Installed(parse_payload(payload)?),
            types::ENABLED => InstallationEvent::Enabled,
            types::DISABLED => InstallationEvent::Disabled,
            types::UPGRADED => InstallationEvent::Upgraded(parse_payload(payload)?),
            types::ROLLED_BACK => InstallationEvent::RolledBack(parse_payload(payload)?),
            types::SECRET_SET => InstallationEvent::SecretSet(parse_payload(payload)?),
            types::SECRET_REMOVED => InstallationEvent::SecretRemoved {
                key: parse_payload::<KeyPayload>(payload)?.key,
            },
            types::UNINSTALLED => InstallationEvent::Uninstalled,
            other => return Err(format!("unknown installation event type `{other}`")),
        })
    }
}

/// Secret keys: `API_KEY`, `slack.webhook-url`.
pub fn secret_key_problem(key: &str) -> Option<String> {
    let ok = !key.is_empty()
        && key.chars().count() <= SECRET_KEY_CHARS_MAX
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    (!ok).then(|| format!("secret keys are 1 to {SECRET_KEY_CHARS_MAX} letters, digits, _ . -"))
}

impl PluginInstallation {
    fn refuse(&self, code: &'static str, message: impl Into<String>) -> DomainError {
        refuse("installation", self.status.as_str(), code, message)
    }

    fn require_installed(&self) -> Result<&InstalledVersion, DomainError> {
        match (&self.current, self.status.is_installed()) {
            (Some(v), true) => Ok(v),
            _ => Err(self.refuse("not_installed", "the plugin is not installed")),
        }
    }

    fn decide_install(
        &self,
        id: &InstallationId,
        tenant: &TenantId,
        v: &InstalledVersion,
    ) -> Result<Vec<InstallationEvent>, DomainError> {
        if self.status.is_installed() {
            return Err(self.refuse(
                "already_installed",
                format!(
                    "`{}` is already installed; upload a new version to upgrade",
                    v.manifest.slug
                ),
            ));
        }
        if let Some(slug) = self.slug.as_ref().filter(|s| **s != v.manifest.slug) {
            return Err(self.refuse(
                "slug_mismatch",
                format!("this installation is `{slug}`, not `{}`", v.manifest.slug),
            ));
        }
        Ok(vec![InstallationEvent::Installed(Box::new(Installed {
            installation_id: id.clone(),
            tenant: tenant.clone(),
            slug: v.manifest.slug.clone(),
            version: v.clone(),
        }))])
    }

    fn decide_upgrade(&self, v: &InstalledVersion) -> Result<Vec<InstallationEvent>, DomainError> {
        let current = self.require_installed()?;
        if current.manifest.slug != v.manifest.slug {
            return Err(self.refuse(
                "slug_mismatch",
                format!(
                    "cannot upgrade `{}` with `{}`",
                    current.manifest.slug, v.manifest.slug
                ),
            ));
        }
        if current == v {
            return Ok(vec![]);
        }
        Ok(vec![InstallationEvent::Upgraded(Box::new(VersionChange {
            from_version: current.manifest.version.clone(),
            version: v.clone(),
        }))])
    }

    fn decide_secret(
        &self,
        key: &str,
        ciphertext: &str,
        updated_at: DateTime<Utc>,
    ) -> Result<Vec<InstallationEvent>, DomainError> {
        self.require_installed()?;
        if let Some(reason) = secret_key_problem(key) {
            return Err(self.refuse("invalid_secret_key", reason));
        }
        if ciphertext.is_empty() || ciphertext.len() > SECRET_CIPHERTEXT_BYTES_MAX {
            return Err(self.refuse(
                "invalid_secret",
                format!("ciphertext must be 1 to {SECRET_CIPHERTEXT_BYTES_MAX} bytes"),
            ));
        }
        if !self.secrets.contains_key(key) && self.secrets.len() >= SECRETS_MAX {
            return Err(self.refuse(
                "too_many_secrets",
                format!("at most {SECRETS_MAX} secrets per installation"),
            ));
        }
        Ok(vec![InstallationEvent::SecretSet(SecretSet {
            key: key.into(),
            ciphertext: ciphertext.into(),
            updated_at,
        })])
    }

    /// The secrets' keys, update times and revisions; values never leave
    /// the aggregate except to be decrypted for the plugin itself.
    pub fn secret_keys(&self) -> impl Iterator<Item = (&str, DateTime<Utc>, u32)> {
        self.secrets
            .iter()
            .map(|(k, s)| (k.as_str(), s.updated_at, s.revision))
    }

    /// `If-Match`: the secret `key` must exist at revision `expected`.
    fn check_secret_revision(&self, key: &str, expected: Option<u32>) -> Result<(), DomainError> {
        let Some(expected) = expected else {
            return Ok(());
        };
        let key_shown = crate::error::truncate_for_error(key);
        match self.secrets.get(key).map(|s| s.revision) {
            Some(current) if current == expected => Ok(()),
            Some(current) => Err(self.refuse(
                "precondition_failed",
                format!("secret `{key_shown}` is at revision {current}, not {expected} (If-Match)"),
            )),
            None => Err(self.refuse(
                "precondition_failed",
                format!(
                    "there is no secret `{key_shown}`, so not at revision {expected} (If-Match)"
                ),
            )),
        }
    }
}

impl Aggregate for PluginInstallation {
    type Command = InstallationCommand;
    type Event = InstallationEvent;
    const KIND: &'static str = "installation";
    /// 2: secrets carry their revision (older snapshots lack it; replaying
    /// the stream counts it).
    const SNAPSHOT_VERSION: u32 = 2;

    fn decide(&self, command: &InstallationCommand) -> Result<Vec<InstallationEvent>, DomainError> {
        use InstallationCommand as C;
        use InstallationEvent as E;
        match command {
            C::Install {
                installation_id,
                tenant,
                version,
            } => self.decide_install(installation_id, tenant, version),
            C::Enable => match self.status {
                InstallationStatus::Enabled => Ok(vec![]),
                InstallationStatus::Disabled => Ok(vec![E::Enabled]),
                _ => Err(self.refuse("not_installed", "only an installed plugin can be enabled")),
            },
            C::Disable => match self.status {
                InstallationStatus::Disabled => Ok(vec![]),
                InstallationStatus::Enabled => Ok(vec![E::Disabled]),
                _ => Err(self.refuse("not_installed", "only an installed plugin can be disabled")),
            },
            C::Upgrade { version } => self.decide_upgrade(version),
            C::RollBack => {
                let current = self.require_installed()?;
                let previous = self.previous.as_ref().ok_or_else(|| {
                    self.refuse(
                        "no_previous_version",
                        "there is no previous version to restore",
                    )
                })?;
                Ok(vec![E::RolledBack(Box::new(VersionChange {
                    from_version: current.manifest.version.clone(),
                    version: previous.clone(),
                }))])
            }
            C::SetSecret {
                key,
                ciphertext,
                updated_at,
                if_revision,
            } => {
                self.require_installed()?;
                self.check_secret_revision(key, *if_revision)?;
                self.decide_secret(key, ciphertext, *updated_at)
            }
            C::RemoveSecret { key, if_revision } => {
                self.require_installed()?;
                self.check_secret_revision(key, *if_revision)?;
                if !self.secrets.contains_key(key) {
                    return Err(self.refuse(
                        "secret_not_found",
                        format!("no secret `{}`", crate::error::truncate_for_error(key)),
                    ));
                }
                Ok(vec![E::SecretRemoved { key: key.clone() }])
            }
            C::Uninstall => {
                self.require_installed()?;
                Ok(vec![E::Uninstalled])
            }
        }
    }

    fn apply(&mut self, event: &InstallationEvent) -> Result<(), String> {
        use InstallationEvent as E;
        let installed = self.status.is_installed();
        match event {
            E::Installed(i) => {
                if installed {
                    return Err("plugin.installed on an installed plugin".into());
                }
                self.id = Some(i.installation_id.clone());
                self.tenant = Some(i.tenant.clone());
                self.slug = Some(i.slug.clone());
                self.current = Some(i.version.clone());
                self.previous = None;
                self.status = InstallationStatus::Disabled;
            }
            _ if !installed => {
                return Err(format!(
                    "{} on a plugin that is {}",
                    event.event_type(),
                    self.status.as_str()
                ));
            }
            E::Enabled => self.status = InstallationStatus::Enabled,
            E::Disabled => self.status = InstallationStatus::Disabled,
            E::Upgraded(c) | E::RolledBack(c) => {
                self.previous = self.current.replace(c.version.clone());
            }
            E::SecretSet(s) => {
                let revision = self.secrets.get(&s.key).map_or(1, |r| r.revision + 1);
                self.secrets.insert(
                    s.key.clone(),
                    SecretRecord {
                        ciphertext: s.ciphertext.clone(),
                        updated_at: s.updated_at,
                        revision,
                    },
                );
            }
            E::SecretRemoved { key } => {
                self.secrets
                    .remove(key)
                    .ok_or_else(|| format!("removing unknown secret `{key}`"))?;
            }
            E::Uninstalled => {
                self.status = InstallationStatus::Uninstalled;
                self.current = None;
                self.previous = None;
                self.secrets.clear();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::DomainEvent;

    fn version(v: &str, digest: &str) -> InstalledVersion {
        let manifest = serde_json::json!({"slug": "welcome-email", "name": "Welcome", "version": v, "entry": "main.js"});
        InstalledVersion {
            manifest: PluginManifest::parse(manifest.to_string().as_bytes()).unwrap(),
            bundle_digest: format!("sha256:{digest}"),
        }
    }

    fn run(p: &mut PluginInstallation, cmd: InstallationCommand) -> Result<usize, DomainError> {
        let events = p.decide(&cmd)?;
        for e in &events {
            let raw = e.to_payload().unwrap();
            assert_eq!(
                &InstallationEvent::decode(e.event_type(), 1, &raw).unwrap(),
                e,
                "payload round trip"
            );
            p.apply(e).unwrap();
        }
        Ok(events.len())
    }

    fn installed() -> PluginInstallation {
        let tenant = TenantId::generate();
        let slug: Slug = "welcome-email".parse().unwrap();
        let id = InstallationId::for_slug(&tenant, &slug);
        let mut p = PluginInstallation::default();
        run(
            &mut p,
            InstallationCommand::Install {
                installation_id: id,
                tenant,
                version: version("1.0.0", "aa"),
            },
        )
        .unwrap();
        p
    }

    #[test]
    fn install_enable_disable() {
        let mut p = installed();
        assert_eq!(
            p.status,
            InstallationStatus::Disabled,
            "installed plugins start disabled"
        );
        run(&mut p, InstallationCommand::Enable).unwrap();
        assert_eq!(
            run(&mut p, InstallationCommand::Enable).unwrap(),
            0,
            "enable is idempotent"
        );
        run(&mut p, InstallationCommand::Disable).unwrap();
        assert_eq!(p.status, InstallationStatus::Disabled);
        let again = InstallationCommand::Install {
            installation_id: p.id.clone().unwrap(),
            tenant: p.tenant.clone().unwrap(),
            version: version("1.0.0", "aa"),
        };
        let err = p.decide(&again).unwrap_err();
        assert_eq!(
            (err.code, err.state.as_str()),
            ("already_installed", "disabled")
        );
    }

    #[test]
    fn uninstalled_plugins_refuse_commands_and_can_be_reinstalled() {
        let mut p = installed();
        run(
            &mut p,
            InstallationCommand::SetSecret {
                key: "API_KEY".into(),
                ciphertext: "c2VjcmV0".into(),
                updated_at: Utc::now(),
                if_revision: None,
            },
        )
        .unwrap();
        run(&mut p, InstallationCommand::Uninstall).unwrap();
        assert!(p.secrets.is_empty(), "uninstall removes secrets");
        let err = p.decide(&InstallationCommand::Enable).unwrap_err();
        assert_eq!(
            (err.code, err.state.as_str()),
            ("not_installed", "uninstalled")
        );
        assert!(
            err.to_string().contains("installation is uninstalled"),
            "{err}"
        );
        let reinstall = InstallationCommand::Install {
            installation_id: p.id.clone().unwrap(),
            tenant: p.tenant.clone().unwrap(),
            version: version("2.0.0", "bb"),
        };
        run(&mut p, reinstall).unwrap();
        assert_eq!(
            p.current.as_ref().unwrap().manifest.version.to_string(),
            "2.0.0"
        );
    }

    #[test]
    fn upgrade_keeps_secrets_and_rolls_back() {
        let mut p = installed();
        run(
            &mut p,
            InstallationCommand::SetSecret {
                key: "K".into(),
                ciphertext: "x".into(),
                updated_at: Utc::now(),
                if_revision: None,
            },
        )
        .unwrap();
        assert_eq!(
            p.decide(&InstallationCommand::RollBack).unwrap_err().code,
            "no_previous_version"
        );
        run(
            &mut p,
            InstallationCommand::Upgrade {
                version: version("1.1.0", "bb"),
            },
        )
        .unwrap();
        assert_eq!(
            run(
                &mut p,
                InstallationCommand::Upgrade {
                    version: version("1.1.0", "bb")
                }
            )
            .unwrap(),
            0
        );
        assert_eq!(p.secrets.len(), 1);
        run(&mut p, InstallationCommand::RollBack).unwrap();
        assert_eq!(
            p.current.as_ref().unwrap().manifest.version.to_string(),
            "1.0.0"
        );
        assert_eq!(
            p.previous.as_ref().unwrap().manifest.version.to_string(),
            "1.1.0"
        );
    }

    #[test]
    fn a_secret_write_naming_a_stale_revision_is_refused() {
        let mut p = installed();
        let set = |if_revision| InstallationCommand::SetSecret {
            key: "K".into(),
            ciphertext: "x".into(),
            updated_at: Utc::now(),
            if_revision,
        };
        let refused = |p: &PluginInstallation, c| p.decide(&c).unwrap_err().code;
        assert_eq!(refused(&p, set(Some(1))), "precondition_failed", "absent");
        run(&mut p, set(None)).unwrap();
        assert_eq!(p.secrets["K"].revision, 1);
        run(&mut p, set(Some(1))).unwrap();
        assert_eq!(p.secrets["K"].revision, 2);
        // A second writer that also read revision 1 loses, visibly.
        assert_eq!(refused(&p, set(Some(1))), "precondition_failed");
        let remove = |if_revision| InstallationCommand::RemoveSecret {
            key: "K".into(),
            if_revision,
        };
        assert_eq!(refused(&p, remove(Some(1))), "precondition_failed");
        run(&mut p, remove(Some(2))).unwrap();
        assert!(p.secrets.is_empty());
    }

    #[test]
    fn secrets_are_validated() {
        let mut p = installed();
        let set = |key: &str, c: &str| InstallationCommand::SetSecret {
            key: key.into(),
            ciphertext: c.into(),
            updated_at: Utc::now(),
            if_revision: None,
        };
        assert_eq!(
            p.decide(&set("bad key", "x")).unwrap_err().code,
            "invalid_secret_key"
        );
        assert_eq!(p.decide(&set("K", "")).unwrap_err().code, "invalid_secret");
        assert_eq!(
            p.decide(&InstallationCommand::RemoveSecret {
                key: "K".into(),
                if_revision: None,
            })
            .unwrap_err()
            .code,
            "secret_not_found"
        );
        for i in 0..SECRETS_MAX {
            run(&mut p, set(&format!("K{i}"), "x")).unwrap();
        }
        assert_eq!(
            p.decide(&set("ONE_MORE", "x")).unwrap_err().code,
            "too_many_secrets"
        );
        run(&mut p, set("K0", "y")).unwrap();
        assert_eq!(p.secret_keys().count(), SECRETS_MAX);
    }

    #[test]
    fn commands_before_install_are_refused() {
        let p = PluginInstallation::default();
        for cmd in [
            InstallationCommand::Enable,
            InstallationCommand::Uninstall,
            InstallationCommand::RollBack,
        ] {
            let err = p.decide(&cmd).unwrap_err();
            assert_eq!(err.state, "not installed", "{cmd:?}");
        }
        let mut p = PluginInstallation::default();
        assert!(p.apply(&InstallationEvent::Enabled).is_err());
    }
}
