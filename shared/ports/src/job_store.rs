use async_trait::async_trait;
use heimdall_domain::idempotency::IdempotencyClaim;
pub use heimdall_domain::text_filter::TextFilter;
use heimdall_domain::{IllegalTransition, Job, JobId, JobStatus};

use crate::errors::StoreError;

/// Job records. Implementations must make [`JobStore::transition`] atomic (a conditional
/// write): two workers can never both move a job out of the same status.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Stores a new job; `AlreadyExists` if its id is taken.
    async fn insert(&self, job: &Job) -> Result<(), StoreError>;

    /// Stores a new job and `claim` (its user's idempotency key) together, atomically.
    /// `KeyTaken` with the job the key names, and the fingerprint it was claimed with, when
    /// the key is still remembered (its claim has not expired): nothing is stored then.
    async fn insert_keyed(&self, job: &Job, claim: &IdempotencyClaim) -> Result<(), StoreError>;

    /// The job `claim`'s key names and the fingerprint it was claimed with, while the key is
    /// remembered (its claim has not expired); `None` otherwise.
    async fn find_key(&self, claim: &IdempotencyClaim) -> Result<Option<(JobId, String)>, StoreError>;

    /// How many of `user`'s jobs have not ended (NEW, ACCEPTED, RUNNING, CANCELING), counted
    /// up to `at_most`: a count past a limit costs no more than the limit.
    async fn count_active(&self, user: &str, at_most: usize) -> Result<usize, StoreError>;

    /// Ids of jobs that ended before `cutoff` (epoch seconds), longest ended first, at most
    /// `limit`: what retention deletes.
    async fn ended_before(&self, cutoff: i64, limit: usize) -> Result<Vec<JobId>, StoreError>;

    /// Deletes a job and the idempotency key naming it; a job that is not there is fine.
    async fn delete(&self, id: JobId) -> Result<(), StoreError>;

    /// The job, or `NotFound`.
    async fn get(&self, id: JobId) -> Result<Job, StoreError>;

    /// How large a result (JSON bytes) this store keeps in the job's record, where that is
    /// cheaper than an artifact (at most `MAX_RECORDED_RESULT_BYTES`).
    fn recorded_result_limit(&self) -> usize;

    /// The job and the result recorded with it (JSON, set by the change that ended it, see
    /// [`StatusChange::with_result`]); `None` when its result, if any, is in the artifact store.
    async fn get_with_result(&self, id: JobId) -> Result<(Job, Option<String>), StoreError>;

    /// Applies `change` if the job is still in `change.from()`; `Conflict` with the current
    /// status otherwise. Returns the job as stored after the change.
    async fn transition(&self, id: JobId, change: &StatusChange) -> Result<Job, StoreError>;

    /// Writes `change` onto `held`, the job as this process last wrote or read it, without
    /// reading it first: if the stored job is still in `change.from()` at `held.attempt`;
    /// `Conflict` with the current status otherwise (a cancel, a retry recorded elsewhere). For
    /// the end of a run this process drove itself: what others set without moving the status
    /// (a heartbeat, the claim of a step's work) is not kept.
    async fn transition_held(&self, held: &Job, change: &StatusChange) -> Result<Job, StoreError>;

    /// Jobs matching `query`, in its order, one page at a time.
    async fn list(&self, query: &JobQuery) -> Result<JobPage, StoreError>;

    /// Records that a RUNNING job is alive at `at` (`Conflict` if it is no longer running).
    async fn heartbeat(&self, id: JobId, at: i64) -> Result<(), StoreError>;

    /// Claims the start of a RUNNING job's in-step work at `at`: `Ok(true)` the first time,
    /// `Ok(false)` when it was claimed before (a retried step), `Conflict` if it is not running.
    async fn claim_work_start(&self, id: JobId, at: i64) -> Result<bool, StoreError>;

    /// Ends attempt `next.failed.attempt` of a RUNNING job and sets up the next (`Conflict` if
    /// the job is not running or is at another attempt: two steps never both retry it).
    async fn next_attempt(&self, id: JobId, next: &NextAttempt) -> Result<Job, StoreError>;

    /// Records the plugin's handle of a RUNNING job (`Conflict` if it is no longer running).
    async fn save_handle(&self, id: JobId, handle: &serde_json::Value) -> Result<Job, StoreError>;
}

/// A legal status change with what it records. Built only through [`StatusChange::new`], so
/// an illegal move cannot reach a store.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    from: JobStatus,
    to: JobStatus,
    pub at: i64,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    pub canceled_by: Option<String>,
    /// The job's result (JSON), recorded with the end it comes with.
    pub result: Option<std::sync::Arc<str>>,
    /// What the job cost on AWS, recorded with its end.
    pub cost_usd: Option<f64>,
}

impl StatusChange {
    pub fn new(from: JobStatus, to: JobStatus, at: i64) -> Result<Self, IllegalTransition> {
        from.transition_to(to)?;
        Ok(Self { from, to, at, error: None, exit_code: None, canceled_by: None, result: None, cost_usd: None })
    }

