//! `GET /healthz`: liveness plus the one fact that proves the store answers,
//! its head position. Unauthenticated and cheap, for load balancers.

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::state::State;
use crate::tags::ApiTags;

#[derive(Object)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
    pub store_head_position: Option<u64>,
    pub error: Option<String>,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The server and its store answer.
    #[oai(status = 200)]
    Ok(Json<Health>),
    /// The store does not answer.
    #[oai(status = 503)]
    Unavailable(Json<Health>),
}

pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Status")]
impl HealthApi {
    /// Liveness and the store's head position
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self, state: State<'_>) -> HealthResponse {
        match state.store.head_position().await {
            Ok(head) => HealthResponse::Ok(Json(Health {
                status: "ok".into(),
                store_head_position: Some(head),
                error: None,
            })),
            Err(e) => HealthResponse::Unavailable(Json(Health {
                status: "unavailable".into(),
                store_head_position: None,
                error: Some(e.to_string()),
            })),
        }
    }
}
