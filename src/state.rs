//! `extensor state tenant|installation ID [--at POSITION|TIME]`: rebuilds an
//! aggregate from the log, as it is now or as it was at a point in history.

use std::path::Path;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use extensor_core::aggregate::{self, Aggregate, AsOf};
use extensor_core::event::StreamId;
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::installation::PluginInstallation;
use extensor_core::store::EventStore;
use extensor_core::tenant::Tenant;
use serde::Serialize;

use crate::store::{Access, StoreChoice};

#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    Tenant,
    Installation,
}

#[derive(Args)]
pub struct StateArgs {
    /// Which aggregate.
    kind: Kind,
    /// Its id: `ten_…` for a tenant, `ins_…` for an installation.
    id: String,
    /// A global position, or an RFC 3339 time: the state as it was then.
    #[arg(long)]
    at: Option<String>,
}

#[derive(Serialize)]
struct Printed<'a, A> {
    stream: &'a str,
    revision: Option<u64>,
    position: u64,
    state: &'a A,
}

pub async fn run(data_dir: &Path, choice: &StoreChoice, args: StateArgs) -> Result<()> {
    let opened = crate::store::open(choice, data_dir, Access::ReadOnly).await?;
    let store = opened.store.as_ref();
    let as_of = match args.at.as_deref() {
        None => AsOf::Latest,
        Some(s) if s.bytes().all(|b| b.is_ascii_digit()) => {
            AsOf::Position(s.parse().context("--at position")?)
        }
        Some(s) => AsOf::Time(
            crate::filter_args::parse_time(s).context("--at is a position or an RFC 3339 time")?,
        ),
    };
    match args.kind {
        Kind::Tenant => {
            let id: TenantId = args.id.parse()?;
            print::<Tenant>(store, StreamId::tenant(&id), as_of).await
        }
        Kind::Installation => {
            let id: InstallationId = args.id.parse()?;
            print::<PluginInstallation>(store, StreamId::installation(&id), as_of).await
        }
    }
}

async fn print<A: Aggregate>(store: &dyn EventStore, stream: StreamId, as_of: AsOf) -> Result<()> {
    let loaded = aggregate::load::<A>(store, &stream, as_of).await?;
    if loaded.revision.is_none() {
        anyhow::bail!(
            "`{stream}` has no events{}",
            if as_of == AsOf::Latest {
                ""
            } else {
                " at that point"
            }
        );
    }
    let printed = Printed {
        stream: stream.as_str(),
        revision: loaded.revision,
        position: loaded.position,
        state: &loaded.state,
    };
    println!("{}", serde_json::to_string_pretty(&printed)?);
    Ok(())
}
