//! `extensor plugin test DIR --event FILE | --route METHOD PATH | --job NAME`:
//! validates the plugin, then runs one invocation in the real sandbox with
//! local stand-ins for the platform ([`super::local`]) and prints the result,
//! captured logs, recorded emails and events, and files written. Exits
//! non-zero when the invocation fails or `--expect` does not match.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use clap::{ArgGroup, Args};
use extensor_core::kernel_events::business_event_type_problem;
use extensor_core::manifest::ROUTE_METHODS;
use extensor_js::host::files::FileStore;
use extensor_js::host::llm::{LlmClient, LlmConfig};
use extensor_js::host::net::GuardedHttp;
use extensor_js::{
    HandlerKind, HostServices, InstallationScope, Invocation, JsError, LogEntry, Trigger,
    ValidatedPlugin,
};
use serde::Serialize;
use serde_json::{Value, json};

use super::llm::{LlmCall, LlmStandIn, Replies};
use super::local::{LocalReadModel, LocalSecrets, RecordedEmails, RecordedEvents, seed_read_model};

/// Input files (event, body, expectation) larger than this are refused:
/// they are test fixtures, and the sandbox caps results at 1 MiB anyway.
pub const INPUT_FILE_BYTES_MAX: u64 = 4 * 1024 * 1024;

#[derive(Args)]
#[command(group(ArgGroup::new("trigger").required(true).args(["event", "route", "job"])))]
pub struct TestArgs {
    /// The plugin directory.
    pub dir: PathBuf,
    /// Run the hooks for this event: a JSON file `{"type", "data"}` (or the
    /// test-event API's `{"event_type", "event_data"}`).
    #[arg(long, value_name = "FILE")]
    pub event: Option<PathBuf>,
    /// Call a route, e.g. `--route GET /ping` or `--route POST '/items/7?full=1'`.
    #[arg(long, num_args = 2, value_names = ["METHOD", "PATH"])]
    pub route: Option<Vec<String>>,
    /// Run a job now.
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// Job input: a JSON object merged into `{run_id, scheduled_for, trigger}`.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Route request body: JSON if the file parses as JSON, text otherwise.
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,
    /// Route request header `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Secrets as KEY=VALUE lines. Default: DIR/.env when it exists.
    #[arg(long, value_name = "FILE")]
    pub secrets: Option<PathBuf>,
    /// Where ctx.files writes. Default: a temporary directory, removed after.
    #[arg(long, value_name = "DIR")]
    pub files_dir: Option<PathBuf>,
    /// SQLite file used as the tenant's read model for ctx.db.query.
    /// Default: a temporary one with the read-model schema.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// NDJSON events (`{"type", "data", "time"?}` per line) loaded into the
    /// read model's `events` table before the run.
    #[arg(long, value_name = "FILE")]
    pub seed_events: Option<PathBuf>,
    /// JSON the result must contain (objects match by subset).
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
    /// Print one JSON report instead of readable text.
    #[arg(long)]
    pub json: bool,
    /// The tenant id the plugin sees as ctx.tenant.id.
    #[arg(long, default_value = "local")]
    pub tenant_id: String,
    /// Canned ctx.llm replies: a text file answers every completion, a JSON
    /// array of strings one completion each, in order. Without it the
    /// stand-in echoes the last user message, unless EXTENSOR_LLM_BASE_URL
    /// names a real endpoint.
    #[arg(long, value_name = "FILE")]
    pub llm_reply: Option<PathBuf>,
}

/// Everything one local run produced; `--json` prints it.
#[derive(Serialize)]
pub struct Report {
    pub ok: bool,
    pub trigger: Trigger,
    pub value: Option<Value>,
    pub error: Option<ErrorReport>,
    pub duration_ms: f64,
    pub logs: Vec<LogEntry>,
    pub emails: Vec<extensor_js::host::OutboundEmail>,
    pub events: Vec<extensor_js::host::EmitRequest>,
    pub files: Vec<String>,
    /// Completions the ctx.llm stand-in answered (empty with a real endpoint).
    pub llm: Vec<LlmCall>,
    /// Who answered ctx.llm: the stand-in and its replies, or the endpoint.
    pub llm_backend: String,
    /// For routes: the HTTP answer the server would send for `value`.
    pub response: Option<HttpAnswer>,
    pub expectation: Option<String>,
}

#[derive(Serialize)]
pub struct HttpAnswer {
    pub status: u64,
    pub headers: serde_json::Map<String, Value>,
    pub body: Value,
}

