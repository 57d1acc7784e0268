//! Running plugin code on demand: `POST /api/plugins/test-event` (the
//! matching hooks on a synthetic event, each outcome reported),
//! `POST /api/filters/{kind}/apply` (the `llmFilter(kind)` chain) and
//! `POST /api/generator-hooks/{kind}/run` (the `generatorHook(kind)` chain).

use extensor_actors::engine::{ChainFailure, ChainResult, HookRun, StepStatus};
use extensor_core::role::Role;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use serde_json::Value;

use crate::auth::BearerAuth;
use crate::error::ApiError;
use crate::plugins::{LogLine, admit};
use crate::state::State;
use crate::tags::ApiTags;
use crate::types::Text;

#[derive(Object)]
pub struct TestEvent {
    /// An event type, as for `POST /api/events`.
    #[oai(validator(
        max_length = 128,
        pattern = r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$"
    ))]
    pub event_type: Text,
    #[oai(default)]
    pub event_data: Value,
}

#[derive(Object)]
pub struct HookRunView {
    pub plugin_id: String,
    pub slug: String,
    /// What the hook returned, when it succeeded.
    pub outcome: Option<Value>,
    pub error: Option<String>,
    /// `plugin_timeout`, `plugin_failed`, … when it failed.
    pub error_code: Option<String>,
    pub duration_ms: f64,
    pub logs: Vec<LogLine>,
}

impl From<HookRun> for HookRunView {
    fn from(r: HookRun) -> Self {
        Self {
            plugin_id: r.installation_id.to_string(),
            slug: r.slug.to_string(),
            outcome: r.outcome,
            error: r.error,
            error_code: r.error_code,
            duration_ms: r.duration.as_secs_f64() * 1e3,
            logs: r.logs.into_iter().map(log_line).collect(),
        }
    }
}

pub fn log_line(l: extensor_js::LogEntry) -> LogLine {
    LogLine {
        level: serde_json::to_value(l.level)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "log".into()),
        time: l.time,
        message: l.message,
    }
}

#[derive(Object)]
pub struct TestEventResult {
    pub runs: Vec<HookRunView>,
}

/// What a chain does when a step fails or hits a limit.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[oai(rename_all = "snake_case")]
pub enum OnFailure {
    /// Skip the step; the next gets the previous output.
    #[default]
    Skip,
    /// Stop; the result is the value before the failed step.
    Abort,
}

#[derive(Object)]
pub struct ApplyFilters {
    /// The value the chain filters (absent: `null`).
    #[oai(default)]
    pub input: Value,
    #[oai(default)]
    pub on_failure: OnFailure,
}

#[derive(Object)]
pub struct RunGeneratorHooks {
    /// The state the hooks build on (absent: `null`).
    #[oai(default)]
    pub state: Value,
    #[oai(default)]
    pub on_failure: OnFailure,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum StepStatusView {
    Ok,
    Skipped,
    Aborted,
}

#[derive(Object)]
pub struct ChainStepView {
    pub plugin_id: String,
    pub slug: String,
    pub status: StepStatusView,
    pub duration_ms: f64,
    pub error: Option<String>,
    pub error_code: Option<String>,
    pub logs: Vec<LogLine>,
}

#[derive(Object)]
pub struct ChainResultView {
    /// The final value (the last successful step's output).
    pub value: Value,
    /// Whether a failing step stopped the chain.
    pub aborted: bool,
    pub steps: Vec<ChainStepView>,
}

impl From<ChainResult> for ChainResultView {
    fn from(c: ChainResult) -> Self {
        Self {
            value: c.value,
            aborted: c.aborted,
            steps: c
                .steps
                .into_iter()
                .map(|s| ChainStepView {
                    plugin_id: s.installation_id.to_string(),
                    slug: s.slug.to_string(),
                    status: match s.status {
                        StepStatus::Ok => StepStatusView::Ok,
                        StepStatus::Skipped => StepStatusView::Skipped,
                        StepStatus::Aborted => StepStatusView::Aborted,
                    },
                    duration_ms: s.duration.as_secs_f64() * 1e3,
                    error: s.error,
                    error_code: s.error_code,
                    logs: s.logs.into_iter().map(log_line).collect(),
                })
                .collect(),
        }
    }
}

fn failure(f: OnFailure) -> ChainFailure {
    match f {
        OnFailure::Skip => ChainFailure::Skip,
        OnFailure::Abort => ChainFailure::Abort,
    }
}

pub struct FiltersApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Filters")]
impl FiltersApi {
    /// Run the matching hooks on a synthetic event now
    #[oai(
        path = "/plugins/test-event",
        method = "post",
        operation_id = "testEvent"
    )]
    async fn test_event(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        body: Json<TestEvent>,
    ) -> Result<Json<TestEventResult>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Developer)?;
        let TestEvent {
            event_type,
            event_data,
        } = body.0;
        let runs = state
            .engine
            .test_event(&ctx.tenant, &event_type, event_data)
            .await?;
        Ok(Json(TestEventResult {
            runs: runs.into_iter().map(Into::into).collect(),
        }))
    }

    /// Run the tenant's filter chain of this kind over an input
    #[oai(
        path = "/filters/:kind/apply",
        method = "post",
        operation_id = "applyFilters"
    )]
    async fn apply(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The filter kind plugins registered with `llmFilter(kind)`.
        /// 1 to 64 letters, digits, `_`, `-` or `.`.
        #[oai(validator(max_length = 64, pattern = r"^[A-Za-z0-9_.\-]+$"))]
        kind: Path<String>,
        body: Json<ApplyFilters>,
    ) -> Result<Json<ChainResultView>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Developer)?;
        let body = body.0;
        let result = state
            .engine
            .apply_filters(&ctx.tenant, &kind, body.input, failure(body.on_failure))
            .await?;
        Ok(Json(result.into()))
    }

    /// Run the tenant's generator hooks of this kind over a builder state
    #[oai(
        path = "/generator-hooks/:kind/run",
        method = "post",
        operation_id = "runGeneratorHooks"
    )]
    async fn run_generator_hooks(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The hook kind plugins registered with `generatorHook(kind)`.
        /// 1 to 64 letters, digits, `_`, `-` or `.`.
        #[oai(validator(max_length = 64, pattern = r"^[A-Za-z0-9_.\-]+$"))]
        kind: Path<String>,
        body: Json<RunGeneratorHooks>,
    ) -> Result<Json<ChainResultView>, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Developer)?;
        let body = body.0;
        let result = state
            .engine
            .run_generator_hooks(&ctx.tenant, &kind, body.state, failure(body.on_failure))
            .await?;
        Ok(Json(result.into()))
    }
}
