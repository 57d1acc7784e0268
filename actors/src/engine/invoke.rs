//! Running plugin code: direct invocations (jobs, the API), plugin routes
//! under `/ext/<slug>/…`, test events, and the filter / generator-hook
//! chains.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use extensor_core::event::RecordedEvent;
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::manifest::{Permission, Routes, Slug};
use extensor_core::role::Role;
use extensor_js::logs::LogEntry;
use extensor_js::plugin::HandlerKind;
use extensor_js::{Invocation, JsError, Outcome, Trigger};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::directory::Known;
use super::invocation_metrics::{self, Kind};
use super::runtime::{Runtime, runtime};
use super::{Engine, Inner};
use crate::error::Error;

/// Route path segments: deeper paths are not plugin routes.
pub const ROUTE_SEGMENTS_MAX: usize = 32;

/// The order chains of filters and generator hooks run in. Documented in
/// docs/ARCHITECTURE.md.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOrder {
    /// The order plugins were first installed in (upgrades keep their place).
    #[default]
    InstallOrder,
    /// Alphabetical by slug: stable across environments.
    Slug,
}

/// What a chain does when one step fails or hits a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainFailure {
    /// Skip the step: the next one gets the previous step's output.
    #[default]
    Skip,
    /// Stop the chain; the result carries the value before the failed step.
    Abort,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Ok,
    Skipped,
    Aborted,
}

/// One step of a chain.
#[derive(Clone, Debug, Serialize)]
pub struct ChainStep {
    pub installation_id: InstallationId,
    pub slug: Slug,
    pub status: StepStatus,
    pub duration: Duration,
    pub error: Option<String>,
    pub error_code: Option<String>,
    pub logs: Vec<LogEntry>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChainResult {
    /// The last successful step's output (the input if none ran).
    pub value: Value,
    /// Whether a failing step stopped the chain.
    pub aborted: bool,
    pub steps: Vec<ChainStep>,
}

/// One hook's run in a test event.
#[derive(Clone, Debug, Serialize)]
pub struct HookRun {
    pub installation_id: InstallationId,
    pub slug: Slug,
    pub outcome: Option<Value>,
    pub error: Option<String>,
    pub error_code: Option<String>,
    pub duration: Duration,
    pub logs: Vec<LogEntry>,
}

/// A request to a plugin route; `path` is what follows `/ext/<slug>`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RouteRequest {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
    /// The authenticated caller's role; `None` for an anonymous request.
    pub caller: Option<Role>,
}

/// A plugin's answer. A handler returning `{status, headers?, body}` sets
/// them; any other value is a 200 with that value as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteResponse {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

/// Invocation counts and latency of one installation since the process
/// started (for `GET /api/plugins/metrics`; `/metrics` has the same as
/// Prometheus series).
#[derive(Clone, Debug, Serialize)]
pub struct PluginStats {
    pub installation_id: InstallationId,
    pub slug: String,
    pub invocations: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// Latencies above this are recorded as this (one minute).
const STATS_LATENCY_US_MAX: u64 = 60_000_000;

pub(crate) struct Counters {
    invocations: u64,
    errors: u64,
    latency_us: hdrhistogram::Histogram<u64>,
}

impl Counters {
    fn new() -> Counters {
        Counters {
            invocations: 0,
            errors: 0,
            // Two significant figures keep one histogram to a few KiB.
            latency_us: hdrhistogram::Histogram::new_with_bounds(1, STATS_LATENCY_US_MAX, 2)
                .expect("static histogram bounds"),
        }
    }

    fn add(&mut self, ok: bool, elapsed: Duration) {
        self.invocations += 1;
        self.errors += u64::from(!ok);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_us
            .saturating_record(us.clamp(1, STATS_LATENCY_US_MAX));
    }
}

#[derive(Default)]
pub(crate) struct Stats(std::sync::Mutex<std::collections::HashMap<InstallationId, Counters>>);

impl Stats {
    fn record(&self, id: &InstallationId, ok: bool, elapsed: Duration) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The id is cloned only for an installation's first invocation.
        match map.get_mut(id) {
            Some(c) => c.add(ok, elapsed),
            None => {
                let mut c = Counters::new();
                c.add(ok, elapsed);
                map.insert(id.clone(), c);
            }
        }
    }

