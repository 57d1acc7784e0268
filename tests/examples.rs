//! The example plugins in examples/plugins/, run from their real files in
//! the real sandbox: welcome-email against a real SMTP server (aiosmtpd),
//! slack-notifier against a loopback server speaking Slack's
//! incoming-webhook protocol, daily-kpi over a real SQLite read model and
//! the real file store.

#[path = "../js-runtime/tests/common/aiosmtpd.rs"]
mod aiosmtpd;
#[path = "examples/daily_kpi.rs"]
mod daily_kpi;
#[path = "../js-runtime/tests/common/loopback_http.rs"]
mod loopback_http;
#[path = "../js-runtime/tests/common/python.rs"]
mod python;
#[path = "examples/slack_notifier.rs"]
mod slack_notifier;
#[path = "examples/support.rs"]
mod support;
#[path = "examples/welcome_email.rs"]
mod welcome_email;
