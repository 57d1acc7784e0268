//! `GET /metrics`: every metric recorded through the `metrics` facade in
//! this process (HTTP, engine, webhooks, scheduler, store), in Prometheus
//! text; the gauges are set from live state right before rendering.

use poem_openapi::payload::PlainText;
use poem_openapi::{ApiResponse, OpenApi};

use crate::state::State;
use crate::tags::ApiTags;

#[derive(ApiResponse)]
pub enum MetricsResponse {
    /// Prometheus text exposition format 0.0.4.
    #[oai(status = 200, content_type = "text/plain; version=0.0.4")]
    Ok(PlainText<String>),
    /// The exporter is not installed in this process.
    #[oai(status = 503)]
    Unavailable(PlainText<String>),
}

pub struct MetricsApi;

#[OpenApi(tag = "ApiTags::Status")]
impl MetricsApi {
    /// Prometheus metrics
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, state: State<'_>) -> MetricsResponse {
        match crate::observe::prometheus() {
            Some(h) => {
                state.engine.set_gauges();
                h.run_upkeep();
                MetricsResponse::Ok(PlainText(h.render()))
            }
            None => MetricsResponse::Unavailable(PlainText(
                "another metrics recorder is installed in this process".into(),
            )),
        }
    }
}
