//! `extensor webhooks apply DIR [--dry-run]`: makes a tenant's webhooks
//! match a directory, declaratively. DIR holds one webhook per entry: a
//! folder `NAME/` with `webhook.yaml` and its code files (sent as a ZIP), or
//! a file `NAME.yaml` (sent as YAML). Every local webhook is first checked
//! by the server (`PUT /api/webhooks/{name}?dry_run=true`), the server's
//! webhooks missing locally are to be deleted, and the diff is printed
//! before anything changes; with `--dry-run` nothing else happens. If any
//! webhook is invalid, every problem is printed as `FILE:LINE:COLUMN` and
//! nothing is applied.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use extensor_core::webhook::registry::{DECLARATION_FILE, WebhookName};
use reqwest::StatusCode;
use serde_json::Value;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::plugin::push::{answer, base_url};

/// Connecting to the server takes at most this long.
const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// One request (an apply validates code in an isolate) takes at most this long.
const REQUEST_TIMEOUT_MS: u64 = 60_000;
/// Local webhooks in one directory (the server allows 100 per tenant).
const WEBHOOKS_MAX: usize = 100;
/// Bytes read from one webhook folder: the server's ZIP limit.
const WEBHOOK_DIR_BYTES_MAX: u64 = extensor_api::webhook_body::ZIP_BODY_BYTES_MAX as u64;
/// Files read from one webhook folder (the server keeps at most 16 code files).
const WEBHOOK_DIR_FILES_MAX: usize = 64;
/// Changed lines shown per file in the diff.
const DIFF_LINES_MAX: usize = 200;
/// Files larger than this are listed as changed without a line diff.
const DIFF_FILE_LINES_MAX: usize = 2_000;

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Create, update and delete the tenant's webhooks to match DIR,
    /// printing the diff first.
    Apply(ApplyArgs),
}

#[derive(Args)]
pub struct ApplyArgs {
    /// One entry per webhook: `NAME/webhook.yaml` (+ code files) or `NAME.yaml`.
    pub dir: PathBuf,
    /// Only check and print the diff; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    #[arg(long, env = "EXTENSOR_SERVER")]
    pub server: String,
    /// A bearer token of the tenant (developer role or above).
    #[arg(long, env = "EXTENSOR_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The tenant's slug (sent as `X-Tenant-Slug`).
    #[arg(long, env = "EXTENSOR_TENANT")]
    pub tenant: String,
}

pub async fn run(cmd: WebhooksCommand) -> Result<()> {
    match cmd {
        WebhooksCommand::Apply(args) => apply(args).await,
    }
}

/// One webhook as found in DIR.
struct Local {
    name: String,
    /// The folder or file it came from (problems are reported under it).
    origin: PathBuf,
    /// Whether it is a folder (sent as a ZIP) or a lone YAML file.
    kind: LocalKind,
    yaml: String,
    /// Code files: path relative to the folder → text.
    files: BTreeMap<String, String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LocalKind {
    Folder,
    File,
}

/// What applying a webhook will do.
enum Step {
    Create,
    Update {
        from: u64,
        to: u64,
    },
    Unchanged,
    Delete,
    /// The server refused it; its problems are printed after the diff.
    Invalid {
        problems: usize,
    },
}

async fn apply(args: ApplyArgs) -> Result<()> {
    let client = Client::new(&args)?;
    let (locals, mut problems) = read_dir(&args.dir)?;
    let remote = client.list().await?;
    let mut plan: Vec<(String, Step)> = Vec::new();
    for local in &locals {
        match client.put(local, Mode::DryRun).await? {
            Ok(v) => plan.push((local.name.clone(), step_of(&v))),
            Err(errors) => {
                let step = Step::Invalid {
                    problems: errors.len(),
                };
                plan.push((local.name.clone(), step));
                problems.extend(errors);
            }
        }
    }
    let names: BTreeSet<&str> = locals.iter().map(|l| l.name.as_str()).collect();
    for name in remote.iter().filter(|n| !names.contains(n.as_str())) {
        plan.push((name.clone(), Step::Delete));
    }
    println!(
        "webhooks of tenant `{}` at {} against {}:",
        args.tenant,
        client.base,
        args.dir.display()
    );
    for (name, step) in &plan {
        print_step(&client, &locals, name, step).await?;
    }
    print_totals(&plan);
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{p}");
        }
        bail!(
            "{} problem(s) in {}; nothing was applied",
            problems.len(),
            args.dir.display()
        );
    }
    if args.dry_run {
        println!("dry run: nothing was applied");
        return Ok(());
    }
    execute(&client, &locals, &plan).await
}