    fn get(&self, id: &InstallationId) -> Option<(u64, u64, [u64; 4])> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let c = map.get(id)?;
        let h = &c.latency_us;
        Some((
            c.invocations,
            c.errors,
            [
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.95),
                h.value_at_quantile(0.99),
                h.max(),
            ],
        ))
    }
}

/// The input a hook handler receives for a stored event.
pub(crate) fn hook_input(ev: &RecordedEvent) -> Value {
    let data: Value = serde_json::from_str(ev.payload.get()).unwrap_or(Value::Null);
    json!({
        "id": ev.event_id,
        "type": ev.event_type,
        "tenant": ev.tenant,
        "time": ev.recorded_at,
        "position": ev.position,
        "data": data,
    })
}

/// `Failed` if the installation's actor is marked failed (it crash-looped
/// past the restart policy): until an operator restarts it, the plugin
/// answers no route, job, filter or hook, although the index still lists it
/// as enabled. One check here covers every kind of invocation.
pub(crate) fn refuse_failed(inner: &Inner, known: &Known) -> Result<(), Error> {
    let (Some(tenant), Some(id)) = (&known.state.tenant, &known.state.id) else {
        return Ok(());
    };
    let path = crate::tenant_supervisor::installation_path(tenant, id);
    match inner.board.failure(&path) {
        Some(last_error) => Err(Error::Failed {
            actor: path,
            last_error,
        }),
        None => Ok(()),
    }
}

/// Runs one invocation in the installation's pool, with metrics.
pub(crate) async fn run(
    inner: &Arc<Inner>,
    known: &Known,
    trigger: Trigger,
    input: Value,
    event_id: Option<String>,
    chain_depth: u32,
) -> Result<Outcome, Error> {
    let _work = inner.begin()?;
    refuse_failed(inner, known)?;
    let rt = runtime(inner, known).await?;
    let invocation = invocation(trigger, input, event_id, chain_depth);
    run_on(inner, known, &rt, invocation).await
}

/// A new invocation with a fresh id.
fn invocation(
    trigger: Trigger,
    input: Value,
    event_id: Option<String>,
    chain_depth: u32,
) -> Invocation {
    Invocation {
        id: format!("inv_{}", ulid::Ulid::new()),
        trigger,
        input,
        event_id,
        chain_depth,
    }
}

/// [`run`] on a runtime the caller already holds (a plugin route found its
/// handler in it), inside the caller's in-flight guard, after
/// [`refuse_failed`].
async fn run_on(
    inner: &Arc<Inner>,
    known: &Known,
    rt: &Runtime,
    invocation: Invocation,
) -> Result<Outcome, Error> {
    let started = Instant::now();
    let kind = Kind::of(&invocation.trigger);
    let result = rt.installation.invoke_with_logs(invocation).await;
    // The isolate is back in its pool with its new heap size: hold the
    // process-wide warm-isolate cap.
    inner.runtimes.trim();
    if let Some(id) = &known.state.id {
        inner.stats.record(id, result.is_ok(), started.elapsed());
    }
    let outcome = match &result {
        Ok(_) => invocation_metrics::Outcome::Ok,
        Err(f) => {
            metrics::counter!("extensor_plugin_invocation_errors_total",
                "plugin" => rt.metrics.plugin().to_owned(), "trigger" => kind.label(),
                "kind" => error_kind(&f.error))
            .increment(1);
            invocation_metrics::Outcome::Error
        }
    };
    rt.metrics
        .record(kind, outcome, started.elapsed().as_secs_f64());
    let slug = known.state.slug.as_ref().map_or("", |s| s.as_str());
    redacted(
        || super::runtime::redactor(inner, known),
        kind.label(),
        slug,
        result,
    )
}

