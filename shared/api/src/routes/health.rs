use axum::Json;
use serde::Serialize;

/// The server is up and answering.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` when answered.
    pub status: String,
}

/// Liveness: answers when the server can serve requests.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, description = "The server is up", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok".to_owned() })
}

/// The platform's figures in Prometheus' text format (OpenMetrics): jobs submitted and finished
/// by command, cluster and status, durations, retries, plugin errors by type, jobs running in
/// this process. Needs an identity, as the catalog does (a scrape sends the user header or a
/// bearer token).
#[utoipa::path(
    get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "application/openmetrics-text"),
        (status = 401, description = "No identity (see the security schemes)", body = crate::api_error::ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn metrics(
    axum::extract::State(state): axum::extract::State<crate::app_state::AppState>,
    crate::identity::Authenticated(_caller): crate::identity::Authenticated,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let content_type = [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")];
    (content_type, state.service.render_metrics().await).into_response()
}
