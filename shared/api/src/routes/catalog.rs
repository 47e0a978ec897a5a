//! Commands and clusters: read by every caller (secrets hidden), changed by admins at run time
//! (Heimdall v1.6's `PUT` routes; the config file seeds them), and their health checks.

use axum::{Extension, Json};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use heimdall_domain::health::HealthCheck;
use heimdall_domain::{Cluster, Command, ResourceStatus};
use heimdall_ports::{CatalogKind, TextFilter};
use serde_json::Value;
use serde::{Deserialize, Serialize};

use crate::api_error::{ApiError, ErrorBody};
use crate::app_state::AppState;
use crate::audit::AuditObject;
use crate::extract::{AppJson, AppQuery};
use crate::identity::Authenticated;
use heimdall_service::ServiceError;

#[derive(Serialize, utoipa::ToSchema)]
pub struct CommandList {
    pub data: Vec<Command>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ClusterList {
    pub data: Vec<Cluster>,
}

/// Filters of the command and cluster lists (Heimdall's names). Unknown parameters are ignored.
/// Text filters match as Heimdall's SQL `like`: `%` any run of characters, `_` any one.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogFilters {
    pub id: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    /// Comma-separated statuses, any of which matches: ACTIVE, INACTIVE or DELETED (any case),
    /// e.g. `ACTIVE,INACTIVE`.
    pub status: Option<String>,
    /// Commands only: the plugin name.
    pub plugin: Option<String>,
    /// The owner.
    pub username: Option<String>,
}

struct Matcher {
    /// Heimdall's `like` patterns (`%` any run, `_` any one character), read once.
    id: Option<TextFilter>,
    name: Option<TextFilter>,
    version: Option<TextFilter>,
    username: Option<TextFilter>,
    plugin: Option<TextFilter>,
    /// Any of these; empty: any status.
    statuses: Vec<ResourceStatus>,
}