/// What an invocation leaves behind, with the installation's secret values
/// replaced: logs and errors always; the value of hooks and jobs, which is
/// recorded in the log (a route's or filter's value goes to its caller).
/// The redactor (every secret decrypted) is made only when there is
/// something to redact: a route or filter answer without logs has nothing.
fn redacted(
    redactor: impl FnOnce() -> extensor_core::redact::Redactor,
    kind: &str,
    slug: &str,
    result: Result<Outcome, extensor_js::InvokeFailure>,
) -> Result<Outcome, Error> {
    let recorded = matches!(kind, "hook" | "job");
    let result = match result {
        Ok(o) if o.logs.is_empty() && !recorded => return Ok(o),
        other => other,
    };
    let redactor = redactor();
    let logs = |logs: Vec<LogEntry>| -> Vec<LogEntry> {
        logs.into_iter()
            .map(|mut l| {
                l.message = redactor.redact(&l.message);
                l
            })
            .collect()
    };
    if redactor.is_empty() {
        return result.map_err(|f| Error::Plugin {
            plugin: slug.to_owned(),
            source: f.error,
            logs: f.logs,
        });
    }
    match result {
        Ok(mut o) => {
            o.logs = logs(o.logs);
            if recorded {
                o.value = redactor.redact_json(&o.value);
            }
            Ok(o)
        }
        Err(f) => Err(Error::Plugin {
            plugin: slug.to_owned(),
            source: f.error.map_text(|t| redactor.redact(t)),
            logs: logs(f.logs),
        }),
    }
}

/// The `kind` label of a failed invocation: the limit it hit, a thrown
/// error, a denied permission (or outbound host), or `other`.
fn error_kind(e: &JsError) -> &'static str {
    match e {
        JsError::Timeout { .. } => "timeout",
        JsError::HeapLimit { .. } => "heap",
        JsError::StackOverflow { .. } => "stack",
        JsError::Thrown { .. } => "thrown",
        JsError::PermissionDenied { .. } | JsError::NetworkDenied { .. } => "permission",
        _ => "other",
    }
}

/// Matches a route pattern (`/users/:id`) against a path; the params.
fn match_route(pattern: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let pat: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let got: Vec<&str> = path.trim_matches('/').split('/').collect();
    if pat.len() != got.len() || got.len() > ROUTE_SEGMENTS_MAX {
        return None;
    }
    let mut params = BTreeMap::new();
    for (p, g) in pat.iter().zip(&got) {
        match p.strip_prefix(':') {
            Some(name) if !g.is_empty() => {
                params.insert(name.to_owned(), (*g).to_owned());
            }
            _ if p == g => {}
            _ => return None,
        }
    }
    Some(params)
}

/// The route's access rule from the manifest: (min role, public).
fn route_access(known: &Known, method: &str, pattern: &str) -> (Role, bool) {
    let Some(v) = &known.state.current else {
        return (Role::Owner, false);
    };
    let m = &v.manifest;
    let declared = match &m.routes {
        Routes::Declared(list) => list
            .iter()
            .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == pattern),
        _ => None,
    };
    match declared {
        Some(d) => (d.min_role, d.public && m.has(Permission::RoutesPublic)),
        None => (Role::Viewer, false),
    }
}

/// Refuses a caller the route's manifest rule does not admit: anonymous
/// on a route that is not public, or a role below its `min_role`.
fn admit_caller(
    known: &Known,
    method: &str,
    pattern: &str,
    route_name: &str,
    caller: Option<Role>,
) -> Result<(), Error> {
    let (min_role, public) = route_access(known, method, pattern);
    if public {
        return Ok(());
    }
    let role = caller.ok_or_else(|| Error::Unauthenticated {
        route: route_name.to_owned(),
    })?;
    if role < min_role {
        return Err(Error::Forbidden {
            route: route_name.to_owned(),
            required: min_role.to_string(),
        });
    }
    Ok(())
}

