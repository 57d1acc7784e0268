//! A webhook's transform and filter, run in a sandbox isolate. The code
//! files become a bundle with a generated manifest and entry module that
//! registers the named exports as `llmFilter('transform')` and
//! `llmFilter('filter')`, so they run under exactly the limits, isolation
//! and pooling plugins get, with no permissions (no `ctx.http`, no secrets).

use std::collections::BTreeMap;
use std::sync::Arc;

use extensor_core::error::FieldProblem;
use extensor_core::ids::InstallationId;
use extensor_core::webhook::registry::WebhookName;
use extensor_core::webhook::spec::{CodeRef, Filter, WebhookSpec};
use extensor_js::{
    Bundle, HostServices, Installation, InstallationScope, Invocation, JsError, Sandbox, Trigger,
    ValidatedPlugin,
};

use super::WarmIsolates;
use serde_json::{Value, json};

/// The generated entry module; a webhook file may not use this name.
pub const ENTRY_FILE: &str = "extensor-webhook-entry.js";
const TRANSFORM: &str = "transform";
const FILTER: &str = "filter";

/// A webhook's code, installed and ready to run.
pub struct Code {
    pool: Pool,
    transform: bool,
    filter: bool,
}

/// Where the code's isolates live.
enum Pool {
    /// Its own pool (no engine).
    Own(Installation),
    /// A pool in the engine's warm set, installed on first use and again
    /// after an eviction.
    Warm {
        warm: Arc<dyn WarmIsolates>,
        key: InstallationId,
        sandbox: Sandbox,
        plugin: Arc<ValidatedPlugin>,
        scope: InstallationScope,
    },
}

impl Drop for Code {
    fn drop(&mut self) {
        if let Pool::Warm { warm, key, .. } = &self.pool {
            warm.release(key);
        }
    }
}

/// What the transform made of an event.
#[derive(Debug)]
pub enum Transformed {
    Body(Value),
    /// It returned `null` (or `undefined`): skip this delivery.
    Skip,
}

fn import_line(alias: &str, c: &CodeRef) -> String {
    let spec = serde_json::to_string(&format!("./{}", c.file)).expect("a string serialises");
    format!("import {{ {} as {alias} }} from {spec};\n", c.export)
}

fn bundle(
    name: &WebhookName,
    revision: u32,
    spec: &WebhookSpec,
    files: &BTreeMap<String, String>,
) -> Bundle {
    let mut filters = Vec::new();
    let mut entry = String::from("import { llmFilter } from 'extensor:sdk';\n");
    if let Some(t) = &spec.transform {
        filters.push(TRANSFORM);
        entry.push_str(&import_line("__transform", t));
        entry.push_str(
            "llmFilter('transform', async (e) => { const r = await __transform(e); return r === undefined ? null : r; });\n",
        );
    }
    if let Some(Filter::Code(f)) = &spec.filter {
        filters.push(FILTER);
        entry.push_str(&import_line("__filter", f));
        entry.push_str("llmFilter('filter', async (e) => (await __filter(e)) === true);\n");
    }
    let manifest = json!({
        "slug": "webhook",
        "name": format!("webhook {name}"),
        "version": format!("{revision}.0.0"),
        "entry": ENTRY_FILE,
        "llm_filters": filters,
    });
    let mut b = Bundle::new()
        .with_file("manifest.json", manifest.to_string())
        .with_file(ENTRY_FILE, entry);
    for (path, text) in files {
        b = b.with_file(path.clone(), text.clone());
    }
    b
}

