//! The engine facade end to end: real SQLite store, real isolates.

#[path = "../../../js-runtime/tests/common/aiosmtpd.rs"]
mod aiosmtpd;
mod bounds;
mod dispatch;
mod jobs;
mod lifecycle;
mod recovery;
mod services;
mod support;
