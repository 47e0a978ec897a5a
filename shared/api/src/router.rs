use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use heimdall_domain::names;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDocument;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api_error::ApiError;
use crate::audit::audit_state_changes;
use crate::time_limit::limit_request_time;
use crate::app_state::AppState;
use crate::extract::MAX_BODY_BYTES;
use crate::identity::host_check::refuse_foreign_hosts;
use crate::routes::{catalog, health, jobs, ui};

pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(title = "Heimdall", description = "Job orchestration: submit jobs that run on commands and clusters picked by tags."),
    modifiers(&UserHeader),
    tags(
        (name = "jobs", description = "Submit, follow, read and cancel jobs"),
        (name = "catalog", description = "The commands and clusters jobs run on"),
        (name = "health", description = "Liveness"),
    )
)]
struct ApiDoc;

struct UserHeader;

impl Modify for UserHeader {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "user_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Heimdall-User"))),
        );
        components.add_security_scheme(
            "bearer_jwt",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(jobs::submit_job))
        .routes(routes!(jobs::route_job))
        .routes(routes!(jobs::list_job_statuses))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::get_job_status))
        .routes(routes!(jobs::get_job_stdout))
        .routes(routes!(jobs::get_job_stderr))
        .routes(routes!(jobs::get_job_result))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(catalog::list_commands))
        .routes(routes!(catalog::list_clusters))
        .routes(routes!(catalog::list_command_statuses))
        .routes(routes!(catalog::list_cluster_statuses))
        .routes(routes!(catalog::get_command, catalog::put_command))
        .routes(routes!(catalog::get_cluster, catalog::put_cluster))
        .routes(routes!(catalog::get_command_status, catalog::put_command_status))
        .routes(routes!(catalog::get_cluster_status, catalog::put_cluster_status))
        .routes(routes!(catalog::get_clusters_health))
        .routes(routes!(catalog::get_cluster_health))
        .routes(routes!(health::health))
        .routes(routes!(health::metrics))
}

/// The OpenAPI document of the API, as served at [`OPENAPI_PATH`].
pub fn openapi() -> OpenApiDocument {
    api_routes().into_openapi()
}

/// Every route (the API, its document and the web UI at `/ui/`), with the body limit, request tracing and JSON answers for unknown routes.
pub fn router(state: AppState) -> Router {
    let (routes, document) = api_routes().split_for_parts();
    let host_check = axum::middleware::from_fn_with_state(state.clone(), refuse_foreign_hosts);
    let document = std::sync::Arc::new(document);
    routes
        .route(OPENAPI_PATH, axum::routing::get(move || async move { axum::Json(document.as_ref().clone()) }))
        .route("/ui", axum::routing::get(ui::ui_root))
        .route("/ui/", axum::routing::get(ui::index))
        .route("/ui/index.html", axum::routing::get(ui::index))
        .route("/ui/app.js", axum::routing::get(ui::script))
        .route("/ui/app.css", axum::routing::get(ui::style))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(limit_request_time))
        .layer(axum::middleware::from_fn(audit_state_changes))
        .layer(host_check)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

async fn unknown_route(method: Method, uri: Uri) -> impl IntoResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        names::NOT_FOUND,
        format!("no route for {method} {}; the API is under /api/v1 (see {OPENAPI_PATH})", uri.path()),
    )
}

async fn wrong_method(method: Method, uri: Uri) -> impl IntoResponse {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        names::METHOD_NOT_ALLOWED,
        format!("{} does not take {method} (see {OPENAPI_PATH})", uri.path()),
    )
}
