//! What a bundle registers through `extensor:sdk`, and validation of a
//! bundle against its manifest.

use std::collections::BTreeSet;
use std::sync::Arc;

use extensor_core::manifest::{PluginManifest, Routes, normalize_cron};
use serde::{Deserialize, Serialize};

use crate::bundle::{Bundle, MANIFEST_FILE, Sources, compile};
use crate::error::{JsError, Problem};

/// The SDK registration functions, one kind each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandlerKind {
    Hook,
    Route,
    Job,
    LlmFilter,
    GeneratorHook,
}

impl HandlerKind {
    pub(crate) fn parse(s: &str) -> Option<HandlerKind> {
        Some(match s {
            "hook" => HandlerKind::Hook,
            "route" => HandlerKind::Route,
            "job" => HandlerKind::Job,
            "llm_filter" => HandlerKind::LlmFilter,
            "generator_hook" => HandlerKind::GeneratorHook,
            _ => return None,
        })
    }

    fn sdk_name(self) -> &'static str {
        match self {
            HandlerKind::Hook => "hook",
            HandlerKind::Route => "route",
            HandlerKind::Job => "job",
            HandlerKind::LlmFilter => "llmFilter",
            HandlerKind::GeneratorHook => "generatorHook",
        }
    }
}

/// One registration: `hook("order.created", fn)` is `{Hook, "order.created"}`;
/// routes are keyed `"GET /path"`; jobs carry their cron expression.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub kind: HandlerKind,
    pub key: String,
    pub schedule: Option<String>,
}

/// What started an invocation; selects the handler.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    Hook {
        #[serde(rename = "eventType")]
        event_type: String,
    },
    Route {
        method: String,
        path: String,
    },
    Job {
        name: String,
    },
    LlmFilter {
        name: String,
    },
    GeneratorHook {
        name: String,
    },
}

impl Trigger {
    fn matches(&self, r: &Registration) -> bool {
        match (self, r.kind) {
            (Trigger::Hook { event_type }, HandlerKind::Hook) => event_matches(event_type, &r.key),
            (Trigger::Route { method, path }, HandlerKind::Route) => {
                r.key == format!("{} {path}", method.to_ascii_uppercase())
            }
            (Trigger::Job { name }, HandlerKind::Job)
            | (Trigger::LlmFilter { name }, HandlerKind::LlmFilter)
            | (Trigger::GeneratorHook { name }, HandlerKind::GeneratorHook) => &r.key == name,
            _ => false,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Trigger::Hook { event_type } => format!("hook `{event_type}`"),
            Trigger::Route { method, path } => format!("route `{method} {path}`"),
            Trigger::Job { name } => format!("job `{name}`"),
            Trigger::LlmFilter { name } => format!("llm filter `{name}`"),
            Trigger::GeneratorHook { name } => format!("generator hook `{name}`"),
        }
    }
}

/// The handler for `trigger`: an exact registration wins over a pattern.
pub(crate) fn find_handler(regs: &[Registration], trigger: &Trigger) -> Option<usize> {
    let exact = |r: &Registration| match trigger {
        Trigger::Hook { event_type } => &r.key == event_type,
        _ => true,
    };
    regs.iter()
        .position(|r| trigger.matches(r) && exact(r))
        .or_else(|| regs.iter().position(|r| trigger.matches(r)))
}

/// `pattern` is an event type or a prefix pattern ending in `.*`.
pub fn event_matches(event: &str, pattern: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(prefix) => {
            event.len() > prefix.len() + 1
                && event.starts_with(prefix)
                && event.as_bytes()[prefix.len()] == b'.'
        }
        None => pattern == "*" || event == pattern,
    }
}

/// A bundle that passed validation: manifest, stripped sources and the
/// handlers its evaluation registered. Shared by every installation of it.
#[derive(Debug)]
pub struct ValidatedPlugin {
    pub manifest: PluginManifest,
    pub registrations: Vec<Registration>,
    pub(crate) sources: Arc<Sources>,
}

/// Manifest and sources, before the evaluation step.
pub(crate) fn prepare(bundle: &Bundle) -> Result<(PluginManifest, Sources), Vec<Problem>> {
    let mut problems = Vec::new();
    let manifest = match bundle.file(MANIFEST_FILE) {
        None => {
            problems.push(Problem::new(
                MANIFEST_FILE,
                "the bundle has no manifest.json at its root",
            ));
            None
        }
        Some(bytes) => match PluginManifest::parse(bytes) {
            Ok(m) => Some(m),
            Err(extensor_core::Error::InvalidManifest(mut p)) => {
                problems.append(&mut p);
                None
            }
            Err(e) => {
                problems.push(Problem::new(MANIFEST_FILE, e.to_string()));
                None
            }
        },
    };
    let sources = compile(bundle)
        .map_err(|mut p| problems.append(&mut p))
        .ok();
    match (manifest, sources) {
        (Some(m), Some(s)) if problems.is_empty() => {
            if s.modules.contains_key(&m.entry) {
                Ok((m, s))
            } else {
                Err(vec![Problem::new(
                    "$.entry",
                    format!("`{}` is not a file in the bundle", m.entry),
                )])
            }
        }
        _ => Err(problems),
    }
}

