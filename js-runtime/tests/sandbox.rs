//! The sandbox's integration suite: real isolates, real loopback HTTP, a real
//! SMTP server (aiosmtpd). One binary, submodules per area, to save link time.

#[path = "common/aiosmtpd.rs"]
mod aiosmtpd;
#[path = "common/loopback_http.rs"]
mod loopback_http;
#[path = "common/python.rs"]
mod python;
#[path = "sandbox/support.rs"]
#[macro_use]
mod support;

#[path = "sandbox/basics.rs"]
mod basics;
#[path = "sandbox/ctx_apis.rs"]
mod ctx_apis;
#[path = "sandbox/hostile.rs"]
mod hostile;
#[path = "sandbox/pipelining.rs"]
mod pipelining;
#[path = "sandbox/spares.rs"]
mod spares;
#[path = "sandbox/validation.rs"]
mod validation;
