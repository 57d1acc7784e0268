//! Extensor's kernel: the domain model and the event store.
//!
//! # Layout
//!
//! - [`ids`]: prefixed newtype ids (`ten_…`, `ins_…`, `evt_…`).
//! - [`role`], [`manifest`]: token roles; the plugin manifest and its validation.
//! - [`error`]: the crate's one error type, with stable codes.
//! - [`event`]: the event envelope, stream names, principals, the hash chain.
//! - [`store`]: the `EventStore` trait, its types, and the conformance suite
//!   every backend must pass.

pub mod error;
pub mod event;
pub mod ids;
pub mod manifest;
pub mod role;
pub mod store;

pub use error::{DomainError, Error, FieldProblem};
