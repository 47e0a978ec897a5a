use std::path::Path;

use async_trait::async_trait;
use heimdall_domain::clock::now_epoch_seconds;
use heimdall_domain::idempotency::IdempotencyClaim;
use heimdall_domain::{Job, JobId, JobStatus};
use heimdall_ports::{JobPage, JobQuery, JobStore, NextAttempt, SortDirection, SortField, StatusChange, StoreError, TextFilter};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::SqliteDatabase;

/// Jobs in an embedded SQLite database. The whole job is kept as JSON in `body`; the fields
/// the API filters and orders on are columns with indexes. `seq` (insertion order) breaks ties
/// between jobs created in the same second, so pages are stable.
#[derive(Clone)]
pub struct SqliteJobStore {
    database: SqliteDatabase,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS jobs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    user         TEXT NOT NULL,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    status       TEXT NOT NULL,
    command_id   TEXT,
    command_name TEXT,
    cluster_id   TEXT,
    cluster_name TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    body         TEXT NOT NULL,
    result       TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at, seq);
CREATE INDEX IF NOT EXISTS jobs_by_updated ON jobs (updated_at, seq);
CREATE INDEX IF NOT EXISTS jobs_by_user ON jobs (user, created_at, seq);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at, seq);
CREATE INDEX IF NOT EXISTS jobs_by_name ON jobs (name, created_at, seq);
CREATE INDEX IF NOT EXISTS jobs_by_user_status ON jobs (user, status);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scoped_key   TEXT PRIMARY KEY,
    job_id       TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_keys_by_job ON idempotency_keys (job_id);
"#;

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("job database: {error}"))
}

impl SqliteJobStore {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(unavailable)?;
        Self::setup(connection)
    }

    /// A private database in memory, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory().map_err(unavailable)?)
    }

    fn setup(connection: Connection) -> Result<Self, StoreError> {
        // WAL: readers never block the writer; NORMAL sync survives a process crash.
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;")
            .map_err(unavailable)?;
        connection.execute_batch(SCHEMA).map_err(unavailable)?;
        connection.execute_batch(crate::sqlite_catalog_store::SCHEMA).map_err(unavailable)?;
        // Databases made before results were recorded with jobs.
        let has_result: bool = connection
            .query_row("SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name = 'result'", [], |row| row.get(0))
            .map_err(unavailable)?;
        if !has_result {
            connection.execute_batch("ALTER TABLE jobs ADD COLUMN result TEXT").map_err(unavailable)?;
        }
        Ok(Self { database: SqliteDatabase::start(connection)? })
    }

    /// The live catalog's store in the same database (and on the same connection).
    pub fn catalog_store(&self) -> crate::SqliteCatalogStore {
        crate::SqliteCatalogStore::on(self.database.clone())
    }

    /// Runs `work` in its own savepoint on the database thread, committed with whatever other
    /// work was waiting (see [`SqliteDatabase::run`]).
    async fn with_connection<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.database.run(work).await
    }
}

fn encode(job: &Job) -> Result<String, StoreError> {
    serde_json::to_string(job).map_err(unavailable)
}

fn decode(body: &str) -> Result<Job, StoreError> {
    serde_json::from_str(body).map_err(|error| unavailable(format!("a stored job cannot be read: {error}")))
}

/// The statuses that have (`ended`) or have not ended, as an SQL list: `('NEW', …)`.
fn status_list(ended: bool) -> String {
    let names: Vec<String> = JobStatus::ALL.iter().filter(|s| s.is_terminal() == ended).map(|s| format!("'{s}'")).collect();
    format!("({})", names.join(", "))
}

/// A job with its JSON body, encoded on the caller's thread: the database thread, which every
/// job's writes pass through, only runs statements.
struct EncodedJob {
    job: Job,
    body: String,
}

impl EncodedJob {
    fn of(job: Job) -> Result<Self, StoreError> {
        let body = encode(&job)?;
        Ok(Self { job, body })
    }
}