/// The server's rule (`route_response` in the engine): a value with an
/// integer `status` of 100-599 *and* a `body` key is a response; anything
/// else is a 200 with the value as JSON body.
pub fn http_answer(value: &Value) -> HttpAnswer {
    let status = value
        .get("status")
        .and_then(Value::as_u64)
        .filter(|s| (100..=599).contains(s))
        .filter(|_| value.get("body").is_some());
    match status {
        Some(status) => HttpAnswer {
            status,
            headers: value
                .get("headers")
                .and_then(Value::as_object)
                .map(|h| {
                    h.iter()
                        .filter(|(_, v)| v.is_string())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            body: value.get("body").cloned().unwrap_or(Value::Null),
        },
        None => HttpAnswer {
            status: 200,
            headers: serde_json::Map::new(),
            body: value.clone(),
        },
    }
}

#[derive(Serialize)]
pub struct ErrorReport {
    pub kind: &'static str,
    pub message: String,
}

pub async fn run(args: TestArgs) -> Result<()> {
    if args.route.is_none() && (args.body.is_some() || !args.headers.is_empty()) {
        bail!("--body and --header apply only to --route");
    }
    if args.job.is_none() && args.input.is_some() {
        bail!("--input applies only to --job");
    }
    let sandbox = super::sandbox()?;
    let plugin = super::load(&args.dir, &sandbox).await?.plugin;
    let (trigger, input, event_id) = invocation_input(&args, &plugin)?;
    let scratch = tempfile::tempdir().context("temporary directory")?;
    let world = World::new(&args, scratch.path()).await?;
    let scope = InstallationScope {
        tenant_id: args.tenant_id.clone(),
        installation_id: format!(
            "ins_local_{}",
            plugin.manifest.slug.as_str().replace('-', "_")
        ),
    };
    let installation = sandbox.install(plugin.clone(), scope.clone(), world.services());
    let invocation = Invocation {
        id: "inv_local_1".into(),
        trigger: trigger.clone(),
        input,
        event_id,
        chain_depth: 0,
    };
    let started = std::time::Instant::now();
    let result = installation.invoke(invocation).await;
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut report = Report {
        ok: result.is_ok(),
        trigger,
        value: result.as_ref().ok().map(|o| o.value.clone()),
        error: result.as_ref().err().map(|e| ErrorReport {
            kind: e.kind(),
            message: error_message(e),
        }),
        duration_ms,
        logs: installation.recent_logs(),
        emails: world.emails.0.lock().map(|v| v.clone()).unwrap_or_default(),
        events: world.events.0.lock().map(|v| v.clone()).unwrap_or_default(),
        files: world.files.list(&scope).await.unwrap_or_default(),
        llm: world
            .llm_stand_in
            .as_ref()
            .map(|s| s.calls())
            .unwrap_or_default(),
        llm_backend: world.llm_backend.clone(),
        response: None,
        expectation: None,
    };
    if let (Trigger::Route { .. }, Some(value)) = (&report.trigger, &report.value) {
        report.response = Some(http_answer(value));
    }
    if let (Some(path), Some(value)) = (&args.expect, &report.value) {
        let expected = read_json(path, "expectation")?;
        if let Err(why) = contains(value, &expected, "$") {
            report.ok = false;
            report.expectation = Some(format!("{}: {why}", path.display()));
        }
    }
    conclude(&report, &args, &world.files_root)
}

/// Prints the report (JSON or text); an error if the run failed.
fn conclude(report: &Report, args: &TestArgs, files_root: &Path) -> Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", render(report, files_root));
    }
    match (&report.error, &report.expectation) {
        (Some(e), _) => bail!("the plugin failed: {}: {}", e.kind, first_line(&e.message)),
        (None, Some(why)) => bail!("expectation not met: {why}"),
        (None, None) => Ok(()),
    }
}

