//! Business events a host application publishes into a tenant's stream
//! (`events-<tenant>`), dispatched to hooks (and webhooks) from there.
//!
//! **Idempotency:** with a key, the event id is derived from (tenant, key),
//! so a retried publish collides with the original on the store's unique
//! event id: the store refuses the duplicate atomically, and the original is
//! looked up by id and returned. No reservation record, no window between
//! two writes, and it holds across restarts and processes.

use extensor_core::event::{EventMeta, NewEvent, Principal, RecordedEvent, StreamId};
use extensor_core::ids::{EventId, TenantId};
use extensor_core::store::ExpectedRevision;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Engine, Inner};
use crate::error::Error;

/// Idempotency keys are client request ids, not documents.
pub const IDEMPOTENCY_KEY_CHARS_MAX: usize = 255;

/// The event id a publish with this key gets: the first 16 bytes of
/// SHA-256(tenant ‖ 0 ‖ key) as a ULID.
pub fn idempotent_event_id(tenant: &TenantId, key: &str) -> EventId {
    let mut h = Sha256::new();
    h.update(b"extensor-publish-v1\0");
    h.update(tenant.as_str().as_bytes());
    h.update([0u8]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut raw = [0u8; 16];
    raw.copy_from_slice(&digest[..16]);
    format!("evt_{}", ulid::Ulid::from_bytes(raw))
        .parse()
        .expect("a ULID body is a valid event id")
}

fn invalid(path: &str, message: impl Into<String>) -> Error {
    Error::Validation(vec![extensor_core::FieldProblem::new(path, message)])
}

impl Inner {
    /// Appends one business event and wakes the tenant's dispatch lanes.
    pub(crate) async fn append_business(&self, new: NewEvent) -> Result<RecordedEvent, Error> {
        let tenant = new
            .meta
            .tenant
            .clone()
            .ok_or_else(|| invalid("$", "no tenant"))?;
        let stream = StreamId::business_events(&tenant);
        let event_id = new.event_id.clone();
        let core = |source| Error::Core {
            actor: format!("/tenants/{tenant}/events"),
            source,
        };
        match self
            .store
            .append(stream.clone(), ExpectedRevision::Any, vec![new.clone()])
            .await
        {
            Ok(result) => {
                let mut page = self
                    .store
                    .read_stream(stream, result.next_expected, 1)
                    .await
                    .map_err(core)?;
                let recorded = page
                    .pop()
                    .ok_or_else(|| Error::not_found("event", &event_id))?;
                self.directory.business_event(&recorded);
                Ok(recorded)
            }
            Err(extensor_core::Error::DuplicateEventId { .. }) => {
                let original = self
                    .store
                    .read_event(event_id.clone())
                    .await
                    .map_err(core)?
                    .filter(|e| e.stream == stream)
                    .ok_or_else(|| Error::not_found("event", &event_id))?;
                if original.event_type != new.event_type
                    || original.payload.get() != new.payload.get()
                {
                    return Err(Error::Conflict {
                        code: "idempotency_key_reused",
                        message: "this idempotency key was used for a different event".into(),
                    });
                }
                Ok(original)
            }
            Err(source) => Err(core(source)),
        }
    }
}

impl Engine {
    /// Publishes a business event; answers once it is durable. A retried
    /// `idempotency_key` returns the original event without appending; the
    /// same key with a different type or payload is `Conflict`.
    pub async fn publish(
        &self,
        tenant: &TenantId,
        event_type: &str,
        data: Value,
        idempotency_key: Option<String>,
        principal: Principal,
    ) -> Result<RecordedEvent, Error> {
        let inner = &self.inner;
        let _work = inner.begin()?;
        if let Some(reason) = extensor_core::kernel_events::business_event_type_problem(event_type)
        {
            return Err(invalid("$.event_type", format!("`{event_type}` {reason}")));
        }
        if let Some(key) = &idempotency_key
            && (key.is_empty() || key.chars().count() > IDEMPOTENCY_KEY_CHARS_MAX)
        {
            return Err(invalid(
                "Idempotency-Key",
                format!("must be 1 to {IDEMPOTENCY_KEY_CHARS_MAX} characters"),
            ));
        }
        inner.require_tenant(tenant).await?;
        let meta = EventMeta::new(Some(tenant.clone()), principal);
        let mut new = NewEvent::new(event_type, 1, meta, &data)
            .map_err(|e| invalid("$.event_data", e.to_string()))?;
        new.validate(&StreamId::business_events(tenant))
            .map_err(|e| invalid("$.event_data", e.to_string()))?;
        if let Some(key) = &idempotency_key {
            new.event_id = idempotent_event_id(tenant, key);
        }
        inner.append_business(new).await
    }
}
