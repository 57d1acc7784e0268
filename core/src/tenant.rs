//! The tenant aggregate: lifecycle (created, renamed, suspended, resumed) and
//! API tokens (issued with a role, revoked). Tokens are stored as hashes
//! only; the token itself is shown once by the API and never recorded.
//! Tenant secrets (what webhooks reference as `${SECRET:NAME}`) are held as
//! ciphertext only, like plugin secrets.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::aggregate::{Aggregate, DomainEvent, parse_payload, refuse, to_raw};
use crate::error::DomainError;
use crate::ids::{TenantId, TokenId};
use crate::installation::{
    SECRET_CIPHERTEXT_BYTES_MAX, SecretRecord, SecretSet, secret_key_problem,
};
use crate::manifest::Slug;
use crate::role::Role;

/// Active (unrevoked) tokens per tenant. Tokens are for machines and people
/// of one customer; thousands means something is minting them in a loop.
pub const TOKENS_ACTIVE_MAX: usize = 1_000;
pub const TENANT_NAME_CHARS_MAX: usize = 200;
pub const TOKEN_NAME_CHARS_MAX: usize = 100;
pub const SUSPEND_REASON_CHARS_MAX: usize = 1_000;
/// Tenant secrets: webhook URLs and signing keys, not a database.
pub const TENANT_SECRETS_MAX: usize = 200;

