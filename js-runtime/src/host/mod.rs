//! Host services behind `ctx`: the traits the platform implements, the
//! concrete sandbox-security components, and the dispatcher that turns a JS
//! host call into a permission-checked async operation on tokio.

pub mod calls;
pub mod db;
pub mod files;
pub mod llm;
pub mod mail;
pub mod net;

use std::sync::Arc;

use extensor_core::manifest::Permission;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::EMIT_CHAIN_DEPTH_MAX;
use crate::error::JsError;

/// Which installation of which tenant an isolate belongs to. Every host call
/// is scoped by this value, which JS never supplies.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstallationScope {
    pub tenant_id: String,
    pub installation_id: String,
}

/// The installation's secrets, decrypted on use.
pub trait SecretStore: Send + Sync {
    fn get<'a>(
        &'a self,
        scope: &'a InstallationScope,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, JsError>>;
}

/// An event a plugin emits through `ctx.emit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmitRequest {
    pub event_type: String,
    pub data: Value,
    /// The event that triggered the emitting invocation, if any.
    pub causation_id: Option<String>,
    /// Chain depth the *new* event carries; hooks it triggers run at this depth.
    pub chain_depth: u32,
}

/// The tenant's event stream. Returns the new event's id.
pub trait EventSink: Send + Sync {
    fn emit<'a>(
        &'a self,
        scope: &'a InstallationScope,
        event: EmitRequest,
    ) -> BoxFuture<'a, Result<String, JsError>>;
}

/// An outbound email, recorded in the outbox and delivered by the platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundEmail {
    pub to: Vec<String>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
}

/// Records outbound email; returns the outbox message id.
pub trait EmailOutbox: Send + Sync {
    fn record<'a>(
        &'a self,
        scope: &'a InstallationScope,
        email: OutboundEmail,
    ) -> BoxFuture<'a, Result<String, JsError>>;
}

/// Read-only SQL over the tenant's read models. [`db::SqliteReadModels`] is
/// the SQLite implementation.
pub trait DbReader: Send + Sync {
    fn query<'a>(
        &'a self,
        scope: &'a InstallationScope,
        sql: String,
        params: Vec<Value>,
    ) -> BoxFuture<'a, Result<Vec<Value>, JsError>>;
}

/// Everything `ctx` can reach for one installation. A service left `None`
/// answers `HostError` ("not configured") even when permitted.
#[derive(Clone, Default)]
pub struct HostServices {
    pub secrets: Option<Arc<dyn SecretStore>>,
    pub events: Option<Arc<dyn EventSink>>,
    pub outbox: Option<Arc<dyn EmailOutbox>>,
    pub db: Option<Arc<dyn DbReader>>,
    pub files: Option<Arc<files::FileStore>>,
    pub http: Option<Arc<net::GuardedHttp>>,
    pub llm: Option<Arc<llm::LlmClient>>,
}

/// What a host call needs to know about its invocation.
#[derive(Clone, Debug)]
pub(crate) struct CallContext {
    pub scope: InstallationScope,
    pub allowed_hosts: Arc<Vec<String>>,
    pub causation_id: Option<String>,
    pub chain_depth: u32,
    pub deadline: std::time::Instant,
}

/// A host call decoded from JS: operation name plus JSON arguments.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", content = "args")]
pub(crate) enum HostOp {
    #[serde(rename = "secrets.get")]
    SecretsGet { key: String },
    #[serde(rename = "http.fetch")]
    HttpFetch(net::FetchRequest),
    #[serde(rename = "llm.complete")]
    LlmComplete(llm::CompletionRequest),
    #[serde(rename = "files.read")]
    FilesRead { path: String },
    #[serde(rename = "files.write")]
    FilesWrite { path: String, content: String },
    #[serde(rename = "files.list")]
    FilesList {},
    #[serde(rename = "files.delete")]
    FilesDelete { path: String },
    #[serde(rename = "db.query")]
    DbQuery {
        sql: String,
        #[serde(default)]
        params: Vec<Value>,
    },
    #[serde(rename = "events.emit")]
    Emit {
        #[serde(rename = "type")]
        event_type: String,
        #[serde(default)]
        data: Value,
    },
    #[serde(rename = "email.send")]
    EmailSend(EmailArgs),
}

