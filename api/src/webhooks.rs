//! Webhooks-as-code (docs/WEBHOOKS_AS_CODE.md): `PUT /api/webhooks/{name}`
//! (the YAML as `application/yaml`, a ZIP of `webhook.yaml` and its
//! transforms, or both as JSON strings; `?dry_run=true` only checks), list, get, delete, enable,
//! disable; deliveries with their attempts, redeliver one, replay a time
//! range, send a test. Everything goes to the tenant's webhook dispatcher
//! (`Engine::webhooks`), so another tenant's webhook is simply absent.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use extensor_actors::webhooks::EndpointStats;
use extensor_actors::webhooks::dispatcher::{Applied, ApplyMode, Change, DispatcherMsg};
use extensor_actors::webhooks::query::{DeliveryQuery, DeliveryView as QueryView};
use extensor_actors::webhooks::service::SERVICE_CALL_TIMEOUT_MS;
use extensor_core::event::EventMeta;
use extensor_core::ids::DeliveryId;
use extensor_core::role::Role;
use extensor_core::webhook::AttemptOutcome;
use extensor_core::webhook::delivery::{Attempt, DeliveryStatus, Origin};
use extensor_core::webhook::registry::{WebhookName, WebhookRecord, WebhookSource, WebhookStatus};
use extensor_core::webhook::spec::WebhookSpec;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use crate::auth::{BearerAuth, TenantCtx};
use crate::error::ApiError;
use crate::ratelimit::RateClass;
use crate::state::{Feature, State};
use crate::tags::ApiTags;
use crate::webhook_body::WebhookBody;

/// Deliveries per page when `limit` is not given.
pub const DELIVERIES_PAGE_DEFAULT: u32 = 50;
/// The largest page: each delivery carries up to 30 attempts of 1 KiB.
pub const DELIVERIES_PAGE_MAX: u32 = 200;
/// The longest time range one replay may cover (the engine also caps the
/// matching events at 10,000).
pub const REPLAY_RANGE_DAYS_MAX: i64 = 31;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum WebhookStatusName {
    /// Delivering.
    Active,
    /// Not delivering (see `disabled_reason`); enable it to resume.
    Disabled,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ChangeName {
    Created,
    Updated,
    Unchanged,
}

/// One webhook, without its source.
#[derive(Object)]
pub struct WebhookSummary {
    pub name: String,
    /// 1 for the first declaration, +1 per change.
    pub revision: u32,
    pub status: WebhookStatusName,
    /// Why it is disabled: an operator's reason, `410 Gone`, or a receiver
    /// that failed without a single success for the platform's period
    /// (default 5 days).
    pub disabled_reason: Option<String>,
    /// `sha256:<hex>` over the YAML and the code files.
    pub digest: String,
    pub description: Option<String>,
    /// The event patterns it follows.
    pub on: Vec<String>,
    /// The code files applied with it (paths).
    pub files: Vec<String>,
    /// When it was first declared: earlier events are not delivered.
    pub declared_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Live counters of a webhook's endpoint actor.
#[derive(Object)]
pub struct WebhookStatsView {
    /// Deliveries created and not final.
    pub pending: u64,
    pub in_flight: u64,
    /// Deliveries waiting for a retry.
    pub scheduled: u64,
    /// Failed attempts since the receiver's last success (informational:
    /// a webhook is disabled by time failing, never by this count).
    pub consecutive_failures: u32,
}

/// One webhook with its source and live counters.
#[derive(Object)]
pub struct WebhookView {
    #[oai(flatten)]
    pub summary: WebhookSummary,
    /// The declaration as applied (`${SECRET:…}` references, never values).
    pub yaml: String,
    /// The code files as applied: path → source.
    pub sources: BTreeMap<String, String>,
    /// Absent when the webhook's actor is not running (it failed).
    pub stats: Option<WebhookStatsView>,
}

#[derive(Object)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookSummary>,
}

/// What an apply did (or, for a dry run, would do).
#[derive(Object)]
pub struct ApplyResult {
    pub name: String,
    pub change: ChangeName,
    /// Whether nothing was recorded.
    pub dry_run: bool,
    /// The revision current after the apply (for a dry run: after it would be).
    pub revision: u32,
    /// The webhook as recorded; absent for a dry run of a new webhook.
    pub webhook: Option<WebhookSummary>,
}

#[derive(ApiResponse)]
pub enum ApplyResponse {
    /// A new webhook: revision 1 (or the next after a delete).
    #[oai(status = 201)]
    Created(Json<ApplyResult>),
    /// Updated, unchanged, or a dry run.
    #[oai(status = 200)]
    Ok(Json<ApplyResult>),
}

#[derive(ApiResponse)]
pub enum DeleteWebhookResponse {
    /// Deleted: no more deliveries; its delivery history stays in the log.
    #[oai(status = 204)]
    Deleted,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum DeliveryStatusName {
    Pending,
    Delivered,
    Failed,
    Skipped,
}

impl From<DeliveryStatus> for DeliveryStatusName {
    fn from(s: DeliveryStatus) -> Self {
        match s {
            DeliveryStatus::New | DeliveryStatus::Pending => Self::Pending,
            DeliveryStatus::Delivered => Self::Delivered,
            DeliveryStatus::Failed => Self::Failed,
            DeliveryStatus::Skipped => Self::Skipped,
        }
    }
}

impl From<DeliveryStatusName> for DeliveryStatus {
    fn from(s: DeliveryStatusName) -> Self {
        match s {
            DeliveryStatusName::Pending => Self::Pending,
            DeliveryStatusName::Delivered => Self::Delivered,
            DeliveryStatusName::Failed => Self::Failed,
            DeliveryStatusName::Skipped => Self::Skipped,
        }
    }
}

/// One attempt of a delivery.
#[derive(Object)]
pub struct AttemptView {
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at: DateTime<Utc>,
    /// `status`, `timeout`, `connection`, `refused` or `transform`.
    pub outcome: String,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// The first 1 KiB of the answer.
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    /// When the next attempt is due; absent when this was the last.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        let outcome = match a.outcome {
            AttemptOutcome::Status { .. } => "status",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::Connection => "connection",
            AttemptOutcome::Refused => "refused",
            AttemptOutcome::Transform => "transform",
        };
        Self {
            attempt: a.attempt,
            at: a.at,
            outcome: outcome.into(),
            status: a.status,
            latency_ms: a.latency_ms,
            response_excerpt: a.response_excerpt,
            error: a.error,
            next_attempt_at: a.next_attempt_at,
        }
    }
}

