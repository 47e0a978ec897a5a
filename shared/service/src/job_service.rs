use std::path::PathBuf;
use std::sync::Arc;

use heimdall_domain::clock::now_epoch_seconds;
use heimdall_domain::{Caller, Job, JobId, JobResult, JobStatus};
use heimdall_ports::{
    Artifact, CatalogStore, ArtifactReader, ArtifactStore, ByteRange, JobPage, JobQuery, JobQueue, JobStore, SortDirection, StatusChange,
    StoreError, Workflows,
};

use crate::catalog::Catalog;
use crate::plugin_registry::PluginRegistry;
use crate::running_jobs::RunningJobs;
use crate::service_error::ServiceError;

/// Settings of the service layer itself.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Where plugins get per-job scratch folders.
    pub work_root: PathBuf,
    /// A sync job's result is answered inline up to this size; larger ones via `/result`.
    pub inline_result_limit: u64,
    /// An async job driven by a workflow engine fails once it has run this long, unless its
    /// command's context sets a shorter `timeout_seconds`.
    pub max_job_seconds: u64,
    /// Sync jobs running at once in this process; past it a sync submit is answered 429
    /// (nothing recorded) so a burst cannot exhaust the server.
    pub max_sync_jobs: usize,
    /// The longest a sync job runs inside its request on this runtime (on AWS below API
    /// Gateway's 29 s); a command's `max_sync_seconds` may only shorten it.
    pub max_sync_seconds: u64,
}

impl ServiceSettings {
    /// A day: the longest an async job runs unless its command says otherwise.
    pub const DEFAULT_MAX_JOB_SECONDS: u64 = 24 * 3600;
    /// Sync jobs at once, unless a runtime says otherwise.
    pub const DEFAULT_MAX_SYNC_JOBS: usize = 32;
    /// Ten minutes: longer than that, a job belongs in the queue, not in an open request.
    pub const DEFAULT_MAX_SYNC_SECONDS: u64 = 600;
}

/// A submitted job as answered: a sync job comes back finished with its result.
#[derive(Debug, Clone)]
pub struct SubmittedJob {
    pub job: Job,
    pub result: Option<JobResult>,
    /// The job an earlier request with the same idempotency key created, answered again.
    pub replayed: bool,
}

/// The use cases. Shared as `Arc<JobService>` by the API and the workers.
pub struct JobService {
    pub(crate) catalog: crate::live_catalog::LiveCatalog,
    pub(crate) plugins: PluginRegistry,
    pub(crate) jobs: Arc<dyn JobStore>,
    pub(crate) artifacts: Arc<dyn ArtifactStore>,
    pub(crate) queue: Arc<dyn JobQueue>,
    pub(crate) settings: ServiceSettings,
    pub(crate) running: RunningJobs,
    /// The external engine of async jobs (Step Functions), with the name of a plugin's
    /// function (`{plugin}` replaced); `None` where this process runs them itself.
    pub(crate) workflows: Option<Arc<dyn Workflows>>,
    /// One permit per sync job running (`settings.max_sync_jobs`).
    pub(crate) sync_slots: Arc<tokio::sync::Semaphore>,
    pub(crate) metrics: crate::metrics::JobMetrics,
    /// How this process prices a metered sync job's AWS usage (the api function); `None` where
    /// jobs cost nothing on AWS (`heimdall serve`).
    pub(crate) aws_costing: Option<heimdall_domain::aws_cost::AwsCosting>,
}

/// What start-up recovery did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Jobs left RUNNING (or NEW) by a stop, now FAILED.
    pub failed: usize,
    /// Jobs left CANCELING, now CANCELED.
    pub canceled: usize,
    /// Queued jobs put back on the queue.
    pub requeued: usize,
}

impl JobService {
    pub fn new(
        catalog: Arc<Catalog>,
        plugins: PluginRegistry,
        jobs: Arc<dyn JobStore>,
        artifacts: Arc<dyn ArtifactStore>,
        queue: Arc<dyn JobQueue>,
        settings: ServiceSettings,
    ) -> Self {
        let sync_slots = Arc::new(tokio::sync::Semaphore::new(settings.max_sync_jobs.max(1)));
        Self {
            catalog: crate::live_catalog::LiveCatalog::fixed(Arc::unwrap_or_clone(catalog)),
            plugins,
            jobs,
            artifacts,
            queue,
            settings,
            running: RunningJobs::default(),
            workflows: None,
            sync_slots,
            metrics: crate::metrics::JobMetrics::default(),
            aws_costing: None,
        }
    }

