//! [`ExpectedRevision`]: the optimistic-concurrency condition of an append.
//! Its own module (the store module re-exports it) because the crate's
//! error type names it too, and the error type depends on nothing else.

use std::fmt;

/// What the appender believes the stream's current revision is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedRevision {
    /// Append whatever the stream's state.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have this revision.
    Exact(u64),
}

impl ExpectedRevision {
    /// Whether a stream whose last revision is `actual` satisfies this.
    pub fn admits(self, actual: Option<u64>) -> bool {
        match self {
            ExpectedRevision::Any => true,
            ExpectedRevision::NoStream => actual.is_none(),
            ExpectedRevision::Exact(n) => actual == Some(n),
        }
    }

    /// The expectation that holds for a stream last seen at `revision`.
    pub fn from_current(revision: Option<u64>) -> Self {
        revision.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact)
    }
}

impl fmt::Display for ExpectedRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedRevision::Any => f.write_str("any revision"),
            ExpectedRevision::NoStream => f.write_str("no stream"),
            ExpectedRevision::Exact(n) => write!(f, "revision {n}"),
        }
    }
}