    /// Records why the job ended; cut to `MAX_ERROR_BYTES` so every store holds it.
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(heimdall_domain::job::bounded_error(error));
        self
    }

    pub fn with_exit_code(mut self, exit_code: Option<i32>) -> Self {
        self.exit_code = exit_code.or(self.exit_code);
        self
    }

    pub fn with_canceled_by(mut self, user: impl Into<String>) -> Self {
        self.canceled_by = Some(user.into());
        self
    }

    /// Records `result` (JSON within the store's `recorded_result_limit`: [`PluginRun`](crate::PluginRun)
    /// keeps no larger one) with a job's end, in the same write: read back by
    /// [`JobStore::get_with_result`].
    pub fn with_result(mut self, result: Option<std::sync::Arc<str>>) -> Self {
        debug_assert!(result.as_ref().is_none_or(|json| self.to.is_terminal() && json.len() <= heimdall_domain::job::MAX_RECORDED_RESULT_BYTES));
        self.result = result;
        self
    }

    /// Records what the job cost on AWS with its end.
    pub fn with_cost_usd(mut self, cost_usd: Option<f64>) -> Self {
        self.cost_usd = cost_usd.or(self.cost_usd);
        self
    }

    pub fn from(&self) -> JobStatus {
        self.from
    }

    pub fn to(&self) -> JobStatus {
        self.to
    }

    /// Writes the change into `job` (what every store persists): status, times, error, and
    /// the record of its last attempt when a job that ran ends.
    pub fn apply(&self, job: &mut Job) {
        if self.to.is_terminal() && job.started_at.is_some() && !job.attempts.iter().any(|a| a.attempt == job.attempt) {
            let error = self.error.clone().or_else(|| job.error.clone());
            let record = job.attempt_record(self.at, self.to, error, self.exit_code.or(job.exit_code));
            job.attempts.push(record);
        }
        job.status = self.to;
        job.updated_at = self.at;
        if self.to == JobStatus::Running {
            job.started_at = Some(self.at);
        }
        if self.to.is_terminal() {
            job.finished_at = Some(self.at);
        }
        if let Some(error) = &self.error {
            job.error = Some(error.clone());
        }
        if self.exit_code.is_some() {
            job.exit_code = self.exit_code;
        }
        if let Some(user) = &self.canceled_by {
            job.canceled_by = Some(user.clone());
        }
        if self.cost_usd.is_some() {
            job.cost_usd = self.cost_usd;
        }
    }
}

/// A failed attempt and the one that follows it, on `cluster` (another matching one when
/// there is one), starting at `starts_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct NextAttempt {
    pub failed: heimdall_domain::retry::Attempt,
    pub cluster_id: String,
    pub cluster_name: String,
    pub starts_at: i64,
}

impl NextAttempt {
    /// Writes it into `job`: the failed attempt recorded, the next one's number, cluster and
    /// start; what the failed attempt left (handle, claim, heartbeat) cleared. Still RUNNING.
    pub fn apply(&self, job: &mut Job) {
        job.attempts.push(self.failed.clone());
        job.attempt = self.failed.attempt + 1;
        job.cluster_id = Some(self.cluster_id.clone());
        job.cluster_name = Some(self.cluster_name.clone());
        job.attempt_started_at = Some(self.starts_at);
        job.updated_at = self.failed.finished_at;
        job.plugin_handle = None;
        job.work_started_at = None;
        job.heartbeat_at = None;
        job.exit_code = None;
        job.error = None;
    }
}

/// Which field orders a job listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortField {
    #[default]
    CreatedAt,
    UpdatedAt,
    Id,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortDirection {
    Asc,
    #[default]
    Desc,
}

/// A filtered job listing. Empty filters match everything; all given filters must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobQuery {
    pub id: Option<JobId>,
    /// Text filters: exact, or Heimdall's `like` patterns (`%`, `_`) when a client sent them.
    pub user: Option<TextFilter>,
    pub name: Option<TextFilter>,
    pub version: Option<TextFilter>,
    /// Matches the command's id or name.
    pub command: Option<TextFilter>,
    /// Matches the cluster's id or name.
    pub cluster: Option<TextFilter>,
    /// Any of these statuses.
    pub statuses: Vec<JobStatus>,
    /// All of these tags.
    pub tags: Vec<String>,
    /// `created_at >= created_after` (epoch seconds).
    pub created_after: Option<i64>,
    /// `created_at < created_before` (epoch seconds).
    pub created_before: Option<i64>,
    pub order_by: SortField,
    pub direction: SortDirection,
    pub limit: usize,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Most tags a listing may ask for at once.
pub const MAX_FILTER_TAGS: usize = heimdall_domain::job::MAX_TAGS;

impl JobQuery {
    /// The query every store can answer the same way: statuses and tags once each, text
    /// filters within the name length, a time range that is not upside down. An error names
    /// the filter and says how to fix it.
    pub fn checked(mut self) -> Result<Self, String> {
        heimdall_domain::job::dedupe(&mut self.statuses);
        heimdall_domain::job::dedupe(&mut self.tags);
        if self.tags.len() > MAX_FILTER_TAGS {
            return Err(format!("tags: {} tags given; at most {MAX_FILTER_TAGS} may be asked at once", self.tags.len()));
        }
        let max = heimdall_domain::job::MAX_NAME_LENGTH;
        for (field, value) in [
            ("username", &self.user),
            ("name", &self.name),
            ("version", &self.version),
            ("command", &self.command),
            ("cluster", &self.cluster),
        ] {
            if value.as_ref().is_some_and(|v| v.text().chars().count() > max) {
                return Err(format!("{field}: longer than {max} characters, so nothing can match it"));
            }
        }
        if let Some(tag) = self.tags.iter().find(|t| t.chars().count() > max) {
            return Err(format!("tags: `{}…` is longer than {max} characters", tag.chars().take(20).collect::<String>()));
        }
        if let (Some(after), Some(before)) = (self.created_after, self.created_before)
            && after > before
        {
            return Err(format!("created_after ({after}) is later than created_before ({before}); swap them"));
        }
        Ok(self)
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}
