//! Commands and clusters (read-only: they come from the config file), secrets hidden for every caller.

use axum::Json;
use axum::extract::{Path, State};
use heimdall_domain::{Cluster, Command, ResourceStatus};
use serde::{Deserialize, Serialize};

use crate::api_error::{ApiError, ErrorBody};
use crate::app_state::AppState;
use crate::extract::AppQuery;
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
    filters: CatalogFilters,
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
        Ok(Self { filters, statuses })
    }

    fn accepts(&self, id: &str, name: &str, version: &str, status: ResourceStatus, user: &str, plugin: Option<&str>) -> bool {
        let same = |filter: &Option<String>, value: &str| filter.as_deref().is_none_or(|f| f.is_empty() || f == value);
        same(&self.filters.id, id)
            && same(&self.filters.name, name)
            && same(&self.filters.version, version)
            && same(&self.filters.username, user)
            && (self.statuses.is_empty() || self.statuses.contains(&status))
            && plugin.is_none_or(|p| same(&self.filters.plugin, p))
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
        .clusters()
        .iter()
        .filter(|c| matcher.accepts(&c.id, &c.name, &c.version, c.status, &c.user, None))
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
    let command = state.service.catalog().command(&id).map(Command::redacted);
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
    let cluster = state.service.catalog().cluster(&id).map(Cluster::redacted);
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
    let command = state.service.catalog().command(&id).ok_or_else(|| ServiceError::NotFound(format!("command `{id}` not found")))?;
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
    let cluster = state.service.catalog().cluster(&id).ok_or_else(|| ServiceError::NotFound(format!("cluster `{id}` not found")))?;
    Ok(Json(ResourceStatusAnswer { status: cluster.status, updated_at: cluster.updated_at }))
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
