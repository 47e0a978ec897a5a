//! Driving one job through its plugin's steps in this process: the in-process counterpart of
//! the Step Functions state machine (claim RUNNING, submit, poll with a growing wait, finalize,
//! record the outcome), used for sync jobs and for async jobs of `heimdall serve`.

use std::sync::Arc;
use std::time::Duration;

use heimdall_domain::{Job, JobResult, JobStatus};
use heimdall_domain::clock::now_epoch_seconds;
use heimdall_ports::{PluginError, PluginRun, RunOutcome, StatusChange, StoreError};

use crate::job_service::{JobService, Write};

/// How often a job running in this process says it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);

enum Ended {
    Finished(Result<RunOutcome, PluginError>),
    CancelRequested,
    /// A sync job ran past its sync limit (seconds).
    PastSyncLimit(u64),
}

impl JobService {
    /// Runs `job` (NEW or ACCEPTED, or RUNNING while it waits for a retry) to a final status,
    /// attempt after attempt as its command's `retry` allows, and answers it as stored.
    pub(crate) async fn execute(self: &Arc<Self>, job: Job) -> Job {
        self.drive(job, &mut None, false).await
    }

    /// [`JobService::execute`] for a job its caller has just moved to RUNNING.
    pub(crate) async fn execute_claimed(self: &Arc<Self>, job: Job) -> Job {
        self.drive(job, &mut None, true).await
    }

    /// [`JobService::execute`], answering also the result the plugin stored (when it stored it
    /// through `PluginRun::write_result`): what a sync job's answer carries without reading it
    /// back.
    pub(crate) async fn execute_keeping_result(self: &Arc<Self>, job: Job) -> (Job, Option<JobResult>) {
        let mut kept = None;
        let job = self.drive(job, &mut kept, false).await;
        (job, kept)
    }

