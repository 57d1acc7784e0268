//! The API's one error type: every failure is an `application/problem+json`
//! body (RFC 9457) with a stable machine-readable `code`, a human `detail`
//! and, for validation, the list of field errors with their paths.
//!
//! Handlers return `Result<_, ApiError>`; request parsing failures (bad JSON,
//! missing header, wrong parameter type) reach the same shape through
//! [`ApiError::from_parse_error`], and anything poem answers outside an
//! operation (unknown path, wrong method) through [`problem_catch_all`].
//! So no input ever produces a bare text error, and none produces a 500:
//! 500 is kept for the store failing underneath us.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// Error messages quote caller input, but never more than this much of it.
const QUOTED_INPUT_CHARS_MAX: usize = 200;

/// The media type of every error body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// One invalid field: where (`$.slug`, `manifest.json:$.jobs[0].schedule`,
/// `header:X-Tenant-Slug`) and why.
#[derive(Object, Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

/// An RFC 9457 problem document.
#[derive(Object, Clone, Debug)]
pub struct Problem {
    /// `urn:extensor:problem:<code>`.
    #[oai(rename = "type")]
    pub kind: String,
    /// A short summary of the status.
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code, e.g. `slug_taken`, `validation_failed`.
    pub code: String,
    /// What went wrong, naming the input that caused it.
    pub detail: String,
    /// For validation failures: every problem, each with its path.
    #[oai(skip_serializing_if_is_empty, default)]
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:extensor:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            code: code.to_owned(),
            detail: truncate(detail.into()),
            errors: Vec::new(),
        }
    }
}

fn truncate(mut s: String) -> String {
    if s.chars().count() > QUOTED_INPUT_CHARS_MAX * 4 {
        s = s.chars().take(QUOTED_INPUT_CHARS_MAX * 4).collect();
        s.push('…');
    }
    s
}

/// Every error the API answers with. Each variant is one status; the body
/// says which `code` within it.
#[derive(ApiResponse, Debug)]
#[oai(bad_request_handler = "ApiError::from_parse_error")]
pub enum ApiError {
    /// The request is malformed: unparseable body, bad parameter or header.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No valid credentials: missing, unknown, expired or revoked token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The token is valid but its role is too weak for this operation.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource in the caller's tenant (another tenant's ids answer
    /// this too, indistinguishably), or a feature switched off.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The request conflicts with the current state (slug taken, wrong state).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// `If-Match` names a revision that is not the current one: someone
    /// else changed it since you read it (`precondition_failed`).
    #[oai(status = 412, content_type = "application/problem+json")]
    PreconditionFailed(Json<Problem>),
    /// The body is larger than the limit for this operation.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body's media type is not one this operation accepts.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// The request is well-formed but invalid: every problem is listed.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// The tenant's rate limit for this kind of call is exhausted.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(
        Json<Problem>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// The store or the server failed underneath the request.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// A plugin's code failed (threw, hit a limit, had no handler).
    #[oai(status = 502, content_type = "application/problem+json")]
    BadGateway(Json<Problem>),
    /// Overloaded (an actor's queue is full) or shutting down: retry later.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
    /// A plugin ran past its deadline.
    #[oai(status = 504, content_type = "application/problem+json")]
    GatewayTimeout(Json<Problem>),
}

