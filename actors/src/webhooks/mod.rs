//! The webhook delivery engine: per tenant, a [`dispatcher::WebhookDispatcher`]
//! follows the tenant's business events from its own durable cursor
//! (independent of the plugin hook dispatcher, so slow plugins never hold up
//! webhooks) and hands matching events to one [`endpoint::Endpoint`] actor
//! per webhook, which owns that webhook's deliveries: creates them durably,
//! runs the transform in a sandbox isolate, signs, POSTs through the SSRF
//! guard, records every attempt and retries on its own schedule.
//!
//! - [`dispatcher`]: the tenant's webhook registry, its endpoint children
//!   (restarted per the [`RestartPolicy`](crate::RestartPolicy)), the
//!   follower task and the cursor.
//! - [`endpoint`]: one webhook's deliveries: backlog, retry schedule,
//!   per-endpoint concurrency and rate caps, disabling after failures.
//! - [`attempt`]: one attempt, start to end (not an actor): load the event,
//!   filter, transform, sign, POST, decide, append.
//! - [`code`]: a webhook's transform and filter as a sandboxed bundle.
//! - [`query`]: deliveries and attempts read back from the store.
//! - [`service`]: [`WebhookService`](service::WebhookService), the entry
//!   point: a dispatcher per tenant, started on first use, and timed calls.
//! - [`secrets`]: tenant secrets, encrypted in the tenant aggregate, and the
//!   [`SecretSource`] the endpoints resolve `${SECRET:NAME}` with.

pub mod attempt;
pub mod code;
pub mod dispatcher;
pub mod endpoint;
pub mod query;
pub mod secrets;
pub mod service;

use std::collections::BTreeMap;
use std::sync::Arc;

use extensor_core::ids::TenantId;
use extensor_core::store::EventStore;
use extensor_js::Sandbox;
use extensor_js::host::net::GuardedHttp;
use futures::future::BoxFuture;

pub use dispatcher::{DispatcherArgs, DispatcherMsg, WebhookDispatcher};
pub use endpoint::{Endpoint, EndpointMsg, EndpointStats};

/// How often an endpoint checks for due retries and refills its rate budget.
pub const TICK_MS_DEFAULT: u64 = 50;
/// The dispatcher records its cursor after this many events (and when idle).
pub const CURSOR_EVERY_EVENTS_DEFAULT: u64 = 1_000;
/// Pending deliveries one endpoint holds in memory; beyond this the
/// follower waits (the events stay in the log, nothing is lost).
pub const BACKLOG_MAX_DEFAULT: usize = 100_000;
/// Bytes the pending deliveries of one endpoint may hold in memory (their
/// events while kept, plus `endpoint::PENDING_DELIVERY_BYTES` each): a
/// backlog of large events is bounded by size, not only by count (100,000
/// events of 1 MiB would be 100 GB). Beyond it the follower waits, exactly
/// as for `BACKLOG_MAX_DEFAULT`.
pub const BACKLOG_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// Events handed to the endpoints per batch.
pub const BATCH_EVENTS_MAX: usize = 256;
/// How long the follower waits for an endpoint to accept a batch.
pub const DELIVER_CALL_TIMEOUT_MS: u64 = 30_000;

/// A tenant's secrets, decrypted, for resolving `${SECRET:NAME}`.
pub trait SecretSource: Send + Sync + 'static {
    fn secrets<'a>(
        &'a self,
        tenant: &'a TenantId,
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, String>>;
}

/// What every webhook actor of the process shares.
#[derive(Clone)]
pub struct WebhookConfig {
    pub store: Arc<dyn EventStore>,
    pub sandbox: Sandbox,
    /// The SSRF-guarded client (`EXTENSOR_ALLOW_PRIVATE_NETWORKS` applies).
    pub http: Arc<GuardedHttp>,
    pub secrets: Arc<dyn SecretSource>,
    pub tick_ms: u64,
    pub cursor_every_events: u64,
    pub backlog_max: usize,
    pub backlog_bytes_max: usize,
    pub restart: crate::RestartPolicy,
}

impl WebhookConfig {
    pub fn new(
        store: Arc<dyn EventStore>,
        sandbox: Sandbox,
        http: Arc<GuardedHttp>,
        secrets: Arc<dyn SecretSource>,
    ) -> Self {
        Self {
            store,
            sandbox,
            http,
            secrets,
            tick_ms: TICK_MS_DEFAULT,
            cursor_every_events: CURSOR_EVERY_EVENTS_DEFAULT,
            backlog_max: BACKLOG_MAX_DEFAULT,
            backlog_bytes_max: BACKLOG_BYTES_MAX_DEFAULT,
            restart: crate::RestartPolicy::default(),
        }
    }
}

/// A random number in [0, 1) for backoff jitter.
pub(crate) fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}