/// The AES-SIV context of a tenant secret (`<tenant>/tenant/<key>`): bound
/// into the ciphertext, so it decrypts for this tenant and key only.
pub fn secret_context(tenant: &TenantId, key: &str) -> String {
    format!("{tenant}/tenant/{key}")
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    #[default]
    New,
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::New => "new",
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
    /// `sha256:<hex>` of the token.
    pub token_hash: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: Option<TenantId>,
    pub status: TenantStatus,
    pub slug: Option<Slug>,
    pub name: String,
    pub suspended_reason: Option<String>,
    pub tokens: BTreeMap<TokenId, TokenRecord>,
    /// Key → ciphertext (AES-SIV, base64). Older snapshots have none.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantCommand {
    Create {
        tenant_id: TenantId,
        slug: Slug,
        name: String,
    },
    Rename {
        name: String,
    },
    Suspend {
        reason: String,
    },
    Resume,
    IssueToken(IssueToken),
    RevokeToken {
        token_id: TokenId,
    },
    SetSecret(SecretSet),
    RemoveSecret {
        key: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueToken {
    pub token_id: TokenId,
    pub name: String,
    pub role: Role,
    pub token_hash: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantCreated {
    pub tenant_id: TenantId,
    pub slug: Slug,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantEvent {
    Created(TenantCreated),
    Renamed { name: String },
    Suspended { reason: String },
    Resumed,
    TokenIssued(IssueToken),
    TokenRevoked { token_id: TokenId },
    SecretSet(SecretSet),
    SecretRemoved { key: String },
}

/// Event types of the tenant stream.
pub mod types {
    pub const CREATED: &str = "tenant.created";
    pub const RENAMED: &str = "tenant.renamed";
    pub const SUSPENDED: &str = "tenant.suspended";
    pub const RESUMED: &str = "tenant.resumed";
    pub const TOKEN_ISSUED: &str = "tenant.token_issued";
    pub const TOKEN_REVOKED: &str = "tenant.token_revoked";
    pub const SECRET_SET: &str = "tenant.secret_set";
    pub const SECRET_REMOVED: &str = "tenant.secret_removed";
}

/// `tenant.token_issued` v1 stored the bare hex digest as `sha256` and had no
/// expiry; v2 names the algorithm in `token_hash` and adds `expires_at`.
const TOKEN_ISSUED_VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
struct NamePayload {
    name: String,
}

#[derive(Serialize, Deserialize)]
struct ReasonPayload {
    reason: String,
}

#[derive(Serialize, Deserialize)]
struct TokenIdPayload {
    token_id: TokenId,
}

#[derive(Serialize, Deserialize)]
struct KeyPayload {
    key: String,
}

impl DomainEvent for TenantEvent {
    fn event_type(&self) -> &'static str {
        match self {
            TenantEvent::Created(_) => types::CREATED,
            TenantEvent::Renamed { .. } => types::RENAMED,
            TenantEvent::Suspended { .. } => types::SUSPENDED,
            TenantEvent::Resumed => types::RESUMED,
            TenantEvent::TokenIssued(_) => types::TOKEN_ISSUED,
            TenantEvent::TokenRevoked { .. } => types::TOKEN_REVOKED,
            TenantEvent::SecretSet(_) => types::SECRET_SET,
            TenantEvent::SecretRemoved { .. } => types::SECRET_REMOVED,
        }
    }

    fn schema_version(&self) -> u32 {
        match self {
            TenantEvent::TokenIssued(_) => TOKEN_ISSUED_VERSION,
            _ => 1,
        }
    }

    fn to_payload(&self) -> Result<Box<RawValue>, serde_json::Error> {
        match self {
            TenantEvent::Created(c) => to_raw(c),
            TenantEvent::Renamed { name } => to_raw(&NamePayload { name: name.clone() }),
            TenantEvent::Suspended { reason } => to_raw(&ReasonPayload {
                reason: reason.clone(),
            }),
            TenantEvent::Resumed => to_raw(&serde_json::json!({})),
            TenantEvent::TokenIssued(t) => to_raw(t),
            TenantEvent::TokenRevoked { token_id } => to_raw(&TokenIdPayload {
                token_id: token_id.clone(),
            }),
            TenantEvent::SecretSet(s) => to_raw(s),
            TenantEvent::SecretRemoved { key } => to_raw(&KeyPayload { key: key.clone() }),
        }
    }

    fn decode(event_type: &str, version: u32, payload: &RawValue) -> Result<Self, String> {
        Ok(match (event_type, version) {
            (types::CREATED, 1) => TenantEvent::Created(parse_payload(payload)?),
            (types::RENAMED, 1) => TenantEvent::Renamed {
                name: parse_payload::<NamePayload>(payload)?.name,
            },
            (types::SUSPENDED, 1) => TenantEvent::Suspended {
                reason: parse_payload::<ReasonPayload>(payload)?.reason,
            },
            (types::RESUMED, 1) => TenantEvent::Resumed,
            (types::TOKEN_ISSUED, 1) => TenantEvent::TokenIssued(upcast_token_issued_v1(payload)?),
            (types::TOKEN_ISSUED, TOKEN_ISSUED_VERSION) => {
                TenantEvent::TokenIssued(parse_payload(payload)?)
            }
            (types::TOKEN_REVOKED, 1) => TenantEvent::TokenRevoked {
                token_id: parse_payload::<TokenIdPayload>(payload)?.token_id,
            },
            (types::SECRET_SET, 1) => TenantEvent::SecretSet(parse_payload(payload)?),
            (types::SECRET_REMOVED, 1) => TenantEvent::SecretRemoved {
                key: parse_payload::<KeyPayload>(payload)?.key,
            },
            (t, v) => return Err(format!("unknown tenant event type `{t}` version {v}")),
        })
    }
}

/// Upcasts `tenant.token_issued` v1 to the current shape.
fn upcast_token_issued_v1(payload: &RawValue) -> Result<IssueToken, String> {
    let mut v: Value = parse_payload(payload)?;
    let obj = v.as_object_mut().ok_or("v1 payload is not an object")?;
    let digest = obj.remove("sha256").ok_or("v1 payload has no `sha256`")?;
    let digest = digest.as_str().ok_or("v1 `sha256` is not a string")?;
    obj.insert(
        "token_hash".into(),
        Value::String(format!("sha256:{digest}")),
    );
    obj.entry("expires_at").or_insert(Value::Null);
    serde_json::from_value(v).map_err(|e| format!("v1 payload after upcast: {e}"))
}

fn check_text(
    field: &'static str,
    s: &str,
    chars_max: usize,
    state: TenantStatus,
) -> Result<(), DomainError> {
    if s.trim().is_empty() || s.chars().count() > chars_max {
        return Err(refuse(
            "tenant",
            state.as_str(),
            "invalid_field",
            format!("{field} must be 1 to {chars_max} characters"),
        ));
    }
    Ok(())
}

impl Tenant {
    fn refuse(&self, code: &'static str, message: impl Into<String>) -> DomainError {
        refuse("tenant", self.status.as_str(), code, message)
    }

    fn require_exists(&self) -> Result<(), DomainError> {
        match self.status {
            TenantStatus::New => Err(self.refuse("tenant_not_found", "the tenant does not exist")),
            _ => Ok(()),
        }
    }

    fn active_tokens(&self) -> usize {
        self.tokens.values().filter(|t| !t.revoked).count()
    }

    fn decide_issue(&self, cmd: &IssueToken) -> Result<Vec<TenantEvent>, DomainError> {
        self.require_exists()?;
        check_text("token name", &cmd.name, TOKEN_NAME_CHARS_MAX, self.status)?;
        if self.tokens.contains_key(&cmd.token_id) {
            return Err(self.refuse(
                "token_exists",
                format!("token {} already exists", cmd.token_id),
            ));
        }
        if self.active_tokens() >= TOKENS_ACTIVE_MAX {
            return Err(self.refuse(
                "too_many_tokens",
                format!("at most {TOKENS_ACTIVE_MAX} active tokens"),
            ));
        }
        if !cmd.token_hash.starts_with("sha256:") {
            return Err(self.refuse("invalid_field", "token_hash must be `sha256:<hex>`"));
        }
        if cmd.expires_at.is_some_and(|e| e <= cmd.issued_at) {
            return Err(self.refuse("invalid_field", "expires_at must be after the issue time"));
        }
        Ok(vec![TenantEvent::TokenIssued(cmd.clone())])
    }

    fn decide_set_secret(&self, cmd: &SecretSet) -> Result<Vec<TenantEvent>, DomainError> {
        self.require_exists()?;
        if let Some(reason) = secret_key_problem(&cmd.key) {
            return Err(self.refuse("invalid_secret_key", reason));
        }
        if cmd.ciphertext.is_empty() || cmd.ciphertext.len() > SECRET_CIPHERTEXT_BYTES_MAX {
            return Err(self.refuse(
                "invalid_secret",
                format!("ciphertext must be 1 to {SECRET_CIPHERTEXT_BYTES_MAX} bytes"),
            ));
        }
        if !self.secrets.contains_key(&cmd.key) && self.secrets.len() >= TENANT_SECRETS_MAX {
            return Err(self.refuse(
                "too_many_secrets",
                format!("at most {TENANT_SECRETS_MAX} secrets per tenant"),
            ));
        }
        Ok(vec![TenantEvent::SecretSet(cmd.clone())])
    }

    /// Secret keys and when each was last set; never the values.
    pub fn secret_keys(&self) -> impl Iterator<Item = (&str, DateTime<Utc>)> {
        self.secrets.iter().map(|(k, s)| (k.as_str(), s.updated_at))
    }

    /// Whether `token_id` may be used at `now`.
    pub fn token_valid(&self, token_id: &TokenId, now: DateTime<Utc>) -> Option<&TokenRecord> {
        let t = self.tokens.get(token_id)?;
        let usable = !t.revoked
            && t.expires_at.is_none_or(|e| now < e)
            && self.status == TenantStatus::Active;
        usable.then_some(t)
    }
}

impl Aggregate for Tenant {
    type Command = TenantCommand;
    type Event = TenantEvent;
    const KIND: &'static str = "tenant";
    /// 2: secrets carry their revision (older snapshots lack it; replaying
    /// the stream counts it).
    const SNAPSHOT_VERSION: u32 = 2;

    fn decide(&self, command: &TenantCommand) -> Result<Vec<TenantEvent>, DomainError> {
        match command {
            TenantCommand::Create {
                tenant_id,
                slug,
                name,
            } => {
                if self.status != TenantStatus::New {
                    return Err(self.refuse("tenant_exists", "the tenant already exists"));
                }
                check_text("name", name, TENANT_NAME_CHARS_MAX, self.status)?;
                Ok(vec![TenantEvent::Created(TenantCreated {
                    tenant_id: tenant_id.clone(),
                    slug: slug.clone(),
                    name: name.clone(),
                })])
            }
            TenantCommand::Rename { name } => {
                self.require_exists()?;
                check_text("name", name, TENANT_NAME_CHARS_MAX, self.status)?;
                Ok(if *name == self.name {
                    vec![]
                } else {
                    vec![TenantEvent::Renamed { name: name.clone() }]
                })
            }
            TenantCommand::Suspend { reason } => {
                self.require_exists()?;
                if self.status == TenantStatus::Suspended {
                    return Err(self.refuse("already_suspended", "the tenant is already suspended"));
                }
                check_text("reason", reason, SUSPEND_REASON_CHARS_MAX, self.status)?;
                Ok(vec![TenantEvent::Suspended {
                    reason: reason.clone(),
                }])
            }
            TenantCommand::Resume => {
                self.require_exists()?;
                if self.status != TenantStatus::Suspended {
                    return Err(
                        self.refuse("not_suspended", "only a suspended tenant can be resumed")
                    );
                }
                Ok(vec![TenantEvent::Resumed])
            }
            TenantCommand::IssueToken(cmd) => self.decide_issue(cmd),
            TenantCommand::RevokeToken { token_id } => {
                self.require_exists()?;
                match self.tokens.get(token_id) {
                    None => Err(self.refuse("token_not_found", format!("no token {token_id}"))),
                    Some(t) if t.revoked => Ok(vec![]),
                    Some(_) => Ok(vec![TenantEvent::TokenRevoked {
                        token_id: token_id.clone(),
                    }]),
                }
            }
            TenantCommand::SetSecret(cmd) => self.decide_set_secret(cmd),
            TenantCommand::RemoveSecret { key } => {
                self.require_exists()?;
                if !self.secrets.contains_key(key) {
                    return Err(self.refuse(
                        "secret_not_found",
                        format!("no secret `{}`", crate::error::truncate_for_error(key)),
                    ));
                }
                Ok(vec![TenantEvent::SecretRemoved { key: key.clone() }])
            }
        }
    }

    fn apply(&mut self, event: &TenantEvent) -> Result<(), String> {
        match event {
            TenantEvent::Created(c) => {
                if self.status != TenantStatus::New {
                    return Err("tenant.created on an existing tenant".into());
                }
                self.id = Some(c.tenant_id.clone());
                self.slug = Some(c.slug.clone());
                self.name = c.name.clone();
                self.status = TenantStatus::Active;
            }
            _ if self.status == TenantStatus::New => {
                return Err(format!("{} before tenant.created", event.event_type()));
            }
            TenantEvent::Renamed { name } => self.name = name.clone(),
            TenantEvent::Suspended { reason } => {
                self.status = TenantStatus::Suspended;
                self.suspended_reason = Some(reason.clone());
            }
            TenantEvent::Resumed => {
                self.status = TenantStatus::Active;
                self.suspended_reason = None;
            }
            TenantEvent::TokenIssued(t) => {
                let record = TokenRecord {
                    name: t.name.clone(),
                    role: t.role,
                    token_hash: t.token_hash.clone(),
                    issued_at: t.issued_at,
                    expires_at: t.expires_at,
                    revoked: false,
                };
                if self.tokens.insert(t.token_id.clone(), record).is_some() {
                    return Err(format!("token {} issued twice", t.token_id));
                }
            }
            TenantEvent::TokenRevoked { token_id } => {
                let t = self
                    .tokens
                    .get_mut(token_id)
                    .ok_or_else(|| format!("revoking unknown token {token_id}"))?;
                t.revoked = true;
            }
            TenantEvent::SecretSet(s) => {
                let record = SecretRecord {
                    ciphertext: s.ciphertext.clone(),
                    updated_at: s.updated_at,
                    revision: self.secrets.get(&s.key).map_or(1, |r| r.revision + 1),
                };
                self.secrets.insert(s.key.clone(), record);
            }
            TenantEvent::SecretRemoved { key } => {
                if self.secrets.remove(key).is_none() {
                    return Err(format!("removing unknown secret `{key}`"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> (Tenant, TenantId) {
        let id = TenantId::generate();
        let mut t = Tenant::default();
        let cmd = TenantCommand::Create {
            tenant_id: id.clone(),
            slug: "acme".parse().unwrap(),
            name: "Acme".into(),
        };
        for e in t.decide(&cmd).unwrap() {
            t.apply(&e).unwrap();
        }
        (t, id)
    }

    fn run(t: &mut Tenant, cmd: TenantCommand) -> Result<usize, DomainError> {
        let events = t.decide(&cmd)?;
        for e in &events {
            t.apply(e).unwrap();
        }
        Ok(events.len())
    }

    fn issue(name: &str) -> IssueToken {
        IssueToken {
            token_id: TokenId::generate(),
            name: name.into(),
            role: Role::Admin,
            token_hash: "sha256:abcd".into(),
            issued_at: Utc::now(),
            expires_at: None,
        }
    }

    #[test]
    fn lifecycle() {
        let (mut t, id) = created();
        assert_eq!(
            (t.status, t.id.clone(), t.name.as_str()),
            (TenantStatus::Active, Some(id.clone()), "Acme")
        );
        let again = TenantCommand::Create {
            tenant_id: id,
            slug: "acme".parse().unwrap(),
            name: "Acme".into(),
        };
        let err = t.decide(&again).unwrap_err();
        assert_eq!((err.code, err.state.as_str()), ("tenant_exists", "active"));
        assert_eq!(
            run(
                &mut t,
                TenantCommand::Rename {
                    name: "Acme".into()
                }
            )
            .unwrap(),
            0,
            "same name is a no-op"
        );
        run(
            &mut t,
            TenantCommand::Rename {
                name: "Acme Inc".into(),
            },
        )
        .unwrap();
        assert_eq!(
            t.decide(&TenantCommand::Resume).unwrap_err().code,
            "not_suspended"
        );
        run(
            &mut t,
            TenantCommand::Suspend {
                reason: "unpaid".into(),
            },
        )
        .unwrap();
        assert_eq!(
            t.decide(&TenantCommand::Suspend { reason: "x".into() })
                .unwrap_err()
                .state,
            "suspended"
        );
        run(&mut t, TenantCommand::Resume).unwrap();
        assert_eq!(
            (t.status, t.name.as_str()),
            (TenantStatus::Active, "Acme Inc")
        );
        assert_eq!(
            t.decide(&TenantCommand::Rename { name: " ".into() })
                .unwrap_err()
                .code,
            "invalid_field"
        );
    }

    #[test]
    fn commands_on_a_missing_tenant_name_its_state() {
        let t = Tenant::default();
        let err = t
            .decide(&TenantCommand::Rename { name: "x".into() })
            .unwrap_err();
        assert_eq!((err.code, err.state.as_str()), ("tenant_not_found", "new"));
        assert!(err.to_string().contains("tenant is new"), "{err}");
    }

    #[test]
    fn tokens_issue_expire_and_revoke() {
        let (mut t, _) = created();
        let tok = issue("ci");
        run(&mut t, TenantCommand::IssueToken(tok.clone())).unwrap();
        let now = Utc::now();
        assert_eq!(
            t.token_valid(&tok.token_id, now).map(|r| r.role),
            Some(Role::Admin)
        );
        assert_eq!(
            t.decide(&TenantCommand::IssueToken(tok.clone()))
                .unwrap_err()
                .code,
            "token_exists"
        );
        let mut expiring = issue("short");
        expiring.expires_at = Some(now + chrono::Duration::seconds(60));
        run(&mut t, TenantCommand::IssueToken(expiring.clone())).unwrap();
        assert!(t.token_valid(&expiring.token_id, now).is_some());
        assert!(
            t.token_valid(&expiring.token_id, now + chrono::Duration::seconds(61))
                .is_none()
        );
        run(
            &mut t,
            TenantCommand::RevokeToken {
                token_id: tok.token_id.clone(),
            },
        )
        .unwrap();
        assert!(t.token_valid(&tok.token_id, now).is_none());
        assert_eq!(
            run(
                &mut t,
                TenantCommand::RevokeToken {
                    token_id: tok.token_id.clone()
                }
            )
            .unwrap(),
            0
        );
        let unknown = TenantCommand::RevokeToken {
            token_id: TokenId::generate(),
        };
        assert_eq!(t.decide(&unknown).unwrap_err().code, "token_not_found");
        let mut past = issue("past");
        past.expires_at = Some(past.issued_at - chrono::Duration::seconds(1));
        assert_eq!(
            t.decide(&TenantCommand::IssueToken(past)).unwrap_err().code,
            "invalid_field"
        );
        run(&mut t, TenantCommand::Suspend { reason: "r".into() }).unwrap();
        assert!(
            t.token_valid(&expiring.token_id, now).is_none(),
            "a suspended tenant's tokens do not work"
        );
    }

    #[test]
    fn events_round_trip_through_their_payloads() {
        let (mut t, _) = created();
        let tok = issue("x");
        for cmd in [
            TenantCommand::IssueToken(tok.clone()),
            TenantCommand::Suspend { reason: "r".into() },
            TenantCommand::Resume,
        ] {
            for e in t.decide(&cmd).unwrap() {
                let raw = e.to_payload().unwrap();
                let back = TenantEvent::decode(e.event_type(), e.schema_version(), &raw).unwrap();
                assert_eq!(back, e);
                t.apply(&e).unwrap();
            }
        }
        let err = TenantEvent::decode("tenant.exploded", 1, &to_raw(&1).unwrap()).unwrap_err();
        assert!(err.contains("tenant.exploded"));
    }

    #[test]
    fn replay_rejects_impossible_sequences() {
        let mut t = Tenant::default();
        assert!(
            t.apply(&TenantEvent::Resumed)
                .unwrap_err()
                .contains("before tenant.created")
        );
        let (mut t, _) = created();
        assert!(
            t.apply(&TenantEvent::TokenRevoked {
                token_id: TokenId::generate()
            })
            .is_err()
        );
    }

    #[test]
    fn secrets_are_ciphertext_keys_with_update_times() {
        let (mut t, _) = created();
        let set = |key: &str, ct: &str| {
            TenantCommand::SetSecret(SecretSet {
                key: key.into(),
                ciphertext: ct.into(),
                updated_at: Utc::now(),
            })
        };
        assert_eq!(run(&mut t, set("WEBHOOK_URL", "Y2lwaGVy")).unwrap(), 1);
        assert_eq!(run(&mut t, set("WEBHOOK_URL", "b3RoZXI=")).unwrap(), 1);
        assert_eq!(
            t.secret_keys().map(|(k, _)| k).collect::<Vec<_>>(),
            vec!["WEBHOOK_URL"]
        );
        assert_eq!(t.secrets["WEBHOOK_URL"].ciphertext, "b3RoZXI=");
        assert_eq!(
            run(&mut t, set("bad key", "x")).unwrap_err().code,
            "invalid_secret_key"
        );
        assert_eq!(
            run(&mut t, set("K", "")).unwrap_err().code,
            "invalid_secret"
        );
        let remove = |key: &str| TenantCommand::RemoveSecret { key: key.into() };
        assert_eq!(run(&mut t, remove("WEBHOOK_URL")).unwrap(), 1);
        assert_eq!(
            run(&mut t, remove("WEBHOOK_URL")).unwrap_err().code,
            "secret_not_found"
        );
        for e in [
            TenantEvent::SecretSet(SecretSet {
                key: "A".into(),
                ciphertext: "eA==".into(),
                updated_at: Utc::now(),
            }),
            TenantEvent::SecretRemoved { key: "A".into() },
        ] {
            let raw = e.to_payload().unwrap();
            assert_eq!(TenantEvent::decode(e.event_type(), 1, &raw).unwrap(), e);
        }
    }
}