    /// Also writes every figure as a CloudWatch embedded-metric-format line to `sink` (on AWS,
    /// the function's stdout), so metrics need no call per job.
    /// Sync jobs run in a metered request record what they cost on AWS, priced by `costing`.
    pub fn with_aws_costing(mut self, costing: heimdall_domain::aws_cost::AwsCosting) -> Self {
        self.aws_costing = Some(costing);
        self
    }

    /// What the sync job ending now cost on AWS: the usage its request's meter recorded (the
    /// write that records the end counted as the write before it), the API Gateway and Lambda
    /// request, and the Lambda time so far. `None` without costing or outside a metered request.
    fn sync_job_cost(&self) -> Option<f64> {
        let costing = self.aws_costing?;
        let meter = heimdall_ports::usage::current()?;
        let mut usage = meter.usage();
        usage.dynamodb_write_units += meter.last_write_units();
        usage.api_requests += 1.0;
        usage.lambda_requests += 1.0;
        usage.lambda_gb_seconds += costing.lambda_memory_gb * meter.elapsed().as_secs_f64();
        Some(usage.cost_usd(&costing.prices))
    }

    pub fn with_emf_metrics(mut self, sink: crate::metrics::EmfSink) -> Self {
        self.metrics = std::mem::take(&mut self.metrics).with_emf(sink);
        self
    }

    /// Async jobs run on `workflows` (Step Functions), which owns how a job's steps reach its
    /// plugin (the execution's input, the function it calls).
    pub fn with_workflows(mut self, workflows: Arc<dyn Workflows>) -> Self {
        self.workflows = Some(workflows);
        self
    }

    /// Commands and clusters come from `store` (seeded from the config when `seed`; the api
    /// process and `heimdall serve` seed, the workers only read), checked for changes at most
    /// once per `refresh`.
    pub async fn with_catalog_store(mut self, store: Arc<dyn CatalogStore>, refresh: std::time::Duration, seed: bool) -> Result<Self, ServiceError> {
        self.catalog = crate::live_catalog::LiveCatalog::stored(Arc::unwrap_or_clone(self.catalog.cached()), store, refresh);
        if seed {
            self.seed_catalog().await?;
        } else {
            self.catalog.reload(&self.plugins).await?;
        }
        Ok(self)
    }

    /// The catalog as it stands (refreshed from the store when due).
    pub async fn catalog(&self) -> Arc<Catalog> {
        self.catalog.current(&self.plugins).await
    }

    /// The catalog held, without a refresh: for the config's settings, which never change at
    /// run time (access, triggers, limits, pool).
    pub fn catalog_held(&self) -> Arc<Catalog> {
        self.catalog.cached()
    }

    /// The catalog with `command_id` and `cluster_id` in it if the store has them: a job routed
    /// by another process may name what this copy has not seen yet.
    pub(crate) async fn catalog_naming(&self, command_id: Option<&str>, cluster_id: Option<&str>) -> Arc<Catalog> {
        let catalog = self.catalog.current(&self.plugins).await;
        let lacks = command_id.is_some_and(|id| catalog.command(id).is_none()) || cluster_id.is_some_and(|id| catalog.cluster(id).is_none());
        if !lacks {
            return catalog;
        }
        match self.catalog.reload(&self.plugins).await {
            Ok(fresh) => fresh,
            Err(error) => {
                tracing::warn!(%error, "the catalog store could not be read");
                catalog
            }
        }
    }

    /// The metrics of this process in Prometheus' text format.
    pub async fn render_metrics(&self) -> String {
        if let Err(error) = self.observe_queue_depth().await {
            tracing::warn!(%error, "could not read the queue's depth for the metrics");
        }
        self.metrics.render(self.running.len())
    }

