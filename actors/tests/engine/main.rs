//! The engine facade end to end: real SQLite store, real isolates.

mod dispatch;
mod jobs;
mod lifecycle;
mod recovery;
mod services;
mod support;
