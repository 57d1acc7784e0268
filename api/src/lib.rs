//! Extensor's HTTP API (poem). Only this crate knows HTTP.
//!
//! # Layout
//!
//! - [`server`]: binding, the route table, graceful shutdown.
//! - [`health`]: `GET /healthz`.
//!
//! The management API (tenants, tokens, plugins, audit, ops, OpenAPI) is
//! built by the API issue on top of this server.

pub mod health;
pub mod server;

pub use server::{ServerConfig, serve};

/// The crate's one error type.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Store(#[from] extensor_core::Error),
}