    /// Reads how many async jobs wait in the queue and records it as a metric (on AWS, an EMF
    /// line: the janitor does this each minute).
    pub async fn observe_queue_depth(&self) -> Result<u64, ServiceError> {
        let depth = self.queue.depth().await?;
        self.metrics.queue_depth(depth);
        Ok(depth)
    }

    /// The plugins this service runs jobs with, by name.
    pub fn plugin_names(&self) -> Vec<&'static str> {
        self.plugins.names()
    }

    /// The job, whoever owns it: for the platform's own steps and workers. What a caller
    /// reads goes through [`JobService::get_as`].
    pub async fn get(&self, id: JobId) -> Result<Job, ServiceError> {
        self.jobs.get(id).await.map_err(|e| ServiceError::from_store(e, Some(id)))
    }

    /// Jobs of every user: for the platform itself. Callers list through [`JobService::list_as`].
    pub async fn list(&self, query: &JobQuery) -> Result<JobPage, ServiceError> {
        let query = query.clone().checked().map_err(ServiceError::BadRequest)?;
        self.jobs.list(&query).await.map_err(|e| ServiceError::from_store(e, None))
    }

    /// `range` of a job's stdout or stderr as written so far (nothing written reads as empty):
    /// of its current attempt, or of the earlier `attempt` asked.
    pub async fn open_log(&self, caller: &Caller, id: JobId, artifact: Artifact, range: ByteRange, attempt: Option<u32>) -> Result<ArtifactReader, ServiceError> {
        let job = self.get_as(caller, id).await?;
        let opened = match attempt {
            None => self.artifacts.open_range(id, artifact, range).await,
            Some(asked) if asked == job.attempt => self.artifacts.open_range(id, artifact, range).await,
            Some(asked) if (1..job.attempt).contains(&asked) => self.artifacts.open_archived(id, asked, artifact, range).await,
            Some(asked) => {
                return Err(ServiceError::NotFound(format!(
                    "job {id} has no attempt {asked}: it is at attempt {} (attempts count from 1)",
                    job.attempt
                )));
            }
        };
        match opened {
            Ok(Some(reader)) => Ok(reader),
            Ok(None) => match range {
                ByteRange::All => Ok(ArtifactReader::empty()),
                _ => Err(ServiceError::RangeNotSatisfiable { total: 0 }),
            },
            Err(error) => Err(ServiceError::from_store(error, Some(id))),
        }
    }

    /// A job's result, as stored JSON; `NotFound` saying why when there is none.
    pub async fn open_result(&self, caller: &Caller, id: JobId) -> Result<ArtifactReader, ServiceError> {
        let (job, recorded) = self.jobs.get_with_result(id).await.map_err(|e| ServiceError::from_store(e, Some(id)))?;
        if !self.catalog_held().access().may_read_job(caller, &job.user) {
            return Err(ServiceError::job_not_found(id));
        }
        if let Some(json) = recorded {
            return Ok(ArtifactReader::whole(json.into()));
        }
        let reader = self
            .artifacts
            .open(id, Artifact::Result)
            .await
            .map_err(|e| ServiceError::from_store(e, Some(id)))?;
        reader.ok_or_else(|| {
            ServiceError::NotFound(if job.status.is_terminal() {
                format!("job {id} ended {} without a result", job.status)
            } else {
                format!("job {id} has no result yet: it is {}", job.status)
            })
        })
    }

    /// `result` if it fits an answer inline (`inline_result_limit`), else `None` (read it with
    /// `/result`).
    pub(crate) fn inline_sized(&self, result: JobResult) -> Option<JobResult> {
        let size = serde_json::to_vec(&result).map(|bytes| bytes.len() as u64).unwrap_or(u64::MAX);
        (size <= self.settings.inline_result_limit).then_some(result)
    }

    /// The result of job `id` if it fits an answer inline: `recorded` with the job when it was,
    /// else read from the artifact store.
    pub(crate) async fn inline_result(&self, id: JobId, recorded: Option<String>) -> Option<JobResult> {
        if let Some(json) = recorded {
            return self.inline_sized(serde_json::from_str(&json).ok()?);
        }
        let reader = self.artifacts.open(id, Artifact::Result).await.ok()??;
        if reader.length.is_some_and(|length| length > self.settings.inline_result_limit) {
            return None;
        }
        serde_json::from_slice(&reader.read_all().await.ok()?).ok()
    }

    /// Asks a job to stop. Only its owner and admins may (others who can read it get 403,
    /// others 404). Answers the job as it is after the request: CANCELING while the plugin
    /// cleans up, CANCELED when there was nothing to stop. `canceled_by` records the caller.
    #[tracing::instrument(skip(self, caller), fields(job_id = %id, user = %caller.user))]
    pub async fn cancel(&self, caller: &Caller, id: JobId) -> Result<Job, ServiceError> {
        let mut job = self.get_as(caller, id).await?;
        let user = caller.user.as_str();
        if !self.catalog_held().access().may_cancel_job(caller, &job.user) {
            return Err(ServiceError::Forbidden(format!(
                "job {id} belongs to `{}`; only its owner or an admin can cancel it",
                job.user
            )));
        }
        loop {
            if job.status == JobStatus::Canceling {
                return Ok(job);
            }
            if job.status.is_terminal() {
                return Err(ServiceError::Conflict(format!(
                    "job {id} already ended {}; only NEW, ACCEPTED or RUNNING jobs can be canceled",
                    job.status
                )));
            }
            let change = StatusChange::new(job.status, JobStatus::Canceling, now_epoch_seconds())?
                .with_canceled_by(user);
            match self.jobs.transition(id, &change).await {
                Ok(canceling) => {
                    // Running work, not a job between attempts (nothing runs while it waits).
                    let was_running = job.status == JobStatus::Running && !job.waits_for_retry();
                    job = canceling;
                    if self.running.cancel(id) {
                        // This process runs it: the execution stops its plugin, records CANCELED.
                        return Ok(job);
                    }
                    if let Some(workflows) = &self.workflows {
                        // Its workflow may be running elsewhere: stop it, then record the end.
                        workflows.stop(id, &format!("canceled by {user}")).await.map_err(|e| ServiceError::Unavailable(e.to_string()))?;
                        if was_running && self.work_runs_in_step(&job).await {
                            // A step's process runs the work: the step sees the cancel within
                            // seconds, stops it, and records CANCELED (the janitor does, if no
                            // step runs any more).
                            return Ok(job);
                        }
                        self.cancel_plugin_work(&job).await;
                        return Ok(self.settle(job, JobStatus::Canceled, None, None).await);
                    }
                    if was_running {
                        // Running in a process that stopped: start-up recovery settles it.
                        return Ok(job);
                    }
                    // Queued, not started: nothing to stop.
                    return Ok(self.settle(job, JobStatus::Canceled, None, None).await);
                }
                Err(StoreError::Conflict { .. }) => job = self.get(id).await?,
                Err(error) => return Err(ServiceError::from_store(error, Some(id))),
            }
        }
    }

    /// Runs a queued job to its end (what a queue consumer calls). A job that already left
    /// ACCEPTED (a duplicate delivery, a cancel) is answered as it is.
    #[tracing::instrument(skip(self), fields(job_id = %id))]
    pub async fn run_queued(self: &Arc<Self>, id: JobId) -> Result<Job, ServiceError> {
        // Most wait ACCEPTED: claimed at once, in one write that answers the job (no read first).
        let claim = StatusChange::new(JobStatus::Accepted, JobStatus::Running, now_epoch_seconds())?;
        match self.jobs.transition(id, &claim).await {
            Ok(running) => return Ok(self.execute_claimed(running).await),
            Err(StoreError::Conflict { .. }) => {}
            Err(error) => return Err(ServiceError::from_store(error, Some(id))),
        }
        let job = self.get(id).await?;
        match job.status {
            _ if job.waits_for_retry() => Ok(self.execute(job).await),
            // A cancel that came first: nothing ran, so nothing to stop.
            JobStatus::Canceling => Ok(self.settle(job, JobStatus::Canceled, None, None).await),
            status => {
                tracing::info!(%status, "queued job is no longer waiting; skipped");
                Ok(job)
            }
        }
    }

    /// After a stop of the single process that owns every job: jobs it was running failed,
    /// cancels finish, and queued jobs, and jobs waiting for a retry, go back on the queue
    /// (oldest first; a retry still waits for its time).
    pub async fn recover_after_restart(&self) -> Result<Recovery, ServiceError> {
        let mut recovery = Recovery::default();
        for job in self.all_in(&[JobStatus::Running, JobStatus::New]).await? {
            if job.waits_for_retry() {
                self.requeue(&job).await?;
                recovery.requeued += 1;
                continue;
            }
            let message = format!(
                "the server stopped while this job was {}; it did not finish",
                job.status
            );
            self.settle(job, JobStatus::Failed, Some(message), None).await;
            recovery.failed += 1;
        }
        for job in self.all_in(&[JobStatus::Canceling]).await? {
            self.settle(job, JobStatus::Canceled, None, None).await;
            recovery.canceled += 1;
        }
        for job in self.all_in(&[JobStatus::Accepted]).await? {
            self.requeue(&job).await?;
            recovery.requeued += 1;
        }
        Ok(recovery)
    }

    /// Puts `job` back on the queue, with its command's plugin (none if the command is gone:
    /// the job then fails when it is taken).
    async fn requeue(&self, job: &Job) -> Result<(), ServiceError> {
        let plugin = self.plugin_name_of(job).await.unwrap_or_default();
        Ok(self.queue.enqueue(job.id, &plugin).await?)
    }

    /// Every job in one of `statuses`, oldest first within each status. One listing per
    /// status: each is a read of that status's index on DynamoDB, never of every job.
    pub(crate) async fn all_in(&self, statuses: &[JobStatus]) -> Result<Vec<Job>, ServiceError> {
        let mut all = Vec::new();
        for status in statuses {
            let mut query = JobQuery { statuses: vec![*status], direction: SortDirection::Asc, limit: 100, ..JobQuery::default() };
            loop {
                let page = self.list(&query).await?;
                all.extend(page.jobs);
                match page.next_cursor {
                    Some(cursor) => query.cursor = Some(cursor),
                    None => break,
                }
            }
        }
        Ok(all)
    }

    /// Moves `job` to `to`, recording error and exit code. A conflict means another actor moved
    /// it first; the stored job is answered then. Store failures are logged, never raised:
    /// callers are finishing work and have no one to report to.
    pub(crate) async fn settle(&self, job: Job, to: JobStatus, error: Option<String>, exit_code: Option<i32>) -> Job {
        self.settle_as(job, to, error, exit_code, Write::AfterReading).await
    }

    /// `settle`, the change written as `write` says (`Held`: onto `job` as this process holds
    /// it, no read first, for the end of a run this process drove itself).
    pub(crate) async fn settle_as(&self, job: Job, to: JobStatus, error: Option<String>, exit_code: Option<i32>, write: Write) -> Job {
        let change = match StatusChange::new(job.status, to, now_epoch_seconds()) {
            Ok(change) => change,
            Err(illegal) => {
                tracing::warn!(job_id = %job.id, %illegal, "status change skipped");
                return job;
            }
        };
        let change = match error {
            Some(message) => change.with_error(message),
            None => change,
        }
        .with_exit_code(exit_code)
        .with_cost_usd(if job.is_sync && to.is_terminal() { self.sync_job_cost() } else { None });
        let written = match write {
            Write::AfterReading => self.jobs.transition(job.id, &change).await,
            Write::Held { result } => self.jobs.transition_held(&job, &change.with_result(result)).await,
        };
        match written {
            Ok(stored) => {
                tracing::info!(job_id = %job.id, from = %job.status, to = %to, "job status changed");
                if to.is_terminal() {
                    self.metrics.finished(&stored);
                }
                stored
            }
            Err(StoreError::Conflict { current }) => {
                tracing::info!(job_id = %job.id, %current, wanted = %to, "job was moved by someone else");
                self.jobs.get(job.id).await.unwrap_or(job)
            }
            Err(error) => {
                tracing::error!(job_id = %job.id, error.message = %error, wanted = %to, "could not record a job's status");
                job
            }
        }
    }
}

/// How a status change is written: after reading the stored job, or onto the job held (with
/// the small result the run held for the job's record, if any).
pub(crate) enum Write {
    AfterReading,
    Held { result: Option<std::sync::Arc<str>> },
}