#[derive(Debug, Deserialize)]
pub(crate) struct EmailArgs {
    to: StringOrList,
    subject: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    html: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl HostOp {
    /// Decodes `{op, args}`; a malformed call is the plugin's error.
    pub fn decode(op: &str, args_json: &str) -> Result<HostOp, JsError> {
        let args: Value =
            serde_json::from_str(args_json).map_err(|e| JsError::InvalidArgument {
                op: "host call",
                message: format!("arguments are not JSON: {e}"),
            })?;
        serde_json::from_value(json!({"op": op, "args": args})).map_err(|e| {
            JsError::InvalidArgument {
                op: "host call",
                message: format!("{op}: {e}"),
            }
        })
    }

    pub fn permission(&self) -> Permission {
        match self {
            HostOp::SecretsGet { .. } => Permission::SecretsRead,
            HostOp::HttpFetch(_) => Permission::OutboundHttp,
            HostOp::LlmComplete(_) => Permission::Llm,
            HostOp::FilesRead { .. } | HostOp::FilesList {} => Permission::FilesRead,
            HostOp::FilesWrite { .. } | HostOp::FilesDelete { .. } => Permission::FilesWrite,
            HostOp::DbQuery { .. } => Permission::DbRead,
            HostOp::Emit { .. } => Permission::EventsEmit,
            HostOp::EmailSend(_) => Permission::SendEmail,
        }
    }

    /// Runs the operation. Permission has already been checked.
    pub async fn run(self, services: &HostServices, cx: &CallContext) -> Result<Value, JsError> {
        match self {
            HostOp::SecretsGet { key } => {
                let store = need(&services.secrets, "secrets")?;
                Ok(json!(store.get(&cx.scope, &key).await?))
            }
            HostOp::HttpFetch(req) => {
                let http = need(&services.http, "http")?;
                let resp = http.fetch(req, &cx.allowed_hosts, cx.deadline).await?;
                serde_json::to_value(resp).map_err(internal)
            }
            HostOp::LlmComplete(req) => {
                need(&services.llm, "llm")?.complete(req, cx.deadline).await
            }
            HostOp::FilesRead { path } => {
                let store = need(&services.files, "files")?;
                Ok(json!(store.read(&cx.scope, &path).await?))
            }
            HostOp::FilesWrite { path, content } => {
                let store = need(&services.files, "files")?;
                store.write(&cx.scope, &path, content.as_bytes()).await?;
                Ok(Value::Null)
            }
            HostOp::FilesList {} => Ok(json!(
                need(&services.files, "files")?.list(&cx.scope).await?
            )),
            HostOp::FilesDelete { path } => Ok(json!(
                need(&services.files, "files")?
                    .delete(&cx.scope, &path)
                    .await?
            )),
            HostOp::DbQuery { sql, params } => {
                let db = need(&services.db, "db")?;
                Ok(Value::Array(db.query(&cx.scope, sql, params).await?))
            }
            HostOp::Emit { event_type, data } => emit(services, cx, event_type, data).await,
            HostOp::EmailSend(args) => send_email(services, cx, args).await,
        }
    }
}

async fn emit(
    services: &HostServices,
    cx: &CallContext,
    event_type: String,
    data: Value,
) -> Result<Value, JsError> {
    let depth = cx.chain_depth + 1;
    if depth > EMIT_CHAIN_DEPTH_MAX {
        return Err(JsError::ChainTooDeep {
            depth,
            limit: EMIT_CHAIN_DEPTH_MAX,
        });
    }
    if let Some(reason) = extensor_core::kernel_events::business_event_type_problem(&event_type) {
        return Err(JsError::InvalidArgument {
            op: "ctx.emit",
            message: format!("`{}` {reason}", crate::logs::cut(&event_type, 128)),
        });
    }
    let sink = need(&services.events, "events")?;
    let request = EmitRequest {
        event_type,
        data,
        causation_id: cx.causation_id.clone(),
        chain_depth: depth,
    };
    Ok(json!(sink.emit(&cx.scope, request).await?))
}

/// Recipients per message: an email API, not a bulk mailer.
pub const EMAIL_RECIPIENTS_MAX: usize = 50;

async fn send_email(
    services: &HostServices,
    cx: &CallContext,
    args: EmailArgs,
) -> Result<Value, JsError> {
    let to = match args.to {
        StringOrList::One(s) => vec![s],
        StringOrList::Many(v) => v,
    };
    let bad = |message: String| JsError::InvalidArgument {
        op: "ctx.email.send",
        message,
    };
    if to.is_empty() || to.len() > EMAIL_RECIPIENTS_MAX {
        return Err(bad(format!(
            "`to` needs 1 to {EMAIL_RECIPIENTS_MAX} addresses"
        )));
    }
    for addr in &to {
        mail::check_address(addr).map_err(bad)?;
    }
    if args.text.is_none() && args.html.is_none() {
        return Err(bad("one of `text` or `html` is required".into()));
    }
    if args.subject.contains(['\r', '\n']) {
        return Err(bad("`subject` must be one line".into()));
    }
    let outbox = need(&services.outbox, "email")?;
    let email = OutboundEmail {
        to,
        subject: args.subject,
        text: args.text,
        html: args.html,
    };
    Ok(json!(outbox.record(&cx.scope, email).await?))
}

fn need<'a, T: ?Sized>(service: &'a Option<Arc<T>>, name: &'static str) -> Result<&'a T, JsError> {
    service.as_deref().ok_or(JsError::Host {
        op: name,
        message: "this service is not configured on the platform".into(),
    })
}

fn internal(e: impl std::fmt::Display) -> JsError {
    JsError::Internal(e.to_string())
}
