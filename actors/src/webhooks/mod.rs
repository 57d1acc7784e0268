//! The webhook delivery engine: per tenant, a [`dispatcher::WebhookDispatcher`]
//! holds the registry and one [`endpoint::Endpoint`] actor per webhook.
//! Each endpoint reads the tenant's business events from its own durable
//! mark (independent of the plugin hook dispatcher and of the other
//! webhooks, so neither a slow plugin nor a broken webhook holds one up),
//! and owns that webhook's deliveries: creates them durably, runs the
//! transform in a sandbox isolate, signs, POSTs through the SSRF guard,
//! records every attempt and retries on its own schedule.
//!
//! - [`dispatcher`]: the tenant's webhook registry, its endpoint children
//!   (restarted per the [`RestartPolicy`](crate::RestartPolicy)), and the
//!   follower task that wakes them when the tenant has new events.
//! - [`endpoint`]: one webhook's deliveries on the durable-work model: its
//!   claim (epoch), its own read mark, backlog, retry schedule, concurrency
//!   and rate caps, time-based auto-disable.
//! - [`attempt`]: one attempt, start to end (not an actor): load the event,
//!   filter, transform, sign, POST, decide, append.
//! - [`code`]: a webhook's transform and filter as a sandboxed bundle.
//! - [`query`]: deliveries and attempts read back from the store.
//! - [`index`]: the deliveries index (a SQLite read model per tenant) that
//!   filtered listings read.
//! - [`service`]: [`WebhookService`](service::WebhookService), the entry
//!   point: a dispatcher per tenant, started on first use, and timed calls.
//! - [`secrets`]: tenant secrets, encrypted in the tenant aggregate, and the
//!   [`SecretSource`] the endpoints resolve `${SECRET:NAME}` with.

pub mod attempt;
pub mod code;
pub mod dispatcher;
pub mod endpoint;
pub mod index;
pub mod query;
pub mod secrets;
pub mod service;

use std::collections::BTreeMap;
use std::sync::Arc;

use extensor_core::clock::{Clock, SystemClock};
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::store::EventStore;
use extensor_js::host::net::GuardedHttp;
use extensor_js::{Installation, Sandbox};
use futures::future::BoxFuture;

pub use dispatcher::{DispatcherArgs, DispatcherMsg, WebhookDispatcher};
pub use endpoint::{Endpoint, EndpointMsg, EndpointStats};

/// How often an endpoint checks for due retries and refills its rate budget.
pub const TICK_MS_DEFAULT: u64 = 50;
/// Pending deliveries one endpoint holds in memory; beyond this the
/// follower waits (the events stay in the log, nothing is lost).
pub const BACKLOG_MAX_DEFAULT: usize = 100_000;
/// Bytes the pending deliveries of one endpoint may hold in memory (their
/// events while kept, plus `endpoint::PENDING_DELIVERY_BYTES` each): a
/// backlog of large events is bounded by size, not only by count (100,000
/// events of 1 MiB would be 100 GB). Beyond it the follower waits, exactly
/// as for `BACKLOG_MAX_DEFAULT`.
pub const BACKLOG_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// Events an endpoint reads (and makes deliveries of) per page.
pub const BATCH_EVENTS_MAX: usize = 256;
/// How long a replay waits for an endpoint to accept a batch.
pub const DELIVER_CALL_TIMEOUT_MS: u64 = 30_000;
/// The platform setting of the auto-disable period, in seconds (default
/// [`DISABLE_AFTER_FAILING_MS_DEFAULT`]).
pub const DISABLE_AFTER_FAILING_ENV: &str = "EXTENSOR_WEBHOOK_DISABLE_AFTER_FAILING_SECS";
pub use extensor_core::webhook::retry::DISABLE_AFTER_FAILING_MS_DEFAULT;

/// The process's warm-isolate budget as the engine hands it to webhooks
/// (`EngineConfig::warm_isolates_bytes_max`): a webhook transform's pool is
/// kept in the same least-recently-used set as the plugins' pools, evicted
/// with them when the warm isolates of all pools pass the cap, and rebuilt
/// on its next use. Without an engine (tools, tests) a webhook keeps its
/// own pool.
pub trait WarmIsolates: Send + Sync + 'static {
    /// The pool kept under `key`, or the one `install` makes (then kept).
    fn pool(&self, key: &InstallationId, install: &dyn Fn() -> Installation) -> Arc<dyn WarmPool>;
    /// After an invocation: evict pools beyond the cap.
    fn used(&self);
    /// The pool's code is no longer used (its endpoint stopped or updated).
    fn release(&self, key: &InstallationId);
}

/// A pool handed out by [`WarmIsolates`].
pub trait WarmPool: Send + Sync {
    fn installation(&self) -> &Installation;
}

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
    pub backlog_max: usize,
    pub backlog_bytes_max: usize,
    pub restart: crate::RestartPolicy,
    /// An endpoint whose receiver has failed without a single success for
    /// this long is disabled (`webhook.disabled`); a burst of failures
    /// never disables one. From [`DISABLE_AFTER_FAILING_ENV`] in a server.
    pub disable_after_failing_ms: u64,
    /// Where endpoints read the time (retry schedules, auto-disable).
    pub clock: Arc<dyn Clock>,
    /// The warm-isolate budget transform pools count toward (`None`: each
    /// webhook keeps its own pool, outside any cap).
    pub warm: Option<Arc<dyn WarmIsolates>>,
    /// The ops tree: each endpoint appears at `/tenants/<t>/webhooks/<name>`
    /// (`None` outside an engine).
    pub board: Option<crate::supervision::StatusBoard>,
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
            backlog_max: BACKLOG_MAX_DEFAULT,
            backlog_bytes_max: BACKLOG_BYTES_MAX_DEFAULT,
            restart: crate::RestartPolicy::default(),
            disable_after_failing_ms: DISABLE_AFTER_FAILING_MS_DEFAULT,
            clock: Arc::new(SystemClock),
            board: None,
            warm: None,
        }
    }

    /// The auto-disable period from [`DISABLE_AFTER_FAILING_ENV`] (whole
    /// seconds, at least 1), or the default when it is unset.
    pub fn disable_after_from_env() -> Result<u64, String> {
        parse_disable_after(std::env::var(DISABLE_AFTER_FAILING_ENV).ok().as_deref())
    }
}

/// The setting's value (`None`: unset) in milliseconds.
pub fn parse_disable_after(value: Option<&str>) -> Result<u64, String> {
    let Some(v) = value else {
        return Ok(DISABLE_AFTER_FAILING_MS_DEFAULT);
    };
    match v.trim().parse::<u64>() {
        Ok(secs) if secs >= 1 => Ok(secs.saturating_mul(1_000)),
        _ => Err(format!(
            "{DISABLE_AFTER_FAILING_ENV}=`{v}`: expected a whole number of seconds, at least 1"
        )),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disable_period_setting_is_seconds_and_refuses_nonsense() {
        assert_eq!(parse_disable_after(None), Ok(5 * 24 * 3_600 * 1_000));
        assert_eq!(parse_disable_after(Some("60")), Ok(60_000));
        for bad in ["0", "-1", "5d", "", "1.5"] {
            let err = parse_disable_after(Some(bad)).unwrap_err();
            assert!(err.contains(DISABLE_AFTER_FAILING_ENV), "{err}");
        }
    }
}