fn step_of(v: &Value) -> Step {
    let revision = v["revision"].as_u64().unwrap_or(0);
    match v["change"].as_str() {
        Some("created") => Step::Create,
        Some("updated") => Step::Update {
            from: revision.saturating_sub(1),
            to: revision,
        },
        _ => Step::Unchanged,
    }
}

async fn print_step(client: &Client, locals: &[Local], name: &str, step: &Step) -> Result<()> {
    match step {
        Step::Create => println!("  + {name} (create)"),
        Step::Unchanged => println!("  = {name} (unchanged)"),
        Step::Delete => println!("  - {name} (delete)"),
        Step::Invalid { problems } => println!("  ! {name} (invalid: {problems} problem(s))"),
        Step::Update { from, to } => {
            println!("  ~ {name} (update: revision {from} → {to})");
            let Some(local) = locals.iter().find(|l| l.name == name) else {
                return Ok(());
            };
            let remote = client.get(name).await?;
            print_file_diffs(local, &remote);
        }
    }
    Ok(())
}

fn print_totals(plan: &[(String, Step)]) {
    let count = |f: fn(&Step) -> bool| plan.iter().filter(|(_, s)| f(s)).count();
    println!(
        "plan: {} to create, {} to update, {} to delete, {} unchanged",
        count(|s| matches!(s, Step::Create)),
        count(|s| matches!(s, Step::Update { .. })),
        count(|s| matches!(s, Step::Delete)),
        count(|s| matches!(s, Step::Unchanged)),
    );
}

/// Line diffs of every file that differs between DIR and the server.
fn print_file_diffs(local: &Local, remote: &Value) {
    let mut theirs: BTreeMap<String, String> = remote["sources"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
        .collect();
    theirs.insert(
        DECLARATION_FILE.into(),
        remote["yaml"].as_str().unwrap_or("").to_owned(),
    );
    let mut ours = local.files.clone();
    ours.insert(DECLARATION_FILE.into(), local.yaml.clone());
    let paths: BTreeSet<&String> = theirs.keys().chain(ours.keys()).collect();
    for path in paths {
        let (old, new) = (theirs.get(path), ours.get(path));
        if old == new {
            continue;
        }
        println!("    {path}:");
        let old = old.map_or("", String::as_str);
        let new = new.map_or("", String::as_str);
        for line in line_diff(old, new) {
            println!("      {line}");
        }
    }
}

/// `-`/`+` lines of a longest-common-subsequence diff (at most
/// [`DIFF_LINES_MAX`] lines; files over [`DIFF_FILE_LINES_MAX`] lines are
/// only named).
fn line_diff(old: &str, new: &str) -> Vec<String> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len() > DIFF_FILE_LINES_MAX || b.len() > DIFF_FILE_LINES_MAX {
        return vec!["(too long to show; it changed)".into()];
    }
    // lcs[i][j]: the common subsequence length of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while (i < a.len() || j < b.len()) && out.len() < DIFF_LINES_MAX {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("- {}", a[i]));
            i += 1;
        } else {
            out.push(format!("+ {}", b[j]));
            j += 1;
        }
    }
    out
}

async fn execute(client: &Client, locals: &[Local], plan: &[(String, Step)]) -> Result<()> {
    for (name, step) in plan {
        match step {
            Step::Unchanged | Step::Invalid { .. } => {}
            Step::Delete => {
                client.delete(name).await?;
                println!("deleted {name}");
            }
            Step::Create | Step::Update { .. } => {
                let local = locals
                    .iter()
                    .find(|l| &l.name == name)
                    .ok_or_else(|| anyhow!("{name} is not in the directory"))?;
                let v = client
                    .put(local, Mode::Apply)
                    .await?
                    .map_err(|errors| anyhow!("{name}: {}", errors.join("\n")))?;
                println!(
                    "{} {name} (revision {})",
                    v["change"].as_str().unwrap_or("applied"),
                    v["revision"]
                );
            }
        }
    }
    Ok(())
}

/// The webhooks in `dir`, and the problems found reading it.
fn read_dir(dir: &Path) -> Result<(Vec<Local>, Vec<String>)> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        paths.push(entry.path());
    }
    paths.sort();
    let (mut locals, mut problems) = (Vec::new(), Vec::new());
    for path in paths {
        let Some((name, kind)) = webhook_entry(&path) else {
            continue;
        };
        if let Err(e) = name.parse::<WebhookName>() {
            problems.push(format!("{}: not a webhook name: {e}", path.display()));
            continue;
        }
        match read_webhook(&path, name, kind) {
            Ok(l) => locals.push(l),
            Err(e) => problems.push(format!("{}: {e:#}", path.display())),
        }
    }
    if locals.len() > WEBHOOKS_MAX {
        bail!(
            "{} holds {} webhooks; at most {WEBHOOKS_MAX}",
            dir.display(),
            locals.len()
        );
    }
    Ok((locals, problems))
}