impl ApiError {
    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::BadRequest(Json(Problem::new(StatusCode::BAD_REQUEST, code, detail)))
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::Unauthorized(Json(Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            detail,
        )))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden(Json(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            detail,
        )))
    }

    /// `what` is the kind of thing (`plugin`), `id` the id the caller sent.
    pub fn not_found(what: &str, id: &str) -> Self {
        let id: String = id.chars().take(QUOTED_INPUT_CHARS_MAX).collect();
        Self::NotFound(Json(Problem::new(
            StatusCode::NOT_FOUND,
            &format!("{what}_not_found"),
            format!("no {what} `{id}` in this tenant"),
        )))
    }

    /// A whole capability switched off by a `FEATURE_*` setting.
    pub fn feature_disabled(switch: &str) -> Self {
        Self::NotFound(Json(Problem::new(
            StatusCode::NOT_FOUND,
            "feature_disabled",
            format!("this capability is switched off ({switch}=false)"),
        )))
    }

    pub fn conflict(code: &str, detail: impl Into<String>) -> Self {
        Self::Conflict(Json(Problem::new(StatusCode::CONFLICT, code, detail)))
    }

    /// An `If-Match` revision that is not the current one.
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::PreconditionFailed(Json(Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            detail,
        )))
    }

    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::PayloadTooLarge(Json(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            detail,
        )))
    }

    /// A validation failure listing every problem.
    pub fn validation(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        );
        p.errors = errors;
        Self::Unprocessable(Json(p))
    }

    /// One invalid field.
    pub fn invalid_field(path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::validation(
            format!("{path}: {message}"),
            vec![FieldError {
                path: path.to_owned(),
                message,
            }],
        )
    }

    pub fn rate_limited(class: &str, retry_after_s: u64) -> Self {
        Self::TooManyRequests(
            Json(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("the tenant's {class} rate limit is exhausted; retry in {retry_after_s} s"),
            )),
            retry_after_s,
        )
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::Internal(Json(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            detail,
        )))
    }

    pub fn unavailable(code: &str, detail: impl Into<String>) -> Self {
        Self::Unavailable(Json(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            detail,
        )))
    }

    /// The problem document inside, whatever the variant.
    pub fn problem(&self) -> &Problem {
        match self {
            Self::BadRequest(p)
            | Self::Unauthorized(p)
            | Self::Forbidden(p)
            | Self::NotFound(p)
            | Self::Conflict(p)
            | Self::PreconditionFailed(p)
            | Self::PayloadTooLarge(p)
            | Self::UnsupportedMediaType(p)
            | Self::Unprocessable(p)
            | Self::TooManyRequests(p, _)
            | Self::Internal(p)
            | Self::BadGateway(p)
            | Self::Unavailable(p)
            | Self::GatewayTimeout(p) => &p.0,
        }
    }

    /// poem-openapi calls this when the request cannot be parsed into the
    /// operation's parameters (body, query, path, headers). A value that
    /// parses but breaks a constraint the document declares (a validator:
    /// range, length, pattern) is 422 `validation_failed` naming it, like
    /// every other invalid value; the rest is 400.
    pub fn from_parse_error(err: poem::Error) -> Self {
        if let Some(invalid) = Self::failed_validator(&err) {
            return invalid;
        }
        let status = err.status();
        let detail = err.to_string();
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => Self::too_large(detail),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(Json(Problem::new(
                status,
                "unsupported_media_type",
                detail,
            ))),
            StatusCode::UNAUTHORIZED => Self::unauthorized(detail),
            _ => Self::bad_request("invalid_request", detail),
        }
    }

    /// A validator's refusal, as poem-openapi words it: a parameter's
    /// (`verification failed. maximum(1000, …)`) or a body field's
    /// (``failed to parse "T": field `name` verification failed. …``).
    pub(crate) fn failed_validator(err: &poem::Error) -> Option<Self> {
        use poem_openapi::error::{ParseParamError, ParseRequestPayloadError};
        const FAILED: &str = "verification failed. ";
        if let Some(p) = err.downcast_ref::<ParseParamError>() {
            let rule = p.reason.split_once(FAILED)?.1;
            return Some(Self::invalid_field(p.name, format!("must satisfy {rule}")));
        }
        let reason = &err.downcast_ref::<ParseRequestPayloadError>()?.reason;
        let (before, rule) = reason.split_once(FAILED)?;
        let field = before.rsplit_once("field `")?.1.split('`').next()?;
        Some(Self::invalid_field(
            &format!("$.{field}"),
            format!("must satisfy {rule}"),
        ))
    }

    /// For code that must hand poem a `poem::Error` (security checkers,
    /// plain poem endpoints).
    pub fn into_poem(self) -> poem::Error {
        poem::Error::from_response(self.into_response())
    }
}

