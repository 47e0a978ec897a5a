//! Extractors that answer bad input in the API's error shape, with what to fix.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::Json;
use heimdall_domain::{JobId, names};
use serde::de::DeserializeOwned;

use crate::api_error::ApiError;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body. Wrong content type: 415; not JSON: 400 `INVALID_JSON`; wrong shape: 400
/// naming the field; too large: 413.
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(AppJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            names::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with the header `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(error) => ApiError::new(
            StatusCode::BAD_REQUEST,
            names::INVALID_JSON,
            format!("the body is not valid JSON: {}", inner_message(&error.body_text())),
        ),
        JsonRejection::JsonDataError(error) => {
            ApiError::bad_request(format!("the body does not fit: {}", inner_message(&error.body_text())))
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            names::PAYLOAD_TOO_LARGE,
            format!("the body is larger than the limit of {MAX_BODY_BYTES} bytes"),
        ),
        other => ApiError::bad_request(format!("the body could not be read: {}", other.body_text())),
    }
}

/// axum prefixes serde's message with a generic sentence; the client needs serde's part.
fn inner_message(text: &str) -> &str {
    text.split_once(": ").map(|(_, rest)| rest).unwrap_or(text)
}

/// The items of a comma-separated query parameter, trimmed, empty ones dropped (Heimdall's
/// lists: `status=RUNNING,ACCEPTED`).
pub fn comma_separated(value: Option<&str>) -> impl Iterator<Item = &str> {
    value.unwrap_or_default().split(',').map(str::trim).filter(|item| !item.is_empty())
}

/// Query parameters; unknown ones are ignored (clients add cache-busters), malformed known
/// ones are a 400 naming them.
pub struct AppQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(AppQuery(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("the query string does not fit: {}", inner_message(&rejection.body_text())))
}

/// The `{id}` of a job route.
pub struct JobIdPath(pub JobId);

impl<S: Send + Sync> FromRequestParts<S> for JobIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
        text.parse::<JobId>().map(JobIdPath).map_err(|error| ApiError::bad_request(error.to_string()))
    }
}
