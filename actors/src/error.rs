//! The crate's one error type. Every variant names the actor (its tree path)
//! so an operator can tell which part of the tree refused.

/// Errors of the supervision tree.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The actor's bounded mailbox is full: the caller must back off (the
    /// API answers 503) rather than the queue growing without bound.
    #[error("actor {actor}: mailbox full ({depth_max} messages queued)")]
    Backpressure { actor: String, depth_max: usize },

    /// A call got no answer within its timeout.
    #[error("actor {actor}: no reply within {ms} ms")]
    Timeout { actor: String, ms: u64 },

    /// The actor is not running (stopped, or between restarts).
    #[error("actor {actor}: not running")]
    Stopped { actor: String },

    /// The actor failed too often within the policy's window and is not
    /// restarted until an operator restarts it.
    #[error("actor {actor}: failed ({last_error}); needs an operator restart")]
    Failed { actor: String, last_error: String },

    /// The actor could not be started.
    #[error("actor {actor}: could not start: {reason}")]
    Spawn { actor: String, reason: String },

    /// A command or load in the kernel failed (domain refusal, conflict after
    /// the bounded retries, store error).
    #[error("actor {actor}: {source}")]
    Core {
        actor: String,
        #[source]
        source: extensor_core::Error,
    },
}
