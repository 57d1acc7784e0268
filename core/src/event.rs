//! The event envelope: what is appended ([`NewEvent`]), what is read back
//! ([`RecordedEvent`]), the streams events live in, and the hash chain that
//! makes the log tamper-evident.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::error::truncate_for_error;
use crate::ids::{CorrelationId, EventId, InstallationId, TenantId};

/// One event's JSON payload may not exceed this. Events are facts, not blobs:
/// bundles and files live elsewhere and events carry their digests.
pub const PAYLOAD_BYTES_MAX: usize = 1024 * 1024;
/// Event types are short dotted names like `plugin.enabled`.
pub const EVENT_TYPE_BYTES_MAX: usize = 128;
/// Stream names: `<category>-<id>`.
pub const STREAM_BYTES_MAX: usize = 160;
/// Principal names such as `operator:alice`.
pub const PRINCIPAL_BYTES_MAX: usize = 160;

/// The SHA-256 link of the hash chain. The first event's `prev_hash` is all
/// zeroes.
pub type Hash = [u8; 32];
pub const GENESIS_HASH: Hash = [0u8; 32];

/// A stream: the ordered events of one aggregate or one feed, named
/// `<category>-<id>`, e.g. `tenant-ten_01H…`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(Arc<str>);

impl StreamId {
    /// The tenant aggregate's stream.
    pub fn tenant(id: &TenantId) -> Self {
        Self(format!("tenant-{id}").into())
    }

    /// A plugin installation aggregate's stream.
    pub fn installation(id: &InstallationId) -> Self {
        Self(format!("installation-{id}").into())
    }

    /// The business events a host application publishes into a tenant.
    pub fn business_events(id: &TenantId) -> Self {
        Self(format!("events-{id}").into())
    }

    /// Any other stream: `category` is lowercase letters and underscores,
    /// `id` is letters, digits, `_`, `.` and `-`.
    pub fn new(category: &str, id: &str) -> Result<Self, Error> {
        format!("{category}-{id}").parse()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first dash: `tenant`, `installation`, `events`.
    pub fn category(&self) -> &str {
        self.0.split_once('-').map_or(&self.0, |(c, _)| c)
    }
}

impl FromStr for StreamId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let problem = |reason: &str| Error::InvalidValue {
            what: "stream",
            value: truncate_for_error(s),
            reason: reason.into(),
        };
        if s.is_empty() || s.len() > STREAM_BYTES_MAX {
            return Err(problem("must be 1 to 160 bytes"));
        }
        let Some((category, id)) = s.split_once('-') else {
            return Err(problem("must look like `<category>-<id>`"));
        };
        let category_ok = !category.is_empty()
            && category
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_');
        let id_ok = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !category_ok || !id_ok {
            return Err(problem(
                "category is lowercase letters and _, id is letters, digits, _ . -",
            ));
        }
        Ok(Self(s.into()))
    }
}

