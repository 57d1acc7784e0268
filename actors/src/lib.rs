//! Extensor's supervision tree: every tenant and plugin installation as a
//! supervised ractor actor rebuilt from its event stream.
//!
//! # Layout
//!
//! - [`error`]: the crate's one error type; every variant names the actor.
//! - [`supervision`]: the one place failure handling lives: [`RestartPolicy`]
//!   (exponential backoff, crash-loop limit), the per-actor status records
//!   and [`TreeSnapshot`] for the ops view, the bounded [`Mailbox`] gate and
//!   timed calls.
//! - [`aggregate_actor`]: a tenant or installation aggregate as an actor:
//!   rebuilt from its stream at start, commands via `aggregate::execute`.
//! - [`tenant_supervisor`]: one tenant's supervisor: its tenant actor and
//!   one actor per installation, spawned lazily, restarted per the policy.
//! - [`webhooks`]: the webhook delivery engine: per tenant a dispatcher
//!   holding one endpoint actor per webhook, each reading the tenant's
//!   events from its own durable mark and owning its deliveries and retries.
//! - `tenant_locks`: one async lock per tenant for the per-tenant SQLite
//!   read models (the `ctx.db` projection, the deliveries index).
//! - [`jobs`], [`scheduler`]: plugin jobs: the [`jobs::JobRunner`] boundary,
//!   run recording, and the per-tenant scheduler actor (claims, fires,
//!   catch-up, overlap, run-now); `scheduler/instant.rs` fires the claims
//!   of one instant from one task.
//! - [`outbox`]: the per-tenant email outbox, the first user of the
//!   durable-work model: claims its stream with a fencing epoch, retries
//!   with backoff, caps sends per minute, records every outcome.
//! - [`route_access`]: plugin route traffic counted in memory (per-route
//!   atomics, bounded per tenant) and flushed by a per-tenant service child
//!   as `route.accessed` records, on its timer and when it stops.
//! - [`metric_labels`]: bounded label values for `/metrics` (slugs and
//!   job names past a per-process cap become `_other`).
//! - [`outbox_pending`]: each outbox's pending count, summed for the
//!   outbox-depth gauge.
//! - [`root`]: the root supervisor: one tenant supervisor per tenant, and
//!   the tree snapshot for the ops view.
//! - [`dispatcher`]: a tenant's event dispatcher (a service child of the
//!   tenant supervisor): one lane per hooked installation, each following
//!   the business stream from its own durable checkpoint.
//! - [`ownership`]: which tenants' single-owner work (leased services) this
//!   node runs: every tenant on its own store, the leased ones on a shared
//!   store; nothing while fenced.
//! - [`cluster`]: several nodes on one store: the node's registration,
//!   heartbeat and tenant leases (rendezvous over the live nodes), which
//!   start and stop the tenants' leased services, and self-fencing.
//! - [`engine`]: the library facade ([`Engine`]) the API, webhooks and
//!   scheduler build on: plugin lifecycle, secrets, publishing, invocations,
//!   routes, filter chains, ops.

pub mod aggregate_actor;
pub mod cluster;
pub mod dispatcher;
pub mod engine;
pub mod error;
pub mod jobs;
pub mod metric_labels;
pub mod outbox;
pub mod outbox_pending;
pub mod ownership;
pub mod root;
pub mod route_access;
pub mod scheduler;
pub mod supervision;
mod tenant_locks;
pub mod tenant_supervisor;
pub mod webhooks;

pub use engine::{Engine, EngineConfig};
pub use error::Error;
pub use supervision::{ActorInfo, ActorStatus, Mailbox, RestartPolicy, TreeSnapshot};
