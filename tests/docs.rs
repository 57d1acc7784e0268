//! The docs are tested: every fenced code block in README.md and
//! docs/{PLUGINS, OPERATIONS, SCRIPTS, WEBHOOKS_AS_CODE, API, ARCHITECTURE}.md
//! carries a tag saying how it is checked, and is checked; the reference
//! tables are compared with the code they describe (manifest validator,
//! permissions, error kinds, the SDK's `ctx`, the environment variables the
//! source reads), so docs and code cannot drift.
//!
//! Tags (the fence's info string):
//! - `json manifest`: a manifest; must validate.
//! - `js plugin` / `ts plugin`: the entry of a plugin whose manifest is the
//!   closest `json manifest` above; the bundle must validate in the sandbox.
//! - `json invoke`: `{"trigger", "input", "expect"}` run against the plugin
//!   above; the result must contain `expect`.
//! - `yaml webhook`: a webhooks-as-code declaration; must validate.
//! - `sh test`: run with bash (`set -euo pipefail`), `extensor` on PATH, in a
//!   scratch directory holding `examples/`, with `EXTENSOR_DATA_DIR` set to
//!   a store that holds a few events; blocks of one file share the directory.
//! - `LANG file=PATH`: the file PATH (under `examples/` or
//!   `actors/tests/fixtures/`, both exercised by tests), byte for byte;
//!   webhook YAML and manifests are validated too.
//! - `http`: a transcript: `METHOD /path?query` request lines, each an
//!   operation of openapi.yaml with those query parameters (plugin routes
//!   under `/ext/` excepted), then headers and a body; answers start with a
//!   status line (`HTTP/1.1 200 OK`) and are not checked further.
//! - `sh` (or `bash`, `sh synopsis`): commands checked without running them:
//!   `extensor` (and `cargo run -- …`) subcommands and options against the
//!   binary's `--help`, `curl` requests against openapi.yaml, `cd` paths,
//!   `npm install` where a package.json is, project scripts (`scripts/test`)
//!   that exist and are executable.
//! - `http delivery`: headers of a webhook delivery; each one the sender sets.
//! - `python verify`: a receiver's Standard Webhooks verification, run on a
//!   real signature (and on a tampered body, which must fail).
//! - `python client`: code using the generated Python client
//!   (clients/python): it must parse, its imports must load, and every
//!   `module.name` it uses on an imported module must exist.
//! - `ts client`: code using the TypeScript client (`@extensor/client`, that
//!   is clients/typescript): it must type-check with `tsc`, strict.
//! - `json schema=NAME`: an instance of openapi.yaml's schema NAME (required
//!   properties present, no unknown ones).
//! - `yaml`: as `yaml webhook`. `json`: must parse.
//! - `text`: not code (a directory layout, sample output).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use extensor_core::manifest::{
    JOB_FIELDS, LIMITS_FIELDS, MANIFEST_FIELDS, Permission, PluginManifest, ROUTE_FIELDS,
    ROUTE_METHODS,
};
use extensor_js::host::files::FileStore;
use extensor_js::{
    Bundle, HostServices, InstallationScope, Invocation, JsError, NetworkPolicy, PrivateNetworks,
    Sandbox, SandboxConfig, Trigger,
};
use serde_json::{Value, json};

#[path = "../js-runtime/tests/common/python.rs"]
mod python;
#[path = "docs/samples.rs"]
mod samples;

const TESTED_DOCS: [&str; 7] = [
    "docs/PLUGINS.md",
    "docs/OPERATIONS.md",
    "docs/SCRIPTS.md",
    "docs/WEBHOOKS_AS_CODE.md",
    "docs/API.md",
    "docs/ARCHITECTURE.md",
    "README.md",
];

/// How a block is checked, from its fence's info string (module docs).
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Manifest,
    Plugin,
    Invoke,
    Webhook,
    ShTest,
    ShSynopsis,
    Included { path: String },
    JsonSchema { name: String },
    Http,
    HttpDelivery,
    PythonVerify,
    PythonClient,
    TsClient,
    Json,
    Text,
}

