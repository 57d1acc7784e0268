//! Extensor's supervision tree: every tenant and plugin installation as a
//! supervised ractor actor rebuilt from its event stream.
//!
//! # Layout
//!
//! Not built yet: this crate is filled by the supervision-tree issue. It exists
//! now so the workspace has its final shape and `docs/ARCHITECTURE.md` can point
//! at it.