    async fn drive(self: &Arc<Self>, job: Job, kept: &mut Option<JobResult>, claimed: bool) -> Job {
        let Some(registration) = self.running.register(job.id) else {
            tracing::info!(job_id = %job.id, "job is already running in this process; not run twice");
            return self.jobs.get(job.id).await.unwrap_or(job);
        };
        // Already RUNNING: claimed by the caller, a sync job recorded so at submit, or a retry
        // waiting for its time.
        let mut job = if job.status == JobStatus::Running && (claimed || job.is_sync || job.attempt_started_at.is_some()) {
            job
        } else {
            match self.claim(job).await {
                Ok(job) => job,
                Err(job) => return job,
            }
        };
        // One limit for the whole request, retries and their waits included.
        let sync_limit = if job.is_sync { self.sync_limit_seconds_of(&job).await } else { None };
        let past_sync_limit = async {
            match sync_limit {
                Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(past_sync_limit);
        loop {
            // A retry waits for its time (after a restart too), a cancel ends the wait.
            let wait = job.attempt_started_at.map_or(0, |starts_at| starts_at - now_epoch_seconds());
            if wait > 0 {
                tokio::select! {
                    biased;
                    () = registration.token.cancelled() => return self.settle_canceled(job).await,
                    () = &mut past_sync_limit => return self.fail_past_sync_limit(job, sync_limit.unwrap_or_default()).await,
                    () = tokio::time::sleep(Duration::from_secs(wait.unsigned_abs())) => {}
                }
            }
            let Some(run) = self.plugin_run(&job).await.map(|run| run.recording_its_end(self.jobs.recorded_result_limit())) else {
                let message = format!(
                    "command `{}` or cluster `{}` is no longer in the config",
                    job.command_id.as_deref().unwrap_or("?"),
                    job.cluster_id.as_deref().unwrap_or("?")
                );
                return self.settle(job, JobStatus::Failed, Some(message), None).await;
            };
            let Some(plugin) = self.plugins.get(&run.command.plugin).cloned() else {
                let message = format!("plugin `{}` is not loaded", run.command.plugin);
                return self.settle(job, JobStatus::Failed, Some(message), None).await;
            };
            // A retry marks its start: after a restart, a job whose retry had begun is not
            // begun again (it fails as cut off), one still waiting resumes.
            if job.attempt_started_at.is_some() {
                match self.jobs.claim_work_start(job.id, now_epoch_seconds()).await {
                    Ok(true) => {}
                    Ok(false) | Err(_) => return self.jobs.get(job.id).await.unwrap_or(job),
                }
            }

            let mut handle = None;
            let ended = {
                let finished = plugin.run(&run, &mut handle);
                tokio::pin!(finished);
                // The heartbeat beats in this loop, beside the plugin: a plugin that blocks the
                // thread stops it too, and the janitor notices.
                let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT_INTERVAL, HEARTBEAT_INTERVAL);
                loop {
                    tokio::select! {
                        biased;
                        () = registration.token.cancelled() => break Ended::CancelRequested,
                        () = &mut past_sync_limit => break Ended::PastSyncLimit(sync_limit.unwrap_or_default()),
                        _ = heartbeat.tick() => self.beat(job.id).await,
                        result = &mut finished => break Ended::Finished(result),
                    }
                }
            };
            match ended {
                Ended::Finished(Ok(outcome)) => {
                    *kept = run.written_result.get().map(|written| written.result.clone());
                    return self.record_end(job, JobStatus::Succeeded, None, outcome.exit_code, run.result_to_record()).await;
                }
                Ended::Finished(Err(error)) => {
                    self.keep_written_result(&run).await;
                    tracing::info!(job_id = %job.id, attempt = job.attempt, error_type = error.error_type(), error.message = %error, "attempt failed");
                    self.metrics.plugin_error(&run.command.plugin, error.error_type());
                    // The retry's write is conditioned on the job still running this attempt: a
                    // cancel that came meanwhile wins (record_end settles it CANCELED).
                    match self.plan_retry(&job, error.error_type(), &error.to_string(), error.exit_code()).await {
                        Some(retry) => job = retry.job,
                        None => return self.record_end(job, JobStatus::Failed, Some(error.to_string()), error.exit_code(), None).await,
                    }
                }
                Ended::PastSyncLimit(seconds) => {
                    self.keep_written_result(&run).await;
                    // Stopped here, never left running: a sync job's work lives in this request.
                    if let Err(error) = plugin.cancel(&run, handle.as_ref()).await {
                        tracing::warn!(job_id = %job.id, error.message = %error, "plugin cancel failed");
                    }
                    return self.fail_past_sync_limit(job, seconds).await;
                }
                Ended::CancelRequested => {
                    self.keep_written_result(&run).await;
                    if let Err(error) = plugin.cancel(&run, handle.as_ref()).await {
                        tracing::warn!(job_id = %job.id, error.message = %error, "plugin cancel failed");
                    }
                    return self.settle_canceled(job).await;
                }
            }
        }
    }

    /// Records that a sync job ran past its sync limit of `seconds` (its work already stopped).
    async fn fail_past_sync_limit(&self, job: Job, seconds: u64) -> Job {
        let message = format!(
            "the job ran past its sync limit of {seconds} s and was stopped; submit it with \"is_sync\": false to run it in the background (command `{}`'s max_sync_seconds or this runtime's limit)",
            job.command_id.as_deref().unwrap_or("?")
        );
        tracing::info!(job_id = %job.id, seconds, "sync job stopped at its sync limit");
        self.record_end(job, JobStatus::Failed, Some(message), None, None).await
    }

    /// A run that did not succeed keeps the result it wrote, as an artifact (only a success
    /// records a small result with the job).
    pub(crate) async fn keep_written_result(&self, run: &PluginRun) {
        if let Err(error) = run.write_held_result().await {
            tracing::warn!(job_id = %run.job.id, error.message = %error, "could not keep the result of a run that did not succeed");
        }
    }

    /// Records CANCELED for a job whose cancel this process acted on (read again: the stored
    /// job is CANCELING, the one in hand may not say so).
    async fn settle_canceled(&self, job: Job) -> Job {
        let job = self.jobs.get(job.id).await.unwrap_or(job);
        self.settle(job, JobStatus::Canceled, None, None).await
    }

    /// Records that `id` is alive; a failure is logged (the next beat may pass).
    pub(crate) async fn beat(&self, id: heimdall_domain::JobId) {
        if let Err(error) = self.jobs.heartbeat(id, now_epoch_seconds()).await {
            tracing::warn!(job_id = %id, error.message = %error, "could not record a heartbeat");
        }
    }

    /// Moves the job to RUNNING. `Err` carries the job as found when it may not run: claimed
    /// by another worker, or canceled meanwhile (then settled as CANCELED here).
    async fn claim(&self, job: Job) -> Result<Job, Job> {
        let change = match StatusChange::new(job.status, JobStatus::Running, now_epoch_seconds()) {
            Ok(change) => change,
            Err(_) => return Err(job),
        };
        match self.jobs.transition(job.id, &change).await {
            Ok(running) => Ok(running),
            Err(StoreError::Conflict { current }) => {
                let found = self.jobs.get(job.id).await.unwrap_or(job);
                if current == JobStatus::Canceling {
                    return Err(self.settle(found, JobStatus::Canceled, None, None).await);
                }
                tracing::info!(job_id = %found.id, %current, "job already claimed; not run twice");
                Err(found)
            }
            Err(error) => {
                tracing::error!(job_id = %job.id, error.message = %error, "could not claim a job");
                Err(job)
            }
        }
    }

    /// A finished plugin run meets a job that may have been asked to cancel meanwhile: the
    /// cancel wins (the client asked for it), otherwise the plugin's outcome is recorded. The
    /// end is written onto the job this process holds (it drove the run, or its step has just
    /// read the job), no read first.
    /// `result` is the small result the run held for the job's record (JSON), written with a
    /// successful end.
    pub(crate) async fn record_end(&self, job: Job, to: JobStatus, error: Option<String>, exit_code: Option<i32>, result: Option<Arc<str>>) -> Job {
        let ended = self.settle_as(job, to, error, exit_code, Write::Held { result }).await;
        if ended.status == JobStatus::Canceling {
            return self.settle(ended, JobStatus::Canceled, None, None).await;
        }
        ended
    }

    /// How long a sync job may run: its command's `max_sync_seconds`, never past the runtime's.
    async fn sync_limit_seconds_of(&self, job: &Job) -> Option<u64> {
        let catalog = self.catalog_naming(job.command_id.as_deref(), None).await;
        let command = catalog.command(job.command_id.as_deref()?)?;
        let runtime = self.settings.max_sync_seconds;
        Some(command.max_sync_seconds.map_or(runtime, |own| own.min(runtime)))
    }

    /// What the job's plugin needs to run it; `None` when its command or cluster is gone.
    pub(crate) async fn plugin_run(&self, job: &Job) -> Option<PluginRun> {
        let catalog = self.catalog_naming(job.command_id.as_deref(), job.cluster_id.as_deref()).await;
        let command = catalog.command(job.command_id.as_deref()?)?.clone();
        let cluster = catalog.cluster(job.cluster_id.as_deref()?)?.clone();
        Some(PluginRun::new(job.clone(), command, cluster, Arc::clone(&self.artifacts), self.settings.work_root.join(job.id.to_string())))
    }
}
