//! The one error type of `extensor-core`.
//!
//! Each variant names what went wrong and where (a stream, a position, a file,
//! a JSON path) so that the API and CLI can pass the message on unchanged.
//! `code()` gives a stable machine-readable code per variant; the API maps
//! codes to HTTP statuses.

use std::fmt;
use std::path::PathBuf;

use crate::revision::ExpectedRevision;

/// One problem found while validating a document, located by a JSON path
/// (`$.jobs[0].schedule`) or, for YAML and source files, `file:line:column`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldProblem {
    pub path: String,
    pub message: String,
}

impl FieldProblem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A command that makes no sense in the aggregate's current state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{aggregate} is {state}: {message}")]
pub struct DomainError {
    /// `tenant` or `installation`.
    pub aggregate: &'static str,
    /// The state the aggregate is in, e.g. `uninstalled`.
    pub state: String,
    /// Stable code, e.g. `already_installed`.
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid id `{value}`: {reason}")]
    InvalidId { value: String, reason: String },

    #[error("invalid {what} `{value}`: {reason}")]
    InvalidValue {
        what: &'static str,
        value: String,
        reason: String,
    },

    #[error("invalid manifest: {}", join_problems(.0))]
    InvalidManifest(Vec<FieldProblem>),

    #[error("invalid webhook: {}", join_problems(.0))]
    InvalidWebhook(Vec<FieldProblem>),

    #[error(transparent)]
    Domain(#[from] DomainError),

    #[error("revision conflict on stream `{stream}`: expected {expected}, actual {}", show_revision(*.actual))]
    Conflict {
        stream: String,
        expected: ExpectedRevision,
        actual: Option<u64>,
    },

    #[error("event store at {}: {detail}", .path.display())]
    StoreOpen { path: PathBuf, detail: String },

    #[error("event store at {} is not an Extensor store or is corrupted: {detail}", .path.display())]
    StoreCorrupt { path: PathBuf, detail: String },

    #[error("event store at {} is full: {detail}; nothing from this append was written", .path.display())]
    StoreFull { path: PathBuf, detail: String },

    #[error("event store at {}: {detail}", .path.display())]
    StoreIo { path: PathBuf, detail: String },

    #[error("event store is closed")]
    StoreClosed,

    #[error(
        "event {position} ({event_type} v{schema_version}) on `{stream}` cannot be decoded: {reason}"
    )]
    Decode {
        position: u64,
        stream: String,
        event_type: String,
        schema_version: u32,
        reason: String,
    },

    #[error("event {position} on `{stream}` breaks an invariant of {aggregate}: {reason}")]
    Invariant {
        position: u64,
        stream: String,
        aggregate: &'static str,
        reason: String,
    },

    #[error("invalid append to `{stream}`: {reason}")]
    InvalidAppend { stream: String, reason: String },

    #[error("invalid append to `{stream}`: event id {event_id} is already stored")]
    DuplicateEventId { stream: String, event_id: String },

    #[error("secret key from {source_name}: {reason}")]
    SecretKey { source_name: String, reason: String },

    #[error("secret key file {}: {detail}", .path.display())]
    SecretKeyFile { path: PathBuf, detail: String },

    #[error("secret for `{context}` cannot be decrypted: {reason}")]
    SecretDecrypt { context: String, reason: String },

    #[error("secret value is {len} bytes; the limit is {max}")]
    SecretTooLarge { len: usize, max: usize },

    #[error("bundle store at {}: {detail}", .path.display())]
    BundleIo { path: PathBuf, detail: String },

    #[error("bundle {digest}: {detail}")]
    BundleDigest { digest: String, detail: String },

    #[error("ctx.files: path `{path}` {reason}")]
    FilePath { path: String, reason: String },

    #[error("quota exceeded: {detail}")]
    FileQuota { detail: String },

    #[error("{op}: {what}; the limit {limit} is {max}")]
    FileTooBig {
        op: &'static str,
        limit: &'static str,
        max: u64,
        what: String,
    },

    #[error("{op} failed: {detail}")]
    FileStorage { op: &'static str, detail: String },

    #[error(
        "subscriber fell behind and was dropped at position {position}; resubscribe from there"
    )]
    SubscriberLagged { position: u64 },
}

impl Error {
    /// The same failure once more, for each caller of a group commit that
    /// failed as a whole. Store errors carry only strings and paths, so they
    /// copy exactly; anything else becomes `StoreIo` with its message.
    pub fn copy_for_each_caller(&self) -> Error {
        match self {
            Error::StoreFull { path, detail } => Error::StoreFull {
                path: path.clone(),
                detail: detail.clone(),
            },
            Error::StoreCorrupt { path, detail } => Error::StoreCorrupt {
                path: path.clone(),
                detail: detail.clone(),
            },
            Error::StoreOpen { path, detail } => Error::StoreOpen {
                path: path.clone(),
                detail: detail.clone(),
            },
            Error::StoreIo { path, detail } => Error::StoreIo {
                path: path.clone(),
                detail: detail.clone(),
            },
            Error::StoreClosed => Error::StoreClosed,
            other => Error::StoreIo {
                path: PathBuf::new(),
                detail: other.to_string(),
            },
        }
    }

    /// A stable, machine-readable code for each kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidId { .. } => "invalid_id",
            Error::InvalidValue { .. } => "invalid_value",
            Error::InvalidManifest(_) => "invalid_manifest",
            Error::InvalidWebhook(_) => "invalid_webhook",
            Error::Domain(d) => d.code,
            Error::Conflict { .. } => "revision_conflict",
            Error::StoreOpen { .. } => "store_open_failed",
            Error::StoreCorrupt { .. } => "store_corrupt",
            Error::StoreFull { .. } => "store_full",
            Error::StoreIo { .. } => "store_io",
            Error::StoreClosed => "store_closed",
            Error::Decode { .. } => "event_decode_failed",
            Error::Invariant { .. } => "event_invariant_broken",
            Error::InvalidAppend { .. } => "invalid_append",
            Error::DuplicateEventId { .. } => "duplicate_event_id",
            Error::SubscriberLagged { .. } => "subscriber_lagged",
            Error::SecretKey { .. } => "secret_key_invalid",
            Error::SecretKeyFile { .. } => "secret_key_file",
            Error::SecretDecrypt { .. } => "secret_decrypt_failed",
            Error::SecretTooLarge { .. } => "secret_too_large",
            Error::BundleIo { .. } => "bundle_io",
            Error::BundleDigest { .. } => "bundle_digest",
            Error::FilePath { .. } => "file_path_invalid",
            Error::FileQuota { .. } => "file_quota_exceeded",
            Error::FileTooBig { .. } => "file_too_big",
            Error::FileStorage { .. } => "file_storage",
        }
    }
}

fn join_problems(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn show_revision(r: Option<u64>) -> String {
    match r {
        None => "no stream".into(),
        Some(n) => format!("revision {n}"),
    }
}

/// Error messages quote bad input, but never more than this much of it: a
/// hostile caller must not be able to make us echo megabytes back.
pub(crate) const QUOTED_INPUT_CHARS_MAX: usize = 80;

pub(crate) fn truncate_for_error(s: &str) -> String {
    if s.chars().count() <= QUOTED_INPUT_CHARS_MAX {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(QUOTED_INPUT_CHARS_MAX).collect();
    out.push('…');
    out
}