impl TryFrom<String> for StreamId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl From<StreamId> for String {
    fn from(s: StreamId) -> String {
        s.0.to_string()
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who caused an event: `system`, `platform-admin`, `token:tok_…`,
/// `operator:<name>` (a person at the CLI) or `plugin:ins_…` (`ctx.emit`).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Principal(String);

impl Principal {
    pub fn system() -> Self {
        Self("system".into())
    }
    pub fn platform_admin() -> Self {
        Self("platform-admin".into())
    }
    pub fn token(id: &crate::ids::TokenId) -> Self {
        Self(format!("token:{id}"))
    }
    pub fn plugin(id: &InstallationId) -> Self {
        Self(format!("plugin:{id}"))
    }
    pub fn operator(name: &str) -> Result<Self, Error> {
        format!("operator:{name}").parse()
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Principal {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let known = s == "system"
            || s == "platform-admin"
            || s.strip_prefix("token:")
                .is_some_and(|t| t.parse::<crate::ids::TokenId>().is_ok())
            || s.strip_prefix("plugin:")
                .is_some_and(|t| t.parse::<InstallationId>().is_ok())
            || s.strip_prefix("operator:").is_some_and(|n| {
                !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-@".contains(&b))
            });
        if !known || s.len() > PRINCIPAL_BYTES_MAX {
            return Err(Error::InvalidValue {
                what: "principal",
                value: truncate_for_error(s),
                reason:
                    "expected system, platform-admin, token:tok_…, plugin:ins_… or operator:<name>"
                        .into(),
            });
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for Principal {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl From<Principal> for String {
    fn from(p: Principal) -> String {
        p.0
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The context every event of one command shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventMeta {
    pub tenant: Option<TenantId>,
    pub principal: Principal,
    pub correlation_id: CorrelationId,
    /// The event that caused this one, if any (an emit from a hook).
    pub causation_id: Option<EventId>,
}

impl EventMeta {
    /// Metadata for a command with no triggering event.
    pub fn new(tenant: Option<TenantId>, principal: Principal) -> Self {
        Self {
            tenant,
            principal,
            correlation_id: CorrelationId::generate(),
            causation_id: None,
        }
    }
}

/// An event proposed for append. Position, revision, time and hashes are
/// assigned by the store.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub event_id: EventId,
    pub event_type: String,
    pub schema_version: u32,
    pub meta: EventMeta,
    /// Valid JSON, at most [`PAYLOAD_BYTES_MAX`] bytes.
    pub payload: Box<RawValue>,
}

impl NewEvent {
    /// Builds an event from a serialisable payload.
    pub fn new<T: Serialize>(
        event_type: &str,
        schema_version: u32,
        meta: EventMeta,
        payload: &T,
    ) -> Result<Self, Error> {
        let payload =
            serde_json::value::to_raw_value(payload).map_err(|e| Error::InvalidValue {
                what: "event payload",
                value: event_type.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            event_id: EventId::generate(),
            event_type: event_type.to_owned(),
            schema_version,
            meta,
            payload,
        })
    }

    /// Checks the limits and shape rules every backend enforces.
    pub fn validate(&self, stream: &StreamId) -> Result<(), Error> {
        let bad = |reason: String| Error::InvalidAppend {
            stream: stream.to_string(),
            reason,
        };
        let t = &self.event_type;
        if t.is_empty() || t.len() > EVENT_TYPE_BYTES_MAX {
            return Err(bad(format!(
                "event type must be 1 to {EVENT_TYPE_BYTES_MAX} bytes"
            )));
        }
        if !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(bad(format!(
                "event type `{}` may contain only letters, digits, . _ -",
                truncate_for_error(t)
            )));
        }
        if self.schema_version == 0 {
            return Err(bad("schema version starts at 1".into()));
        }
        if self.payload.get().len() > PAYLOAD_BYTES_MAX {
            return Err(bad(format!(
                "payload of `{t}` is {} bytes; the limit is {PAYLOAD_BYTES_MAX}",
                self.payload.get().len()
            )));
        }
        Ok(())
    }
}

/// An event as stored: the envelope plus its place in the log and its link
/// in the hash chain.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Position in the whole log, from 1, without gaps.
    pub position: u64,
    pub stream: StreamId,
    /// Revision within the stream, from 0, without gaps.
    pub revision: u64,
    pub event_id: EventId,
    pub event_type: String,
    pub schema_version: u32,
    /// Never earlier than the previous event's: the store clamps the clock so
    /// that time ranges and position ranges agree.
    pub recorded_at: DateTime<Utc>,
    pub tenant: Option<TenantId>,
    pub principal: Principal,
    pub correlation_id: CorrelationId,
    pub causation_id: Option<EventId>,
    pub payload: Box<RawValue>,
    #[serde(with = "hex_hash")]
    pub prev_hash: Hash,
    #[serde(with = "hex_hash")]
    pub hash: Hash,
}

impl RecordedEvent {
    /// The bytes the hash chain covers: every field but the two hashes, each
    /// length-prefixed so that no two different events share an encoding.
    /// Changing this breaks every existing chain; it is part of the format.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.payload.get().len());
        out.extend_from_slice(b"extensor-event-v1");
        out.extend_from_slice(&self.position.to_be_bytes());
        put_field(&mut out, self.stream.as_str().as_bytes());
        out.extend_from_slice(&self.revision.to_be_bytes());
        put_field(&mut out, self.event_id.as_str().as_bytes());
        put_field(&mut out, self.event_type.as_bytes());
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.recorded_at.timestamp_micros().to_be_bytes());
        put_field(
            &mut out,
            self.tenant
                .as_ref()
                .map_or(&b""[..], |t| t.as_str().as_bytes()),
        );
        put_field(&mut out, self.principal.as_str().as_bytes());
        put_field(&mut out, self.correlation_id.as_str().as_bytes());
        put_field(
            &mut out,
            self.causation_id
                .as_ref()
                .map_or(&b""[..], |c| c.as_str().as_bytes()),
        );
        put_field(&mut out, self.payload.get().as_bytes());
        out
    }

    /// SHA-256(prev_hash ‖ canonical bytes).
    pub fn compute_hash(&self) -> Hash {
        chain_hash(&self.prev_hash, &self.canonical_bytes())
    }
}

pub fn chain_hash(prev: &Hash, canonical: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical);
    h.finalize().into()
}

fn put_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

mod hex_hash {
    use super::Hash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names() {
        let t = TenantId::generate();
        let s = StreamId::tenant(&t);
        assert_eq!(s.category(), "tenant");
        assert_eq!(s.as_str().parse::<StreamId>().unwrap(), s);
        assert_eq!(StreamId::business_events(&t).category(), "events");
        for bad in [
            "",
            "nodash",
            "-x",
            "Tenant-x",
            "a-b c",
            "a-",
            &format!("a-{}", "x".repeat(200)),
        ] {
            assert!(bad.parse::<StreamId>().is_err(), "{bad:?} accepted");
        }
        assert!(StreamId::new("job_runs", "ins_1.daily-kpi").is_ok());
    }

    #[test]
    fn principals() {
        for ok in ["system", "platform-admin", "operator:alice@example.com"] {
            assert_eq!(ok.parse::<Principal>().unwrap().as_str(), ok);
        }
        let tok = crate::ids::TokenId::generate();
        assert_eq!(
            Principal::token(&tok)
                .as_str()
                .parse::<Principal>()
                .unwrap(),
            Principal::token(&tok)
        );
        for bad in ["root", "token:nope", "operator:", "operator:a b"] {
            assert!(bad.parse::<Principal>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn new_event_limits() {
        let meta = EventMeta::new(None, Principal::system());
        let s = StreamId::new("test", "a").unwrap();
        let ok = NewEvent::new("a.b", 1, meta.clone(), &serde_json::json!({"x": 1})).unwrap();
        ok.validate(&s).unwrap();
        let big = NewEvent::new("a.b", 1, meta.clone(), &"x".repeat(PAYLOAD_BYTES_MAX)).unwrap();
        assert!(big.validate(&s).unwrap_err().to_string().contains("limit"));
        let bad_type = NewEvent::new("a b", 1, meta.clone(), &1).unwrap();
        assert!(bad_type.validate(&s).is_err());
        let v0 = NewEvent::new("a.b", 0, meta, &1).unwrap();
        assert!(v0.validate(&s).is_err());
    }

    #[test]
    fn canonical_bytes_cover_every_field() {
        let ev = RecordedEvent {
            position: 1,
            stream: StreamId::new("test", "a").unwrap(),
            revision: 0,
            event_id: EventId::generate(),
            event_type: "a.b".into(),
            schema_version: 1,
            recorded_at: Utc::now(),
            tenant: None,
            principal: Principal::system(),
            correlation_id: CorrelationId::generate(),
            causation_id: None,
            payload: RawValue::from_string("{\"x\":1}".into()).unwrap(),
            prev_hash: GENESIS_HASH,
            hash: GENESIS_HASH,
        };
        let base = ev.compute_hash();
        let mut moved = ev.clone();
        moved.position = 2;
        assert_ne!(moved.compute_hash(), base);
        let mut edited = ev.clone();
        edited.payload = RawValue::from_string("{\"x\":2}".into()).unwrap();
        assert_ne!(edited.compute_hash(), base);
        let mut relinked = ev.clone();
        relinked.prev_hash = [1u8; 32];
        assert_ne!(relinked.compute_hash(), base);
        let json = serde_json::to_string(&ev).unwrap();
        let back: RecordedEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back.compute_hash(), base);
    }
}
