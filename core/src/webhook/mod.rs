//! Webhooks-as-code, the pure part: declarations, the webhook registry
//! aggregate, deliveries, retries and signatures. No IO; the delivery
//! engine is `extensor_actors::webhooks`, the HTTP surface `api/`.
//!
//! - [`yaml`]: a span-keeping YAML tree (saphyr-parser events) with limits.
//! - [`spec`]: the declaration format, validated with every problem at its
//!   line and column; event patterns; `${SECRET:NAME}` templates.
//! - [`registry`]: [`TenantWebhooks`], the aggregate of one tenant's
//!   webhooks (declared, updated, deleted, disabled, enabled).
//! - [`delivery`]: [`Delivery`], one delivery's attempts and outcome.
//! - [`ledger`]: one webhook's deliveries stream folded for its endpoint
//!   (claim epoch, read mark, pending deliveries, failing since).
//! - [`retry`]: response classification and backoff, as pure functions.
//! - [`signing`]: Standard Webhooks signatures.

pub mod delivery;
pub mod ledger;
pub mod registry;
pub mod retry;
pub mod signing;
pub mod spec;
pub mod yaml;

pub use delivery::{Delivery, DeliveryCommand, DeliveryEvent, DeliveryStatus, Observed, Origin};
pub use registry::{
    TenantWebhooks, WebhookCommand, WebhookEvent, WebhookName, WebhookRecord, WebhookSource,
    WebhookStatus,
};
pub use retry::{AttemptOutcome, Backoff, RetryPolicy, Verdict};
pub use signing::SigningKey;
pub use spec::{EventPattern, Filter, Problem, Template, WebhookSpec};

use crate::event::StreamId;
use crate::ids::TenantId;

/// The stream category of tenants' webhook registries (`webhooks-<tenant>`).
pub const REGISTRY_CATEGORY: &str = "webhooks";

/// The stream of a tenant's webhook registry.
pub fn registry_stream(tenant: &TenantId) -> StreamId {
    StreamId::new(REGISTRY_CATEGORY, tenant.as_str()).expect("tenant ids are valid stream ids")
}

/// The tenant whose registry `stream` is, if it is one.
pub fn registry_tenant(stream: &StreamId) -> Option<TenantId> {
    stream
        .as_str()
        .strip_prefix(REGISTRY_CATEGORY)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

/// The stream holding every delivery of one webhook.
pub fn deliveries_stream(tenant: &TenantId, name: &WebhookName) -> StreamId {
    StreamId::new("webhook_deliveries", &format!("{tenant}.{name}"))
        .expect("tenant ids and webhook names are valid stream ids")
}

/// The stream where a tenant's webhook dispatcher recorded how far it had
/// read the tenant's business events, before each endpoint kept its own
/// read mark in its deliveries stream. No longer written; logs from before
/// hold it, so its category stays kernel-owned.
pub fn cursor_stream(tenant: &TenantId) -> StreamId {
    StreamId::new("webhook_cursor", tenant.as_str()).expect("tenant ids are valid stream ids")
}
