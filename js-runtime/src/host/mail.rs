//! Email delivery: the SMTP mailer that sends outbox messages (lettre).
//!
//! Plugins never talk SMTP: `ctx.email.send` records a message in the outbox
//! (the [`EmailOutbox`](crate::host::EmailOutbox) trait); the platform
//! delivers it with [`SmtpMailer`].

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use lettre::Message;
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
#[allow(deprecated)] // lettre's own stream type; see `Implicit`
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::error::JsError;
use crate::host::OutboundEmail;

/// SMTP conversations (connect to the relay's answer to the message)
/// longer than this are abandoned, as a transient failure.
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

/// Sends each message over its own connection to the relay: connect (with
/// `TCP_NODELAY`), EHLO, STARTTLS or implicit TLS per [`SmtpTls`], AUTH if
/// configured, MAIL / RCPT / DATA, QUIT.
///
/// The connection is ours, not lettre's transport's, for one reason:
/// lettre writes a message's body and its `.` terminator in two writes, and
/// on a socket with Nagle's algorithm on, the small second write waits for
/// the relay to acknowledge the first, which the relay delays (~40 ms on
/// Linux) because it is itself waiting for the terminator. That stall was
/// the whole cost of an email on a loopback relay (docs/BENCHMARKS.md,
/// "Email outbox").
pub struct SmtpMailer {
    config: SmtpConfig,
    tls: Option<TlsParameters>,
}

impl SmtpMailer {
    /// TLS per [`SmtpTls`] (rustls, webpki roots).
    pub fn new(config: SmtpConfig) -> Result<SmtpMailer, JsError> {
        let tls = match config.tls {
            SmtpTls::None => None,
            SmtpTls::StartTls | SmtpTls::Wrapper => Some(tls_parameters(&config.host)?),
        };
        Ok(SmtpMailer { config, tls })
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
        let timeout = Duration::from_millis(SMTP_TIMEOUT_MS);
        match tokio::time::timeout(timeout, self.converse(&message)).await {
            Ok(result) => result,
            Err(_) => Err(SmtpFailure {
                kind: SendFailure::Transient,
                message: format!(
                    "no answer from the SMTP relay {}:{} within {SMTP_TIMEOUT_MS} ms",
                    self.config.host, self.config.port
                ),
            }),
        }
    }

    /// One connection, one message.
    async fn converse(&self, message: &Message) -> Result<(), SmtpFailure> {
        let mut conn = self.connect().await?;
        if let Some((user, password)) = &self.config.credentials {
            let credentials = Credentials::new(user.clone(), password.clone());
            conn.auth(DEFAULT_MECHANISMS, &credentials)
                .await
                .map_err(smtp_failure)?;
        }
        let sent = conn.send(message.envelope(), &message.formatted()).await;
        // QUIT, then close; the message's fate is already decided.
        conn.abort().await;
        sent.map(|_| ()).map_err(smtp_failure)
    }

    /// Connects with `TCP_NODELAY`, reads the greeting, says EHLO and
    /// secures the connection per [`SmtpTls`].
    async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpFailure> {
        let (host, port) = (self.config.host.as_str(), self.config.port);
        let tcp = TcpStream::connect((host, port)).await.map_err(|e| {
            transient(format!(
                "cannot connect to the SMTP relay {host}:{port}: {e}"
            ))
        })?;
        tcp.set_nodelay(true)
            .map_err(|e| transient(format!("cannot set TCP_NODELAY on {host}:{port}: {e}")))?;
        let hello = ClientId::default();
        let stream: Box<dyn AsyncTokioStream> = match (self.config.tls, &self.tls) {
            (SmtpTls::Wrapper, Some(tls)) => Box::new(Implicit::wrap(tcp, tls.clone()).await?),
            _ => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &hello)
            .await
            .map_err(smtp_failure)?;
        if let (SmtpTls::StartTls, Some(tls)) = (self.config.tls, &self.tls) {
            // Fails when the relay offers no STARTTLS: never sent in the clear.
            conn.starttls(tls.clone(), &hello)
                .await
                .map_err(smtp_failure)?;
        }
        Ok(conn)
    }
}

fn transient(message: String) -> SmtpFailure {
    SmtpFailure {
        kind: SendFailure::Transient,
        message,
    }
}

fn smtp_failure(e: lettre::transport::smtp::Error) -> SmtpFailure {
    SmtpFailure {
        kind: if e.is_permanent() {
            SendFailure::Permanent
        } else {
            SendFailure::Transient
        },
        message: e.to_string(),
    }
}

/// A connection in TLS from its first byte (SMTPS): our `TCP_NODELAY`
/// socket, encrypted by lettre's own TLS stream, handed back to lettre as
/// a plain stream. lettre marks its stream type as not meant to be public,
/// but it is the only way to give its implicit-TLS setup a socket we
/// configured.
#[allow(deprecated)]
#[derive(Debug)]
struct Implicit(AsyncNetworkStream);

#[allow(deprecated)]
impl Implicit {
    async fn wrap(tcp: TcpStream, tls: TlsParameters) -> Result<Self, SmtpFailure> {
        let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
        stream.upgrade_tls(tls).await.map_err(smtp_failure)?;
        Ok(Self(stream))
    }
}

impl AsyncTokioStream for Implicit {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.peer_addr()
    }
}

impl AsyncRead for Implicit {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = ready!(futures::io::AsyncRead::poll_read(
            Pin::new(&mut self.0),
            cx,
            buf.initialize_unfilled()
        ))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Implicit {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        futures::io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        futures::io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        futures::io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
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
