//! The per-invocation metrics of one installation's runtime, kept as
//! handles. Looking each series up per invocation (the `metrics::counter!`
//! macro) hashed its labels and allocated the plugin's name three times on
//! every plugin route request (docs/BENCHMARKS.md, plugin routes). A handle
//! is registered at its first use, so `/metrics` shows exactly the series
//! that were counted, as before, on the recorder installed then (the server
//! installs its recorder before the engine starts).

use std::sync::OnceLock;

use extensor_js::Trigger;
use metrics::{Counter, Histogram};

/// The `trigger` label values, in [`Kind`] order.
const TRIGGER_KINDS: [&str; 5] = ["hook", "route", "job", "llm_filter", "generator_hook"];

/// A trigger's kind: what the `trigger` label says.
#[derive(Clone, Copy)]
pub(crate) struct Kind(usize);

impl Kind {
    pub fn of(t: &Trigger) -> Kind {
        Kind(match t {
            Trigger::Hook { .. } => 0,
            Trigger::Route { .. } => 1,
            Trigger::Job { .. } => 2,
            Trigger::LlmFilter { .. } => 3,
            Trigger::GeneratorHook { .. } => 4,
        })
    }

    pub fn label(self) -> &'static str {
        TRIGGER_KINDS[self.0]
    }
}

/// How an invocation ended, as the `outcome` label says it.
#[derive(Clone, Copy)]
pub(crate) enum Outcome {
    Ok,
    Error,
}

/// The handles of one (plugin, trigger) pair, each registered at first use.
#[derive(Default)]
struct Series {
    ok: OnceLock<Counter>,
    error: OnceLock<Counter>,
    seconds: OnceLock<Histogram>,
}

/// `extensor_plugin_invocations_total` (by outcome) and
/// `extensor_plugin_invocation_seconds` for every trigger kind of one
/// plugin label. The error counter by error kind stays a lookup: errors
/// are the rare path.
pub(crate) struct InvocationMetrics {
    plugin: String,
    series: [Series; TRIGGER_KINDS.len()],
}

impl InvocationMetrics {
    /// `plugin` must already be a bounded label (`metric_labels::plugin`).
    pub fn new(plugin: String) -> InvocationMetrics {
        InvocationMetrics {
            plugin,
            series: Default::default(),
        }
    }

    /// The bounded `plugin` label these series carry.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Counts one invocation and records its duration.
    pub fn record(&self, kind: Kind, outcome: Outcome, seconds: f64) {
        let s = &self.series[kind.0];
        let trigger = kind.label();
        let counter = |slot: &OnceLock<Counter>, outcome: &'static str| {
            slot.get_or_init(|| {
                metrics::counter!("extensor_plugin_invocations_total",
                    "plugin" => self.plugin.clone(), "trigger" => trigger, "outcome" => outcome)
            })
            .increment(1);
        };
        match outcome {
            Outcome::Ok => counter(&s.ok, "ok"),
            Outcome::Error => counter(&s.error, "error"),
        }
        s.seconds
            .get_or_init(|| {
                metrics::histogram!("extensor_plugin_invocation_seconds",
                    "plugin" => self.plugin.clone(), "trigger" => trigger)
            })
            .record(seconds);
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    /// Each series exists once it was counted, and only then: a route's
    /// handles count routes, a hook's error counts hooks, and nothing is
    /// registered for the kinds and outcomes that never happened.
    #[test]
    fn handles_register_only_the_series_that_were_counted() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let route = Trigger::Route {
            method: "GET".into(),
            path: "/x".into(),
        };
        let hook = Trigger::Hook {
            event_type: "a.b".into(),
        };
        metrics::with_local_recorder(&recorder, || {
            let m = InvocationMetrics::new("shop".into());
            m.record(Kind::of(&route), Outcome::Ok, 0.001);
            m.record(Kind::of(&route), Outcome::Ok, 0.002);
            m.record(Kind::of(&hook), Outcome::Error, 0.003);
        });
        let mut seen: Vec<(String, Vec<String>, String)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let (_, key) = key.into_parts();
                let labels = key.labels().map(|l| format!("{}={}", l.key(), l.value()));
                let value = match value {
                    DebugValue::Counter(n) => format!("count {n}"),
                    DebugValue::Histogram(v) => format!("samples {}", v.len()),
                    DebugValue::Gauge(_) => "gauge".into(),
                };
                (key.name().to_owned(), labels.collect(), value)
            })
            .collect();
        seen.sort();
        let series = |name: &str, labels: &[&str], value: &str| {
            (
                name.to_owned(),
                labels.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>(),
                value.to_owned(),
            )
        };
        assert_eq!(
            seen,
            vec![
                series(
                    "extensor_plugin_invocation_seconds",
                    &["plugin=shop", "trigger=hook"],
                    "samples 1"
                ),
                series(
                    "extensor_plugin_invocation_seconds",
                    &["plugin=shop", "trigger=route"],
                    "samples 2"
                ),
                series(
                    "extensor_plugin_invocations_total",
                    &["plugin=shop", "trigger=hook", "outcome=error"],
                    "count 1"
                ),
                series(
                    "extensor_plugin_invocations_total",
                    &["plugin=shop", "trigger=route", "outcome=ok"],
                    "count 2"
                ),
            ]
        );
    }
}