/// A folder, or a `.yaml`/`.yml` file; hidden entries and other files are not webhooks.
fn webhook_entry(path: &Path) -> Option<(String, LocalKind)> {
    let file_name = path.file_name()?.to_str()?;
    if file_name.starts_with('.') {
        return None;
    }
    let meta = std::fs::symlink_metadata(path).ok()?;
    if meta.is_dir() {
        return Some((file_name.to_owned(), LocalKind::Folder));
    }
    let stem = file_name
        .strip_suffix(".yaml")
        .or_else(|| file_name.strip_suffix(".yml"))?;
    meta.is_file().then(|| (stem.to_owned(), LocalKind::File))
}

fn read_webhook(path: &Path, name: String, kind: LocalKind) -> Result<Local> {
    let (yaml, files) = match kind {
        LocalKind::File => (read_text(path)?, BTreeMap::new()),
        LocalKind::Folder => {
            let mut files = read_folder(path)?;
            let yaml = files.remove(DECLARATION_FILE).ok_or_else(|| {
                anyhow!("no {DECLARATION_FILE} in this folder (one folder per webhook)")
            })?;
            (yaml, files)
        }
    };
    Ok(Local {
        name,
        origin: path.to_path_buf(),
        kind,
        yaml,
        files,
    })
}

fn read_text(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > WEBHOOK_DIR_BYTES_MAX {
        bail!(
            "{} is {} bytes; the limit is {WEBHOOK_DIR_BYTES_MAX}",
            path.display(),
            meta.len()
        );
    }
    std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (UTF-8 text)", path.display()))
}

/// Every regular file under `root` (hidden ones and symlinks skipped),
/// keyed by its `/`-separated path relative to `root`.
fn read_folder(root: &Path) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    let mut total = 0u64;
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| n.starts_with('.'));
            let meta = std::fs::symlink_metadata(&path)?;
            if hidden || meta.file_type().is_symlink() {
                continue;
            }
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            total += meta.len();
            if total > WEBHOOK_DIR_BYTES_MAX || files.len() >= WEBHOOK_DIR_FILES_MAX {
                bail!(
                    "more than {WEBHOOK_DIR_FILES_MAX} files or {WEBHOOK_DIR_BYTES_MAX} bytes: a webhook is a YAML file and small scripts"
                );
            }
            let rel = relative(root, &path)?;
            files.insert(rel, read_text(&path)?);
        }
    }
    Ok(files)
}

fn relative(root: &Path, path: &Path) -> Result<String> {
    let rel = path
        .strip_prefix(root)
        .context("a path outside the folder")?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    parts
        .map(|p| p.join("/"))
        .ok_or_else(|| anyhow!("{}: file names must be UTF-8", path.display()))
}

/// The deterministic ZIP of a webhook folder: `webhook.yaml` and its files.
fn zip_of(local: &Local) -> Result<Vec<u8>> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default());
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let all = std::iter::once((DECLARATION_FILE, local.yaml.as_str()))
        .chain(local.files.iter().map(|(p, t)| (p.as_str(), t.as_str())));
    for (path, text) in all {
        zip.start_file(path, options)
            .with_context(|| format!("zip entry {path}"))?;
        zip.write_all(text.as_bytes())
            .with_context(|| format!("zip entry {path}"))?;
    }
    let cursor = zip
        .finish()
        .map_err(|e| anyhow!("finishing the zip: {e}"))?;
    Ok(cursor.into_inner())
}

/// Whether a PUT records or only checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Apply,
    DryRun,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    tenant: String,
}

