//! `GET /healthz`: liveness plus the one fact that proves the store answers,
//! its head position. Unauthenticated and cheap, for load balancers.

use std::sync::Arc;

use extensor_core::store::EventStore;
use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, handler};
use serde::Serialize;

#[derive(Serialize)]
struct Health {
    status: &'static str,
    store_head_position: Option<u64>,
    error: Option<String>,
}

#[handler]
pub async fn healthz(store: Data<&Arc<dyn EventStore>>) -> impl IntoResponse {
    match store.head_position().await {
        Ok(head) => Json(Health {
            status: "ok",
            store_head_position: Some(head),
            error: None,
        })
        .into_response(),
        Err(e) => {
            let body = Health {
                status: "unavailable",
                store_head_position: None,
                error: Some(e.to_string()),
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}
