//! Email delivery: the SMTP mailer that sends outbox messages (lettre).
//!
//! Plugins never talk SMTP: `ctx.email.send` records a message in the outbox
//! (the [`EmailOutbox`](crate::host::EmailOutbox) trait); the platform
//! delivers it with [`SmtpMailer`].

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::JsError;
use crate::host::OutboundEmail;

/// SMTP conversations longer than this are abandoned.
pub const SMTP_TIMEOUT_MS: u64 = 15_000;

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plaintext; only for a relay on loopback or a trusted private network.
    None,
    /// Plaintext connect, then STARTTLS, which must succeed (the default).
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Wrapper,
}

/// `EXTENSOR_SMTP_HOST`, `EXTENSOR_SMTP_PORT` (25), `EXTENSOR_SMTP_FROM`,
/// `EXTENSOR_SMTP_USERNAME`, `EXTENSOR_SMTP_PASSWORD`,
/// `EXTENSOR_SMTP_TLS` (`starttls` default, `tls`, `none`).
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub credentials: Option<(String, String)>,
    pub tls: SmtpTls,
}

impl SmtpConfig {
    pub fn from_env() -> Option<SmtpConfig> {
        let host = std::env::var("EXTENSOR_SMTP_HOST").ok()?;
        let port = std::env::var("EXTENSOR_SMTP_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(25);
        let from =
            std::env::var("EXTENSOR_SMTP_FROM").unwrap_or_else(|_| "extensor@localhost".into());
        let credentials = match (
            std::env::var("EXTENSOR_SMTP_USERNAME"),
            std::env::var("EXTENSOR_SMTP_PASSWORD"),
        ) {
            (Ok(u), Ok(p)) => Some((u, p)),
            _ => None,
        };
        let tls = match std::env::var("EXTENSOR_SMTP_TLS").as_deref() {
            Ok("none") => SmtpTls::None,
            Ok("tls") => SmtpTls::Wrapper,
            _ => SmtpTls::StartTls,
        };
        Some(SmtpConfig {
            host,
            port,
            from,
            credentials,
            tls,
        })
    }
}

pub struct SmtpMailer {
    config: SmtpConfig,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpMailer {
    /// TLS per [`SmtpTls`] (rustls, webpki roots).
    pub fn new(config: SmtpConfig) -> Result<SmtpMailer, JsError> {
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_parameters(&config.host)?),
            SmtpTls::Wrapper => Tls::Wrapper(tls_parameters(&config.host)?),
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
            .port(config.port)
            .tls(tls)
            .timeout(Some(Duration::from_millis(SMTP_TIMEOUT_MS)));
        if let Some((u, p)) = &config.credentials {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(SmtpMailer {
            transport: b.build(),
            config,
        })
    }

    /// Delivers one outbox message.
    pub async fn deliver(&self, email: &OutboundEmail) -> Result<(), JsError> {
        self.send(email).await.map_err(|e| JsError::Host {
            op: "smtp",
            message: e.message,
        })
    }

    /// Delivers one outbox message, saying whether a failure is worth
    /// retrying: a 4xx reply, a connection, TLS or timeout error is
    /// [`SendFailure::Transient`]; a 5xx reply or a message that cannot be
    /// built (a bad address) is [`SendFailure::Permanent`].
    pub async fn send(&self, email: &OutboundEmail) -> Result<(), SmtpFailure> {
        let message = build(&self.config.from, email).map_err(|e| SmtpFailure {
            kind: SendFailure::Permanent,
            message: e.to_string(),
        })?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SmtpFailure {
                kind: if e.is_permanent() {
                    SendFailure::Permanent
                } else {
                    SendFailure::Transient
                },
                message: e.to_string(),
            })
    }
}

/// Whether an SMTP failure may go away on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendFailure {
    /// 4xx, connection refused or reset, TLS, timeout: retry later.
    Transient,
    /// 5xx or an unbuildable message: retrying cannot help.
    Permanent,
}

/// A failed SMTP delivery: its kind and the relay's (or lettre's) words.
#[derive(Clone, Debug)]
pub struct SmtpFailure {
    pub kind: SendFailure,
    pub message: String,
}

fn tls_parameters(host: &str) -> Result<TlsParameters, JsError> {
    TlsParameters::new(host.to_owned()).map_err(|e| JsError::Host {
        op: "smtp",
        message: format!("TLS settings for `{host}`: {e}"),
    })
}

fn build(from: &str, email: &OutboundEmail) -> Result<Message, JsError> {
    let mut b = Message::builder()
        .from(mailbox(from)?)
        .subject(email.subject.clone());
    for to in &email.to {
        b = b.to(mailbox(to)?);
    }
    let text = |t: &str| {
        SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(t.to_owned())
    };
    let html = |h: &str| {
        SinglePart::builder()
            .header(ContentType::TEXT_HTML)
            .body(h.to_owned())
    };
    let built = match (&email.text, &email.html) {
        (Some(t), Some(h)) => b.multipart(
            MultiPart::alternative()
                .singlepart(text(t))
                .singlepart(html(h)),
        ),
        (Some(t), None) => b.singlepart(text(t)),
        (None, Some(h)) => b.singlepart(html(h)),
        (None, None) => b.singlepart(text("")),
    };
    built.map_err(|e| JsError::InvalidArgument {
        op: "email",
        message: e.to_string(),
    })
}

fn mailbox(addr: &str) -> Result<Mailbox, JsError> {
    addr.parse().map_err(|e| JsError::InvalidArgument {
        op: "email",
        message: format!(
            "`{}` is not an email address: {e}",
            crate::logs::cut(addr, 100)
        ),
    })
}

/// Checks an address the way delivery will parse it.
pub(crate) fn check_address(addr: &str) -> Result<(), String> {
    if addr.len() > 254 || addr.contains(['\r', '\n']) {
        return Err("address too long or contains a line break".into());
    }
    mailbox(addr).map(|_| ()).map_err(|e| e.to_string())
}
