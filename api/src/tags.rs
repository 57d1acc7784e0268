//! OpenAPI tags: one per API resource file.

use poem_openapi::Tags;

#[derive(Tags)]
pub enum ApiTags {
    /// Tenants (platform admin).
    Tenants,
    /// API tokens of a tenant.
    Tokens,
    /// Plugin installations: upload, lifecycle, logs, metrics.
    Plugins,
    /// Write-only plugin secrets.
    Secrets,
    /// Scheduled plugin jobs and their runs.
    Jobs,
    /// Webhooks-as-code.
    Webhooks,
    /// Business events and the audit query.
    Events,
    /// Audit replay and hash-chain verification.
    Audit,
    /// Filter chains and generator hooks.
    Filters,
    /// The email outbox: outgoing messages and their fate.
    Outbox,
    /// Operations: the supervision tree (platform admin).
    Ops,
    /// Server status.
    Status,
}