fn error_message(e: &JsError) -> String {
    match e {
        JsError::Thrown { message, stack } if !stack.is_empty() => format!("{message}\n{stack}"),
        other => other.to_string(),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// The local platform: real files and HTTP, recorded email and events,
/// secrets from a file, a SQLite read model, the real LLM client aimed at
/// the stand-in ([`super::llm`]) or at `EXTENSOR_LLM_BASE_URL`.
struct World {
    secrets: Arc<LocalSecrets>,
    emails: Arc<RecordedEmails>,
    events: Arc<RecordedEvents>,
    files: Arc<FileStore>,
    files_root: PathBuf,
    db: Arc<LocalReadModel>,
    http: Arc<GuardedHttp>,
    llm: Arc<LlmClient>,
    llm_stand_in: Option<LlmStandIn>,
    llm_backend: String,
}

impl World {
    async fn new(args: &TestArgs, scratch: &Path) -> Result<World> {
        let secrets_file = args.secrets.clone().or_else(|| {
            let default = args.dir.join(".env");
            default.is_file().then_some(default)
        });
        let secrets = match secrets_file {
            Some(f) => LocalSecrets::from_file(&f)?,
            None => LocalSecrets::default(),
        };
        let files_root = args
            .files_dir
            .clone()
            .unwrap_or_else(|| scratch.join("files"));
        std::fs::create_dir_all(&files_root)
            .with_context(|| format!("files directory {}", files_root.display()))?;
        let db_path = args
            .db
            .clone()
            .unwrap_or_else(|| scratch.join("read-model.sqlite"));
        if args.db.is_some() && !db_path.is_file() && args.seed_events.is_none() {
            bail!("read model {} does not exist", db_path.display());
        }
        seed_read_model(&db_path, args.seed_events.as_deref())?;
        let config = extensor_js::SandboxConfig::from_env().map_err(|e| anyhow!("{e}"))?;
        let http = GuardedHttp::new(config.network).map_err(|e| anyhow!("{e}"))?;
        let (llm_config, llm_stand_in) = match (&args.llm_reply, LlmConfig::from_env()) {
            (None, Some(real)) => (real, None),
            (reply, _) => {
                let replies = match reply {
                    Some(path) => Replies::from_file(path, INPUT_FILE_BYTES_MAX)?,
                    None => Replies::Echo,
                };
                let stand_in = LlmStandIn::start(replies).await?;
                (stand_in.config(), Some(stand_in))
            }
        };
        let llm_backend = match &llm_stand_in {
            Some(s) => format!("stand-in: {}", s.description()),
            None => format!("EXTENSOR_LLM_BASE_URL ({})", llm_config.base_url),
        };
        let llm = LlmClient::new(llm_config).map_err(|e| anyhow!("{e}"))?;
        Ok(World {
            secrets: Arc::new(secrets),
            emails: Arc::default(),
            events: Arc::default(),
            files: Arc::new(FileStore::new(&files_root)),
            files_root,
            db: Arc::new(LocalReadModel { path: db_path }),
            http: Arc::new(http),
            llm: Arc::new(llm),
            llm_stand_in,
            llm_backend,
        })
    }

    fn services(&self) -> HostServices {
        HostServices {
            secrets: Some(self.secrets.clone()),
            events: Some(self.events.clone()),
            outbox: Some(self.emails.clone()),
            db: Some(self.db.clone()),
            files: Some(self.files.clone()),
            http: Some(self.http.clone()),
            llm: Some(self.llm.clone()),
        }
    }
}

/// The trigger, handler input and event id for the requested invocation.
fn invocation_input(
    args: &TestArgs,
    plugin: &ValidatedPlugin,
) -> Result<(Trigger, Value, Option<String>)> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if let Some(path) = &args.event {
        let (event_type, data, id) = read_event(path)?;
        let input = json!({"id": id, "type": event_type, "tenant": args.tenant_id, "time": now, "position": null, "data": data});
        return Ok((Trigger::Hook { event_type }, input, Some(id)));
    }
    if let Some(route) = &args.route {
        return route_input(args, plugin, route);
    }
    let name = args.job.clone().unwrap_or_default();
    let jobs: Vec<&str> = registered(plugin, HandlerKind::Job);
    if !jobs.contains(&name.as_str()) {
        bail!(
            "the plugin registers no job `{name}`; its jobs: {}",
            list_or_none(&jobs)
        );
    }
    // The scheduler's shape (docs/SCRIPTS.md); a local run is a run-now.
    let mut input = json!({"run_id": "run_local_1", "scheduled_for": now, "trigger": "run_now"});
    if let Some(path) = &args.input {
        let Value::Object(extra) = read_json(path, "input")? else {
            bail!("input file {}: must be a JSON object", path.display());
        };
        if let Value::Object(base) = &mut input {
            base.extend(extra);
        }
    }
    Ok((Trigger::Job { name }, input, None))
}

fn read_event(path: &Path) -> Result<(String, Value, String)> {
    let v = read_json(path, "event")?;
    let Value::Object(obj) = v else {
        bail!(
            "event file {}: must be a JSON object {{\"type\", \"data\"}}",
            path.display()
        );
    };
    let event_type = obj
        .get("type")
        .or_else(|| obj.get("event_type"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            anyhow!(
                "event file {}: needs a string `type` (or `event_type`)",
                path.display()
            )
        })?;
    if let Some(why) = business_event_type_problem(event_type) {
        bail!("event file {}: `type` {why}", path.display());
    }
    let data = obj
        .get("data")
        .or_else(|| obj.get("event_data"))
        .cloned()
        .unwrap_or(Value::Null);
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("evt_local_test")
        .to_owned();
    Ok((event_type.to_owned(), data, id))
}

fn route_input(
    args: &TestArgs,
    plugin: &ValidatedPlugin,
    route: &[String],
) -> Result<(Trigger, Value, Option<String>)> {
    let [method, target] = route else {
        bail!("--route takes METHOD and PATH");
    };
    let method = method.to_ascii_uppercase();
    if !ROUTE_METHODS.contains(&method.as_str()) {
        bail!(
            "`{method}` is not a route method; routes use {}",
            ROUTE_METHODS.join(", ")
        );
    }
    if !target.starts_with('/') {
        bail!("route path `{target}` must start with /");
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let routes = registered(plugin, HandlerKind::Route);
    let Some((pattern, params)) = match_route(&routes, &method, path) else {
        bail!(
            "the plugin registers no route for {method} {path}; its routes: {}",
            list_or_none(&routes)
        );
    };
    let body = match &args.body {
        None => Value::Null,
        Some(p) => {
            let bytes = read_bounded(p, "body")?;
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow!("body file {}: is not UTF-8 text", p.display()))?;
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
    };
    let mut headers = serde_json::Map::new();
    for h in &args.headers {
        let Some((k, v)) = h.split_once(':') else {
            bail!("--header `{h}` is not `Name: value`");
        };
        headers.insert(k.trim().to_ascii_lowercase(), json!(v.trim()));
    }
    let query: serde_json::Map<String, Value> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_owned(), json!(v))
        })
        .collect();
    let input = json!({"method": method, "path": path, "params": params, "query": query, "headers": headers, "body": body});
    let trigger = Trigger::Route {
        method,
        path: pattern,
    };
    Ok((trigger, input, None))
}

