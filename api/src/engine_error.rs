//! How the engine's errors answer over HTTP.

use extensor_actors::Error as E;
use extensor_js::JsError;
use poem::http::StatusCode;
use poem_openapi::payload::Json;

use crate::error::{ApiError, FieldError, Problem};

impl From<E> for ApiError {
    fn from(e: E) -> Self {
        let code = e.code();
        match e {
            E::NotFound { what, id } => ApiError::not_found(what, &id),
            E::Validation(problems) => ApiError::validation(
                format!(
                    "{} problem(s): {}",
                    problems.len(),
                    problems
                        .iter()
                        .take(5)
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                problems
                    .into_iter()
                    .map(|p| FieldError {
                        path: p.path,
                        message: p.message,
                    })
                    .collect(),
            ),
            E::Conflict {
                code: "precondition_failed",
                message,
            } => ApiError::precondition_failed(message),
            E::Conflict { code, message } => ApiError::conflict(code, message),
            E::Unauthenticated { .. } => ApiError::unauthorized(e.to_string()),
            E::Forbidden { .. } => ApiError::forbidden(e.to_string()),
            E::Core { source, .. } => source.into(),
            E::Backpressure { .. }
            | E::BacklogFull { .. }
            | E::Timeout { .. }
            | E::Stopped { .. }
            | E::Failed { .. }
            | E::NotOwner { .. }
            | E::Fenced { .. }
            | E::ShuttingDown => ApiError::unavailable(code, e.to_string()),
            E::Plugin { ref source, .. } => {
                let status = if matches!(source, JsError::Timeout { .. }) {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                };
                let p = Json(Problem::new(status, code, e.to_string()));
                if status == StatusCode::GATEWAY_TIMEOUT {
                    ApiError::GatewayTimeout(p)
                } else {
                    ApiError::BadGateway(p)
                }
            }
            E::Spawn { .. } | E::Platform { .. } => {
                tracing::error!(error = %e, code, "engine failure under a request");
                ApiError::internal(format!("{code}: the server failed; see its log"))
            }
        }
    }
}
