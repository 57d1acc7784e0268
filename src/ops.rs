//! `extensor ops tree --server URL --token TOKEN [--json]`: the live
//! supervision tree of a running server, as an indented tree (or its JSON).
//! `extensor ops suspend --tenant SLUG|ID --reason TEXT` and `extensor ops
//! resume --tenant SLUG|ID`: a platform admin suspends or resumes a tenant
//! on a running server (which pauses or resumes everything of it).

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
    /// Suspend a tenant: it serves nothing, its hooks, jobs and webhooks pause.
    Suspend(SuspendArgs),
    /// Resume a suspended tenant.
    Resume(ResumeArgs),
}

#[derive(Args)]
pub struct Server {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    #[arg(long, env = "EXTENSOR_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The platform-admin token.
    #[arg(long, env = "EXTENSOR_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Args)]
pub struct SuspendArgs {
    #[command(flatten)]
    server: Server,
    /// The tenant's slug or id (`ten_…`).
    #[arg(long)]
    tenant: String,
    /// Why (kept in the log), 1 to 1000 characters.
    #[arg(long)]
    reason: String,
}

#[derive(Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    server: Server,
    /// The tenant's slug or id (`ten_…`).
    #[arg(long)]
    tenant: String,
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
    match cmd {
        OpsCommand::Tree(args) => tree(args).await,
        OpsCommand::Suspend(a) => {
            let body = serde_json::json!({ "reason": a.reason });
            tenant_control(&a.server, &a.tenant, "suspend", Some(body)).await
        }
        OpsCommand::Resume(a) => tenant_control(&a.server, &a.tenant, "resume", None).await,
    }
}

/// `POST /api/tenants/{id}/{action}`, the tenant named by slug or id.
async fn tenant_control(
    server: &Server,
    tenant: &str,
    action: &str,
    body: Option<Value>,
) -> Result<()> {
    let base = server.server.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(REQUEST_TIMEOUT_S))
        .build()?;
    let list = answer(client.get(format!("{base}/api/tenants")), &server.token).await?;
    let id = list["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["slug"] == tenant || t["id"] == tenant)
        .and_then(|t| t["id"].as_str())
        .with_context(|| format!("no tenant `{tenant}` on {base}"))?
        .to_owned();
    let mut req = client.post(format!("{base}/api/tenants/{id}/{action}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let done = answer(req, &server.token).await?;
    println!(
        "tenant {} ({id}) is {}",
        done["slug"].as_str().unwrap_or(tenant),
        done["status"].as_str().unwrap_or("?")
    );
    Ok(())
}

/// Sends `req` with the token; the JSON answer, or the problem's detail.
async fn answer(req: reqwest::RequestBuilder, token: &str) -> Result<Value> {
    let resp = req.bearer_auth(token).send().await.context("the server")?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .context("the server's answer is not JSON")?;
    if !status.is_success() {
        bail!(
            "{status}: {}",
            body["detail"].as_str().unwrap_or("no detail")
        );
    }
    Ok(body)
}

async fn tree(args: TreeArgs) -> Result<()> {
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