fn insert_job(connection: &Connection, encoded: &EncodedJob) -> Result<(), StoreError> {
    let job = &encoded.job;
    let inserted = connection
        .prepare_cached(
            "INSERT INTO jobs (id, user, name, version, status, command_id, command_name, cluster_id, cluster_name, created_at, updated_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (id) DO NOTHING",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                job.id.to_string(), job.user, job.name, job.version, job.status.as_str(),
                job.command_id, job.command_name, job.cluster_id, job.cluster_name,
                job.created_at, job.updated_at, encoded.body
            ])
        })
        .map_err(unavailable)?;
    if inserted == 0 { Err(StoreError::AlreadyExists) } else { Ok(()) }
}

/// The job a remembered (unexpired) key names, with the fingerprint it was claimed with.
fn live_key(connection: &Connection, scoped_key: &str) -> Result<Option<(JobId, String)>, StoreError> {
    let found: Option<(String, String)> = connection
        .query_row(
            "SELECT job_id, fingerprint FROM idempotency_keys WHERE scoped_key = ?1 AND expires_at > ?2",
            params![scoped_key, now_epoch_seconds()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(unavailable)?;
    found
        .map(|(job, fingerprint)| Ok((job.parse().map_err(|_| unavailable(format!("an idempotency key names `{job}`, not a job id")))?, fingerprint)))
        .transpose()
}

#[async_trait]
impl JobStore for SqliteJobStore {
    /// A row holds it at no extra cost; a file would cost a folder, a file and their syscalls.
    fn recorded_result_limit(&self) -> usize {
        heimdall_domain::job::MAX_RECORDED_RESULT_BYTES
    }

    async fn insert(&self, job: &Job) -> Result<(), StoreError> {
        let encoded = EncodedJob::of(job.clone())?;
        self.with_connection(move |connection| insert_job(connection, &encoded)).await
    }

    async fn insert_keyed(&self, job: &Job, claim: &IdempotencyClaim) -> Result<(), StoreError> {
        let (job, claim) = (EncodedJob::of(job.clone())?, claim.clone());
        self.with_connection(move |connection| {
            let scoped_key = claim.scoped_key();
            if let Some((job, fingerprint)) = live_key(connection, &scoped_key)? {
                return Err(StoreError::KeyTaken { job, fingerprint });
            }
            insert_job(connection, &job)?;
            connection
                .execute(
                    "INSERT OR REPLACE INTO idempotency_keys (scoped_key, job_id, fingerprint, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    params![scoped_key, job.job.id.to_string(), claim.fingerprint, claim.expires_at],
                )
                .map(drop)
                .map_err(unavailable)
        })
        .await
    }

    async fn find_key(&self, claim: &IdempotencyClaim) -> Result<Option<(JobId, String)>, StoreError> {
        let scoped_key = claim.scoped_key();
        self.with_connection(move |connection| live_key(connection, &scoped_key)).await
    }

    async fn count_active(&self, user: &str, at_most: usize) -> Result<usize, StoreError> {
        let user = user.to_owned();
        self.with_connection(move |connection| {
            let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE user = ?1 AND status IN {} LIMIT ?2)", status_list(false));
            let count: i64 = connection
                .prepare_cached(&sql)
                .and_then(|mut statement| statement.query_row(params![user, i64::try_from(at_most).unwrap_or(i64::MAX)], |row| row.get(0)))
                .map_err(unavailable)?;
            Ok(usize::try_from(count).unwrap_or(0))
        })
        .await
    }

    async fn ended_before(&self, cutoff: i64, limit: usize) -> Result<Vec<JobId>, StoreError> {
        self.with_connection(move |connection| {
            // A job's last change is its end: an ended job never changes again.
            let sql = format!("SELECT id FROM jobs WHERE updated_at < ?1 AND status IN {} ORDER BY updated_at, seq LIMIT ?2", status_list(true));
            let mut statement = connection.prepare(&sql).map_err(unavailable)?;
            let ids = statement
                .query_map(params![cutoff, i64::try_from(limit).unwrap_or(i64::MAX)], |row| row.get::<_, String>(0))
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            ids.iter().map(|id| id.parse().map_err(|_| unavailable(format!("`{id}` is not a job id")))).collect()
        })
        .await
    }

    async fn delete(&self, id: JobId) -> Result<(), StoreError> {
        self.with_connection(move |connection| {
            connection.execute("DELETE FROM idempotency_keys WHERE job_id = ?1", [id.to_string()]).map_err(unavailable)?;
            connection.execute("DELETE FROM jobs WHERE id = ?1", [id.to_string()]).map(drop).map_err(unavailable)
        })
        .await
    }

    async fn get(&self, id: JobId) -> Result<Job, StoreError> {
        let body: Option<String> = self
            .with_connection(move |connection| {
                connection
                    .prepare_cached("SELECT body FROM jobs WHERE id = ?1")
                    .and_then(|mut statement| statement.query_row([id.to_string()], |row| row.get(0)).optional())
                    .map_err(unavailable)
            })
            .await?;
        decode(&body.ok_or(StoreError::NotFound)?)
    }

    async fn get_with_result(&self, id: JobId) -> Result<(Job, Option<String>), StoreError> {
        self.with_connection(move |connection| {
            let found: Option<(String, Option<String>)> = connection
                .query_row("SELECT body, result FROM jobs WHERE id = ?1", [id.to_string()], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
                .map_err(unavailable)?;
            let (body, result) = found.ok_or(StoreError::NotFound)?;
            Ok((decode(&body)?, result))
        })
        .await
    }

    async fn transition(&self, id: JobId, change: &StatusChange) -> Result<Job, StoreError> {
        let change = change.clone();
        let result = change.result.clone();
        self.update_if_at(id, change.from(), None, result, move |job| change.apply(job)).await.map(|(job, ())| job)
    }

    /// One conditional `UPDATE`, no read (the job is encoded before it reaches the database).
    async fn transition_held(&self, held: &Job, change: &StatusChange) -> Result<Job, StoreError> {
        let mut job = held.clone();
        change.apply(&mut job);
        let (expected, attempt, result) = (change.from(), held.attempt, change.result.clone());
        let encoded = EncodedJob::of(job)?;
        self.with_connection(move |connection| {
            let job = &encoded.job;
            let id = job.id.to_string();
            let updated = connection
                .prepare_cached(
                    "UPDATE jobs SET status = ?2, updated_at = ?3, cluster_id = ?4, cluster_name = ?5, body = ?6, result = COALESCE(?7, result)
                     WHERE id = ?1 AND status = ?8 AND COALESCE(json_extract(body, '$.attempt'), 1) = ?9",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        id, job.status.as_str(), job.updated_at, job.cluster_id, job.cluster_name, encoded.body, result.as_deref(),
                        expected.as_str(), attempt
                    ])
                })
                .map_err(unavailable)?;
            if updated == 1 {
                return Ok(encoded.job);
            }
            let current: Option<String> = connection
                .query_row("SELECT status FROM jobs WHERE id = ?1", [&id], |row| row.get(0))
                .optional()
                .map_err(unavailable)?;
            let current = current.ok_or(StoreError::NotFound)?;
            let current = current.parse().map_err(|_| unavailable(format!("job {id} has status `{current}`, which is not one")))?;
            Err(StoreError::Conflict { current })
        })
        .await
    }

    async fn list(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        let query = query.clone();
        self.with_connection(move |connection| list_jobs(connection, &query)).await
    }

    async fn heartbeat(&self, id: JobId, at: i64) -> Result<(), StoreError> {
        self.update_if(id, JobStatus::Running, move |job| job.heartbeat_at = Some(at)).await.map(|_| ())
    }

    async fn next_attempt(&self, id: JobId, next: &NextAttempt) -> Result<Job, StoreError> {
        let next = next.clone();
        self.update_if_at(id, JobStatus::Running, Some(next.failed.attempt), None, move |job| next.apply(job)).await.map(|(job, ())| job)
    }

    async fn claim_work_start(&self, id: JobId, at: i64) -> Result<bool, StoreError> {
        let claim = move |job: &mut Job| {
            let first = job.work_started_at.is_none();
            if first {
                job.work_started_at = Some(at);
            }
            first
        };
        self.update_if_at(id, JobStatus::Running, None, None, claim).await.map(|(_, claimed)| claimed)
    }

    async fn save_handle(&self, id: JobId, handle: &serde_json::Value) -> Result<Job, StoreError> {
        let handle = handle.clone();
        self.update_if(id, JobStatus::Running, move |job| job.plugin_handle = Some(handle)).await
    }
}

