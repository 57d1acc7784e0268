//! The per-invocation metrics of one installation's runtime, kept as
//! handles. Looking each series up per invocation (the `metrics::counter!`
//! macro) hashed its labels and allocated the plugin's name three times on
//! every plugin route request (docs/BENCHMARKS.md, plugin routes). A handle
//! is registered at its first use, so `/metrics` shows exactly the series
//! that were counted, as before.

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
