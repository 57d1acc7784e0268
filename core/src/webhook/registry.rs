//! The webhooks of one tenant as one aggregate (stream `webhooks-<tenant>`):
//! declared and updated with a revision each, deleted, disabled with a
//! reason (by an operator, a 410, or too many failures in a row), enabled.
//!
//! The declaration's YAML and code files are stored in the events, so the
//! log alone rebuilds every webhook exactly as it was applied.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::spec::{WebhookSpec, relative_path_problem};
use crate::aggregate::{Aggregate, DomainEvent, parse_payload, refuse, to_raw};
use crate::error::truncate_for_error;
use crate::error::{DomainError, Error, FieldProblem};
use crate::ids::TenantId;

/// Webhooks per tenant (deleted ones not counted).
pub const WEBHOOKS_MAX: usize = 100;
/// YAML plus code files of one webhook: small scripts, not applications.
pub const SOURCE_BYTES_MAX: usize = 128 * 1024;
/// Code files per webhook.
pub const SOURCE_FILES_MAX: usize = 16;
pub const NAME_CHARS_MAX: usize = 64;
pub const REASON_CHARS_MAX: usize = 500;
/// The file name of the declaration inside a ZIP or directory.
pub const DECLARATION_FILE: &str = "webhook.yaml";

/// A webhook's name: lowercase letters, digits and dashes, starting with a
/// letter (it appears in URLs and stream names).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookName(String);

impl WebhookName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for WebhookName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= NAME_CHARS_MAX
            && s.as_bytes()[0].is_ascii_lowercase()
            && !s.ends_with('-')
            && !s.contains("--")
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(Error::InvalidValue {
                what: "webhook name",
                value: truncate_for_error(s),
                reason: format!(
                    "1 to {NAME_CHARS_MAX} lowercase letters, digits and single dashes, starting with a letter"
                ),
            });
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for WebhookName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl From<WebhookName> for String {
    fn from(n: WebhookName) -> String {
        n.0
    }
}