impl SqliteJobStore {
    /// Changes a job that is in `expected`, in one transaction; `Conflict` with the status found
    /// otherwise.
    async fn update_if(&self, id: JobId, expected: JobStatus, change: impl FnOnce(&mut Job) + Send + 'static) -> Result<Job, StoreError> {
        self.update_if_at(id, expected, None, None, change).await.map(|(job, ())| job)
    }

    /// `update_if`, also conditioned on the job being at `attempt` when one is given, recording
    /// `result` with it when one is given; answers what `change` answers beside the job.
    async fn update_if_at<T: Send + 'static>(
        &self,
        id: JobId,
        expected: JobStatus,
        attempt: Option<u32>,
        result: Option<std::sync::Arc<str>>,
        change: impl FnOnce(&mut Job) -> T + Send + 'static,
    ) -> Result<(Job, T), StoreError> {
        self.with_connection(move |connection| {
            let body: Option<String> = connection
                .query_row("SELECT body FROM jobs WHERE id = ?1", [id.to_string()], |row| row.get(0))
                .optional()
                .map_err(unavailable)?;
            let mut job = decode(&body.ok_or(StoreError::NotFound)?)?;
            if job.status != expected || attempt.is_some_and(|attempt| job.attempt != attempt) {
                return Err(StoreError::Conflict { current: job.status });
            }
            let answer = change(&mut job);
            connection
                .execute(
                    "UPDATE jobs SET status = ?2, updated_at = ?3, cluster_id = ?4, cluster_name = ?5, body = ?6, result = COALESCE(?7, result) WHERE id = ?1",
                    params![id.to_string(), job.status.as_str(), job.updated_at, job.cluster_id, job.cluster_name, encode(&job)?, result.as_deref()],
                )
                .map_err(unavailable)?;
            Ok((job, answer))
        })
        .await
    }
}

