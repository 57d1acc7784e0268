//! `extensor ops tree --server URL --token TOKEN [--json]`: the live
//! supervision tree of a running server, as an indented tree (or its JSON).

use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

/// The server must answer within this long.
const REQUEST_TIMEOUT_S: u64 = 30;

#[derive(Subcommand)]
pub enum OpsCommand {
    /// Print the supervision tree of a running server.
    Tree(TreeArgs),
}

#[derive(Args)]
pub struct TreeArgs {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    #[arg(long, env = "EXTENSOR_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The platform-admin token.
    #[arg(long, env = "EXTENSOR_TOKEN", hide_env_values = true)]
    token: String,
    /// Print the server's JSON instead of the indented tree.
    #[arg(long)]
    json: bool,
}

pub async fn run(cmd: OpsCommand) -> Result<()> {
    let OpsCommand::Tree(args) = cmd;
    let url = format!("{}/api/ops/tree", args.server.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(REQUEST_TIMEOUT_S))
        .build()?;
    let resp = client
        .get(&url)
        .bearer_auth(&args.token)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .with_context(|| format!("GET {url}: not JSON"))?;
    if !status.is_success() {
        bail!(
            "GET {url}: {status}: {}",
            body["detail"].as_str().unwrap_or("no detail")
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        print!("{}", render_tree(&body));
    }
    Ok(())
}

/// One line per actor, indented by its depth in the tree path.
pub fn render_tree(tree: &Value) -> String {
    let mut out = String::from("/ (root)\n");
    for a in tree["actors"].as_array().into_iter().flatten() {
        let path = a["path"].as_str().unwrap_or("?");
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        // `/tenants/<t>/installations/<i>`: the collection names are not
        // levels of their own.
        let depth = segments
            .iter()
            .filter(|s| !matches!(**s, "tenants" | "installations"))
            .count();
        let name = segments.last().copied().unwrap_or(path);
        let _ = write!(
            out,
            "{}{name} [{}] {}",
            "  ".repeat(depth),
            a["kind"].as_str().unwrap_or("?"),
            a["status"].as_str().unwrap_or("?"),
        );
        if let Some(up) = a["uptime_s"].as_f64() {
            let _ = write!(out, " up {up:.0}s");
        }
        let restarts = a["restarts"].as_u64().unwrap_or(0);
        if restarts > 0 {
            let _ = write!(out, " restarts {restarts}");
        }
        let depth_q = a["queue_depth"].as_u64().unwrap_or(0);
        if depth_q > 0 {
            let _ = write!(out, " queue {depth_q}");
        }
        if let Some(e) = a["last_error"].as_str() {
            let _ = write!(out, " last error: {e}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_by_tree_depth() {
        let tree = serde_json::json!({"actors": [
            {"path": "/tenants/ten_1", "kind": "tenant_supervisor", "status": "running", "restarts": 0, "queue_depth": 0},
            {"path": "/tenants/ten_1/installations/ins_1", "kind": "installation", "status": "failed",
             "restarts": 3, "queue_depth": 2, "last_error": "boom", "uptime_s": 12.0},
        ]});
        let text = render_tree(&tree);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "  ten_1 [tenant_supervisor] running");
        assert_eq!(
            lines[2],
            "    ins_1 [installation] failed up 12s restarts 3 queue 2 last error: boom"
        );
    }
}
