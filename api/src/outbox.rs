//! `GET /api/outbox`: the tenant's outgoing email with each message's
//! status and attempts (docs/API.md, "Email outbox"). Bodies (the redacted
//! copy the log keeps) only for developers and above; viewers see who a
//! message went to, its subject and its fate.

use chrono::{DateTime, Utc};
use extensor_actors::outbox::{self, MessageStatus, MessageView};
use extensor_core::role::Role;
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};

use crate::auth::BearerAuth;
use crate::error::ApiError;
use crate::ratelimit::RateClass;
use crate::state::State;
use crate::tags::ApiTags;

/// Messages per page when `limit` is not given.
const OUTBOX_PAGE_DEFAULT: u32 = 50;

/// Where a message is.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum OutboxStatusName {
    /// Queued, or waiting for its next attempt.
    Pending,
    /// Accepted by the SMTP relay.
    Sent,
    /// Refused for good (5xx) or out of attempts.
    Failed,
}

impl From<MessageStatus> for OutboxStatusName {
    fn from(s: MessageStatus) -> Self {
        match s {
            MessageStatus::Pending => Self::Pending,
            MessageStatus::Sent => Self::Sent,
            MessageStatus::Failed => Self::Failed,
        }
    }
}

impl From<OutboxStatusName> for MessageStatus {
    fn from(s: OutboxStatusName) -> Self {
        match s {
            OutboxStatusName::Pending => Self::Pending,
            OutboxStatusName::Sent => Self::Sent,
            OutboxStatusName::Failed => Self::Failed,
        }
    }
}

/// One outgoing message.
#[derive(Object)]
pub struct OutboxMessageView {
    /// The id `ctx.email.send` returned.
    pub outbox_id: String,
    /// The plugin installation that sent it.
    pub installation_id: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    /// The plain-text body as the log keeps it (secrets redacted); `null`
    /// for viewers and for messages without one.
    pub text: Option<String>,
    /// The HTML body, as `text`.
    pub html: Option<String>,
    pub status: OutboxStatusName,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// The relay's (or the connection's) last error.
    pub last_error: Option<String>,
    pub queued_at: DateTime<Utc>,
    /// When the next attempt is due; `null` once sent or failed.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was sent or recorded failed; `null` while pending.
    pub finished_at: Option<DateTime<Utc>>,
}

impl OutboxMessageView {
    fn of(m: MessageView, bodies: bool) -> Self {
        Self {
            outbox_id: m.outbox_id,
            installation_id: m.installation_id,
            to: m.to,
            subject: m.subject,
            text: m.text.filter(|_| bodies),
            html: m.html.filter(|_| bodies),
            status: m.status.into(),
            attempts: m.attempts,
            last_error: m.last_error,
            queued_at: m.queued_at,
            next_attempt_at: m.next_attempt_at,
            finished_at: m.finished_at,
        }
    }
}

#[derive(Object)]
pub struct OutboxPage {
    /// Newest first.
    pub messages: Vec<OutboxMessageView>,
}

pub struct OutboxApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Outbox")]
impl OutboxApi {
    /// The tenant's outgoing email, newest first
    #[oai(path = "/outbox", method = "get", operation_id = "listOutbox")]
    async fn list(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// Only messages in this state.
        status: Query<Option<OutboxStatusName>>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<OutboxPage>, ApiError> {
        let ctx = state.tenant_access(&auth, &tenant, Role::Viewer, RateClass::Management)?;
        let limit = limit.0.unwrap_or(OUTBOX_PAGE_DEFAULT) as usize;
        let found = outbox::list(
            state.store.as_ref(),
            &ctx.tenant,
            status.0.map(Into::into),
            limit,
        )
        .await?;
        let bodies = ctx.role >= Role::Developer;
        Ok(Json(OutboxPage {
            messages: found
                .into_iter()
                .map(|m| OutboxMessageView::of(m, bodies))
                .collect(),
        }))
    }
}