/// Where a page ends: the sort value and the `seq` of its last job.
struct Cursor {
    value: SqlValue,
    seq: i64,
}

impl Cursor {
    fn encode(&self) -> String {
        match &self.value {
            SqlValue::Integer(number) => format!("{number}.{}", self.seq),
            SqlValue::Text(text) => format!("{text}.{}", self.seq),
            _ => self.seq.to_string(),
        }
    }

    fn decode(text: &str, order_by: SortField) -> Result<Self, StoreError> {
        let invalid = || StoreError::InvalidCursor(format!("`{text}` is not a cursor of this listing"));
        let (value, seq) = text.rsplit_once('.').ok_or_else(invalid)?;
        let seq = seq.parse::<i64>().map_err(|_| invalid())?;
        let value = match order_by {
            SortField::CreatedAt | SortField::UpdatedAt => SqlValue::Integer(value.parse().map_err(|_| invalid())?),
            SortField::Id => SqlValue::Text(value.parse::<JobId>().map_err(|_| invalid())?.to_string()),
        };
        Ok(Self { value, seq })
    }
}

/// `=` for an exact filter; `GLOB` for a pattern: case-sensitive like Heimdall's `like`
/// (SQLite's `LIKE` ignores ASCII case), and still an index range on a literal prefix.
fn sql_operator(filter: &TextFilter) -> &'static str {
    match filter {
        TextFilter::Exact(_) => "=",
        TextFilter::Pattern(_) => "GLOB",
    }
}

/// The filter's text, a `like` pattern turned into a `GLOB` one (`%` → `*`, `_` → `?`, GLOB's
/// own special characters matched literally).
fn sql_operand(filter: &TextFilter) -> String {
    match filter {
        TextFilter::Exact(text) => text.clone(),
        TextFilter::Pattern(pattern) => pattern
            .chars()
            .map(|c| match c {
                '%' => "*".to_owned(),
                '_' => "?".to_owned(),
                '*' | '?' | '[' => format!("[{c}]"),
                other => other.to_string(),
            })
            .collect(),
    }
}