impl Kind {
    fn of(info: &str) -> Option<Kind> {
        let kind = match info {
            "json manifest" => Kind::Manifest,
            "js plugin" | "ts plugin" => Kind::Plugin,
            "json invoke" => Kind::Invoke,
            "yaml webhook" | "yaml" => Kind::Webhook,
            "sh test" => Kind::ShTest,
            "sh" | "bash" | "sh synopsis" => Kind::ShSynopsis,
            "http" => Kind::Http,
            "http delivery" => Kind::HttpDelivery,
            "python verify" => Kind::PythonVerify,
            "python client" => Kind::PythonClient,
            "ts client" => Kind::TsClient,
            "json" => Kind::Json,
            "text" => Kind::Text,
            other if other.starts_with("json schema=") => Kind::JsonSchema {
                name: other["json schema=".len()..].to_owned(),
            },
            other => {
                let (lang, path) = other.split_once(" file=")?;
                ["yaml", "js", "ts", "json", "sh", "text"]
                    .contains(&lang)
                    .then(|| Kind::Included { path: path.into() })?
            }
        };
        Some(kind)
    }
}

/// The blocks of `doc` with how each is checked; an unknown tag fails.
fn blocks_of_kind(doc: &str) -> Vec<(Block, Kind)> {
    blocks(doc)
        .into_iter()
        .map(|b| {
            let kind = Kind::of(&b.info).unwrap_or_else(|| {
                panic!(
                    "{}: code block tagged `{}`; see tests/docs.rs for the tags",
                    b.at, b.info
                )
            });
            (b, kind)
        })
        .collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

struct Block {
    at: String,
    info: String,
    body: String,
}

fn blocks(rel: &str) -> Vec<Block> {
    let text = read(rel);
    let mut out = Vec::new();
    let mut open: Option<(usize, String, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match (&mut open, fence) {
            (None, true) => {
                let info = line.trim_start().trim_start_matches('`').trim().to_owned();
                open = Some((i + 1, info, String::new()));
            }
            (Some((start, info, body)), true) => {
                out.push(Block {
                    at: format!("{rel}:{start}"),
                    info: std::mem::take(info),
                    body: std::mem::take(body),
                });
                let _ = start;
                open = None;
            }
            (Some((_, _, body)), false) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, false) => {}
        }
    }
    assert!(open.is_none(), "{rel}: a code fence is not closed");
    out
}

/// The rows of the table that follows `<!-- table:NAME -->`, as cells.
fn table(rel: &str, name: &str) -> Vec<Vec<String>> {
    let text = read(rel);
    let marker = format!("<!-- table:{name} -->");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("{rel}: no {marker}"));
    text[start + marker.len()..]
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.trim_start().starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

/// The first `code` span of a cell.
fn code(cell: &str) -> String {
    cell.split('`').nth(1).unwrap_or("").to_owned()
}

fn first_column(rel: &str, name: &str) -> BTreeSet<String> {
    table(rel, name).iter().map(|r| code(&r[0])).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_code_block_is_tagged_with_how_it_is_tested() {
    for doc in TESTED_DOCS {
        assert!(!blocks_of_kind(doc).is_empty(), "{doc} has no code blocks");
    }
    // A doc with code blocks that is not listed above would go unchecked.
    for dir in [root(), root().join("docs")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let rel = path
                .strip_prefix(root())
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                TESTED_DOCS.contains(&rel.as_str()) || blocks(&rel).is_empty(),
                "{rel} has code blocks but is not in TESTED_DOCS"
            );
        }
    }
    assert_eq!(Kind::of("js"), None, "a bare language is not a check");
    assert_eq!(Kind::of("js file=../x.js").map(|_| ()), Some(()));
}

/// Included files, HTTP requests, shell synopses, delivery headers and the
/// verification snippet (tests/docs/samples.rs).
#[test]
fn included_http_and_shell_samples_are_real() {
    let checked = samples::check_all(&TESTED_DOCS);
    assert!(checked >= 12, "only {checked} samples checked");
}