/// One delivery: an event on its way to the webhook, with its attempts.
#[derive(Object)]
pub struct DeliveryView {
    /// `msg_…`: the `webhook-id` header of every attempt.
    pub delivery_id: String,
    pub status: DeliveryStatusName,
    pub event_id: String,
    pub event_type: String,
    /// `event`, `redeliver`, `replay` or `test`.
    pub origin: String,
    /// For a redelivery: the delivery it repeats.
    pub redelivery_of: Option<String>,
    /// The webhook revision the delivery follows.
    pub webhook_revision: u32,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    pub attempts: Vec<AttemptView>,
}

impl From<QueryView> for DeliveryView {
    fn from(d: QueryView) -> Self {
        let c = d.created;
        let (origin, of) = match c.origin {
            Origin::Event => ("event", None),
            Origin::Redeliver { of } => ("redeliver", Some(of.to_string())),
            Origin::Replay => ("replay", None),
            Origin::Test => ("test", None),
        };
        Self {
            delivery_id: c.delivery_id.to_string(),
            status: d.status.into(),
            event_id: c.event_id.to_string(),
            event_type: c.event_type,
            origin: origin.into(),
            redelivery_of: of,
            webhook_revision: c.webhook_revision,
            created_at: c.at,
            finished_at: d.finished_at,
            reason: d.reason,
            attempts: d.attempts.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Object)]
pub struct DeliveryPage {
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `until` for the next (older) page; absent on the last page.
    pub next_until: Option<DateTime<Utc>>,
}

/// A new delivery the request created.
#[derive(Object)]
pub struct DeliveryCreated {
    pub delivery_id: String,
}

#[derive(ApiResponse)]
pub enum DeliveryCreatedResponse {
    /// Created and queued; follow it with `GET …/deliveries/{delivery_id}`.
    #[oai(status = 202)]
    Accepted(Json<DeliveryCreated>),
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Events recorded at or after this time…
    pub from: DateTime<Utc>,
    /// …and before this one (at most 31 days after `from`).
    pub to: DateTime<Utc>,
}

#[derive(Object)]
pub struct ReplayResult {
    /// New deliveries created, one per matching event.
    pub deliveries: u64,
}

#[derive(ApiResponse)]
pub enum ReplayResponse {
    /// The deliveries are created and queued.
    #[oai(status = 202)]
    Accepted(Json<ReplayResult>),
}

/// Admission for webhook operations: the feature switch, then the role.
fn admit(
    state: &State<'_>,
    auth: &BearerAuth,
    tenant: &Option<String>,
    min: Role,
) -> Result<TenantCtx, ApiError> {
    state.features.require(Feature::Webhooks)?;
    state.tenant_access(auth, tenant, min, RateClass::Management)
}

/// A webhook name being read: a malformed one is as absent as an unknown one.
fn existing_name(name: &str) -> Result<WebhookName, ApiError> {
    name.parse()
        .map_err(|_| ApiError::not_found("webhook", name))
}

/// A webhook name being declared: a malformed one is invalid input.
fn new_name(name: &str) -> Result<WebhookName, ApiError> {
    name.parse().map_err(|e: extensor_core::Error| {
        let reason = match e {
            extensor_core::Error::InvalidValue { reason, .. } => reason,
            other => other.to_string(),
        };
        ApiError::invalid_field("path:name", reason)
    })
}

fn meta(ctx: &TenantCtx) -> EventMeta {
    EventMeta::new(Some(ctx.tenant.clone()), ctx.principal.clone())
}

/// A timed call to the tenant's webhook dispatcher.
async fn ask<R: Send + 'static>(
    state: &State<'_>,
    ctx: &TenantCtx,
    build: impl FnOnce(ractor::RpcReplyPort<R>) -> DispatcherMsg,
) -> Result<R, ApiError> {
    let dispatcher = state.engine.webhooks(&ctx.tenant).await?;
    let path = format!("/tenants/{}/webhooks", ctx.tenant);
    Ok(
        extensor_actors::supervision::call(&path, &dispatcher, build, SERVICE_CALL_TIMEOUT_MS)
            .await?,
    )
}

