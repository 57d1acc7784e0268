//! Extensor's kernel: the domain model and the event store.
//!
//! # Layout
//!
//! - [`ids`]: prefixed newtype ids (`ten_…`, `ins_…`, `evt_…`).
//! - [`role`], [`manifest`]: token roles; the plugin manifest and its validation.
//! - [`error`]: the crate's one error type, with stable codes.
//! - [`event`]: the event envelope, stream names, principals, the hash chain.
//! - [`kernel_events`]: the reserved event-type namespaces and the stream
//!   categories that own them (who may write what, and what to trust).
//! - [`aggregate`]: the `Aggregate` trait (pure `decide`/`apply`), loading
//!   from snapshot + tail, and `execute` with bounded conflict retries.
//! - [`tenant`], [`installation`]: the two aggregates of the kernel.
//! - [`webhook`]: webhooks-as-code, pure: declarations (YAML with line and
//!   column errors), the webhook registry and delivery aggregates, retry
//!   policy, Standard Webhooks signatures.
//! - [`cluster`]: several nodes on one store: the node registry and tenant
//!   leases (`Cluster`), and which node should own a tenant (rendezvous).
//! - [`clock`]: where "now" comes from; a manual clock for tests.
//! - [`schedule`], [`job_runs`]: plugin jobs: fire times in a timezone with
//!   the DST rule, catch-up decisions, and the per-job run aggregate.
//! - [`route_access`]: `route.accessed`, the per-interval audit record of
//!   plugin route traffic, and its duration-bucket arithmetic.
//! - [`redact`]: the one redaction point: secret values and URL paths out
//!   of every recorded text.
//! - [`secrets`]: the platform key and AES-SIV sealing of secret values.
//! - [`bundles`]: the content-addressed store of uploaded plugin ZIPs.
//! - [`files`]: `ctx.files`: the checked front, the backend boundary, the
//!   data directory's backend and the suite every backend passes.
//! - [`revision`]: `ExpectedRevision`, an append's concurrency condition
//!   (re-exported by `store`).
//! - [`store`]: the `EventStore` trait, its types, and the conformance suite
//!   every backend must pass.

pub mod aggregate;
pub mod bundles;
pub mod clock;
pub mod cluster;
pub mod error;
pub mod event;
pub mod files;
pub mod ids;
pub mod installation;
pub mod job_runs;
pub mod kernel_events;
pub mod manifest;
pub mod redact;
pub mod revision;
pub mod role;
pub mod route_access;
pub mod schedule;
pub mod secrets;
pub mod store;
pub mod tenant;
pub mod webhook;

pub use error::{DomainError, Error, FieldProblem};
