//! The engine facade end to end: real SQLite store, real isolates.

#[path = "../../../js-runtime/tests/common/aiosmtpd.rs"]
mod aiosmtpd;
mod bounds;
mod dispatch;
mod jobs;
mod lifecycle;
#[path = "../../../js-runtime/tests/common/python.rs"]
mod python;
mod recovery;
mod services;
mod support;