impl std::fmt::Display for WebhookName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for WebhookName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a user applies: the YAML and the code files it names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSource {
    pub yaml: String,
    /// Relative path → UTF-8 source.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

impl WebhookSource {
    /// `sha256:<hex>` over the YAML and every file, length-prefixed.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        let mut put = |b: &[u8]| {
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        };
        put(self.yaml.as_bytes());
        for (path, text) in &self.files {
            put(path.as_bytes());
            put(text.as_bytes());
        }
        format!("sha256:{}", hex::encode(h.finalize()))
    }

    fn bytes(&self) -> usize {
        self.yaml.len()
            + self
                .files
                .iter()
                .map(|(p, t)| p.len() + t.len())
                .sum::<usize>()
    }

    /// Parses the declaration and checks it against its files and the
    /// tenant's secrets. Every problem is returned, each as
    /// `webhook.yaml:line:column` (or the file's name).
    pub fn validate(
        &self,
        known_secrets: &BTreeSet<String>,
    ) -> Result<WebhookSpec, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        if self.bytes() > SOURCE_BYTES_MAX {
            problems.push(FieldProblem::new(
                DECLARATION_FILE,
                format!(
                    "the webhook's YAML and files are {} bytes; the limit is {SOURCE_BYTES_MAX}",
                    self.bytes()
                ),
            ));
        }
        if self.files.len() > SOURCE_FILES_MAX {
            problems.push(FieldProblem::new(
                DECLARATION_FILE,
                format!("at most {SOURCE_FILES_MAX} code files"),
            ));
        }
        for path in self.files.keys() {
            if let Some(why) = relative_path_problem(path) {
                problems.push(FieldProblem::new(truncate_for_error(path), why));
            }
        }
        let spec = match WebhookSpec::parse(&self.yaml) {
            Ok(s) => {
                let retired = s.retired.iter();
                problems.extend(retired.map(|p| p.to_field_problem(DECLARATION_FILE)));
                s
            }
            Err(ps) => {
                problems.extend(ps.iter().map(|p| p.to_field_problem(DECLARATION_FILE)));
                return Err(problems);
            }
        };
        for file in spec.code_files() {
            if !self.files.contains_key(file) {
                problems.push(FieldProblem::new(
                    DECLARATION_FILE,
                    format!("the code file `{file}` is not among the webhook's files"),
                ));
            }
        }
        for name in spec.secret_refs() {
            if !known_secrets.contains(&name) {
                problems.push(FieldProblem::new(
                    DECLARATION_FILE,
                    format!("`${{SECRET:{name}}}` refers to a tenant secret that does not exist; set it with PUT /api/secrets/{name}"),
                ));
            }
        }
        if problems.is_empty() {
            Ok(spec)
        } else {
            Err(problems)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    Active,
    Disabled,
    Deleted,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRecord {
    /// 1 for the first declaration, +1 per change (a re-declaration after a
    /// delete continues the count).
    pub revision: u32,
    pub status: WebhookStatus,
    pub source: WebhookSource,
    pub digest: String,
    pub disabled_reason: Option<String>,
    /// When the current declaration was first applied; events recorded
    /// before it are not delivered (except by an explicit replay).
    pub declared_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantWebhooks {
    pub tenant: Option<TenantId>,
    pub webhooks: BTreeMap<WebhookName, WebhookRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookCommand {
    Declare {
        tenant: TenantId,
        name: WebhookName,
        source: WebhookSource,
        /// The tenant's secret keys now: references must resolve at apply time.
        known_secrets: BTreeSet<String>,
        at: DateTime<Utc>,
    },
    Delete {
        name: WebhookName,
    },
    Disable {
        name: WebhookName,
        reason: String,
    },
    Enable {
        name: WebhookName,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declared {
    pub tenant: TenantId,
    pub name: WebhookName,
    pub revision: u32,
    pub source: WebhookSource,
    pub digest: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameOnly {
    pub name: WebhookName,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisabledPayload {
    pub name: WebhookName,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookEvent {
    Declared(Box<Declared>),
    Updated(Box<Declared>),
    Deleted(NameOnly),
    Disabled(DisabledPayload),
    Enabled(NameOnly),
}

pub mod types {
    pub const DECLARED: &str = "webhook.declared";
    pub const UPDATED: &str = "webhook.updated";
    pub const DELETED: &str = "webhook.deleted";
    pub const DISABLED: &str = "webhook.disabled";
    pub const ENABLED: &str = "webhook.enabled";
}

impl DomainEvent for WebhookEvent {
    fn event_type(&self) -> &'static str {
        match self {
            WebhookEvent::Declared(_) => types::DECLARED,
            WebhookEvent::Updated(_) => types::UPDATED,
            WebhookEvent::Deleted(_) => types::DELETED,
            WebhookEvent::Disabled(_) => types::DISABLED,
            WebhookEvent::Enabled(_) => types::ENABLED,
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn to_payload(&self) -> Result<Box<RawValue>, serde_json::Error> {
        match self {
            WebhookEvent::Declared(d) | WebhookEvent::Updated(d) => to_raw(d),
            WebhookEvent::Deleted(n) | WebhookEvent::Enabled(n) => to_raw(n),
            WebhookEvent::Disabled(d) => to_raw(d),
        }
    }

    fn decode(event_type: &str, version: u32, payload: &RawValue) -> Result<Self, String> {
        Ok(match (event_type, version) {
            (types::DECLARED, 1) => WebhookEvent::Declared(parse_payload(payload)?),
            (types::UPDATED, 1) => WebhookEvent::Updated(parse_payload(payload)?),
            (types::DELETED, 1) => WebhookEvent::Deleted(parse_payload(payload)?),
            (types::DISABLED, 1) => WebhookEvent::Disabled(parse_payload(payload)?),
            (types::ENABLED, 1) => WebhookEvent::Enabled(parse_payload(payload)?),
            (t, v) => return Err(format!("unknown webhook event type `{t}` version {v}")),
        })
    }
}

impl TenantWebhooks {
    fn refuse(&self, code: &'static str, message: impl Into<String>) -> DomainError {
        refuse("webhooks", "active", code, message)
    }

    /// The live (not deleted) webhook called `name`.
    pub fn get(&self, name: &WebhookName) -> Option<&WebhookRecord> {
        self.webhooks
            .get(name)
            .filter(|w| w.status != WebhookStatus::Deleted)
    }

    fn live(&self, name: &WebhookName) -> Result<&WebhookRecord, DomainError> {
        self.get(name)
            .ok_or_else(|| self.refuse("webhook_not_found", format!("no webhook `{name}`")))
    }

    pub fn live_count(&self) -> usize {
        self.webhooks
            .values()
            .filter(|w| w.status != WebhookStatus::Deleted)
            .count()
    }

    fn decide_declare(
        &self,
        tenant: &TenantId,
        name: &WebhookName,
        source: &WebhookSource,
        known_secrets: &BTreeSet<String>,
        at: DateTime<Utc>,
    ) -> Result<Vec<WebhookEvent>, DomainError> {
        if self.tenant.as_ref().is_some_and(|t| t != tenant) {
            return Err(self.refuse("wrong_tenant", "these webhooks belong to another tenant"));
        }
        if let Err(problems) = source.validate(known_secrets) {
            let text = problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(self.refuse("invalid_webhook", text));
        }
        let digest = source.digest();
        let existing = self.webhooks.get(name);
        let live = existing.filter(|w| w.status != WebhookStatus::Deleted);
        if live.is_some_and(|w| w.digest == digest) {
            return Ok(vec![]);
        }
        if live.is_none() && self.live_count() >= WEBHOOKS_MAX {
            return Err(self.refuse(
                "too_many_webhooks",
                format!("at most {WEBHOOKS_MAX} webhooks per tenant"),
            ));
        }
        let declared = Box::new(Declared {
            tenant: tenant.clone(),
            name: name.clone(),
            revision: existing.map_or(1, |w| w.revision + 1),
            source: source.clone(),
            digest,
            at,
        });
        Ok(vec![if live.is_some() {
            WebhookEvent::Updated(declared)
        } else {
            WebhookEvent::Declared(declared)
        }])
    }
}

impl Aggregate for TenantWebhooks {
    type Command = WebhookCommand;
    type Event = WebhookEvent;
    const KIND: &'static str = "webhooks";
    const SNAPSHOT_VERSION: u32 = 1;

    fn decide(&self, command: &WebhookCommand) -> Result<Vec<WebhookEvent>, DomainError> {
        match command {
            WebhookCommand::Declare {
                tenant,
                name,
                source,
                known_secrets,
                at,
            } => self.decide_declare(tenant, name, source, known_secrets, *at),
            WebhookCommand::Delete { name } => {
                self.live(name)?;
                Ok(vec![WebhookEvent::Deleted(NameOnly { name: name.clone() })])
            }
            WebhookCommand::Disable { name, reason } => {
                let w = self.live(name)?;
                if reason.trim().is_empty() || reason.chars().count() > REASON_CHARS_MAX {
                    return Err(self.refuse(
                        "invalid_field",
                        format!("reason must be 1 to {REASON_CHARS_MAX} characters"),
                    ));
                }
                if w.status == WebhookStatus::Disabled {
                    return Ok(vec![]);
                }
                Ok(vec![WebhookEvent::Disabled(DisabledPayload {
                    name: name.clone(),
                    reason: reason.clone(),
                })])
            }
            WebhookCommand::Enable { name } => {
                let w = self.live(name)?;
                if w.status == WebhookStatus::Active {
                    return Ok(vec![]);
                }
                Ok(vec![WebhookEvent::Enabled(NameOnly { name: name.clone() })])
            }
        }
    }

    fn apply(&mut self, event: &WebhookEvent) -> Result<(), String> {
        match event {
            WebhookEvent::Declared(d) | WebhookEvent::Updated(d) => {
                self.tenant.get_or_insert_with(|| d.tenant.clone());
                let prior = self.webhooks.get(&d.name);
                let is_update = matches!(event, WebhookEvent::Updated(_));
                let live = prior.filter(|w| w.status != WebhookStatus::Deleted);
                if is_update != live.is_some() {
                    return Err(format!(
                        "{} of `{}` does not follow its state",
                        event.event_type(),
                        d.name
                    ));
                }
                let record = WebhookRecord {
                    revision: d.revision,
                    // An update keeps a disabled webhook disabled: only
                    // `enable` brings it back.
                    status: live.map_or(WebhookStatus::Active, |w| w.status),
                    disabled_reason: live.and_then(|w| w.disabled_reason.clone()),
                    source: d.source.clone(),
                    digest: d.digest.clone(),
                    declared_at: live.map_or(d.at, |w| w.declared_at),
                    updated_at: d.at,
                };
                self.webhooks.insert(d.name.clone(), record);
            }
            WebhookEvent::Deleted(n) => self.record_mut(&n.name)?.status = WebhookStatus::Deleted,
            WebhookEvent::Disabled(d) => {
                let w = self.record_mut(&d.name)?;
                w.status = WebhookStatus::Disabled;
                w.disabled_reason = Some(d.reason.clone());
            }
            WebhookEvent::Enabled(n) => {
                let w = self.record_mut(&n.name)?;
                w.status = WebhookStatus::Active;
                w.disabled_reason = None;
            }
        }
        Ok(())
    }
}

impl TenantWebhooks {
    fn record_mut(&mut self, name: &WebhookName) -> Result<&mut WebhookRecord, String> {
        self.webhooks
            .get_mut(name)
            .filter(|w| w.status != WebhookStatus::Deleted)
            .ok_or_else(|| format!("event for unknown or deleted webhook `{name}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "api_version: v1\non: [\"build.*\"]\ndelivery:\n  url: \"${SECRET:URL}\"\n";

    fn declare(
        w: &mut TenantWebhooks,
        t: &TenantId,
        yaml: &str,
        secrets: &[&str],
    ) -> Result<usize, DomainError> {
        let cmd = WebhookCommand::Declare {
            tenant: t.clone(),
            name: "builds".parse().unwrap(),
            source: WebhookSource {
                yaml: yaml.into(),
                files: BTreeMap::new(),
            },
            known_secrets: secrets.iter().map(|s| s.to_string()).collect(),
            at: Utc::now(),
        };
        run(w, &cmd)
    }

    fn run(w: &mut TenantWebhooks, cmd: &WebhookCommand) -> Result<usize, DomainError> {
        let events = w.decide(cmd)?;
        for e in &events {
            let raw = e.to_payload().unwrap();
            let back = WebhookEvent::decode(e.event_type(), e.schema_version(), &raw).unwrap();
            w.apply(&back).unwrap();
        }
        Ok(events.len())
    }

    #[test]
    fn declare_update_idempotent_delete_redeclare() {
        let t = TenantId::generate();
        let mut w = TenantWebhooks::default();
        let name: WebhookName = "builds".parse().unwrap();
        let missing = declare(&mut w, &t, YAML, &[]).unwrap_err();
        assert_eq!(missing.code, "invalid_webhook");
        assert!(
            missing.message.contains("SECRET:URL"),
            "{}",
            missing.message
        );
        assert_eq!(declare(&mut w, &t, YAML, &["URL"]).unwrap(), 1);
        assert_eq!(
            declare(&mut w, &t, YAML, &["URL"]).unwrap(),
            0,
            "same source: no-op"
        );
        let changed = format!("{YAML}retry: {{max_attempts: 2}}\n");
        assert_eq!(declare(&mut w, &t, &changed, &["URL"]).unwrap(), 1);
        assert_eq!(w.get(&name).unwrap().revision, 2);
        run(&mut w, &WebhookCommand::Delete { name: name.clone() }).unwrap();
        assert!(w.get(&name).is_none());
        assert_eq!(
            run(&mut w, &WebhookCommand::Delete { name: name.clone() })
                .unwrap_err()
                .code,
            "webhook_not_found"
        );
        declare(&mut w, &t, YAML, &["URL"]).unwrap();
        assert_eq!(w.get(&name).unwrap().revision, 3);
    }

    #[test]
    fn disable_and_enable() {
        let t = TenantId::generate();
        let mut w = TenantWebhooks::default();
        let name: WebhookName = "builds".parse().unwrap();
        declare(&mut w, &t, YAML, &["URL"]).unwrap();
        let disable = WebhookCommand::Disable {
            name: name.clone(),
            reason: "410 Gone".into(),
        };
        assert_eq!(run(&mut w, &disable).unwrap(), 1);
        assert_eq!(run(&mut w, &disable).unwrap(), 0);
        let rec = w.get(&name).unwrap();
        assert_eq!(
            (rec.status, rec.disabled_reason.as_deref()),
            (WebhookStatus::Disabled, Some("410 Gone"))
        );
        let changed = format!("{YAML}description: x\n");
        declare(&mut w, &t, &changed, &["URL"]).unwrap();
        assert_eq!(
            w.get(&name).unwrap().status,
            WebhookStatus::Disabled,
            "an update does not re-enable"
        );
        assert_eq!(
            run(&mut w, &WebhookCommand::Enable { name: name.clone() }).unwrap(),
            1
        );
        assert_eq!(w.get(&name).unwrap().status, WebhookStatus::Active);
    }

    #[test]
    fn names_and_sources_are_checked() {
        for bad in ["", "Builds", "1x", "a_b", "a--b", "x-", &"a".repeat(65)] {
            assert!(bad.parse::<WebhookName>().is_err(), "{bad:?}");
        }
        let src = WebhookSource {
            yaml: "api_version: v1\non: [a.b]\ndelivery: {url: \"https://x.test/\"}\ntransform: {language: javascript, entry: \"t.js#transform\"}\n".into(),
            files: [("../evil.js".to_string(), String::new())].into(),
        };
        let problems = src.validate(&BTreeSet::new()).unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|p| p.contains("../evil.js")), "{text:?}");
        assert!(
            text.iter().any(|p| p.contains("`t.js` is not among")),
            "{text:?}"
        );
    }
}
