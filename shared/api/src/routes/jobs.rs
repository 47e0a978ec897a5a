use axum::{Extension, Json};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use heimdall_domain::selection::RoutePlan;
use heimdall_domain::{Caller, Job, JobId, JobRequest, JobResult, JobStatus, names};
use heimdall_ports::{Artifact, ArtifactReader, ByteRange, JobQuery, SortDirection, SortField, TextFilter};
use heimdall_service::ServiceError;
use serde::{Deserialize, Serialize};

use crate::api_error::{ApiError, ErrorBody};
use crate::audit::AuditObject;
use crate::app_state::AppState;
use crate::extract::{AppJson, AppQuery, JobIdPath};
use crate::identity::Authenticated;

/// A job, with its result inline when it ran synchronously.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobResponse {
    #[serde(flatten)]
    pub job: Job,
    /// The result of a finished sync job (absent for async jobs and large results: use `/result`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<JobResult>,
}

/// Where a job stands.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobStatusResponse {
    pub status: JobStatus,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    pub updated_at: i64,
}

/// The answer to a cancel: `CANCELING` while the job is being stopped, `CANCELED` when there
/// was nothing to stop.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CancelResponse {
    pub id: String,
    pub status: JobStatus,
}

/// One page of jobs.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobList {
    pub data: Vec<Job>,
    pub has_more: bool,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

pub const DEFAULT_PAGE_SIZE: usize = 20;
pub const MAX_PAGE_SIZE: usize = 101;

/// Filters of `GET /api/v1/jobs` (Heimdall's names). Unknown parameters are ignored. The text
/// filters (`username`, `name`, `version`, `command`, `cluster`) match as Heimdall's SQL `like`
/// does: `%` any run of characters, `_` any one (`name=ping%`); without either, exactly.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobFilters {
    /// Jobs of this user.
    pub username: Option<String>,
    /// One job by id.
    pub id: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    /// Command id or name.
    pub command: Option<String>,
    /// Cluster id or name.
    pub cluster: Option<String>,
    /// Comma-separated statuses, any of which matches, e.g. `RUNNING,ACCEPTED`.
    pub status: Option<String>,
    /// Comma-separated tags, all of which must match.
    pub tags: Option<String>,
    /// Jobs created at or after this time (epoch seconds).
    pub created_after: Option<String>,
    /// Jobs created before this time (epoch seconds).
    pub created_before: Option<String>,
    /// Page size, 1 to 101 (default 20); more is answered as 101, saying so in `X-Heimdall-Adjusted`.
    pub limit: Option<String>,
    /// `created_at` (default), `updated_at` or `id`; anything else falls back to `created_at`, saying so in `X-Heimdall-Adjusted`.
    pub order_by: Option<String>,
    /// `desc` (default, newest first) or `asc`.
    pub direction: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The header that says how a listing's parameters were adjusted rather than refused (as
/// Heimdall does, so its clients keep working): `limit=101 (asked 500; at most 101)`.
pub const ADJUSTED: &str = "x-heimdall-adjusted";

