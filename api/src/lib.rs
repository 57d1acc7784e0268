//! Extensor's HTTP API (poem + poem-openapi). Only this crate knows HTTP.
//!
//! # Layout
//!
//! - [`server`]: the route table ([`server::apis`]), binding, graceful
//!   shutdown.
//! - [`document`]: the OpenAPI document as served and committed
//!   ([`server::openapi_yaml`]), and the `Allow` of `405` answers.
//! - [`docs_ui`]: Swagger UI at `/docs`, over that document.
//! - [`page_headers`]: the security headers of the server's own pages
//!   (console, docs).
//! - [`error`]: [`error::ApiError`], the one error type: every failure is
//!   `application/problem+json` with a stable `code`.
//! - [`auth`]: bearer tokens, `X-Tenant-Slug`, roles ([`auth::TenantCtx`]).
//! - [`directory`]: tenants and the token index, projected from the log.
//! - [`tenancy`]: creating tenants, issuing/revoking tokens, the
//!   platform-admin bootstrap (no HTTP; the CLI uses it too).
//! - [`ratelimit`]: per-tenant token buckets (events, routes, management).
//! - [`observe`]: request ids, the per-request log line, HTTP metrics, the
//!   Prometheus recorder. [`metered_store`]: the store with every append
//!   timed for `/metrics`.
//! - [`state`]: [`state::AppState`] shared by handlers; `FEATURE_*` switches.
//! - One file per resource: [`health`], [`metrics`], [`tenants`], [`tokens`],
//!   [`events`], [`audit`], [`plugins`], [`jobs`] (run-now, schedules, run history), [`secrets`], [`filters`]
//!   (test events, filter chains, generator hooks), [`ops`],
//!   [`outbox`] (`/api/outbox`, outgoing email),
//!   [`status`] (`/api/status`), [`webhooks`] (webhooks-as-code: apply,
//!   lifecycle, deliveries, redeliver, replay, test; its request body in
//!   [`webhook_body`]), [`tenant_secrets`] (`${SECRET:NAME}` values); plus
//!   [`ext_routes`] (`/ext/<slug>/…` and `/t/<tenant>/ext/<slug>/…`, plain
//!   poem: plugins define them).
//! - [`streams`]: server-sent event streams for live views (the tenant's
//!   log, a plugin's logs, the supervision tree), bounded per owner.
//! - [`session`]: `GET /api/session`, the caller's role (what a client
//!   may offer).
//! - [`console`]: the ops console at `/console`, its files embedded from
//!   the generated [`console_assets`] (built from `console/`).
//! - [`cluster`]: the server as one node of several on a shared store:
//!   its settings, the `GET /api/ops/cluster` view, and the gate that
//!   answers `503 node_fenced` while the node cannot renew its leases.
//! - [`engine_error`]: how `extensor_actors::Error` answers over HTTP.
//!
//! # Adding a resource (the pattern every resource file follows)
//!
//! ```ignore
//! pub struct JobsApi;                                  // a unit struct
//!
//! #[OpenApi(prefix_path = "/api", tag = "ApiTags::Jobs")]
//! impl JobsApi {
//!     /// Run a job now                                // = summary
//!     #[oai(path = "/plugins/:id/jobs/:job/run-now", method = "post",
//!           operation_id = "runJobNow")]               // always set
//!     async fn run_now(
//!         &self,
//!         state: State<'_>,                            // AppState
//!         auth: BearerAuth,                            // security scheme
//!         /// The tenant to act in (its slug). Optional with a tenant token,
//!         /// which names its tenant (a different slug is refused); required
//!         /// with the platform-admin token.
//!         #[oai(name = "X-Tenant-Slug")]
//!         tenant: Header<Option<String>>,
//!         id: Path<String>,
//!         job: Path<String>,
//!     ) -> Result<RunNowResponse, ApiError> {
//!         state.features.require(Feature::AppScripts)?;
//!         let ctx = state.tenant_access(&auth, &tenant, Role::Developer,
//!                                       RateClass::Management)?;
//!         // Scope everything to ctx.tenant: another tenant's id must
//!         // answer ApiError::not_found(..), exactly like an absent one.
//!         ...
//!     }
//! }
//! ```
//!
//! Then add `crate::jobs::JobsApi` to the tuple in [`server::apis`], add
//! each operation's row to the RBAC matrix in docs/API.md and to the walk in
//! api/tests/rbac.rs, and regenerate `openapi.yaml` with
//! `cargo run -- openapi > openapi.yaml`. Success responses are an
//! `ApiResponse` enum or `Json<T>`; errors are always `ApiError` (its
//! constructors: `not_found`, `conflict`, `validation`, `invalid_field`,
//! `forbidden`, `unavailable`, …, and `From<extensor_core::Error>`).

// `ApiError` is the HTTP answer itself (a problem document); moving a few
// hundred bytes on the error path of a request is not worth boxing every
// variant and obscuring the OpenAPI types.
#![allow(clippy::result_large_err)]

pub mod audit;
pub mod auth;
pub mod cluster;
pub mod console;
#[rustfmt::skip]
pub mod console_assets;
pub mod directory;
pub mod docs_ui;
pub mod document;
pub mod engine_error;
pub mod error;
pub mod events;
pub mod ext_routes;
pub mod filters;
pub mod health;
pub mod jobs;
pub mod metered_store;
pub mod metrics;
pub mod observe;
pub mod ops;
pub mod outbox;
pub mod page_headers;
pub mod plugins;
pub mod ratelimit;
pub mod secrets;
pub mod server;
pub mod session;
pub mod state;
pub mod status;
pub mod streams;
pub mod tags;
pub mod tenancy;
pub mod tenant_secrets;
pub mod tenants;
pub mod tokens;
pub mod types;
pub mod webhook_body;
pub mod webhooks;

pub use server::{Listening, ServerConfig, StoreConfig, api_service, openapi_yaml, serve};

/// Why the server could not start, or stopped with an error (the HTTP
/// error type is [`error::ApiError`]).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot start: {0}")]
    Startup(String),
    #[error(transparent)]
    Store(#[from] extensor_core::Error),
}