impl Matcher {
    fn new(filters: CatalogFilters) -> Result<Self, ApiError> {
        // Heimdall's web UI asks for several at once, comma-separated, as /jobs takes them.
        let statuses = crate::extract::comma_separated(filters.status.as_deref())
            .map(|text| {
                ResourceStatus::parse(text)
                    .ok_or_else(|| ApiError::bad_request(format!("status must be ACTIVE, INACTIVE or DELETED (or several, comma-separated); got `{text}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pattern = |text: Option<String>| text.filter(|t| !t.is_empty()).map(|t| TextFilter::from_client(&t));
        Ok(Self {
            id: pattern(filters.id),
            name: pattern(filters.name),
            version: pattern(filters.version),
            username: pattern(filters.username),
            plugin: pattern(filters.plugin),
            statuses,
        })
    }

    fn accepts(&self, id: &str, name: &str, version: &str, status: ResourceStatus, user: &str, plugin: Option<&str>) -> bool {
        let same = |filter: &Option<TextFilter>, value: &str| filter.as_ref().is_none_or(|f| f.matches(value));
        same(&self.id, id)
            && same(&self.name, name)
            && same(&self.version, version)
            && same(&self.username, user)
            && (self.statuses.is_empty() || self.statuses.contains(&status))
            && plugin.is_none_or(|p| same(&self.plugin, p))
    }
}

/// The commands of the config.
#[utoipa::path(
    get, path = "/api/v1/commands", tag = "catalog", params(CatalogFilters),
    responses(
        (status = 200, description = "Commands, secrets in their contexts shown as ***", body = CommandList),
        (status = 400, description = "A filter that cannot be read", body = ErrorBody),
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn list_commands(
    State(state): State<AppState>,
    _caller: Authenticated,
    AppQuery(filters): AppQuery<CatalogFilters>,
) -> Result<Json<CommandList>, ApiError> {
    let matcher = Matcher::new(filters)?;
    let data = state
        .service
        .catalog()
        .await
        .commands()
        .iter()
        .filter(|c| matcher.accepts(&c.id, &c.name, &c.version, c.status, &c.user, Some(&c.plugin)))
        .map(Command::redacted)
        .collect();
    Ok(Json(CommandList { data }))
}

/// The clusters of the config.
#[utoipa::path(
    get, path = "/api/v1/clusters", tag = "catalog", params(CatalogFilters),
    responses(
        (status = 200, description = "Clusters, secrets in their contexts shown as ***", body = ClusterList),
        (status = 400, description = "A filter that cannot be read", body = ErrorBody),
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn list_clusters(
    State(state): State<AppState>,
    _caller: Authenticated,
    AppQuery(filters): AppQuery<CatalogFilters>,
) -> Result<Json<ClusterList>, ApiError> {
    let matcher = Matcher::new(filters)?;
    let data = state
        .service
        .catalog()
        .await
        .clusters()
        .iter()
        .filter(|c| matcher.accepts(&c.id, &c.name, &c.version, c.effective_status(), &c.user, None))
        .map(Cluster::redacted)
        .collect();
    Ok(Json(ClusterList { data }))
}

/// One command.
#[utoipa::path(
    get, path = "/api/v1/command/{id}", tag = "catalog",
    params(("id" = String, Path, description = "The command id")),
    responses(
        (status = 200, description = "The command, secrets in its context shown as ***", body = Command),
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
        (status = 404, description = "No such command", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn get_command(State(state): State<AppState>, _caller: Authenticated, Path(id): Path<String>) -> Result<Json<Command>, ApiError> {
    let command = state.service.catalog().await.command(&id).map(Command::redacted);
    command.map(Json).ok_or_else(|| ServiceError::NotFound(format!("command `{id}` not found")).into())
}

/// One cluster.
#[utoipa::path(
    get, path = "/api/v1/cluster/{id}", tag = "catalog",
    params(("id" = String, Path, description = "The cluster id")),
    responses(
        (status = 200, description = "The cluster, secrets in its context shown as ***", body = Cluster),
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
        (status = 404, description = "No such cluster", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn get_cluster(State(state): State<AppState>, _caller: Authenticated, Path(id): Path<String>) -> Result<Json<Cluster>, ApiError> {
    let cluster = state.service.catalog().await.cluster(&id).map(Cluster::redacted);
    cluster.map(Json).ok_or_else(|| ServiceError::NotFound(format!("cluster `{id}` not found")).into())
}

/// A command's or cluster's status, in Heimdall's shape (its status handlers answer the object
/// with only these two fields set).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ResourceStatusAnswer {
    pub status: ResourceStatus,
    pub updated_at: i64,
}

/// A command's status.
#[utoipa::path(
    get, path = "/api/v1/command/{id}/status", tag = "catalog",
    params(("id" = String, Path, description = "The command id")),
    responses(
        (status = 200, description = "The command's status and when it last changed", body = ResourceStatusAnswer),
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
        (status = 404, description = "No such command", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn get_command_status(State(state): State<AppState>, _caller: Authenticated, Path(id): Path<String>) -> Result<Json<ResourceStatusAnswer>, ApiError> {
    let catalog = state.service.catalog().await;
    let command = catalog.command(&id).ok_or_else(|| ServiceError::NotFound(format!("command `{id}` not found")))?;
    Ok(Json(ResourceStatusAnswer { status: command.status, updated_at: command.updated_at }))
}

/// A cluster's status.
#[utoipa::path(
    get, path = "/api/v1/cluster/{id}/status", tag = "catalog",
    params(("id" = String, Path, description = "The cluster id")),
    responses(
        (status = 200, description = "The cluster's status and when it last changed", body = ResourceStatusAnswer),
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
        (status = 404, description = "No such cluster", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn get_cluster_status(State(state): State<AppState>, _caller: Authenticated, Path(id): Path<String>) -> Result<Json<ResourceStatusAnswer>, ApiError> {
    let catalog = state.service.catalog().await;
    let cluster = catalog.cluster(&id).ok_or_else(|| ServiceError::NotFound(format!("cluster `{id}` not found")))?;
    Ok(Json(ResourceStatusAnswer { status: cluster.effective_status(), updated_at: cluster.updated_at }))
}

/// Every command status name.
#[utoipa::path(get, path = "/api/v1/command/statuses", tag = "catalog", responses((status = 200, description = "Status names", body = Vec<ResourceStatus>)))]
pub async fn list_command_statuses() -> Json<Vec<ResourceStatus>> {
    Json(ResourceStatus::ALL.to_vec())
}

/// Every cluster status name.
#[utoipa::path(get, path = "/api/v1/cluster/statuses", tag = "catalog", responses((status = 200, description = "Status names", body = Vec<ResourceStatus>)))]
pub async fn list_cluster_statuses() -> Json<Vec<ResourceStatus>> {
    Json(ResourceStatus::ALL.to_vec())
}

/// What a catalog change (`PUT` of a command, a cluster or a status) may be refused with.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only: the answers are ApiError's
pub enum CatalogChangeRefused {
    /// A field is missing or wrong (every problem named), a plugin refuses a context, or a
    /// status is not one of active, inactive, deleted.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No identity (see the security schemes).
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// The caller is not an admin (access.admins).
    #[response(status = 403)]
    NotAdmin(ErrorBody),
    /// Changed by another request meanwhile: read and retry.
    #[response(status = 409)]
    ChangedMeanwhile(ErrorBody),
    /// Body larger than 1 MiB.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// Body not sent as application/json.
    #[response(status = 415)]
    NotJson(ErrorBody),
}

/// What `PUT …/status` takes: `{"status": "active" | "inactive" | "deleted"}` (any case).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChangeRequest {
    pub status: ResourceStatus,
}

/// Creates or replaces a command (admins only): the config file's fields as JSON, validated
/// as the config is. `created_at`, `updated_at` and the system tags a `GET` answers may be sent
/// back and are ignored; `user` becomes the caller. The next job routes with it, on every
/// process within seconds.
#[utoipa::path(
    put, path = "/api/v1/command/{id}", tag = "catalog",
    params(("id" = String, Path, description = "The command id")),
    request_body(content = Object, description = "The command's fields as in the config file (name, version, plugin, tags, cluster_tags, context, weight, …)"),
    responses(
        (status = 200, description = "The command as stored, secrets in its context shown as ***", body = Command),
        CatalogChangeRefused,
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn put_command(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    AppJson(body): AppJson<Value>,
) -> Result<(Extension<AuditObject>, Json<Command>), ApiError> {
    let command = state.service.put_command(&caller, &id, body).await?.redacted();
    Ok((audited(CatalogKind::Command, &id), Json(command)))
}

/// Creates or replaces a cluster (admins only), as `PUT /api/v1/command/{id}` does. A cluster
/// that sends `ttl_seconds` registers itself: it stays ACTIVE while it sends the same `PUT`
/// again within that many seconds, and counts as INACTIVE once it stops.
#[utoipa::path(
    put, path = "/api/v1/cluster/{id}", tag = "catalog",
    params(("id" = String, Path, description = "The cluster id")),
    request_body(content = Object, description = "The cluster's fields as in the config file (name, version, tags, context, weight, health_check, health_interval, ttl_seconds, …)"),
    responses(
        (status = 200, description = "The cluster as stored, secrets in its context shown as ***", body = Cluster),
        CatalogChangeRefused,
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn put_cluster(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    AppJson(body): AppJson<Value>,
) -> Result<(Extension<AuditObject>, Json<Cluster>), ApiError> {
    let cluster = state.service.put_cluster(&caller, &id, body).await?.redacted();
    Ok((audited(CatalogKind::Cluster, &id), Json(cluster)))
}

/// Sets a command's status (admins only): an INACTIVE or DELETED command takes no new jobs.
#[utoipa::path(
    put, path = "/api/v1/command/{id}/status", tag = "catalog",
    params(("id" = String, Path, description = "The command id")),
    request_body = StatusChangeRequest,
    responses(
        (status = 200, description = "The status set and when", body = ResourceStatusAnswer),
        (status = 404, description = "No such command", body = ErrorBody),
        CatalogChangeRefused,
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn put_command_status(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    AppJson(change): AppJson<StatusChangeRequest>,
) -> Result<(Extension<AuditObject>, Json<ResourceStatusAnswer>), ApiError> {
    change_status(&state, &caller, CatalogKind::Command, &id, change).await
}

/// Sets a cluster's status (admins only): an INACTIVE or DELETED cluster takes no new jobs.
#[utoipa::path(
    put, path = "/api/v1/cluster/{id}/status", tag = "catalog",
    params(("id" = String, Path, description = "The cluster id")),
    request_body = StatusChangeRequest,
    responses(
        (status = 200, description = "The status set and when", body = ResourceStatusAnswer),
        (status = 404, description = "No such cluster", body = ErrorBody),
        CatalogChangeRefused,
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn put_cluster_status(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    AppJson(change): AppJson<StatusChangeRequest>,
) -> Result<(Extension<AuditObject>, Json<ResourceStatusAnswer>), ApiError> {
    change_status(&state, &caller, CatalogKind::Cluster, &id, change).await
}

async fn change_status(
    state: &AppState,
    caller: &heimdall_domain::Caller,
    kind: CatalogKind,
    id: &str,
    change: StatusChangeRequest,
) -> Result<(Extension<AuditObject>, Json<ResourceStatusAnswer>), ApiError> {
    let (status, updated_at) = state.service.set_status(caller, kind, id, change.status).await?;
    Ok((audited(kind, id), Json(ResourceStatusAnswer { status, updated_at })))
}

/// Names the changed command or cluster in the audit line: `command:<id>`, `cluster:<id>`.
fn audited(kind: CatalogKind, id: &str) -> Extension<AuditObject> {
    Extension(AuditObject(format!("{}:{id}", kind.as_str())))
}

/// Health checks in Heimdall's shape (`healthy`, `checks`), each check with its time.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HealthAnswer {
    /// Whether every check of an active cluster passed.
    pub healthy: bool,
    pub checks: Vec<HealthCheck>,
}

fn health_response(healthy: bool, checks: Vec<HealthCheck>) -> Response {
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(HealthAnswer { healthy, checks })).into_response()
}

/// The last health check of every cluster checked (clusters with `health_check: true`), for
/// each command it runs: 503 when any check of an active cluster failed, as Heimdall answers.
#[utoipa::path(
    get, path = "/api/v1/clusters/health", tag = "catalog",
    responses(
        (status = 200, description = "Every last check passed", body = HealthAnswer),
        (status = 503, description = "A last check of an active cluster failed (its pairs are out of routing)", body = HealthAnswer),
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn get_clusters_health(State(state): State<AppState>, _caller: Authenticated) -> Result<Response, ApiError> {
    let (healthy, checks) = state.service.cluster_health(None).await?;
    Ok(health_response(healthy, checks))
}

/// The last health check of one cluster, for each command it runs (empty when it is not
/// checked): 503 when one failed while the cluster is active.
#[utoipa::path(
    get, path = "/api/v1/cluster/{id}/health", tag = "catalog",
    params(("id" = String, Path, description = "The cluster id")),
    responses(
        (status = 200, description = "Its last checks passed (or it has none)", body = HealthAnswer),
        (status = 503, description = "A last check failed: the cluster is out of routing for that command", body = HealthAnswer),
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
        (status = 404, description = "No such cluster", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn get_cluster_health(State(state): State<AppState>, _caller: Authenticated, Path(id): Path<String>) -> Result<Response, ApiError> {
    let (healthy, checks) = state.service.cluster_health(Some(&id)).await?;
    Ok(health_response(healthy, checks))
}