impl JobFilters {
    /// The query these filters ask, and what was adjusted: a `limit` above the most is
    /// clamped, an unknown `order_by` falls back to `created_at` (Heimdall's behaviour).
    fn into_query(self) -> Result<(JobQuery, Vec<String>), ApiError> {
        let mut adjusted = Vec::new();
        let non_empty = |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let comma_list = |value: Option<String>| -> Vec<String> { crate::extract::comma_separated(value.as_deref()).map(str::to_owned).collect() };
        let epoch = |field: &str, value: Option<String>| -> Result<Option<i64>, ApiError> {
            non_empty(value)
                .map(|v| v.parse::<i64>().map_err(|_| ApiError::bad_request(format!("{field} must be epoch seconds, e.g. 1767225600; got `{v}`"))))
                .transpose()
        };
        let statuses = comma_list(self.status)
            .iter()
            .map(|s| s.parse::<JobStatus>().map_err(|e| ApiError::bad_request(format!("status: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let limit = match non_empty(self.limit) {
            None => DEFAULT_PAGE_SIZE,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                Ok(n) if n > MAX_PAGE_SIZE => {
                    adjusted.push(format!("limit={MAX_PAGE_SIZE} (asked {n}; at most {MAX_PAGE_SIZE})"));
                    MAX_PAGE_SIZE
                }
                _ => return Err(ApiError::bad_request(format!("limit must be a whole number from 1 to {MAX_PAGE_SIZE}; got `{text}`"))),
            },
        };
        let order_by = match non_empty(self.order_by).as_deref() {
            None | Some("created_at") => SortField::CreatedAt,
            Some("updated_at") => SortField::UpdatedAt,
            Some("id") => SortField::Id,
            Some(other) => {
                let shown: String = other.chars().take(40).filter(|c| c.is_ascii_graphic()).collect();
                adjusted.push(format!("order_by=created_at (asked `{shown}`; created_at, updated_at or id)"));
                SortField::CreatedAt
            }
        };
        let direction = match non_empty(self.direction).map(|d| d.to_ascii_lowercase()).as_deref() {
            None | Some("desc") => SortDirection::Desc,
            Some("asc") => SortDirection::Asc,
            Some(other) => return Err(ApiError::bad_request(format!("direction must be asc or desc; got `{other}`"))),
        };
        let id = match non_empty(self.id) {
            None => None,
            Some(text) => Some(text.parse().map_err(|e: heimdall_domain::job_id::InvalidJobId| ApiError::bad_request(format!("id: {e}")))?),
        };
        Ok((JobQuery {
            id,
            user: non_empty(self.username).as_deref().map(TextFilter::from_client),
            name: non_empty(self.name).as_deref().map(TextFilter::from_client),
            version: non_empty(self.version).as_deref().map(TextFilter::from_client),
            command: non_empty(self.command).as_deref().map(TextFilter::from_client),
            cluster: non_empty(self.cluster).as_deref().map(TextFilter::from_client),
            statuses,
            tags: comma_list(self.tags),
            created_after: epoch("created_after", self.created_after)?,
            created_before: epoch("created_before", self.created_before)?,
            order_by,
            direction,
            limit,
            cursor: non_empty(self.cursor),
        }, adjusted))
    }
}

/// The header a client sets to submit safely again after losing an answer.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set (`true`) on an answer that is the job an earlier request with the same key created.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Submits a job. A sync job runs inside this call and comes back finished with its result;
/// an async job comes back `ACCEPTED` and runs in the background. With an `Idempotency-Key`,
/// the same request sent again within 24 hours answers the first job instead of making another.
#[utoipa::path(
    post, path = "/api/v1/job", tag = "jobs",
    request_body = JobRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters (e.g. a UUID), the caller's own: the same key and request within 24 h answer the first job (with `Idempotent-Replayed: true`), never a second one"),
    ),
    responses(
        (status = 200, description = "The job: finished if sync (FAILED saying so if it ran past its sync limit), ACCEPTED if async; with Idempotent-Replayed: true, the job an earlier request with the same key created", body = JobResponse),
        (status = 400, description = "Malformed request or Idempotency-Key, no matching command or cluster (the job is recorded FAILED and its id given), or a context the command refuses", body = ErrorBody),
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
        (status = 403, description = "The command's allowed_callers exclude the user", body = ErrorBody),
        (status = 409, description = "IDEMPOTENCY_KEY_REUSED: the Idempotency-Key was used within 24 h for another request", body = ErrorBody),
        (status = 429, description = "The user has as many jobs not yet ended as limits.active_jobs_per_user allows, or as many sync jobs run as the server allows; retry after Retry-After seconds", body = ErrorBody),
        (status = 413, description = "Body larger than 1 MiB", body = ErrorBody),
        (status = 415, description = "Body not sent as application/json", body = ErrorBody),
        (status = 503, description = "The queue or store is unavailable", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn submit_job(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    AppJson(request): AppJson<JobRequest>,
) -> Result<Response, ApiError> {
    let submitted = match headers.get(IDEMPOTENCY_KEY) {
        None => state.service.submit(&caller, request).await?,
        Some(value) => {
            let key = value.to_str().map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII characters, e.g. a UUID"))?;
            state.service.submit_keyed(&caller, request, key).await?
        }
    };
    let object = AuditObject(submitted.job.id.to_string());
    let mut response = (Extension(object), Json(JobResponse { job: submitted.job, result: submitted.result })).into_response();
    if submitted.replayed {
        response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Where a job would run, without creating it: the candidate (command, cluster) pairs with
/// their chances (command weight × cluster weight), and each command, cluster or pair left out
/// with the reason (inactive, a missing tag, weight 0, allowed_callers, the mode asked for).
#[utoipa::path(
    post, path = "/api/v1/job/route", tag = "jobs",
    request_body = JobRequest,
    responses(
        (status = 200, description = "The routing: candidates (empty when nothing matches) and exclusions", body = RoutePlan),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
        (status = 413, description = "Body larger than 1 MiB", body = ErrorBody),
        (status = 415, description = "Body not sent as application/json", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn route_job(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AppJson(request): AppJson<JobRequest>,
) -> Result<Json<RoutePlan>, ApiError> {
    Ok(Json(state.service.route_preview(&caller, request).await?))
}

/// A job.
#[utoipa::path(
    get, path = "/api/v1/job/{id}", tag = "jobs",
    params(("id" = uuid::Uuid, Path, description = "The job id (a UUID)")),
    responses(
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
        (status = 200, description = "The job", body = Job),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 404, description = "No such job, or a job the caller may not read", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn get_job(State(state): State<AppState>, Authenticated(caller): Authenticated, JobIdPath(id): JobIdPath) -> Result<Json<Job>, ApiError> {
    Ok(Json(state.service.get_as(&caller, id).await?))
}

/// A job's status, error and exit code.
#[utoipa::path(
    get, path = "/api/v1/job/{id}/status", tag = "jobs",
    params(("id" = uuid::Uuid, Path, description = "The job id (a UUID)")),
    responses(
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
        (status = 200, description = "The job's status", body = JobStatusResponse),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 404, description = "No such job, or a job the caller may not read", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn get_job_status(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JobIdPath(id): JobIdPath,
) -> Result<Json<JobStatusResponse>, ApiError> {
    let job = state.service.get_as(&caller, id).await?;
    Ok(Json(JobStatusResponse { status: job.status, error: job.error, exit_code: job.exit_code, updated_at: job.updated_at }))
}

/// A job's standard output so far, streamed (it grows while the job runs). One HTTP byte range
/// may be asked (`Range: bytes=-65536` for the tail, `bytes=N-` to follow from offset N).
#[utoipa::path(
    get, path = "/api/v1/job/{id}/stdout", tag = "jobs",
    params(
        ("id" = uuid::Uuid, Path, description = "The job id (a UUID)"),
        ("Range" = Option<String>, Header, description = "One byte range: bytes=START-, bytes=START-END or bytes=-COUNT"),
        LogQuery,
    ),
    responses(
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
        (status = 200, description = "The output (empty if none yet)", body = String, content_type = "text/plain"),
        (status = 206, description = "The asked range; Content-Range: bytes START-END/TOTAL", body = String, content_type = "text/plain"),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 404, description = "No such job, a job the caller may not read, or no such attempt", body = ErrorBody),
        (status = 416, description = "The range starts past the end; Content-Range: bytes */TOTAL", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn get_job_stdout(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JobIdPath(id): JobIdPath,
    AppQuery(query): AppQuery<LogQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    log_response(&state, &caller, id, Artifact::Stdout, query.attempt()?, &headers).await
}

/// A job's standard error so far, streamed; one byte range may be asked, as for stdout.
#[utoipa::path(
    get, path = "/api/v1/job/{id}/stderr", tag = "jobs",
    params(
        ("id" = uuid::Uuid, Path, description = "The job id (a UUID)"),
        ("Range" = Option<String>, Header, description = "One byte range: bytes=START-, bytes=START-END or bytes=-COUNT"),
        LogQuery,
    ),
    responses(
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
        (status = 200, description = "The error output (empty if none yet)", body = String, content_type = "text/plain"),
        (status = 206, description = "The asked range; Content-Range: bytes START-END/TOTAL", body = String, content_type = "text/plain"),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 404, description = "No such job, a job the caller may not read, or no such attempt", body = ErrorBody),
        (status = 416, description = "The range starts past the end; Content-Range: bytes */TOTAL", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn get_job_stderr(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JobIdPath(id): JobIdPath,
    AppQuery(query): AppQuery<LogQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    log_response(&state, &caller, id, Artifact::Stderr, query.attempt()?, &headers).await
}

/// Which attempt's log: `?attempt=N` (1-based); the latest when absent.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// The attempt whose output to read (1-based); default: the latest.
    pub attempt: Option<String>,
}

impl LogQuery {
    fn attempt(&self) -> Result<Option<u32>, ApiError> {
        match self.attempt.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            None => Ok(None),
            Some(text) => match text.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(Some(n)),
                _ => Err(ApiError::bad_request(format!("attempt must be a whole number from 1 (the first attempt); got `{text}`"))),
            },
        }
    }
}

/// A log, whole (200) or the one byte range the `Range` header asks (206, or 416 past the end).
async fn log_response(state: &AppState, caller: &Caller, id: JobId, artifact: Artifact, attempt: Option<u32>, headers: &HeaderMap) -> Result<Response, ApiError> {
    let range = headers.get(header::RANGE).and_then(|value| value.to_str().ok()).and_then(ByteRange::from_header);
    let content_type = "text/plain; charset=utf-8";
    match state.service.open_log(caller, id, artifact, range.unwrap_or(ByteRange::All), attempt).await {
        Ok(reader) if range.is_some() => {
            let (start, total) = (reader.start, reader.total.unwrap_or(0));
            let end = start + reader.length.unwrap_or(0);
            let content_range = format!("bytes {start}-{}/{total}", end.saturating_sub(1));
            let mut response = stream_response(reader, content_type);
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            insert_header(&mut response, header::CONTENT_RANGE, &content_range);
            Ok(response)
        }
        Ok(reader) => Ok(stream_response(reader, content_type)),
        Err(ServiceError::RangeNotSatisfiable { total }) => {
            let mut response = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                names::RANGE_NOT_SATISFIABLE,
                format!("the range starts past the end of the {total} bytes written so far; ask from a smaller offset"),
            )
            .into_response();
            insert_header(&mut response, header::CONTENT_RANGE, &format!("bytes */{total}"));
            Ok(response)
        }
        Err(error) => Err(error.into()),
    }
}

fn insert_header(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// A job's result table, streamed.
#[utoipa::path(
    get, path = "/api/v1/job/{id}/result", tag = "jobs",
    params(("id" = uuid::Uuid, Path, description = "The job id (a UUID)")),
    responses(
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
        (status = 200, description = "The result", body = JobResult),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 404, description = "No such job, or it has no result (the message says why)", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn get_job_result(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JobIdPath(id): JobIdPath,
) -> Result<Response, ApiError> {
    let reader = state.service.open_result(&caller, id).await?;
    Ok(stream_response(reader, "application/json"))
}

fn stream_response(reader: ArtifactReader, content_type: &'static str) -> Response {
    let body = Body::from_stream(reader.stream.map_err(|error| {
        tracing::error!(error.message = %error, "an artifact stream broke mid-answer");
        error
    }));
    // nosniff: a job's output is text or JSON, never a page a browser should render or run.
    ([(header::CONTENT_TYPE, content_type), (header::ACCEPT_RANGES, "bytes"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")], body)
        .into_response()
}

/// Asks a job to stop. Only its owner or an admin may.
#[utoipa::path(
    post, path = "/api/v1/job/{id}/cancel", tag = "jobs",
    params(("id" = uuid::Uuid, Path, description = "The job id (a UUID)")),
    responses(
        (status = 200, description = "CANCELING while it stops, CANCELED if it had not started", body = CancelResponse),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
        (status = 403, description = "The caller may read the job but is neither its owner nor an admin", body = ErrorBody),
        (status = 404, description = "No such job, or a job the caller may not read", body = ErrorBody),
        (status = 409, description = "The job already ended", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn cancel_job(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JobIdPath(id): JobIdPath,
) -> Result<(Extension<AuditObject>, Json<CancelResponse>), ApiError> {
    let job = state.service.cancel(&caller, id).await?;
    Ok((Extension(AuditObject(id.to_string())), Json(CancelResponse { id: job.id.to_string(), status: job.status })))
}

/// Jobs, filtered, newest first by default, one page at a time.
#[utoipa::path(
    get, path = "/api/v1/jobs", tag = "jobs",
    params(JobFilters),
    responses(
        (status = 401, description = "No identity (see the security schemes)", body = ErrorBody),
        (status = 200, description = "A page of jobs; X-Heimdall-Adjusted says how a limit past the most or an unknown order_by was taken", body = JobList,
            headers(("X-Heimdall-Adjusted" = String, description = "Present when a parameter was adjusted rather than refused, e.g. `limit=101 (asked 500; at most 101)`"))),
        (status = 400, description = "A filter that cannot be read (the message names it)", body = ErrorBody),
    ),
    security(("user_header" = []), ("bearer_jwt" = []))
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AppQuery(filters): AppQuery<JobFilters>,
) -> Result<Response, ApiError> {
    let (query, adjusted) = filters.into_query()?;
    let page = state.service.list_as(&caller, &query).await?;
    let mut response = Json(JobList { has_more: page.next_cursor.is_some(), next_cursor: page.next_cursor, data: page.jobs }).into_response();
    if !adjusted.is_empty() {
        insert_header(&mut response, header::HeaderName::from_static(ADJUSTED), &adjusted.join("; "));
    }
    Ok(response)
}

/// Every job status name.
#[utoipa::path(get, path = "/api/v1/job/statuses", tag = "jobs", responses((status = 200, description = "Status names", body = Vec<JobStatus>)))]
pub async fn list_job_statuses() -> Json<Vec<JobStatus>> {
    Json(JobStatus::ALL.to_vec())
}
