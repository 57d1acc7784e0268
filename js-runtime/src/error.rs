//! The crate's one error type.
//!
//! Every way an invocation can end badly is a variant here, named by what
//! happened (a limit, a permission, a plugin exception). The actors crate maps
//! [`JsError::kind`] to run statuses; JS code sees the same kind strings as
//! `err.kind` on errors thrown by `ctx` APIs.

use extensor_core::FieldProblem;

/// A located validation problem: `path` is `file:line:column` for source
/// problems or a JSON path for manifest problems.
pub type Problem = FieldProblem;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsError {
    /// The isolate's heap grew past its limit; the isolate is discarded.
    #[error("heap limit of {limit_bytes} bytes exceeded")]
    HeapLimit { limit_bytes: usize },

    /// The invocation ran past its deadline (JS running or awaiting the host).
    #[error("deadline of {deadline_ms} ms exceeded")]
    Timeout { deadline_ms: u64 },

    /// The JS call stack grew past its limit.
    #[error("stack limit of {limit_bytes} bytes exceeded")]
    StackOverflow { limit_bytes: usize },

    /// A `ctx` API was called without the manifest permission it needs.
    #[error("permission `{permission}` is not granted to this plugin")]
    PermissionDenied { permission: String },

    /// The plugin threw (or its promise rejected) and did not catch it.
    #[error("plugin threw: {message}")]
    Thrown { message: String, stack: String },

    /// The handler returned something the host cannot accept.
    #[error("invalid result: {reason}")]
    InvalidResult { reason: String },

    /// No handler is registered for the trigger.
    #[error("no handler registered for {trigger}")]
    NoHandler { trigger: String },

    /// An `ctx.emit` chain went deeper than the platform allows.
    #[error("emit chain depth {depth} exceeds the limit of {limit}")]
    ChainTooDeep { depth: u32, limit: u32 },

    /// A host API refused its arguments (bad path, bad URL, bad SQL …).
    #[error("{op}: {message}")]
    InvalidArgument { op: &'static str, message: String },

    /// Outbound network access refused by the SSRF guard or host allowlist.
    #[error("network access denied: {reason}")]
    NetworkDenied { reason: String },

    /// A per-installation quota (files bytes, …) would be exceeded.
    #[error("quota exceeded: {message}")]
    QuotaExceeded { message: String },

    /// A host call's request or answer would pass a platform cap (bytes,
    /// rows, calls in flight); `limit` names the constant, `max` its value.
    #[error("{op}: {what}; the limit {limit} is {max}")]
    LimitExceeded {
        op: &'static str,
        limit: &'static str,
        max: u64,
        what: String,
    },

    /// A host service failed (upstream HTTP error, SMTP refused, store down).
    #[error("{op} failed: {message}")]
    Host { op: &'static str, message: String },

    /// The bundle did not validate; every problem is listed.
    #[error("invalid bundle: {}", join(.0))]
    InvalidBundle(Vec<Problem>),

    /// The sandbox itself failed (thread spawn, engine init). Not the plugin's fault.
    #[error("sandbox internal error: {0}")]
    Internal(String),
}

impl JsError {
    /// Stable machine-readable kind; also `err.kind` in JS.
    pub fn kind(&self) -> &'static str {
        match self {
            JsError::HeapLimit { .. } => "HeapLimit",
            JsError::Timeout { .. } => "Timeout",
            JsError::StackOverflow { .. } => "StackOverflow",
            JsError::PermissionDenied { .. } => "PermissionDenied",
            JsError::Thrown { .. } => "Thrown",
            JsError::InvalidResult { .. } => "InvalidResult",
            JsError::NoHandler { .. } => "NoHandler",
            JsError::ChainTooDeep { .. } => "ChainTooDeep",
            JsError::InvalidArgument { .. } => "InvalidArgument",
            JsError::NetworkDenied { .. } => "NetworkDenied",
            JsError::QuotaExceeded { .. } => "QuotaExceeded",
            JsError::LimitExceeded { .. } => "LimitExceeded",
            JsError::Host { .. } => "HostError",
            JsError::InvalidBundle(_) => "InvalidBundle",
            JsError::Internal(_) => "Internal",
        }
    }

    /// The same error with every free text passed through `f` (the
    /// platform's redactor: a plugin can put a secret in a thrown message).
    pub fn map_text(self, f: impl Fn(&str) -> String) -> JsError {
        match self {
            JsError::PermissionDenied { permission } => JsError::PermissionDenied {
                permission: f(&permission),
            },
            JsError::Thrown { message, stack } => JsError::Thrown {
                message: f(&message),
                stack: f(&stack),
            },
            JsError::InvalidResult { reason } => JsError::InvalidResult { reason: f(&reason) },
            JsError::NoHandler { trigger } => JsError::NoHandler {
                trigger: f(&trigger),
            },
            JsError::InvalidArgument { op, message } => JsError::InvalidArgument {
                op,
                message: f(&message),
            },
            JsError::NetworkDenied { reason } => JsError::NetworkDenied { reason: f(&reason) },
            JsError::QuotaExceeded { message } => JsError::QuotaExceeded {
                message: f(&message),
            },
            JsError::LimitExceeded {
                op,
                limit,
                max,
                what,
            } => JsError::LimitExceeded {
                op,
                limit,
                max,
                what: f(&what),
            },
            JsError::Host { op, message } => JsError::Host {
                op,
                message: f(&message),
            },
            JsError::InvalidBundle(problems) => JsError::InvalidBundle(
                problems
                    .into_iter()
                    .map(|p| Problem::new(p.path, f(&p.message)))
                    .collect(),
            ),
            JsError::Internal(m) => JsError::Internal(f(&m)),
            limit @ (JsError::HeapLimit { .. }
            | JsError::Timeout { .. }
            | JsError::StackOverflow { .. }
            | JsError::ChainTooDeep { .. }) => limit,
        }
    }

    /// Whether the isolate that produced this error must be thrown away:
    /// after a limit was hit its heap or stack may be in any state.
    pub fn poisons_isolate(&self) -> bool {
        matches!(
            self,
            JsError::HeapLimit { .. }
                | JsError::Timeout { .. }
                | JsError::StackOverflow { .. }
                | JsError::Internal(_)
        )
    }
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