impl Client {
    fn new(args: &ApplyArgs) -> Result<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
            .build()
            .context("HTTP client")?;
        Ok(Client {
            http,
            base: base_url(&args.server)?,
            token: args.token.clone(),
            tenant: args.tenant.clone(),
        })
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(&self.token)
            .header("X-Tenant-Slug", &self.tenant)
    }

    async fn send(&self, req: reqwest::RequestBuilder, url: &str) -> Result<reqwest::Response> {
        req.send()
            .await
            .with_context(|| format!("cannot reach {url}"))
    }

    /// The names of the server's webhooks.
    async fn list(&self) -> Result<Vec<String>> {
        let url = format!("{}/api/webhooks", self.base);
        let resp = self
            .send(self.request(reqwest::Method::GET, &url), &url)
            .await?;
        let body = answer(resp, &url).await?;
        Ok(body["webhooks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w["name"].as_str().map(str::to_owned))
            .collect())
    }

    async fn get(&self, name: &str) -> Result<Value> {
        let url = format!("{}/api/webhooks/{name}", self.base);
        let resp = self
            .send(self.request(reqwest::Method::GET, &url), &url)
            .await?;
        answer(resp, &url).await
    }

    async fn delete(&self, name: &str) -> Result<()> {
        let url = format!("{}/api/webhooks/{name}", self.base);
        let resp = self
            .send(self.request(reqwest::Method::DELETE, &url), &url)
            .await?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Ok(());
        }
        answer(resp, &url).await.map(drop)
    }

    /// The server's answer, or (for 422) every problem as `FILE:LINE:COL: message`.
    async fn put(&self, local: &Local, mode: Mode) -> Result<Result<Value, Vec<String>>> {
        let query = if mode == Mode::DryRun {
            "?dry_run=true"
        } else {
            ""
        };
        let url = format!("{}/api/webhooks/{}{query}", self.base, local.name);
        let (content_type, body) = match local.kind {
            LocalKind::File => ("application/yaml", local.yaml.clone().into_bytes()),
            LocalKind::Folder => ("application/zip", zip_of(local)?),
        };
        let req = self
            .request(reqwest::Method::PUT, &url)
            .header("content-type", content_type)
            .body(body);
        let resp = self.send(req, &url).await?;
        if resp.status() != StatusCode::UNPROCESSABLE_ENTITY {
            return answer(resp, &url).await.map(Ok);
        }
        let text = resp
            .text()
            .await
            .with_context(|| format!("reading the answer to {url}"))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Err(problems_of(local, &body)))
    }
}

/// A 422 problem document as `FILE:LINE:COLUMN: message` lines under DIR.
fn problems_of(local: &Local, body: &Value) -> Vec<String> {
    let errors: Vec<String> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let path = e["path"].as_str().unwrap_or("");
            let message = e["message"].as_str().unwrap_or("");
            format!("{}: {message}", local_path(local, path))
        })
        .collect();
    if errors.is_empty() {
        let detail = body["detail"].as_str().unwrap_or("invalid");
        return vec![format!("{}: {detail}", local.origin.display())];
    }
    errors
}

/// Where a server-side problem path is in DIR: `webhook.yaml:3:7` →
/// `DIR/NAME/webhook.yaml:3:7` (or `DIR/NAME.yaml:3:7`), `zip:x.js` →
/// `DIR/NAME/x.js`.
fn local_path(local: &Local, path: &str) -> String {
    let origin = local.origin.display();
    let in_zip = path.strip_prefix("zip:").unwrap_or(path);
    match (local.kind, in_zip.strip_prefix(DECLARATION_FILE)) {
        (LocalKind::File, Some(position)) => format!("{origin}{position}"),
        (LocalKind::Folder, _)
            if local.files.contains_key(in_zip) || in_zip.starts_with(DECLARATION_FILE) =>
        {
            format!("{origin}/{in_zip}")
        }
        _ => format!("{origin}: {path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(kind: LocalKind) -> Local {
        Local {
            name: "builds".into(),
            origin: PathBuf::from("hooks/builds"),
            kind,
            yaml: String::new(),
            files: BTreeMap::from([("t.js".to_owned(), String::new())]),
        }
    }

    #[test]
    fn server_problem_paths_point_into_the_directory() {
        let folder = local(LocalKind::Folder);
        assert_eq!(
            local_path(&folder, "webhook.yaml:3:7"),
            "hooks/builds/webhook.yaml:3:7"
        );
        assert_eq!(local_path(&folder, "zip:t.js"), "hooks/builds/t.js");
        assert_eq!(local_path(&folder, "path:name"), "hooks/builds: path:name");
        let mut file = local(LocalKind::File);
        file.origin = PathBuf::from("hooks/builds.yaml");
        assert_eq!(
            local_path(&file, "webhook.yaml:2:1"),
            "hooks/builds.yaml:2:1"
        );
    }

    #[test]
    fn the_line_diff_marks_removed_and_added_lines() {
        let d = line_diff("a\nb\nc\n", "a\nc\nd\n");
        assert_eq!(d, ["- b", "+ d"]);
        assert!(line_diff("same\n", "same\n").is_empty());
    }
}