/// Whether the manifest declares a public route matching `method path`.
/// Read from the manifest alone, so an anonymous request to anything else
/// is refused before any isolate starts (a cheap caller cannot make the
/// platform build a pool and evaluate a bundle).
fn public_route_declared(known: &Known, method: &str, path: &str) -> bool {
    let Some(v) = &known.state.current else {
        return false;
    };
    let m = &v.manifest;
    let Routes::Declared(list) = &m.routes else {
        return false;
    };
    m.has(Permission::RoutesPublic)
        && list.iter().any(|r| {
            r.public
                && r.method.eq_ignore_ascii_case(method)
                && match_route(&r.path, path).is_some()
        })
}

impl Engine {
    /// Runs a handler of an enabled installation of this tenant (jobs from
    /// the scheduler, run-now from the API). A disabled plugin is
    /// `Conflict { code: "plugin_disabled" }`.
    pub async fn invoke(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
        trigger: Trigger,
        input: Value,
        event_id: Option<String>,
    ) -> Result<Outcome, Error> {
        let known = self.enabled(tenant, id)?;
        run(&self.inner, &known, trigger, input, event_id, 0).await
    }

    fn enabled(&self, tenant: &TenantId, id: &InstallationId) -> Result<Arc<Known>, Error> {
        let known = self
            .inner
            .directory
            .get_for(tenant, id)
            .ok_or_else(|| Error::not_found("plugin", id))?;
        if !known.is_enabled() {
            return Err(Error::Conflict {
                code: "plugin_disabled",
                message: format!("plugin `{id}` is disabled"),
            });
        }
        Ok(known)
    }

    /// Answers a request to `/ext/<slug>/<path>`. An unknown or disabled
    /// plugin, or a path it did not register, is `NotFound`.
    pub async fn route(
        &self,
        tenant: &TenantId,
        slug: &str,
        request: RouteRequest,
    ) -> Result<RouteResponse, Error> {
        let slug_parsed: Slug = slug.parse().map_err(|_| Error::not_found("plugin", slug))?;
        let id = InstallationId::for_slug(tenant, &slug_parsed);
        let known = self
            .inner
            .directory
            .get_for(tenant, &id)
            .filter(|k| k.is_enabled())
            .ok_or_else(|| Error::not_found("plugin", slug))?;
        let method = request.method.to_ascii_uppercase();
        if request.caller.is_none() && !public_route_declared(&known, &method, &request.path) {
            return Err(Error::Unauthenticated {
                route: format!("{method} /ext/{slug}{}", request.path),
            });
        }
        let rt = runtime(&self.inner, &known).await?;
        let (key, pattern, params) = rt
            .installation
            .plugin()
            .registrations
            .iter()
            .filter(|r| r.kind == HandlerKind::Route)
            .filter_map(|r| r.key.split_once(' ').map(|(m, p)| (r.key.as_str(), m, p)))
            .filter(|(_, m, _)| m.eq_ignore_ascii_case(&method))
            .find_map(|(key, _, p)| {
                match_route(p, &request.path).map(|params| (key, p.to_owned(), params))
            })
            .ok_or_else(|| Error::not_found("route", format!("{method} {}", request.path)))?;
        let route_name = format!("{method} /ext/{slug}{pattern}");
        admit_caller(&known, &method, &pattern, &route_name, request.caller)?;
        let input = json!({
            "method": method, "path": request.path, "params": params,
            "query": request.query, "headers": request.headers, "body": request.body,
        });
        let trigger = Trigger::Route {
            method: method.clone(),
            path: pattern,
        };
        // Held until the access is counted, so a graceful shutdown (which
        // waits for in-flight work before stopping the flushers) never
        // stops a flusher ahead of a count.
        let _work = self.inner.begin()?;
        refuse_failed(&self.inner, &known)?;
        let invocation = invocation(trigger, input, None, 0);
        let started = Instant::now();
        let answer = run_on(&self.inner, &known, &rt, invocation)
            .await
            .and_then(|outcome| {
                super::responses::route_response(outcome.value).map_err(|reason| Error::Plugin {
                    plugin: slug.to_owned(),
                    source: JsError::InvalidResult {
                        reason: format!("route {route_name} answered {reason}"),
                    },
                    logs: Vec::new(),
                })
            });
        self.count_access(tenant, &id, slug, key, &answer, started.elapsed())
            .await;
        answer
    }