impl From<extensor_core::Error> for ApiError {
    fn from(e: extensor_core::Error) -> Self {
        use extensor_core::Error as E;
        let code = e.code();
        match &e {
            E::InvalidId { .. } | E::InvalidValue { .. } | E::InvalidAppend { .. } => {
                Self::validation(e.to_string(), Vec::new()).with_code(code)
            }
            E::InvalidManifest(problems) | E::InvalidWebhook(problems) => Self::validation(
                e.to_string(),
                problems
                    .iter()
                    .map(|p| FieldError {
                        path: p.path.clone(),
                        message: p.message.clone(),
                    })
                    .collect(),
            )
            .with_code(code),
            E::Domain(d) if d.code.ends_with("_not_found") => Self::NotFound(Json(Problem::new(
                StatusCode::NOT_FOUND,
                d.code,
                d.message.clone(),
            ))),
            E::Domain(d) if d.code == "precondition_failed" => {
                Self::precondition_failed(d.message.clone())
            }
            E::Domain(d) if d.code == "invalid_field" => {
                Self::validation(d.message.clone(), Vec::new())
            }
            E::Domain(_) | E::Conflict { .. } | E::DuplicateEventId { .. } => {
                Self::conflict(code, e.to_string())
            }
            E::StoreFull { .. } | E::StoreClosed => Self::unavailable(code, e.to_string()),
            _ => {
                tracing::error!(error = %e, code, "store failure under a request");
                Self::internal(format!("{code}: the server's store failed; see its log"))
            }
        }
    }
}

impl ApiError {
    /// Replaces the problem's code (keeping the status).
    pub fn with_code(mut self, code: &str) -> Self {
        let p = match &mut self {
            Self::BadRequest(p)
            | Self::Unauthorized(p)
            | Self::Forbidden(p)
            | Self::NotFound(p)
            | Self::Conflict(p)
            | Self::PreconditionFailed(p)
            | Self::PayloadTooLarge(p)
            | Self::UnsupportedMediaType(p)
            | Self::Unprocessable(p)
            | Self::TooManyRequests(p, _)
            | Self::Internal(p)
            | Self::BadGateway(p)
            | Self::Unavailable(p)
            | Self::GatewayTimeout(p) => &mut p.0,
        };
        p.code = code.to_owned();
        p.kind = format!("urn:extensor:problem:{code}");
        self
    }
}

/// Turns whatever poem answers outside an operation (no such path, wrong
/// method, a body limit) into a problem document, so that every error on
/// the wire has one shape. Responses that already are problems pass through.
pub async fn problem_catch_all(err: poem::Error) -> Response {
    // Parameters refused by their validator arrive here, not through the
    // operation's bad-request handler.
    if let Some(invalid) = ApiError::failed_validator(&err) {
        return invalid.into_response();
    }
    let resp = err.into_response();
    let is_problem = resp
        .content_type()
        .is_some_and(|c| c.starts_with(PROBLEM_CONTENT_TYPE));
    if is_problem || resp.status().is_success() {
        return resp;
    }
    let status = resp.status();
    let text = resp.into_body().into_string().await.unwrap_or_default();
    let code = match status {
        StatusCode::NOT_FOUND => "route_not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_client_error() => "invalid_request",
        _ => "internal",
    };
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    problem_response(Problem::new(status, code, detail))
}

/// A problem document as a plain poem response.
pub fn problem_response(problem: Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({
        "type": problem.kind,
        "title": problem.title,
        "status": problem.status,
        "code": problem.code,
        "detail": problem.detail,
        "errors": problem.errors.iter().map(|e| serde_json::json!({"path": e.path, "message": e.message})).collect::<Vec<_>>(),
    });
    Response::builder()
        .status(status)
        .content_type(PROBLEM_CONTENT_TYPE)
        .body(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_map_to_stable_codes_and_statuses() {
        let e: ApiError = extensor_core::Error::InvalidManifest(vec![
            extensor_core::FieldProblem::new("$.slug", "bad"),
            extensor_core::FieldProblem::new("$.version", "not semver"),
        ])
        .into();
        let p = e.problem();
        assert_eq!((p.status, p.code.as_str()), (422, "invalid_manifest"));
        assert_eq!(p.errors.len(), 2);
        assert_eq!(p.errors[1].path, "$.version");
        let e: ApiError = extensor_core::Error::StoreClosed.into();
        assert_eq!(e.problem().status, 503);
        let long = "x".repeat(100_000);
        assert!(ApiError::not_found("plugin", &long).problem().detail.len() < 1_000);
    }
}

#[cfg(test)]
mod validator_tests {
    use super::*;

    #[test]
    fn a_failed_validator_is_a_validation_failure_naming_the_field() {
        let e: poem::Error = poem_openapi::error::ParseParamError {
            name: "limit",
            reason: "verification failed. maximum(1000, exclusive: false)".into(),
        }
        .into();
        let p = ApiError::from_parse_error(e);
        let p = p.problem();
        assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
        assert_eq!(p.errors[0].path, "limit");
    }
}
