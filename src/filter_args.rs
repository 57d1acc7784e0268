//! Filter flags shared by `events tail` and `events export`.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use extensor_core::event::StreamId;
use extensor_core::ids::TenantId;
use extensor_core::store::ReadFilter;

#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only this tenant's events (`ten_…`).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this stream (`tenant-ten_…`, `installation-ins_…`, `events-ten_…`).
    #[arg(long)]
    pub stream: Option<String>,
    /// Only event types starting with this (`plugin.` or `plugin.enabled`).
    #[arg(long = "type")]
    pub type_prefix: Option<String>,
    /// Only events after this global position.
    #[arg(long, default_value_t = 0)]
    pub after: u64,
    /// Only events up to and including this global position.
    #[arg(long)]
    pub until: Option<u64>,
    /// Only events recorded at or after this time (RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// Only events recorded before this time (RFC 3339).
    #[arg(long)]
    pub to: Option<String>,
}

impl FilterArgs {
    pub fn to_filter(&self) -> Result<ReadFilter> {
        Ok(ReadFilter {
            tenant: self
                .tenant
                .as_deref()
                .map(str::parse::<TenantId>)
                .transpose()
                .context("--tenant")?,
            stream: self
                .stream
                .as_deref()
                .map(str::parse::<StreamId>)
                .transpose()
                .context("--stream")?,
            type_prefix: self.type_prefix.clone(),
            recorded_from: self
                .from
                .as_deref()
                .map(parse_time)
                .transpose()
                .context("--from")?,
            recorded_before: self
                .to
                .as_deref()
                .map(parse_time)
                .transpose()
                .context("--to")?,
            position_max: self.until,
        })
    }
}

pub fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("`{s}` is not an RFC 3339 time such as 2026-11-24T10:00:00Z"))
}
