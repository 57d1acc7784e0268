//! Extensor's JS sandbox (issues 3 and 20): plugins and webhook transforms
//! run as JavaScript or TypeScript in isolates, behind an engine-neutral API.
//!
//! # Layout
//!
//! - [`sandbox`]: the public API — [`Sandbox`] (validate, install),
//!   [`Installation`] (warm isolate pool, `invoke`), [`Invocation`], [`Outcome`].
//! - `pool`: an installation's isolates and which one each invocation goes
//!   to; invocations queue on a busy isolate's thread (pipelining).
//! - [`config`]: platform limits ([`SandboxConfig::from_env`]) and how a
//!   manifest tightens them.
//! - [`bundle`]: bundle files, module resolution confined to the bundle,
//!   import checks, TypeScript stripping (oxc).
//! - [`unzip`]: [`Bundle::from_zip`] for uploads, with zip-bomb and path
//!   caps ([`ZipLimits`]).
//! - [`plugin`]: SDK registrations, triggers, validation against the manifest.
//! - `engine`: the only engine-specific code, one private module per engine
//!   ([`JsEngine`]): QuickJS via rquickjs, and V8 via deno_core (cargo
//!   feature `v8`); isolate threads (on V8, spares made ahead of demand
//!   take most of the cold start off a new installation), limits, the
//!   event loop that drives promises and host calls. No engine type is
//!   visible outside it.
//! - [`host`]: what `ctx` reaches — platform traits ([`host::SecretStore`],
//!   [`host::EventSink`], [`host::EmailOutbox`], [`host::DbReader`]) and the
//!   sandbox-security components: SSRF-guarded HTTP ([`host::net`]), files
//!   with quota ([`host::files`]), read-only SQLite ([`host::db`]), LLM client
//!   ([`host::llm`]), SMTP mailer ([`host::mail`]).
//! - [`logs`]: captured `console.*` / `ctx.log` lines, bounded.
//! - [`error`]: the crate's one error type, [`JsError`].

pub mod bundle;
pub mod config;
mod engine;
pub mod error;
pub mod host;
pub mod logs;
pub mod plugin;
mod pool;
pub mod sandbox;
pub mod unzip;

pub use bundle::Bundle;
pub use config::{JsEngine, Limits, NetworkPolicy, PrivateNetworks, SandboxConfig};
pub use error::{JsError, Problem};
pub use host::{HostServices, InstallationScope};
pub use logs::{LogEntry, LogLevel};
pub use plugin::{HandlerKind, Registration, Trigger, ValidatedPlugin};
pub use sandbox::{Installation, Invocation, InvokeFailure, Outcome, Sandbox};
pub use unzip::ZipLimits;