    /// One `route.accessed` count: a failed handler or a 5xx answer is an
    /// error. Starts the tenant's flusher the first time the tenant counts.
    async fn count_access(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
        slug: &str,
        route: &str,
        answer: &Result<RouteResponse, Error>,
        elapsed: Duration,
    ) {
        use crate::route_access::{Failed, Recorded};
        let failed = match answer {
            Ok(r) if r.status < 500 => Failed::No,
            _ => Failed::Yes,
        };
        let access = &self.inner.route_access;
        if access.record(tenant, id, slug, route, failed, elapsed) == Recorded::NewTenant {
            self.inner.route_flusher(tenant).await;
        }
    }

    /// Runs every enabled hook matching `event_type` now, on a synthetic
    /// event that is not stored, and reports each run.
    pub async fn test_event(
        &self,
        tenant: &TenantId,
        event_type: &str,
        data: Value,
    ) -> Result<Vec<HookRun>, Error> {
        if let Some(reason) = extensor_core::kernel_events::business_event_type_problem(event_type)
        {
            return Err(Error::Validation(vec![extensor_core::FieldProblem::new(
                "$.event_type",
                format!("`{event_type}` {reason}"),
            )]));
        }
        let input = json!({"id": null, "type": event_type, "tenant": tenant,
            "time": chrono::Utc::now(), "data": data, "test": true});
        let matching: Vec<Known> = self
            .inner
            .directory
            .for_tenant(tenant)
            .into_iter()
            .filter(|k| k.hooks(event_type))
            .collect();
        let runs = matching.iter().map(|k| {
            let trigger = Trigger::Hook {
                event_type: event_type.to_owned(),
            };
            let input = input.clone();
            async move {
                let started = Instant::now();
                let result = run(&self.inner, k, trigger, input, None, 0).await;
                hook_run(k, result, started.elapsed())
            }
        });
        Ok(futures::future::join_all(runs).await)
    }

    /// Runs the chain of `llmFilter(kind)` handlers of the tenant's enabled
    /// plugins, each receiving the previous one's output.
    pub async fn apply_filters(
        &self,
        tenant: &TenantId,
        kind: &str,
        input: Value,
        on_failure: ChainFailure,
    ) -> Result<ChainResult, Error> {
        let trigger = |name: &str| Trigger::LlmFilter { name: name.into() };
        self.chain(tenant, kind, input, on_failure, trigger, |m| &m.llm_filters)
            .await
    }

    /// Runs the chain of `generatorHook(kind)` handlers over a builder state.
    pub async fn run_generator_hooks(
        &self,
        tenant: &TenantId,
        kind: &str,
        state: Value,
        on_failure: ChainFailure,
    ) -> Result<ChainResult, Error> {
        let trigger = |name: &str| Trigger::GeneratorHook { name: name.into() };
        self.chain(tenant, kind, state, on_failure, trigger, |m| {
            &m.generator_hooks
        })
        .await
    }

