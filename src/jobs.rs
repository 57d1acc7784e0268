//! `extensor jobs run`: runs a plugin job now through a server's API
//! (`POST /api/plugins/{id}/jobs/{job}/run-now`) and prints the outcome.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

/// The request may take as long as the wait plus this, for the network and
/// the server's own work.
const REQUEST_SLACK_MS: u64 = 10_000;

#[derive(Subcommand)]
pub enum JobsCommand {
    /// Run a plugin's job now; prints the result, or the run id to poll when
    /// it does not finish within the wait.
    Run(RunArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// The server's base URL.
    #[arg(long, env = "EXTENSOR_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// An API token of the tenant (developer role or above).
    #[arg(long, env = "EXTENSOR_TOKEN", hide_env_values = true)]
    token: String,
    /// The tenant's slug.
    #[arg(long, env = "EXTENSOR_TENANT")]
    tenant: String,
    /// How long the server waits for the run before answering with its id.
    #[arg(long, default_value_t = 10_000)]
    wait_ms: u64,
    /// Print the server's JSON answer instead of a summary.
    #[arg(long)]
    json: bool,
    /// The plugin installation's id (`ins_…`).
    plugin: String,
    /// The job's name, as declared in the manifest.
    job: String,
}

pub async fn run(cmd: JobsCommand) -> anyhow::Result<()> {
    match cmd {
        JobsCommand::Run(args) => run_now(args).await,
    }
}

async fn run_now(args: RunArgs) -> anyhow::Result<()> {
    let url = format!(
        "{}/api/plugins/{}/jobs/{}/run-now?wait_ms={}",
        args.server.trim_end_matches('/'),
        path_segment(&args.plugin),
        path_segment(&args.job),
        args.wait_ms
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(
            args.wait_ms.saturating_add(REQUEST_SLACK_MS),
        ))
        .build()
        .context("building the HTTP client")?;
    let response = client
        .post(&url)
        .bearer_auth(&args.token)
        .header("X-Tenant-Slug", &args.tenant)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", args.server))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("the server answered {status} without a JSON body"))?;
    if !status.is_success() {
        let code = body["code"].as_str().unwrap_or("error");
        let detail = body["detail"]
            .as_str()
            .or(body["title"].as_str())
            .unwrap_or("");
        bail!("{status} {code}: {detail}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        print_summary(&body);
    }
    match body["status"].as_str() {
        Some("failed") | Some("timed_out") => bail!(
            "run {} {}: {}",
            body["run_id"].as_str().unwrap_or("?"),
            body["status"].as_str().unwrap_or("?"),
            body["error"].as_str().unwrap_or("")
        ),
        _ => Ok(()),
    }
}

fn print_summary(body: &Value) {
    let run_id = body["run_id"].as_str().unwrap_or("?");
    if body["finished"] != Value::Bool(true) {
        println!("run {run_id} is still going; poll GET /api/plugins/<id>/runs/{run_id}");
        return;
    }
    println!(
        "run {run_id}: {} in {} ms",
        body["status"].as_str().unwrap_or("?"),
        body["duration_ms"].as_u64().unwrap_or(0)
    );
    for line in body["logs"].as_array().into_iter().flatten() {
        println!(
            "  [{}] {}",
            line["level"].as_str().unwrap_or(""),
            line["message"].as_str().unwrap_or("")
        );
    }
    if !body["result"].is_null() {
        println!("{}", body["result"]);
    }
}

/// Percent-encodes what is not a URL path's unreserved character, so a
/// hostile name cannot change the path.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_cannot_escape_the_path() {
        assert_eq!(path_segment("daily_report"), "daily_report");
        assert_eq!(path_segment("../x?y#z"), "..%2Fx%3Fy%23z");
    }
}