fn list_jobs(connection: &Connection, query: &JobQuery) -> Result<JobPage, StoreError> {
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<SqlValue> = Vec::new();
    let id = query.id.map(|id| TextFilter::Exact(id.to_string()));
    for (column, filter) in [("id", &id), ("user", &query.user), ("name", &query.name), ("version", &query.version)] {
        if let Some(filter) = filter {
            values.push(SqlValue::Text(sql_operand(filter)));
            conditions.push(format!("{column} {} ?{}", sql_operator(filter), values.len()));
        }
    }
    for (filter, id_column, name_column) in [
        (&query.command, "command_id", "command_name"),
        (&query.cluster, "cluster_id", "cluster_name"),
    ] {
        if let Some(filter) = filter {
            values.push(SqlValue::Text(sql_operand(filter)));
            let (n, operator) = (values.len(), sql_operator(filter));
            conditions.push(format!("({id_column} {operator} ?{n} OR {name_column} {operator} ?{n})"));
        }
    }
    if !query.statuses.is_empty() {
        let mut placeholders = Vec::new();
        for status in &query.statuses {
            values.push(SqlValue::Text(status.as_str().to_owned()));
            placeholders.push(format!("?{}", values.len()));
        }
        conditions.push(format!("status IN ({})", placeholders.join(", ")));
    }
    for tag in &query.tags {
        values.push(SqlValue::Text(tag.clone()));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM json_each(body, '$.tags') WHERE json_each.value = ?{})",
            values.len()
        ));
    }
    if let Some(after) = query.created_after {
        values.push(SqlValue::Integer(after));
        conditions.push(format!("created_at >= ?{}", values.len()));
    }
    if let Some(before) = query.created_before {
        values.push(SqlValue::Integer(before));
        conditions.push(format!("created_at < ?{}", values.len()));
    }

    let sort_column = match query.order_by {
        SortField::CreatedAt => "created_at",
        SortField::UpdatedAt => "updated_at",
        SortField::Id => "id",
    };
    let (comparison, direction) = match query.direction {
        SortDirection::Asc => (">", "ASC"),
        SortDirection::Desc => ("<", "DESC"),
    };
    if let Some(text) = &query.cursor {
        let cursor = Cursor::decode(text, query.order_by)?;
        values.push(cursor.value);
        let value_index = values.len();
        values.push(SqlValue::Integer(cursor.seq));
        conditions.push(format!("({sort_column}, seq) {comparison} (?{value_index}, ?{})", values.len()));
    }
    let filter = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
    let limit = query.limit.max(1);
    let sql = format!(
        "SELECT body, {sort_column}, seq FROM jobs {filter} ORDER BY {sort_column} {direction}, seq {direction} LIMIT {}",
        limit + 1
    );
    let mut statement = connection.prepare(&sql).map_err(unavailable)?;
    let rows = statement
        .query_map(params_from_iter(values.iter()), |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, SqlValue>(1)?, row.get::<_, i64>(2)?))
        })
        .map_err(unavailable)?;
    let mut jobs = Vec::with_capacity(limit);
    let mut last_key = None;
    let mut has_more = false;
    for row in rows {
        let (body, sort_value, seq) = row.map_err(unavailable)?;
        if jobs.len() == limit {
            has_more = true;
            break;
        }
        jobs.push(decode(&body)?);
        last_key = Some(Cursor { value: sort_value, seq });
    }
    Ok(JobPage { jobs, next_cursor: if has_more { last_key.map(|c| c.encode()) } else { None } })
}

#[cfg(test)]
mod tests {
    use heimdall_domain::JobRequest;

    use super::*;

    fn job(name: &str, user: &str, created_at: i64) -> Job {
        let request: JobRequest = serde_json::from_value(serde_json::json!({
            "name": name, "version": "1", "command_criteria": ["type:ping"], "tags": ["team:data"]
        }))
        .unwrap();
        let mut job = Job::from_request(request, user, created_at);
        job.status = JobStatus::Accepted;
        job.command_id = Some("ping-0.0.1".into());
        job
    }

    #[tokio::test]
    async fn jobs_survive_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let job = job("a", "alice", 10);
        SqliteJobStore::open(&path).unwrap().insert(&job).await.unwrap();
        assert_eq!(SqliteJobStore::open(&path).unwrap().get(job.id).await.unwrap(), job);
    }
}