    async fn chain(
        &self,
        tenant: &TenantId,
        kind: &str,
        input: Value,
        on_failure: ChainFailure,
        trigger: impl Fn(&str) -> Trigger,
        declared: impl Fn(&extensor_core::manifest::PluginManifest) -> &Vec<String>,
    ) -> Result<ChainResult, Error> {
        let mut steps_of: Vec<Known> = self
            .inner
            .directory
            .for_tenant(tenant)
            .into_iter()
            .filter(|k| k.is_enabled())
            .filter(|k| {
                k.state
                    .current
                    .as_ref()
                    .is_some_and(|v| declared(&v.manifest).iter().any(|d| d == kind))
            })
            .collect();
        if self.inner.filter_order == FilterOrder::Slug {
            steps_of.sort_by(|a, b| a.state.slug.cmp(&b.state.slug));
        }
        let mut value = input;
        let mut steps = Vec::with_capacity(steps_of.len());
        let mut aborted = false;
        for k in &steps_of {
            let started = Instant::now();
            let result = run(&self.inner, k, trigger(kind), value.clone(), None, 0).await;
            let (status, error, code, logs) = match result {
                Ok(o) => {
                    value = o.value;
                    (StepStatus::Ok, None, None, o.logs)
                }
                Err(e) => {
                    let status = match on_failure {
                        ChainFailure::Skip => StepStatus::Skipped,
                        ChainFailure::Abort => StepStatus::Aborted,
                    };
                    (
                        status,
                        Some(e.to_string()),
                        Some(e.code().to_owned()),
                        vec![],
                    )
                }
            };
            steps.push(ChainStep {
                installation_id: k.state.id.clone().expect("installed"),
                slug: k.state.slug.clone().expect("installed"),
                status,
                duration: started.elapsed(),
                error,
                error_code: code,
                logs,
            });
            if status == StepStatus::Aborted {
                aborted = true;
                break;
            }
        }
        Ok(ChainResult {
            value,
            aborted,
            steps,
        })
    }

    /// Invocation counts, errors and latency percentiles of the tenant's
    /// installations since this process started.
    pub async fn plugin_stats(&self, tenant: &TenantId) -> Result<Vec<PluginStats>, Error> {
        let stats = &self.inner.stats;
        Ok(self
            .inner
            .directory
            .for_tenant(tenant)
            .iter()
            .filter_map(|k| {
                let id = k.state.id.clone()?;
                let (invocations, errors, [p50_us, p95_us, p99_us, max_us]) =
                    stats.get(&id).unwrap_or((0, 0, [0; 4]));
                Some(PluginStats {
                    installation_id: id,
                    slug: k.state.slug.as_ref()?.to_string(),
                    invocations,
                    errors,
                    p50_us,
                    p95_us,
                    p99_us,
                    max_us,
                })
            })
            .collect())
    }

    /// The installation's recent captured console output, oldest first.
    pub async fn recent_logs(
        &self,
        tenant: &TenantId,
        id: &InstallationId,
    ) -> Result<Vec<LogEntry>, Error> {
        self.inner.view(tenant, id)?;
        let redactor = self
            .inner
            .directory
            .get_for(tenant, id)
            .map(|k| super::runtime::redactor(&self.inner, &k))
            .unwrap_or_default();
        Ok(self
            .inner
            .runtimes
            .any(id)
            .map(|rt| rt.installation.recent_logs())
            .unwrap_or_default()
            .into_iter()
            .map(|mut l| {
                l.message = redactor.redact(&l.message);
                l
            })
            .collect())
    }
}

pub(crate) fn hook_run(k: &Known, result: Result<Outcome, Error>, elapsed: Duration) -> HookRun {
    let installation_id = k.state.id.clone().expect("installed");
    let slug = k.state.slug.clone().expect("installed");
    match result {
        Ok(o) => HookRun {
            installation_id,
            slug,
            outcome: Some(o.value),
            error: None,
            error_code: None,
            duration: o.duration,
            logs: o.logs,
        },
        Err(e) => HookRun {
            installation_id,
            slug,
            outcome: None,
            error: Some(e.to_string()),
            error_code: Some(e.code().to_owned()),
            duration: elapsed,
            logs: vec![],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_with_params() {
        assert_eq!(match_route("/ping", "/ping"), Some(BTreeMap::new()));
        assert_eq!(match_route("/ping", "/pong"), None);
        let p = match_route("/users/:id/posts/:post", "/users/42/posts/7").unwrap();
        assert_eq!(p["id"], "42");
        assert_eq!(p["post"], "7");
        assert_eq!(match_route("/users/:id", "/users/"), None);
        assert_eq!(match_route("/users/:id", "/users/1/2"), None);
    }
}