fn sandbox() -> Sandbox {
    Sandbox::new(SandboxConfig {
        network: NetworkPolicy {
            private_networks: PrivateNetworks::Allow,
            platform_allowed_hosts: None,
        },
        engine: extensor_js::JsEngine::default(),
        ..SandboxConfig::default()
    })
}

/// Objects match by subset, everything else by equality.
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, ev)| a.get(k).is_some_and(|av| contains(av, ev))),
        (a, e) => a == e,
    }
}

#[tokio::test]
async fn manifest_plugin_and_invoke_samples_work() {
    let files = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for doc in TESTED_DOCS {
        let mut manifest: Option<(String, PluginManifest)> = None;
        let mut installation = None;
        for (b, kind) in blocks_of_kind(doc) {
            match kind {
                Kind::Manifest => {
                    let m = PluginManifest::parse(b.body.as_bytes())
                        .unwrap_or_else(|e| panic!("{}: manifest does not validate: {e}", b.at));
                    manifest = Some((b.body.clone(), m));
                }
                Kind::Plugin => {
                    let (text, m) = manifest
                        .as_ref()
                        .unwrap_or_else(|| panic!("{}: no `json manifest` above", b.at));
                    let bundle = Bundle::new()
                        .with_file("manifest.json", text.clone())
                        .with_file(m.entry.clone(), b.body.clone());
                    let plugin = match sandbox().validate(&bundle).await {
                        Ok(p) => p,
                        Err(problems) => {
                            panic!("{}: plugin does not validate: {problems:#?}", b.at)
                        }
                    };
                    let secrets = extensor_secrets();
                    let services = HostServices {
                        files: Some(Arc::new(FileStore::new(files.path()))),
                        secrets: Some(Arc::new(secrets)),
                        ..HostServices::default()
                    };
                    let scope = InstallationScope {
                        tenant_id: "ten_docs".into(),
                        installation_id: format!("ins_{checked}"),
                    };
                    installation = Some(sandbox().install(plugin, scope, services));
                }
                Kind::Invoke => {
                    let ins = installation
                        .as_ref()
                        .unwrap_or_else(|| panic!("{}: no plugin above", b.at));
                    let spec: Value = serde_json::from_str(&b.body)
                        .unwrap_or_else(|e| panic!("{}: not JSON: {e}", b.at));
                    let trigger: Trigger = serde_json::from_value(spec["trigger"].clone())
                        .unwrap_or_else(|e| panic!("{}: trigger: {e}", b.at));
                    let inv = Invocation {
                        id: "inv_docs".into(),
                        trigger,
                        input: spec["input"].clone(),
                        event_id: None,
                        chain_depth: 0,
                    };
                    let out = ins
                        .invoke(inv)
                        .await
                        .unwrap_or_else(|e: JsError| panic!("{}: invocation failed: {e}", b.at));
                    assert!(
                        contains(&out.value, &spec["expect"]),
                        "{}: got {}, expected {}",
                        b.at,
                        out.value,
                        spec["expect"]
                    );
                }
                Kind::Webhook => {
                    if let Err(p) = extensor_core::webhook::WebhookSpec::parse(&b.body) {
                        panic!("{}: webhook does not validate: {p:#?}", b.at);
                    }
                }
                _ => continue,
            }
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} samples checked");
}

/// Secrets the doc samples may read.
fn extensor_secrets() -> DocSecrets {
    DocSecrets(HashMap::from([(
        "GREETING".to_string(),
        "Hello".to_string(),
    )]))
}

struct DocSecrets(HashMap<String, String>);

impl extensor_js::host::SecretStore for DocSecrets {
    fn get<'a>(
        &'a self,
        _scope: &'a InstallationScope,
        key: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Option<String>, JsError>> {
        Box::pin(async move { Ok(self.0.get(key).cloned()) })
    }
}

/// A store with a tenant in it, for the operations samples.
async fn store_with_events(data_dir: &Path) {
    use extensor_core::aggregate::{self, SnapshotPolicy};
    use extensor_core::event::{EventMeta, Principal, StreamId};
    use extensor_core::ids::TenantId;
    use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
    use extensor_core::tenant::{Tenant, TenantCommand};
    let store = SqliteStore::open(SqliteConfig::new(data_dir, OpenMode::CreateIfMissing)).unwrap();
    let tenant = TenantId::generate();
    let meta = EventMeta::new(Some(tenant.clone()), Principal::operator("docs").unwrap());
    let create = TenantCommand::Create {
        tenant_id: tenant.clone(),
        slug: "acme".parse().unwrap(),
        name: "Acme".into(),
    };
    aggregate::execute::<Tenant>(
        &store,
        &StreamId::tenant(&tenant),
        &create,
        &meta,
        SnapshotPolicy::NEVER,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn shell_samples_run() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_extensor"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for doc in TESTED_DOCS {
        let scratch = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(root().join("examples"), scratch.path().join("examples"))
            .unwrap();
        let data = scratch.path().join("data");
        store_with_events(&data).await;
        let all = blocks_of_kind(doc);
        for b in all
            .iter()
            .filter(|(_, k)| *k == Kind::ShTest)
            .map(|(b, _)| b)
        {
            let o = Command::new("bash")
                .args(["-euo", "pipefail", "-c", &b.body])
                .current_dir(scratch.path())
                .env("PATH", &path)
                .env("EXTENSOR_DATA_DIR", &data)
                .env_remove("EXTENSOR_ALLOW_PRIVATE_NETWORKS")
                .env_remove("EXTENSOR_LLM_BASE_URL")
                .env_remove("EXTENSOR_LLM_MODELS")
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{} failed:\n{}\nstdout:\n{}\nstderr:\n{}",
                b.at,
                b.body,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

const PLUGINS: &str = "docs/PLUGINS.md";

#[test]
fn manifest_reference_matches_the_validator() {
    assert_eq!(
        first_column(PLUGINS, "manifest-fields"),
        set(&MANIFEST_FIELDS)
    );
    assert_eq!(first_column(PLUGINS, "route-fields"), set(&ROUTE_FIELDS));
    assert_eq!(first_column(PLUGINS, "job-fields"), set(&JOB_FIELDS));
    assert_eq!(first_column(PLUGINS, "limits-fields"), set(&LIMITS_FIELDS));
    assert_eq!(
        first_column(PLUGINS, "permissions"),
        Permission::ALL
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect()
    );
    let methods: BTreeSet<String> = table(PLUGINS, "route-fields")
        .iter()
        .find(|r| code(&r[0]) == "method")
        .map(|r| {
            r[2].split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        })
        .unwrap();
    assert_eq!(methods, set(&ROUTE_METHODS));
}

/// The "Required" column is what the validator does when the field is absent.
#[test]
fn required_fields_are_the_ones_the_validator_requires() {
    let full = json!({"slug": "ab", "name": "n", "version": "1.0.0", "description": "d", "entry": "main.js"});
    for row in table(PLUGINS, "manifest-fields") {
        let field = code(&row[0]);
        let mut m = full.clone();
        m.as_object_mut().unwrap().remove(&field);
        let required = match PluginManifest::parse(m.to_string().as_bytes()) {
            Ok(_) => false,
            Err(e) => e.to_string().contains(&format!("$.{field}: is required")),
        };
        assert_eq!(
            row[2] == "yes",
            required,
            "`{field}`: the docs say required = {}",
            row[2]
        );
    }
}

/// SCRIPTS.md's job table: the validator's fields, and each default is what
/// the validator fills in (or `required` is what it demands).
#[test]
fn scripts_job_table_matches_the_validator() {
    const SCRIPTS: &str = "docs/SCRIPTS.md";
    assert_eq!(first_column(SCRIPTS, "job-fields"), set(&JOB_FIELDS));
    let job = json!({"name": "nightly", "schedule": "0 2 * * *"});
    let manifest = |job: &Value| {
        json!({"slug": "ab", "name": "n", "version": "1.0.0", "entry": "main.js", "jobs": [job]})
            .to_string()
    };
    let parsed = PluginManifest::parse(manifest(&job).as_bytes()).unwrap();
    let filled = serde_json::to_value(&parsed.jobs[0]).unwrap();
    for row in table(SCRIPTS, "job-fields") {
        let field = code(&row[0]);
        if row[1] == "required" {
            let mut without = job.clone();
            without.as_object_mut().unwrap().remove(&field);
            let e = PluginManifest::parse(manifest(&without).as_bytes()).unwrap_err();
            assert!(
                e.to_string()
                    .contains(&format!("$.jobs[0].{field}: is required")),
                "{field}: {e}"
            );
            continue;
        }
        let documented = match code(&row[1]) {
            c if c.is_empty() => row[1].clone(),
            c => c,
        };
        let actual = match &filled[&field] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(documented, actual, "default of `{field}`");
    }
}

/// The "Max" column of the limits table is the validator's bound.
#[test]
fn limit_maxima_are_the_validators() {
    let base = json!({"slug": "ab", "name": "n", "version": "1.0.0", "entry": "main.js"});
    for row in table(PLUGINS, "limits-fields") {
        let field = code(&row[0]);
        let max: u64 = row[2]
            .replace([',', '_'], "")
            .parse()
            .unwrap_or_else(|_| panic!("{field}: max `{}`", row[2]));
        for (value, ok) in [(1, true), (max, true), (max + 1, false), (0, false)] {
            let mut m = base.clone();
            m["limits"] = json!({ field.clone(): value });
            let parsed = PluginManifest::parse(m.to_string().as_bytes());
            assert_eq!(parsed.is_ok(), ok, "limits.{field} = {value}");
        }
    }
}

#[test]
fn reserved_prefix_tables_are_the_kernels_list() {
    let want: BTreeSet<String> = extensor_core::kernel_events::reserved_prefixes()
        .map(str::to_owned)
        .collect();
    for doc in ["docs/PLUGINS.md", "docs/API.md"] {
        assert_eq!(first_column(doc, "reserved-prefixes"), want, "{doc}");
    }
}

#[test]
fn error_kinds_table_lists_every_kind() {
    let s = String::new;
    // An exhaustive match: a new variant fails to compile here until listed.
    let all = [
        JsError::HeapLimit { limit_bytes: 0 },
        JsError::Timeout { deadline_ms: 0 },
        JsError::StackOverflow { limit_bytes: 0 },
        JsError::PermissionDenied { permission: s() },
        JsError::Thrown {
            message: s(),
            stack: s(),
        },
        JsError::InvalidResult { reason: s() },
        JsError::NoHandler { trigger: s() },
        JsError::ChainTooDeep { depth: 0, limit: 0 },
        JsError::InvalidArgument {
            op: "",
            message: s(),
        },
        JsError::NetworkDenied { reason: s() },
        JsError::QuotaExceeded { message: s() },
        JsError::LimitExceeded {
            op: "",
            limit: "",
            max: 0,
            what: s(),
        },
        JsError::Host {
            op: "",
            message: s(),
        },
        JsError::InvalidBundle(vec![]),
        JsError::Internal(s()),
    ];
    for e in &all {
        match e {
            JsError::HeapLimit { .. }
            | JsError::Timeout { .. }
            | JsError::StackOverflow { .. }
            | JsError::PermissionDenied { .. }
            | JsError::Thrown { .. }
            | JsError::InvalidResult { .. }
            | JsError::NoHandler { .. }
            | JsError::ChainTooDeep { .. }
            | JsError::InvalidArgument { .. }
            | JsError::NetworkDenied { .. }
            | JsError::QuotaExceeded { .. }
            | JsError::LimitExceeded { .. }
            | JsError::Host { .. }
            | JsError::InvalidBundle(_)
            | JsError::Internal(_) => {}
        }
    }
    let kinds: BTreeSet<String> = all.iter().map(|e| e.kind().to_owned()).collect();
    assert_eq!(first_column(PLUGINS, "error-kinds"), kinds);
}

/// Every member of `Ctx` in the SDK's declaration file is in the ctx table.
#[test]
fn ctx_table_matches_the_sdk_declarations() {
    let dts = read("js-runtime/sdk/extensor.d.ts");
    let start = dts.find("export interface Ctx {").unwrap();
    let body = &dts[start..];
    let body = &body[..body.find("\n  }\n").unwrap()];
    let mut members = BTreeSet::new();
    for line in body.lines().skip(1) {
        let l = line.trim().trim_start_matches("readonly ");
        // Members sit at four spaces of indentation; nested object types deeper.
        let top_level = line.starts_with("    ") && !line.starts_with("     ");
        let name = l.split([':', '(']).next().unwrap_or("");
        if top_level && !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) {
            members.insert(name.to_owned());
        }
    }
    let documented: BTreeSet<String> = first_column(PLUGINS, "ctx")
        .into_iter()
        .map(|c| {
            c.trim_start_matches("ctx.")
                .split(['.', '('])
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(documented, members);
}

/// Every environment variable the product's source reads is documented in
/// OPERATIONS.md, and every documented one is read somewhere.
#[test]
fn environment_variables_are_all_documented() {
    let mut found = BTreeSet::new();
    // Test modules may set variables of their own; for_each_source cuts them.
    for_each_source(&mut |text| found.extend(env_names(text)));
    let documented = first_column("docs/OPERATIONS.md", "environment");
    let missing: Vec<_> = found.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&found).collect();
    assert!(
        missing.is_empty(),
        "read by the source but not documented: {missing:?}"
    );
    assert!(stale.is_empty(), "documented but read nowhere: {stale:?}");
}

/// Every metric the source records is in OPERATIONS.md's metrics table, and
/// every listed one is recorded somewhere.
#[test]
fn metrics_are_all_documented() {
    let mut found = BTreeSet::new();
    for_each_source(&mut |text| {
        for kind in ["counter!(", "histogram!(", "gauge!("] {
            for piece in text.split(kind).skip(1) {
                let name: String = piece
                    .trim_start()
                    .strip_prefix('"')
                    .unwrap_or("")
                    .chars()
                    .take_while(|c| *c != '"')
                    .collect();
                if name.starts_with("extensor_") {
                    found.insert(name);
                }
            }
        }
    });
    assert!(found.len() >= 5, "found only {found:?}");
    assert_eq!(first_column("docs/OPERATIONS.md", "metrics"), found);
}

/// Calls `f` with the text of every product source file (crate `src/`
/// trees), test modules cut off.
fn for_each_source(f: &mut dyn FnMut(&str)) {
    let mut dirs = vec![root().join("src")];
    for entry in std::fs::read_dir(root()).unwrap() {
        let p = entry.unwrap().path();
        if p.join("Cargo.toml").is_file() && p.join("src").is_dir() {
            dirs.push(p.join("src"));
        }
    }
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                f(text.split("#[cfg(test)]").next().unwrap());
            }
        }
    }
}

/// `"EXTENSOR_…"`, `"PLUGIN_…"`, `"FEATURE_…"` string literals.
fn env_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for prefix in ["\"EXTENSOR_", "\"PLUGIN_", "\"FEATURE_"] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let after = &rest[i + 1..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if after[name.len()..].starts_with('"') && !name.ends_with('_') {
                out.insert(name);
            }
            rest = &rest[i + 1..];
        }
    }
    out
}

/// ARCHITECTURE.md's "Module dependencies": the modules of `actors` and
/// `core` import each other in no cycle (`scripts/module-cycles` exits
/// non-zero and prints the pairs when they do).
#[test]
fn crate_modules_import_each_other_in_no_cycle() {
    let python = python::python(&[]);
    for dir in ["actors/src", "core/src", "store-postgres/src"] {
        let out = std::process::Command::new(&python)
            .arg(root().join("scripts/module-cycles"))
            .arg(root().join(dir))
            .output()
            .expect("run scripts/module-cycles");
        assert!(
            out.status.success(),
            "{dir}: modules import each other in a cycle:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
