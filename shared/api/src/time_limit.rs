//! Every request has a time limit: a read stuck on a slow backend answers 504 saying so rather
//! than holding a connection forever. A sync submit is bounded by its job's own timeout
//! instead (its job runs on its own task and outlives an answer cut short); a streamed log or
//! result counts until its first byte, then streams for as long as the client reads.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use heimdall_domain::names;

use crate::api_error::ApiError;

/// How long a request other than a sync submit may take to be answered.
pub const REQUEST_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Answers 504 when `limit` passes before the handler answers; submits are exempt.
pub async fn limit_request_time(request: Request, next: Next) -> Response {
    let is_submit = request.method() == Method::POST && request.uri().path() == "/api/v1/job";
    if is_submit {
        return next.run(request).await;
    }
    answer_within(REQUEST_TIME_LIMIT, request, next).await
}

async fn answer_within(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            names::TIMEOUT,
            format!("the request was not answered within {limit:?}; retry it later"),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_request_past_its_limit_is_answered_504_in_the_error_shape() {
        let app = Router::new()
            .route("/slow", axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "late"
            }))
            .route("/fast", axum::routing::get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(|request: Request, next: Next| answer_within(Duration::from_millis(100), request, next)));
        let slow = app.clone().oneshot(Request::get("/slow").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(slow.status(), StatusCode::GATEWAY_TIMEOUT);
        let body = axum::body::to_bytes(slow.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "TIMEOUT");
        assert!(body["error"].as_str().unwrap().contains("100ms"), "{body}");
        let fast = app.oneshot(Request::get("/fast").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(fast.status(), StatusCode::OK);
    }
}