/// The live webhook `name` of the caller's tenant, or 404.
async fn record_of(
    state: &State<'_>,
    ctx: &TenantCtx,
    name: &WebhookName,
) -> Result<WebhookRecord, ApiError> {
    let registry = state.engine.webhook_registry(&ctx.tenant).await?;
    registry
        .get(name)
        .cloned()
        .ok_or_else(|| ApiError::not_found("webhook", name.as_str()))
}

fn summary(name: &WebhookName, w: &WebhookRecord) -> WebhookSummary {
    let spec = WebhookSpec::parse(&w.source.yaml).ok();
    WebhookSummary {
        name: name.to_string(),
        revision: w.revision,
        status: match w.status {
            WebhookStatus::Disabled => WebhookStatusName::Disabled,
            WebhookStatus::Active | WebhookStatus::Deleted => WebhookStatusName::Active,
        },
        disabled_reason: w.disabled_reason.clone(),
        digest: w.digest.clone(),
        description: spec.as_ref().and_then(|s| s.description.clone()),
        on: spec
            .map(|s| s.on.iter().map(|p| p.as_str().to_owned()).collect())
            .unwrap_or_default(),
        files: w.source.files.keys().cloned().collect(),
        declared_at: w.declared_at,
        updated_at: w.updated_at,
    }
}

fn stats_view(s: EndpointStats) -> WebhookStatsView {
    WebhookStatsView {
        pending: s.pending as u64,
        in_flight: s.in_flight as u64,
        scheduled: s.scheduled as u64,
        consecutive_failures: s.consecutive_failures,
    }
}

fn change_name(c: &Change) -> ChangeName {
    match c {
        Change::Created => ChangeName::Created,
        Change::Updated => ChangeName::Updated,
        Change::Unchanged => ChangeName::Unchanged,
    }
}

