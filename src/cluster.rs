//! `extensor cluster status [--json]`: the nodes sharing the store named by
//! `--store` (the same setting as every other command that reads it), with
//! their address, start time, last heartbeat and the tenants each owns,
//! read from the store itself, so it answers with every node down.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use clap::{Args, Subcommand};
use extensor_actors::cluster::view;
use extensor_core::cluster::NodeRecord;
use serde_json::json;

use crate::store::{Access, StoreChoice};

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// List the nodes on the store and the tenants each owns.
    Status(StatusArgs),
}

#[derive(Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(data_dir: &Path, choice: &StoreChoice, cmd: ClusterCommand) -> Result<()> {
    let ClusterCommand::Status(args) = cmd;
    let opened = crate::store::open(choice, data_dir, Access::ReadOnly).await?;
    let Some(cluster) = opened.shared.as_ref().map(|s| s.cluster.clone()) else {
        opened.close().await;
        let line = format!(
            "{}: the embedded store has one node, the `extensor serve` on it, which owns \
             every tenant (several nodes need a shared store: --store postgres://…)",
            choice.describe(data_dir)
        );
        print_out(if args.json {
            json!({ "mode": "single", "nodes": [] }).to_string()
        } else {
            line
        });
        return Ok(());
    };
    let nodes = view(cluster.as_ref()).await;
    opened.close().await;
    let nodes = nodes?;
    print_out(if args.json {
        json!({ "mode": "shared", "nodes": nodes.iter().map(node_json).collect::<Vec<_>>() })
            .to_string()
    } else {
        table(&nodes)
    });
    Ok(())
}

fn print_out(text: String) {
    println!("{text}");
}

fn node_json(n: &NodeRecord) -> serde_json::Value {
    json!({
        "id": n.id.to_string(),
        "address": n.address,
        "started_at": n.started_at,
        "last_heartbeat": n.last_heartbeat,
        "live": n.live,
        "tenants_owned": n.tenants_owned,
        "tenants": n.tenants.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

fn table(nodes: &[NodeRecord]) -> String {
    if nodes.is_empty() {
        return "no node has registered on this store".into();
    }
    let mut out = String::new();
    for n in nodes {
        let state = if n.live { "live" } else { "gone" };
        let _ = writeln!(
            out,
            "{}  {state}  {}  started {}  heartbeat {}  owns {} tenant(s)",
            n.id,
            n.address,
            n.started_at.format("%Y-%m-%dT%H:%M:%SZ"),
            n.last_heartbeat.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            n.tenants_owned,
        );
        for t in &n.tenants {
            let _ = writeln!(out, "    {t}");
        }
    }
    out.trim_end().to_owned()
}
