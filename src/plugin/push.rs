//! `extensor plugin push DIR --server URL --token T --tenant SLUG [--enable]`:
//! validates and packs the plugin locally (so a broken plugin never leaves
//! the machine), uploads the ZIP to `POST /api/plugins/upload` as multipart,
//! and optionally enables it with `POST /api/plugins/{id}/enable`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde_json::Value;

/// Connecting to the server takes at most this long.
const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// A whole request (upload included) takes at most this long.
const REQUEST_TIMEOUT_MS: u64 = 120_000;
/// Response bodies printed on error are cut to this many characters.
const ERROR_BODY_CHARS_MAX: usize = 2_000;

#[derive(Args)]
pub struct PushArgs {
    /// The plugin directory.
    pub dir: PathBuf,
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    #[arg(long, env = "EXTENSOR_SERVER")]
    pub server: String,
    /// A bearer token of the tenant (developer role or above).
    #[arg(long, env = "EXTENSOR_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The tenant's slug (sent as `X-Tenant-Slug`).
    #[arg(long, env = "EXTENSOR_TENANT")]
    pub tenant: String,
    /// Enable the plugin once uploaded.
    #[arg(long)]
    pub enable: bool,
}

pub async fn run(args: PushArgs) -> Result<()> {
    let base = base_url(&args.server)?;
    let sandbox = super::sandbox()?;
    let loaded = super::load(&args.dir, &sandbox).await?;
    let m = &loaded.plugin.manifest;
    let bytes = loaded.zip.clone();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
        .build()
        .context("HTTP client")?;
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(format!("{}-{}.zip", m.slug, m.version))
        .mime_str("application/zip")?;
    let form = reqwest::multipart::Form::new().part("file", part);
    let url = format!("{base}/api/plugins/upload");
    let resp = client
        .post(&url)
        .bearer_auth(&args.token)
        .header("X-Tenant-Slug", &args.tenant)
        .multipart(form)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let uploaded = answer(resp, &url).await?;
    let id = plugin_id(&uploaded)
        .ok_or_else(|| anyhow!("the server's answer to POST {url} has no plugin id: {uploaded}"))?;
    // `{action, plugin}`: installed, upgraded or unchanged (same ZIP digest).
    let action = uploaded
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("uploaded");
    println!("{action} {} {} as {id}", m.slug, m.version);
    if args.enable {
        let url = format!("{base}/api/plugins/{id}/enable");
        let resp = client
            .post(&url)
            .bearer_auth(&args.token)
            .header("X-Tenant-Slug", &args.tenant)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        answer(resp, &url).await?;
        println!("enabled {id}");
    }
    Ok(())
}

/// The server URL without a trailing slash; only http and https.
pub(crate) fn base_url(server: &str) -> Result<String> {
    let trimmed = server.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['?', '#', ' ']) => Ok(trimmed.to_owned()),
        _ => bail!("--server `{server}` is not an http:// or https:// base URL"),
    }
}

/// The JSON body of a 2xx answer, or an error carrying the server's
/// problem details (code, message and each field error).
pub(crate) async fn answer(resp: reqwest::Response, url: &str) -> Result<Value> {
    let status = resp.status();
    let text = resp
        .text()
        .await
        .with_context(|| format!("reading the answer to {url}"))?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    if status.is_success() {
        return Ok(body);
    }
    let mut message = format!("{url} answered {status}");
    if let Some(code) = body.get("code").and_then(Value::as_str) {
        message.push_str(&format!(" ({code})"));
    }
    match body
        .get("detail")
        .or_else(|| body.get("title"))
        .and_then(Value::as_str)
    {
        Some(detail) => message.push_str(&format!(": {detail}")),
        None => {
            let cut: String = text.chars().take(ERROR_BODY_CHARS_MAX).collect();
            message.push_str(&format!(": {cut}"));
        }
    }
    for e in body
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let path = e.get("path").and_then(Value::as_str).unwrap_or("?");
        let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
        message.push_str(&format!("\n  {path}: {msg}"));
    }
    Err(anyhow!(message))
}

/// The plugin id in an upload answer: `id`, or `plugin.id`.
fn plugin_id(body: &Value) -> Option<String> {
    body.get("id")
        .or_else(|| body.get("plugin").and_then(|p| p.get("id")))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            base_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(base_url("https://x.example").unwrap(), "https://x.example");
        for bad in ["ftp://x", "127.0.0.1:8080", "http://", "http://a b"] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
    }
}
