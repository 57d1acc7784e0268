//! Tenant and token operations that are not HTTP: creating a tenant with its
//! first owner token, issuing and revoking tokens, and bootstrapping the
//! platform-admin token. Used by the API and by `extensor tenant create`.
//!
//! Tokens are `ext_` plus 64 hex characters (256 random bits). Only their
//! SHA-256 is recorded; the token itself is returned once to the caller.

use chrono::{DateTime, Utc};
use extensor_core::aggregate::{self, Aggregate, SnapshotPolicy};
use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
use extensor_core::ids::{TenantId, TokenId};
use extensor_core::manifest::Slug;
use extensor_core::role::Role;
use extensor_core::store::{EventStore, ExpectedRevision};
use extensor_core::tenant::{IssueToken, Tenant, TenantCommand, TenantCreated, TenantEvent};

use crate::directory::{
    ADMIN_TOKEN_SET, AdminTokenSet, Directory, PLATFORM_ADMIN_STREAM, SLUG_RESERVATION_CATEGORY,
    SLUG_RESERVED, SlugReserved, token_hash,
};

/// Random bytes in a token.
const TOKEN_RANDOM_BYTES: usize = 32;
/// Tokens given through `EXTENSOR_ADMIN_TOKEN` must be at least this long,
/// so a guessable admin token is refused at start-up.
pub const ADMIN_TOKEN_CHARS_MIN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("tenant slug `{0}` is taken")]
    SlugTaken(String),
    #[error("cannot draw random bytes for a token: {0}")]
    Random(String),
    #[error("EXTENSOR_ADMIN_TOKEN must be at least {ADMIN_TOKEN_CHARS_MIN} characters")]
    WeakAdminToken,
    #[error(transparent)]
    Core(#[from] extensor_core::Error),
}

/// A token just issued: the secret is here and nowhere else.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub token_id: TokenId,
    pub token: String,
    pub name: String,
    pub role: Role,
    pub issued_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub fn generate_token() -> Result<String, TenancyError> {
    let mut bytes = [0u8; TOKEN_RANDOM_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| TenancyError::Random(e.to_string()))?;
    Ok(format!("ext_{}", hex::encode(bytes)))
}

/// Creates a tenant and its first owner token. The slug is reserved first
/// on its own stream with expected revision "no stream", so two concurrent
/// creations of one slug cannot both succeed.
pub async fn create_tenant(
    store: &dyn EventStore,
    directory: &Directory,
    slug: Slug,
    name: String,
    principal: Principal,
) -> Result<(TenantId, IssuedToken), TenancyError> {
    let tenant_id = TenantId::generate();
    let create = TenantCommand::Create {
        tenant_id: tenant_id.clone(),
        slug: slug.clone(),
        name: name.clone(),
    };
    // Decide on an empty tenant first (pure), so an invalid name is refused
    // before the slug is reserved for good.
    Tenant::default()
        .decide(&create)
        .map_err(extensor_core::Error::from)?;
    let reservation = StreamId::new(SLUG_RESERVATION_CATEGORY, slug.as_str())?;
    let meta = EventMeta::new(Some(tenant_id.clone()), principal.clone());
    let event = NewEvent::new(
        SLUG_RESERVED,
        1,
        meta.clone(),
        &SlugReserved {
            tenant_id: tenant_id.clone(),
        },
    )?;
    match store
        .append(reservation, ExpectedRevision::NoStream, vec![event])
        .await
    {
        Ok(_) => {}
        Err(extensor_core::Error::Conflict { .. }) => {
            return Err(TenancyError::SlugTaken(slug.as_str().to_owned()));
        }
        Err(e) => return Err(e.into()),
    }
    let stream = StreamId::tenant(&tenant_id);
    aggregate::execute::<Tenant>(store, &stream, &create, &meta, SnapshotPolicy::DEFAULT).await?;
    directory.apply_tenant_event(
        &tenant_id,
        &TenantEvent::Created(TenantCreated {
            tenant_id: tenant_id.clone(),
            slug,
            name,
        }),
        Utc::now(),
    );
    let owner = issue_token(
        store,
        directory,
        &tenant_id,
        "owner".into(),
        Role::Owner,
        None,
        principal,
    )
    .await?;
    Ok((tenant_id, owner))
}

