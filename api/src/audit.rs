//! Audit over HTTP: an aggregate as it was at a position or time
//! (`GET /api/audit/state/{kind}/{id}?at=`), and the hash-chain check
//! (`GET /api/audit/verify`).

use extensor_core::aggregate::{self, Aggregate, AsOf};
use extensor_core::event::StreamId;
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::installation::PluginInstallation;
use extensor_core::role::Role;
use extensor_core::store::verify::{ChainBreak, ChainCursor, verify_step};
use extensor_core::tenant::Tenant;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use serde_json::Value;

use crate::auth::BearerAuth;
use crate::error::ApiError;
use crate::ratelimit::RateClass;
use crate::state::State;
use crate::tags::ApiTags;

/// Which aggregate to rebuild.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum AggregateKind {
    Tenant,
    Installation,
}

#[derive(Object)]
pub struct AggregateState {
    pub stream: String,
    /// The stream revision and global position the state includes.
    pub revision: u64,
    pub position: u64,
    /// The aggregate's state (token hashes, never tokens; secret ciphertext
    /// digests, never values).
    pub state: Value,
}

#[derive(Object)]
pub struct ChainBreakView {
    pub position: u64,
    pub reason: String,
}

/// Events one `GET /api/audit/verify` walks at most: a cheap caller cannot
/// make the server hash the whole log in one request (about 20 ms of
/// hashing and one page of reads per 5,000).
pub const VERIFY_EVENTS_PER_CALL_MAX: usize = 20_000;

#[derive(Object)]
pub struct VerifyReportView {
    /// The caller's tenant's events whose hash-chain links are verified,
    /// by this call and earlier ones since the server started (never any
    /// other tenant's count).
    pub tenant_events_verified: u64,
    /// Whether the verified prefix reaches the log's head; `false`: call
    /// again to continue (each call walks at most 20,000 events).
    pub complete: bool,
    /// The first broken link, if any. `null`: the chain is intact as far as
    /// it is verified.
    pub first_break: Option<ChainBreakView>,
}

/// The verified prefix of the log, shared by every caller: each call goes
/// on from where the last one stopped (the log is append-only, so a
/// verified prefix stays verified; `extensor events verify` walks it all
/// again, with an anchor, for a full audit).
#[derive(Default)]
pub struct VerifiedPrefix {
    through: ChainCursor,
    per_tenant: std::collections::HashMap<TenantId, u64>,
    broken: Option<ChainBreak>,
    complete: bool,
}

pub struct AuditApi;

#[OpenApi(prefix_path = "/api/audit", tag = "ApiTags::Audit")]
impl AuditApi {
    /// An aggregate as it was at a position or time
    #[oai(path = "/state/:kind/:id", method = "get", operation_id = "auditState")]
    async fn state_at(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// `tenant` or `installation`.
        kind: Path<AggregateKind>,
        /// `ten_…` (the caller's own tenant) or `ins_…`.
        id: Path<String>,
        /// A global position or an RFC 3339 time; now if absent.
        at: Query<Option<String>>,
    ) -> Result<Json<AggregateState>, ApiError> {
        let ctx = state.tenant_access(&auth, &tenant, Role::Admin, RateClass::Management)?;
        let as_of = parse_at(at.0.as_deref())?;
        match kind.0 {
            AggregateKind::Tenant => {
                let tid: TenantId = id.parse().map_err(|_| ApiError::not_found("tenant", &id))?;
                if tid != ctx.tenant {
                    return Err(ApiError::not_found("tenant", &id));
                }
                rebuild::<Tenant>(&state, StreamId::tenant(&tid), as_of, &id, |_| true).await
            }
            AggregateKind::Installation => {
                let iid: InstallationId = id
                    .parse()
                    .map_err(|_| ApiError::not_found("installation", &id))?;
                let own = ctx.tenant.clone();
                rebuild::<PluginInstallation>(
                    &state,
                    StreamId::installation(&iid),
                    as_of,
                    &id,
                    move |s| s.tenant.as_ref() == Some(&own),
                )
                .await
            }
        }
    }

    /// Verify the hash chain, incrementally and bounded per call
    #[oai(path = "/verify", method = "get", operation_id = "auditVerify")]
    async fn verify(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
    ) -> Result<Json<VerifyReportView>, ApiError> {
        let ctx = state.tenant_access(&auth, &tenant, Role::Viewer, RateClass::Management)?;
        // One walker at a time; each waits at most one bounded step.
        let mut v = state.verified.lock().await;
        if v.broken.is_none() {
            let from = v.through;
            let counts = &mut v.per_tenant;
            let step = verify_step(
                state.store.as_ref(),
                from,
                VERIFY_EVENTS_PER_CALL_MAX,
                &mut |ev| {
                    if let Some(t) = &ev.tenant {
                        *counts.entry(t.clone()).or_default() += 1;
                    }
                },
            )
            .await?;
            v.through = step.through;
            v.complete = step.reached_head;
            v.broken = step.first_break;
        }
        Ok(Json(VerifyReportView {
            tenant_events_verified: v.per_tenant.get(&ctx.tenant).copied().unwrap_or(0),
            complete: v.complete && v.broken.is_none(),
            first_break: v.broken.clone().map(|b| ChainBreakView {
                position: b.position,
                reason: b.reason,
            }),
        }))
    }
}

fn parse_at(at: Option<&str>) -> Result<AsOf, ApiError> {
    let Some(s) = at else {
        return Ok(AsOf::Latest);
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(AsOf::Position)
            .map_err(|_| ApiError::invalid_field("query:at", "position out of range"));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| AsOf::Time(t.with_timezone(&chrono::Utc)))
        .map_err(|_| {
            ApiError::invalid_field("query:at", "expected a global position or an RFC 3339 time")
        })
}

/// Rebuilds `A` on `stream`; answers 404 when it has no events then, or
/// when `owned` says it is not the caller's.
async fn rebuild<A: Aggregate>(
    state: &State<'_>,
    stream: StreamId,
    as_of: AsOf,
    id: &str,
    owned: impl Fn(&A) -> bool,
) -> Result<Json<AggregateState>, ApiError> {
    let loaded = aggregate::load::<A>(state.store.as_ref(), &stream, as_of).await?;
    let Some(revision) = loaded.revision.filter(|_| owned(&loaded.state)) else {
        return Err(ApiError::not_found(A::KIND, id));
    };
    let value = serde_json::to_value(&loaded.state)
        .map_err(|e| ApiError::internal(format!("state does not serialise: {e}")))?;
    Ok(Json(AggregateState {
        stream: stream.to_string(),
        revision,
        position: loaded.position,
        state: value,
    }))
}