/// The registered route (`"GET /items/:id"`) that `method path` calls, with
/// its parameters; literal segments win over parameters.
pub fn match_route(
    routes: &[&str],
    method: &str,
    path: &str,
) -> Option<(String, serde_json::Map<String, Value>)> {
    let wanted: Vec<&str> = path.split('/').collect();
    let mut best: Option<(usize, String, serde_json::Map<String, Value>)> = None;
    for key in routes {
        let Some((m, pattern)) = key.split_once(' ') else {
            continue;
        };
        let segs: Vec<&str> = pattern.split('/').collect();
        if m != method || segs.len() != wanted.len() {
            continue;
        }
        let mut params = serde_json::Map::new();
        let mut literals = 0;
        let matched = segs
            .iter()
            .zip(&wanted)
            .all(|(s, w)| match s.strip_prefix(':') {
                Some(name) if !w.is_empty() => {
                    params.insert(name.to_owned(), json!(w));
                    true
                }
                Some(_) => false,
                None => {
                    literals += 1;
                    s == w
                }
            });
        if matched && best.as_ref().is_none_or(|(l, _, _)| literals > *l) {
            best = Some((literals, pattern.to_owned(), params));
        }
    }
    best.map(|(_, p, params)| (p, params))
}

fn registered(plugin: &ValidatedPlugin, kind: HandlerKind) -> Vec<&str> {
    plugin
        .registrations
        .iter()
        .filter(|r| r.kind == kind)
        .map(|r| r.key.as_str())
        .collect()
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn read_bounded(path: &Path, what: &str) -> Result<Vec<u8>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("{what} file {}", path.display()))?;
    if !meta.is_file() {
        bail!("{what} file {}: is not a regular file", path.display());
    }
    if meta.len() > INPUT_FILE_BYTES_MAX {
        bail!(
            "{what} file {}: is {} bytes; the limit is {INPUT_FILE_BYTES_MAX}",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("{what} file {}", path.display()))
}

