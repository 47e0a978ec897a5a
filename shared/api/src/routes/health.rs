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
