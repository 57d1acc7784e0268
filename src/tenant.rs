//! `extensor tenant create --slug S --name N`: creates a tenant directly in
//! the store (the server may be running) and prints its owner token once.

use std::path::Path;
use std::sync::Arc;

use crate::store::{Access, StoreChoice};
use anyhow::{Result, anyhow};
use clap::{Args, Subcommand};
use extensor_api::directory::Directory;
use extensor_api::tenancy;
use extensor_core::event::Principal;
use extensor_core::store::EventStore;

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its first owner token (shown once).
    Create(CreateArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// Lowercase letters, digits and dashes, starting with a letter.
    #[arg(long)]
    slug: String,
    /// Display name.
    #[arg(long)]
    name: String,
    /// Who is doing this, recorded as `operator:<name>` on the events.
    #[arg(long, env = "USER", default_value = "cli")]
    operator: String,
}

pub async fn run(data_dir: &Path, choice: &StoreChoice, cmd: TenantCommand) -> Result<()> {
    let TenantCommand::Create(args) = cmd;
    let opened = crate::store::open(choice, data_dir, Access::Write).await?;
    let shared: Arc<dyn EventStore> = opened.store.clone();
    let directory = Directory::load(shared.clone()).await?;
    let principal = Principal::operator(&args.operator).map_err(|e| anyhow!("--operator: {e}"))?;
    let slug = args.slug.parse().map_err(|e| anyhow!("--slug: {e}"))?;
    let created =
        tenancy::create_tenant(shared.as_ref(), &directory, slug, args.name, principal).await;
    opened.close().await;
    let (tenant_id, owner) = created?;
    println!("tenant {tenant_id} created (slug {})", args.slug);
    println!("owner token (shown once, store it now): {}", owner.token);
    Ok(())
}