/// Turns a failed evaluation into a located problem.
pub(crate) fn load_problem(entry: &str, e: &JsError) -> Vec<Problem> {
    match e {
        JsError::InvalidBundle(p) => p.clone(),
        JsError::Thrown { message, stack } => vec![Problem::new(
            entry.to_owned(),
            format!("evaluating the bundle threw {message}\n{stack}"),
        )],
        other => vec![Problem::new(
            entry.to_owned(),
            format!("evaluating the bundle failed: {other}"),
        )],
    }
}

/// Every mismatch between what the code registered and what the manifest declares.
pub(crate) fn check_registrations(m: &PluginManifest, regs: &[Registration]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for r in regs {
        let at = m.entry.clone();
        if !seen.insert((r.kind, r.key.clone())) {
            problems.push(Problem::new(
                at.clone(),
                format!("{}(`{}`) is registered twice", r.kind.sdk_name(), r.key),
            ));
        }
        if let Some(why) = undeclared(m, r) {
            problems.push(Problem::new(at, why));
        }
    }
    let has = |kind: HandlerKind, f: &dyn Fn(&Registration) -> bool| {
        regs.iter().any(|r| r.kind == kind && f(r))
    };
    for (i, e) in m.events.iter().enumerate() {
        if !has(HandlerKind::Hook, &|r| {
            event_matches(&r.key, e) || r.key == *e
        }) {
            problems.push(Problem::new(
                format!("$.events[{i}]"),
                format!("`{e}` is declared but no hook() handles it"),
            ));
        }
    }
    for (i, j) in m.jobs.iter().enumerate() {
        if !has(HandlerKind::Job, &|r| r.key == j.name) {
            problems.push(Problem::new(
                format!("$.jobs[{i}]"),
                format!("job `{}` is declared but no job() registers it", j.name),
            ));
        }
    }
    if let Routes::Declared(routes) = &m.routes {
        for (i, d) in routes.iter().enumerate() {
            let key = format!("{} {}", d.method, d.path);
            if !has(HandlerKind::Route, &|r| r.key == key) {
                problems.push(Problem::new(
                    format!("$.routes[{i}]"),
                    format!("route `{key}` is declared but no route() registers it"),
                ));
            }
        }
    }
    for (field, kind, names) in [
        ("llm_filters", HandlerKind::LlmFilter, &m.llm_filters),
        (
            "generator_hooks",
            HandlerKind::GeneratorHook,
            &m.generator_hooks,
        ),
    ] {
        for (i, n) in names.iter().enumerate() {
            if !has(kind, &|r| &r.key == n) {
                problems.push(Problem::new(
                    format!("$.{field}[{i}]"),
                    format!(
                        "`{n}` is declared but no {}() registers it",
                        kind.sdk_name()
                    ),
                ));
            }
        }
    }
    problems
}

/// Why a registration is not covered by the manifest, if it is not.
fn undeclared(m: &PluginManifest, r: &Registration) -> Option<String> {
    let key = &r.key;
    match r.kind {
        HandlerKind::Hook => {
            (!m.events.iter().any(|e| event_matches(key, e) || e == key)).then(|| {
                format!("hook(`{key}`) handles an event not declared in the manifest's events")
            })
        }
        HandlerKind::Route => match &m.routes {
            Routes::None => Some(format!(
                "route(`{key}`) but the manifest declares no routes"
            )),
            Routes::Any => None,
            Routes::Declared(list) => (!list
                .iter()
                .any(|d| format!("{} {}", d.method, d.path) == *key))
            .then(|| format!("route(`{key}`) is not declared in the manifest's routes")),
        },
        HandlerKind::Job => {
            let Some(decl) = m.jobs.iter().find(|j| &j.name == key) else {
                return Some(format!(
                    "job(`{key}`) is not declared in the manifest's jobs"
                ));
            };
            let cron = r.schedule.as_deref().unwrap_or_default();
            match normalize_cron(cron) {
                Ok(n) if n == decl.schedule => None,
                Ok(_) => Some(format!(
                    "job(`{key}`) uses schedule `{cron}` but the manifest declares `{}`",
                    decl.schedule
                )),
                Err(e) => Some(format!("job(`{key}`): {e}")),
            }
        }
        HandlerKind::LlmFilter => (!m.llm_filters.contains(key))
            .then(|| format!("llmFilter(`{key}`) is not declared in the manifest's llm_filters")),
        HandlerKind::GeneratorHook => (!m.generator_hooks.contains(key)).then(|| {
            format!("generatorHook(`{key}`) is not declared in the manifest's generator_hooks")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_patterns() {
        assert!(event_matches("auth.user.created", "auth.user.created"));
        assert!(event_matches("auth.user.created", "auth.*"));
        assert!(!event_matches("authx.user", "auth.*"));
        assert!(!event_matches("auth", "auth.*"));
        assert!(event_matches("anything", "*"));
    }

    #[test]
    fn exact_hooks_win_over_patterns() {
        let r = |k: &str| Registration {
            kind: HandlerKind::Hook,
            key: k.into(),
            schedule: None,
        };
        let regs = [r("order.*"), r("order.created")];
        let t = Trigger::Hook {
            event_type: "order.created".into(),
        };
        assert_eq!(find_handler(&regs, &t), Some(1));
        let t = Trigger::Hook {
            event_type: "order.paid".into(),
        };
        assert_eq!(find_handler(&regs, &t), Some(0));
        let t = Trigger::Hook {
            event_type: "user.paid".into(),
        };
        assert_eq!(find_handler(&regs, &t), None);
    }
}