/// The answer to an apply: the revision now (or after a dry run would be).
async fn apply_result(
    state: &State<'_>,
    ctx: &TenantCtx,
    name: &WebhookName,
    applied: Applied,
    mode: ApplyMode,
) -> Result<ApplyResponse, ApiError> {
    let dry_run = mode == ApplyMode::DryRun;
    let revision = match (&applied.change, &applied.record, dry_run) {
        (Change::Updated, Some(w), true) => w.revision + 1,
        (_, Some(w), _) => w.revision,
        (_, None, _) => {
            // A dry run of a new name: a name used before continues its count.
            let registry = state.engine.webhook_registry(&ctx.tenant).await?;
            registry.webhooks.get(name).map_or(1, |w| w.revision + 1)
        }
    };
    let result = Json(ApplyResult {
        name: name.to_string(),
        change: change_name(&applied.change),
        dry_run,
        revision,
        webhook: applied.record.as_ref().map(|w| summary(name, w)),
    });
    Ok(match (applied.change, dry_run) {
        (Change::Created, false) => ApplyResponse::Created(result),
        _ => ApplyResponse::Ok(result),
    })
}

fn delivery_query(
    status: Option<DeliveryStatusName>,
    event_type: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    limit: Option<u32>,
) -> Result<DeliveryQuery, ApiError> {
    // `limit` (1..=DELIVERIES_PAGE_MAX) and `event_type` (1 to 128
    // characters) are checked by their validators.
    let limit = limit.unwrap_or(DELIVERIES_PAGE_DEFAULT);
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        return Err(ApiError::invalid_field(
            "query:since",
            "must be before `until`",
        ));
    }
    Ok(DeliveryQuery {
        status: status.map(Into::into),
        event_type,
        since,
        until,
        limit: limit as usize,
    })
}

fn check_replay_range(r: &ReplayRequest) -> Result<(), ApiError> {
    if r.from >= r.to {
        return Err(ApiError::invalid_field("$.from", "must be before `to`"));
    }
    if r.to - r.from > Duration::days(REPLAY_RANGE_DAYS_MAX) {
        return Err(ApiError::invalid_field(
            "$.to",
            format!("a replay covers at most {REPLAY_RANGE_DAYS_MAX} days; replay shorter ranges"),
        ));
    }
    Ok(())
}