fn read_json(path: &Path, what: &str) -> Result<Value> {
    let bytes = read_bounded(path, what)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        anyhow!(
            "{what} file {}:{}:{}: not valid JSON: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

/// Whether `actual` contains `expected`: objects by subset (every expected
/// key present with a matching value), everything else by equality.
pub fn contains(actual: &Value, expected: &Value, at: &str) -> Result<(), String> {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (k, ev) in e {
                let path = format!("{at}.{k}");
                match a.get(k) {
                    Some(av) => contains(av, ev, &path)?,
                    None => return Err(format!("{path} is missing (expected {ev})")),
                }
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(e)) if a.len() == e.len() => a
            .iter()
            .zip(e)
            .enumerate()
            .try_for_each(|(i, (av, ev))| contains(av, ev, &format!("{at}[{i}]"))),
        (a, e) if a == e => Ok(()),
        (a, e) => Err(format!("{at} is {a}, expected {e}")),
    }
}

fn render(r: &Report, files_root: &Path) -> String {
    let mut out = format!(
        "{} {} in {:.1} ms\n",
        r.trigger.describe(),
        if r.ok { "ok" } else { "FAILED" },
        r.duration_ms
    );
    if let Some(v) = &r.value {
        let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
        out.push_str(&format!("result:\n{pretty}\n"));
    }
    if let Some(a) = &r.response {
        let headers: Vec<String> = a
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("")))
            .collect();
        out.push_str(&format!("HTTP {} {}\n", a.status, headers.join("; ")));
    }
    if let Some(e) = &r.error {
        out.push_str(&format!("error: {}: {}\n", e.kind, e.message));
    }
    if let Some(why) = &r.expectation {
        out.push_str(&format!("expectation failed: {why}\n"));
    }
    out.push_str(&format!("logs ({}):\n", r.logs.len()));
    for l in &r.logs {
        let level = serde_json::to_value(l.level).unwrap_or_default();
        out.push_str(&format!(
            "  [{}] {}\n",
            level.as_str().unwrap_or("info"),
            l.message
        ));
    }
    for e in &r.emails {
        out.push_str(&format!(
            "email (recorded, not sent) to {}: {}\n",
            e.to.join(", "),
            e.subject
        ));
        for line in e
            .text
            .as_deref()
            .or(e.html.as_deref())
            .unwrap_or("")
            .lines()
        {
            out.push_str(&format!("  | {line}\n"));
        }
    }
    for e in &r.events {
        out.push_str(&format!("emitted {}: {}\n", e.event_type, e.data));
    }
    render_llm(r, &mut out);
    if !r.files.is_empty() {
        out.push_str(&format!("files (under {}):\n", files_root.display()));
        for f in &r.files {
            out.push_str(&format!("  {f}\n"));
        }
    }
    out
}

/// Each completion the stand-in answered: the prompt's last message and the
/// reply (or why there was none).
fn render_llm(r: &Report, out: &mut String) {
    if r.llm.is_empty() {
        return;
    }
    out.push_str(&format!("llm ({}):\n", r.llm_backend));
    for c in &r.llm {
        let prompt = c.messages.last().map(|m| m.content.as_str()).unwrap_or("");
        out.push_str(&format!("  {} < {}\n", c.model, first_line(prompt)));
        match (&c.reply, &c.error) {
            (Some(reply), _) => out.push_str(&format!("  {} > {}\n", c.model, first_line(reply))),
            (None, Some(e)) => out.push_str(&format!("  {} ! {e}\n", c.model)),
            (None, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_literals_before_params() {
        let routes = ["GET /items/:id", "GET /items/new", "POST /items", "GET /"];
        let (p, params) = match_route(&routes, "GET", "/items/7").unwrap();
        assert_eq!(
            (p.as_str(), params["id"].as_str()),
            ("/items/:id", Some("7"))
        );
        assert_eq!(
            match_route(&routes, "GET", "/items/new").unwrap().0,
            "/items/new"
        );
        assert_eq!(match_route(&routes, "GET", "/").unwrap().0, "/");
        assert!(match_route(&routes, "GET", "/items").is_none());
        assert!(match_route(&routes, "DELETE", "/items").is_none());
        assert!(match_route(&routes, "GET", "/items/").is_none());
    }

    #[test]
    fn route_answers_follow_the_servers_rule() {
        let a =
            http_answer(&json!({"status": 201, "headers": {"x-a": "b", "n": 1}, "body": "made"}));
        assert_eq!((a.status, a.body, a.headers.len()), (201, json!("made"), 1));
        for plain in [
            json!({"status": 204}),
            json!({"status": "ok", "body": 1}),
            json!({"status": 700, "body": 1}),
            json!([1]),
        ] {
            let a = http_answer(&plain);
            assert_eq!((a.status, &a.body), (200, &plain));
        }
    }

    #[test]
    fn expectations_are_subsets() {
        let actual = json!({"a": 1, "b": {"c": [1, {"d": 2, "e": 3}]}});
        assert!(contains(&actual, &json!({"b": {"c": [1, {"d": 2}]}}), "$").is_ok());
        let err = contains(&actual, &json!({"b": {"c": [1, {"d": 3}]}}), "$").unwrap_err();
        assert_eq!(err, "$.b.c[1].d is 2, expected 3");
        assert!(
            contains(&actual, &json!({"z": 1}), "$")
                .unwrap_err()
                .contains("$.z is missing")
        );
        assert!(contains(&actual, &json!({"b": {"c": [1]}}), "$").is_err());
    }
}
