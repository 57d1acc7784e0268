//! Extensor's HTTP API (poem + poem-openapi).
//!
//! # Layout
//!
//! Not built yet: this crate is filled by the API issue. Only this crate will
//! know HTTP and OpenAPI types.
