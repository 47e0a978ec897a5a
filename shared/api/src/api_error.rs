use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use heimdall_domain::names;
use heimdall_service::ServiceError;
use serde::Serialize;

/// Every error answer has this shape: Heimdall's `error` message, plus a stable machine `code`,
/// plus the id of the object concerned when there is one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What is wrong and how to fix it.
    pub error: String,
    /// A stable machine-readable code, e.g. `NO_MATCHING_COMMAND`.
    pub code: String,
    /// The id of the object concerned, if any (e.g. the job recorded as FAILED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// An error on its way to becoming an answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), id: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, names::BAD_REQUEST, message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let status = match &error {
            ServiceError::BadRequest(_)
            | ServiceError::InvalidJobContext(_)
            | ServiceError::ModeNotAllowed(_)
            | ServiceError::NoMatch { .. } => StatusCode::BAD_REQUEST,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) | ServiceError::AlreadySubmitted(_) | ServiceError::IdempotencyKeyReused(_) => StatusCode::CONFLICT,
            ServiceError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ServiceError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let id = match &error {
            ServiceError::NoMatch { job_id, .. } | ServiceError::AlreadySubmitted(job_id) => Some(job_id.to_string()),
            _ => None,
        };
        Self { status, code: error.code(), message: error.to_string(), id }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Internal failures and backend outages say nothing of internals; a timeout's message
        // is ours and tells the client what to do.
        let message = if self.status.is_server_error() && self.code != names::TIMEOUT {
            // The cause stays in the logs; the client gets no internals.
            tracing::error!(status = self.status.as_u16(), code = self.code, error.message = %self.message, "request failed");
            match self.status {
                StatusCode::SERVICE_UNAVAILABLE => "a backend is unavailable; retry later".to_owned(),
                _ => "internal error; it has been logged".to_owned(),
            }
        } else {
            self.message
        };
        let object = self.id.clone().map(crate::audit::AuditObject);
        let body = ErrorBody { error: message, code: self.code.to_owned(), id: self.id };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response.extensions_mut().insert(crate::audit::AuditCode(self.code));
        if let Some(object) = object {
            response.extensions_mut().insert(object);
        }
        response
    }
}
