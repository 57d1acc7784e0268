//! The crate's one error type. Tree errors name the actor (its tree path)
//! so an operator can tell which part of the tree refused; engine errors
//! name the resource. [`Error::code`] is the stable machine-readable code the
//! API maps to an HTTP status (noted per variant).

use extensor_core::FieldProblem;
use extensor_js::JsError;

/// Errors of the supervision tree and the engine facade.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The actor's bounded mailbox (or a bounded queue) is full: the caller
    /// must back off rather than the queue growing without bound. HTTP 503.
    #[error("actor {actor}: mailbox full ({depth_max} messages queued)")]
    Backpressure { actor: String, depth_max: usize },

    /// A bounded backlog (a webhook endpoint's pending deliveries) is full
    /// by `limit` (a count or a byte cap, named): the caller waits and hands
    /// the same work again later. HTTP 503.
    #[error("{actor}: backlog full ({limit} = {max})")]
    BacklogFull {
        actor: String,
        limit: &'static str,
        max: u64,
    },

    /// A call got no answer within its timeout. HTTP 503.
    #[error("actor {actor}: no reply within {ms} ms")]
    Timeout { actor: String, ms: u64 },

    /// The actor is not running (stopped by an operator, or between
    /// restarts). HTTP 503.
    #[error("actor {actor}: not running")]
    Stopped { actor: String },

    /// The actor failed too often within the policy's window and is not
    /// restarted until an operator restarts it. HTTP 503.
    #[error("actor {actor}: failed ({last_error}); needs an operator restart")]
    Failed { actor: String, last_error: String },

    /// The actor could not be started. HTTP 500.
    #[error("actor {actor}: could not start: {reason}")]
    Spawn { actor: String, reason: String },

    /// A command or load in the kernel failed (domain refusal: 409 with the
    /// domain code; conflict after the bounded retries: 409; store error: 500).
    #[error("actor {actor}: {source}")]
    Core {
        actor: String,
        #[source]
        source: extensor_core::Error,
    },

    /// The resource does not exist *for this tenant*: another tenant's id
    /// gives exactly this error too. HTTP 404.
    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },

    /// Input refused; every problem is listed with where it is (a ZIP entry,
    /// a manifest JSON path, `file:line:col`). HTTP 422.
    #[error("validation failed: {}", join(.0))]
    Validation(Vec<FieldProblem>),

    /// The request contradicts the current state (e.g. invoking a disabled
    /// plugin, an idempotency key reused). HTTP 409.
    #[error("conflict: {message}")]
    Conflict { code: &'static str, message: String },

    /// A plugin route needs a caller and none was given. HTTP 401.
    #[error("route `{route}` requires an authenticated caller")]
    Unauthenticated { route: String },

    /// The caller's role is below what the route requires. HTTP 403.
    #[error("route `{route}` requires role {required} or above")]
    Forbidden { route: String, required: String },

    /// The plugin's code failed: threw, hit a limit, had no handler. The
    /// API answers 502 for plugin failures, 504 for a timeout. `logs` are
    /// the lines the code logged before failing (a job run records them).
    #[error("plugin `{plugin}`: {source}")]
    Plugin {
        plugin: String,
        #[source]
        source: JsError,
        logs: Vec<extensor_js::LogEntry>,
    },

    /// Single-owner work of a tenant (its hook dispatch, scheduler, webhook
    /// deliveries, outbox) asked of a node that does not hold the tenant's
    /// lease: another node runs it. HTTP 503.
    #[error(
        "{actor}: another node holds this tenant's lease and runs this work \
         (GET /api/ops/cluster lists the nodes)"
    )]
    NotOwner { actor: String },

    /// The node could not renew its leases in time and may have lost them
    /// to other nodes: it runs no tenant's work and answers no request
    /// until it renews again. HTTP 503.
    #[error("{actor}: this node cannot reach the store to renew its leases (fenced)")]
    Fenced { actor: String },

    /// The engine is shutting down and takes no new work. HTTP 503.
    #[error("the engine is shutting down")]
    ShuttingDown,

    /// A platform component failed (bundle store, secret key, files). HTTP 500.
    #[error("{what}: {source}")]
    Platform {
        what: &'static str,
        #[source]
        source: extensor_core::Error,
    },
}

impl Error {
    /// A stable, machine-readable code per kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Backpressure { .. } | Error::BacklogFull { .. } => "backpressure",
            Error::Timeout { .. } => "actor_timeout",
            Error::Stopped { .. } => "actor_stopped",
            Error::Failed { .. } => "actor_failed",
            Error::Spawn { .. } => "actor_spawn_failed",
            Error::Core { source, .. } => source.code(),
            Error::NotFound { .. } => "not_found",
            Error::Validation(_) => "validation_failed",
            Error::Conflict { code, .. } => code,
            Error::Unauthenticated { .. } => "unauthenticated",
            Error::Forbidden { .. } => "forbidden",
            Error::Plugin { source, .. } => match source {
                JsError::Timeout { .. } => "plugin_timeout",
                JsError::NoHandler { .. } => "plugin_no_handler",
                _ => "plugin_failed",
            },
            Error::NotOwner { .. } => "tenant_owned_elsewhere",
            Error::Fenced { .. } => "node_fenced",
            Error::ShuttingDown => "shutting_down",
            Error::Platform { source, .. } => source.code(),
        }
    }

    pub(crate) fn not_found(what: &'static str, id: impl ToString) -> Error {
        Error::NotFound {
            what,
            id: id.to_string(),
        }
    }
}

fn join(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