/// Issues a token with `role` in `tenant`.
pub async fn issue_token(
    store: &dyn EventStore,
    directory: &Directory,
    tenant: &TenantId,
    name: String,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
    principal: Principal,
) -> Result<IssuedToken, TenancyError> {
    let token = generate_token()?;
    let cmd = IssueToken {
        token_id: TokenId::generate(),
        name,
        role,
        token_hash: token_hash(&token),
        issued_at: Utc::now(),
        expires_at,
    };
    let meta = EventMeta::new(Some(tenant.clone()), principal);
    let stream = StreamId::tenant(tenant);
    aggregate::execute::<Tenant>(
        store,
        &stream,
        &TenantCommand::IssueToken(cmd.clone()),
        &meta,
        SnapshotPolicy::DEFAULT,
    )
    .await?;
    directory.apply_tenant_event(
        tenant,
        &TenantEvent::TokenIssued(cmd.clone()),
        cmd.issued_at,
    );
    Ok(IssuedToken {
        token_id: cmd.token_id,
        token,
        name: cmd.name,
        role,
        issued_at: cmd.issued_at,
        expires_at,
    })
}

/// Revokes a token of `tenant`. Revoking twice is a no-op.
pub async fn revoke_token(
    store: &dyn EventStore,
    directory: &Directory,
    tenant: &TenantId,
    token_id: TokenId,
    principal: Principal,
) -> Result<(), TenancyError> {
    let meta = EventMeta::new(Some(tenant.clone()), principal);
    let stream = StreamId::tenant(tenant);
    let cmd = TenantCommand::RevokeToken {
        token_id: token_id.clone(),
    };
    aggregate::execute::<Tenant>(store, &stream, &cmd, &meta, SnapshotPolicy::DEFAULT).await?;
    directory.apply_tenant_event(tenant, &TenantEvent::TokenRevoked { token_id }, Utc::now());
    Ok(())
}

/// Makes sure a platform-admin token exists. On a store without one it
/// records the hash of `configured` (from `EXTENSOR_ADMIN_TOKEN`) or of a
/// fresh token, which it returns so the caller prints it once. On a store
/// with one, a `configured` token with a different hash replaces it
/// (rotation by restarting with a new value).
pub async fn bootstrap_admin(
    store: &dyn EventStore,
    directory: &Directory,
    configured: Option<&str>,
) -> Result<Option<String>, TenancyError> {
    if configured.is_some_and(|t| t.chars().count() < ADMIN_TOKEN_CHARS_MIN) {
        return Err(TenancyError::WeakAdminToken);
    }
    let stream: StreamId = PLATFORM_ADMIN_STREAM.parse()?;
    let revision = store.stream_revision(stream.clone()).await?;
    let (token, generated) = match (revision, configured) {
        (Some(_), None) => return Ok(None),
        (Some(rev), Some(t)) => {
            let last = store.read_stream(stream.clone(), rev, 1).await?;
            let current = last
                .first()
                .and_then(|e| serde_json::from_str::<AdminTokenSet>(e.payload.get()).ok());
            if current.is_some_and(|c| c.token_hash == token_hash(t)) {
                return Ok(None);
            }
            (t.to_owned(), false)
        }
        (None, Some(t)) => (t.to_owned(), false),
        (None, None) => (generate_token()?, true),
    };
    let hash = token_hash(&token);
    let event = NewEvent::new(
        ADMIN_TOKEN_SET,
        1,
        EventMeta::new(None, Principal::system()),
        &AdminTokenSet {
            token_hash: hash.clone(),
        },
    )?;
    store
        .append(
            stream,
            ExpectedRevision::from_current(revision),
            vec![event],
        )
        .await?;
    directory.set_admin_hash(hash);
    Ok(generated.then_some(token))
}

/// Suspends (`Some(reason)`) or resumes (`None`) a tenant: the decision is
/// the tenant aggregate's (`already_suspended`, `not_suspended`), the
/// directory follows at once so the very next request sees it.
pub async fn set_suspended(
    store: &dyn EventStore,
    directory: &Directory,
    tenant: &TenantId,
    suspend: Option<String>,
    principal: Principal,
) -> Result<(), TenancyError> {
    let meta = EventMeta::new(Some(tenant.clone()), principal);
    let stream = StreamId::tenant(tenant);
    let (cmd, event) = match suspend {
        Some(reason) => (
            TenantCommand::Suspend {
                reason: reason.clone(),
            },
            TenantEvent::Suspended { reason },
        ),
        None => (TenantCommand::Resume, TenantEvent::Resumed),
    };
    aggregate::execute::<Tenant>(store, &stream, &cmd, &meta, SnapshotPolicy::DEFAULT).await?;
    directory.apply_tenant_event(tenant, &event, Utc::now());
    Ok(())
}