pub struct WebhooksApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// Create or update a webhook from its YAML (or a ZIP with its transforms)
    ///
    /// The body is the declaration as `application/yaml` (or `text/yaml`),
    /// an `application/zip` holding `webhook.yaml` at its root and the code
    /// files it names, or `application/json` with the same as strings
    /// (`{"yaml": …, "files": {path: source}}`). Every problem is listed at once, each as
    /// `webhook.yaml:LINE:COLUMN`; `${SECRET:NAME}` must name an existing
    /// tenant secret. `dry_run=true` checks and answers without recording.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/webhooks/:name",
        method = "put",
        operation_id = "applyWebhook"
    )]
    async fn apply(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The webhook's name: 1 to 64 lowercase letters, digits and single
        /// dashes, starting with a letter and not ending with a dash.
        #[oai(validator(max_length = 64, pattern = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"))]
        name: Path<String>,
        /// Only validate and report the change; record nothing.
        dry_run: Query<Option<bool>>,
        /// Apply only if the webhook is still at this `revision` (as read,
        /// e.g. `"3"`); otherwise 412 and nothing changes.
        #[oai(
            name = "If-Match",
            validator(pattern = r#"^("[0-9]{1,9}"|[0-9]{1,9})$"#)
        )]
        if_match: Header<Option<String>>,
        body: WebhookBody,
    ) -> Result<ApplyResponse, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Developer)?;
        let name = new_name(&name)?;
        let if_revision = if_match.as_deref().map(crate::types::revision_of);
        let source: WebhookSource = body.into_source()?;
        let mode = if dry_run.0 == Some(true) {
            ApplyMode::DryRun
        } else {
            ApplyMode::Apply
        };
        let meta = meta(&ctx);
        let target = name.clone();
        let applied = ask(&state, &ctx, |reply| DispatcherMsg::Apply {
            name: target,
            source,
            mode,
            if_revision,
            meta,
            reply,
        })
        .await??;
        apply_result(&state, &ctx, &name, applied, mode).await
    }

    /// List the tenant's webhooks
    #[oai(path = "/webhooks", method = "get", operation_id = "listWebhooks")]
    async fn list(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
    ) -> Result<Json<WebhookList>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Viewer)?;
        let registry = state.engine.webhook_registry(&ctx.tenant).await?;
        Ok(Json(WebhookList {
            webhooks: registry
                .webhooks
                .iter()
                .filter(|(_, w)| w.status != WebhookStatus::Deleted)
                .map(|(n, w)| summary(n, w))
                .collect(),
        }))
    }

    /// One webhook: its declaration, revision, status and live counters
    #[oai(path = "/webhooks/:name", method = "get", operation_id = "getWebhook")]
    async fn get(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The webhook's name.
        name: Path<String>,
    ) -> Result<Json<WebhookView>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Viewer)?;
        let name = existing_name(&name)?;
        let record = record_of(&state, &ctx, &name).await?;
        let target = name.clone();
        // A failed endpoint has no counters, nor has a node that does not
        // own the tenant (its endpoints run on the owner); the view answers.
        let stats = if state.engine.ownership().owns(&ctx.tenant) {
            ask(&state, &ctx, |reply| DispatcherMsg::Stats {
                name: target,
                reply,
            })
            .await?
            .ok()
            .map(stats_view)
        } else {
            None
        };
        Ok(Json(WebhookView {
            summary: summary(&name, &record),
            yaml: record.source.yaml,
            sources: record.source.files,
            stats,
        }))
    }

    /// Delete a webhook (its delivery history stays in the log)
    #[oai(
        path = "/webhooks/:name",
        method = "delete",
        operation_id = "deleteWebhook"
    )]
    async fn delete(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The webhook's name.
        name: Path<String>,
    ) -> Result<DeleteWebhookResponse, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Developer)?;
        let name = existing_name(&name)?;
        let meta = meta(&ctx);
        ask(&state, &ctx, |reply| DispatcherMsg::Delete {
            name,
            meta,
            reply,
        })
        .await??;
        Ok(DeleteWebhookResponse::Deleted)
    }

    /// Enable a webhook (pending deliveries resume)
    #[oai(
        path = "/webhooks/:name/enable",
        method = "post",
        operation_id = "enableWebhook"
    )]
    async fn enable(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The webhook's name.
        name: Path<String>,
    ) -> Result<Json<WebhookSummary>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Developer)?;
        let name = existing_name(&name)?;
        set_enabled(&state, &ctx, &name, None).await
    }

    /// Disable a webhook (new events are not delivered, pending ones wait)
    #[oai(
        path = "/webhooks/:name/disable",
        method = "post",
        operation_id = "disableWebhook"
    )]
    async fn disable(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The webhook's name.
        name: Path<String>,
        /// Why (recorded, shown as `disabled_reason`): 1 to 500
        /// characters, not all white space.
        #[oai(validator(
            max_length = 500,
            pattern = r"[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
        ))]
        reason: Query<Option<String>>,
    ) -> Result<Json<WebhookSummary>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Developer)?;
        let name = existing_name(&name)?;
        let reason = reason
            .0
            .unwrap_or_else(|| format!("disabled through the API by {}", ctx.principal));
        // Within REASON_CHARS_MAX and not blank: its validator says so.
        set_enabled(&state, &ctx, &name, Some(reason)).await
    }

    /// A webhook's deliveries with their attempts, newest first
    #[oai(
        path = "/webhooks/:name/deliveries",
        method = "get",
        operation_id = "listWebhookDeliveries"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn deliveries(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The webhook's name.
        name: Path<String>,
        /// Only deliveries in this state.
        status: Query<Option<DeliveryStatusName>>,
        /// Only deliveries of this exact event type (1 to 128 characters).
        #[oai(validator(min_length = 1, max_length = 128))]
        event_type: Query<Option<String>>,
        /// Only deliveries created at or after this time (RFC 3339).
        since: Query<Option<DateTime<Utc>>>,
        /// Only deliveries created before this time (the previous page's `next_until`).
        until: Query<Option<DateTime<Utc>>>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<DeliveryPage>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Viewer)?;
        let name = existing_name(&name)?;
        record_of(&state, &ctx, &name).await?;
        let q = delivery_query(status.0, event_type.0, since.0, until.0, limit.0)?;
        let found = state
            .webhook_index
            .deliveries(state.store.as_ref(), &ctx.tenant, &name, &q)
            .await?;
        let next_until = (found.len() == q.limit)
            .then(|| found.last().map(|d| d.created.at))
            .flatten();
        Ok(Json(DeliveryPage {
            deliveries: found.into_iter().map(Into::into).collect(),
            next_until,
        }))
    }

    /// One delivery of a webhook, with every attempt
    #[oai(
        path = "/webhooks/:name/deliveries/:delivery_id",
        method = "get",
        operation_id = "getWebhookDelivery"
    )]
    async fn delivery(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The webhook's name.
        name: Path<String>,
        /// The delivery's id (`msg_…`).
        delivery_id: Path<String>,
    ) -> Result<Json<DeliveryView>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Viewer)?;
        let name = existing_name(&name)?;
        let id: DeliveryId = delivery_id
            .parse()
            .map_err(|_| ApiError::not_found("delivery", &delivery_id))?;
        record_of(&state, &ctx, &name).await?;
        state
            .webhook_index
            .delivery(state.store.as_ref(), &ctx.tenant, &name, &id)
            .await?
            .map(|d| Json(d.into()))
            .ok_or_else(|| ApiError::not_found("delivery", &delivery_id))
    }

    /// Deliver a delivery's event again (a new delivery, same event)
    #[oai(
        path = "/webhooks/:name/deliveries/:delivery_id/redeliver",
        method = "post",
        operation_id = "redeliverWebhookDelivery"
    )]
    async fn redeliver(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The webhook's name.
        name: Path<String>,
        /// The delivery's id (`msg_…`).
        delivery_id: Path<String>,
    ) -> Result<DeliveryCreatedResponse, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Developer)?;
        let name = existing_name(&name)?;
        let delivery: DeliveryId = delivery_id
            .parse()
            .map_err(|_| ApiError::not_found("delivery", &delivery_id))?;
        let id = ask(&state, &ctx, |reply| DispatcherMsg::Redeliver {
            name,
            delivery,
            reply,
        })
        .await??;
        Ok(DeliveryCreatedResponse::Accepted(Json(DeliveryCreated {
            delivery_id: id.to_string(),
        })))
    }

    /// Replay a time range: a new delivery for every matching past event
    #[oai(
        path = "/webhooks/:name/replay",
        method = "post",
        operation_id = "replayWebhook"
    )]
    async fn replay(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The webhook's name.
        name: Path<String>,
        body: Json<ReplayRequest>,
    ) -> Result<ReplayResponse, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Developer)?;
        let name = existing_name(&name)?;
        check_replay_range(&body)?;
        let (from, to) = (body.from, body.to);
        let n = ask(&state, &ctx, |reply| DispatcherMsg::Replay {
            name,
            from,
            to,
            reply,
        })
        .await??;
        Ok(ReplayResponse::Accepted(Json(ReplayResult {
            deliveries: n as u64,
        })))
    }

    /// Send a test delivery (a synthetic `webhook.test` event)
    #[oai(
        path = "/webhooks/:name/test",
        method = "post",
        operation_id = "testWebhook"
    )]
    async fn test(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The webhook's name.
        name: Path<String>,
    ) -> Result<DeliveryCreatedResponse, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Developer)?;
        let name = existing_name(&name)?;
        let id = ask(&state, &ctx, |reply| DispatcherMsg::SendTest {
            name,
            reply,
        })
        .await??;
        Ok(DeliveryCreatedResponse::Accepted(Json(DeliveryCreated {
            delivery_id: id.to_string(),
        })))
    }
}

/// Enables (`disabled: None`) or disables a webhook; answers its summary.
async fn set_enabled(
    state: &State<'_>,
    ctx: &TenantCtx,
    name: &WebhookName,
    disabled: Option<String>,
) -> Result<Json<WebhookSummary>, ApiError> {
    let meta = meta(ctx);
    let target = name.clone();
    ask(state, ctx, |reply| DispatcherMsg::SetEnabled {
        name: target,
        disabled,
        meta,
        reply,
    })
    .await??;
    let record = record_of(state, ctx, name).await?;
    Ok(Json(summary(name, &record)))
}