/// Validates and installs the webhook's code; `None` when it has none.
pub async fn prepare(
    sandbox: &Sandbox,
    tenant: &str,
    name: &WebhookName,
    revision: u32,
    spec: &WebhookSpec,
    files: &BTreeMap<String, String>,
    warm: Option<&Arc<dyn WarmIsolates>>,
) -> Result<Option<Arc<Code>>, Vec<FieldProblem>> {
    let transform = spec.transform.is_some();
    let filter = matches!(spec.filter, Some(Filter::Code(_)));
    if !transform && !filter {
        return Ok(None);
    }
    if files.contains_key(ENTRY_FILE) || files.contains_key("manifest.json") {
        return Err(vec![FieldProblem::new(
            ENTRY_FILE,
            format!("`{ENTRY_FILE}` and `manifest.json` are reserved names for webhook files"),
        )]);
    }
    let validated = sandbox
        .validate(&bundle(name, revision, spec, files))
        .await
        .map_err(|problems| {
            problems
                .into_iter()
                .map(|p| FieldProblem::new(blame(&p.path, spec), p.message))
                .collect::<Vec<_>>()
        })?;
    let scope = InstallationScope {
        tenant_id: tenant.to_owned(),
        installation_id: format!("webhook:{name}"),
    };
    let pool = match warm {
        // Nothing is installed until the first attempt: a dry run or an
        // apply's check costs no pool.
        Some(warm) => Pool::Warm {
            warm: warm.clone(),
            key: InstallationId::generate(),
            sandbox: sandbox.clone(),
            plugin: validated,
            scope,
        },
        None => Pool::Own(sandbox.install(validated, scope, HostServices::default())),
    };
    Ok(Some(Arc::new(Code {
        pool,
        transform,
        filter,
    })))
}

/// Where a problem is, in the author's terms: a problem the sandbox reports
/// at the generated entry module (evaluation failed: a deadline, a throw
/// while loading) is in the webhook's own code files, which the entry only
/// imports.
fn blame(path: &str, spec: &WebhookSpec) -> String {
    if !path.starts_with(ENTRY_FILE) {
        return path.to_owned();
    }
    let mut files: Vec<&str> = Vec::new();
    if let Some(t) = &spec.transform {
        files.push(&t.file);
    }
    if let Some(Filter::Code(f)) = &spec.filter
        && !files.contains(&f.file.as_str())
    {
        files.push(&f.file);
    }
    files.join(", ")
}

impl Code {
    async fn run(
        &self,
        which: &str,
        id: &str,
        event_id: &str,
        event: &Value,
    ) -> Result<Value, String> {
        let inv = Invocation {
            id: id.to_owned(),
            trigger: Trigger::LlmFilter { name: which.into() },
            input: event.clone(),
            event_id: Some(event_id.to_owned()),
            chain_depth: 0,
        };
        let out = match &self.pool {
            Pool::Own(installation) => installation.invoke(inv).await,
            Pool::Warm {
                warm,
                key,
                sandbox,
                plugin,
                scope,
            } => {
                let install =
                    || sandbox.install(plugin.clone(), scope.clone(), HostServices::default());
                let pool = warm.pool(key, &install);
                let out = pool.installation().invoke(inv).await;
                warm.used();
                out
            }
        };
        out.map(|o| o.value).map_err(|e| describe(which, &e))
    }

    /// Whether the event passes the JS filter (`true` without one).
    pub async fn keep(&self, id: &str, event_id: &str, event: &Value) -> Result<bool, String> {
        if !self.filter {
            return Ok(true);
        }
        Ok(self.run(FILTER, id, event_id, event).await? == Value::Bool(true))
    }

    /// The body to send: the transform's result, or the event itself.
    pub async fn transform(
        &self,
        id: &str,
        event_id: &str,
        event: &Value,
    ) -> Result<Transformed, String> {
        if !self.transform {
            return Ok(Transformed::Body(event.clone()));
        }
        match self.run(TRANSFORM, id, event_id, event).await? {
            Value::Null => Ok(Transformed::Skip),
            v => Ok(Transformed::Body(v)),
        }
    }
}

fn describe(which: &str, e: &JsError) -> String {
    match e {
        JsError::Thrown { message, .. } => format!("the {which} threw: {message}"),
        other => format!("the {which} failed ({}): {other}", other.kind()),
    }
}
