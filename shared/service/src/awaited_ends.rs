//! Jobs whose remote work announces its end as an event (spark: EMR's "EMR Job Run State
//! Change" on EventBridge). Between the submit and the finalize the workflow waits, paying
//! nothing, for whichever comes first:
//! - the await step itself finding the work over already (its event came before the wait
//!   began and found no one waiting);
//! - the event, which the events function turns into [`JobService::wake_awaiting`];
//! - the wait's timeout, a safety poll for an event that never came.
//!
//! Either way the workflow is handed what a poll would have answered: done (go finalize), or
//! the poll's failure (the fail step records it or retries the job).

use std::time::Duration;

use heimdall_domain::{Job, JobId, JobStatus};
use heimdall_ports::{PluginError, PluginRun, Resumption};
use serde_json::Value;

use crate::job_service::JobService;
use crate::service_error::ServiceError;

impl JobService {
    /// Step `await`: the workflow waits with `token` for the end of the job's work. The work is
    /// asked once; an end found is handed to the waiting task at once. `Ok(true)` when it was.
    #[tracing::instrument(skip(self, handle, token), fields(job_id = %id))]
    pub async fn step_await(&self, id: JobId, plugin: &str, handle: &Value, token: &str) -> Result<bool, PluginError> {
        let (job, run) = self.running_job(id, plugin).await?;
        let Some(end) = self.ended_work(job, &run, handle).await? else {
            return Ok(false);
        };
        let workflows = self.workflows.as_ref().ok_or_else(|| PluginError::Unavailable("this deployment has no workflow engine".into()))?;
        workflows.resume(id, Some(token), end).await.map_err(|error| PluginError::Unavailable(error.to_string()))
    }

    /// An event says the job's remote work changed state: when the work has ended, the
    /// workflow waiting for it is handed the end. `Ok(false)` when there is nothing to hand
    /// over (the job is not running, its work goes on, or no workflow is waiting: the await
    /// step or the safety poll will see the end); an error is worth retrying the event for.
    pub async fn wake_awaiting(&self, id: JobId) -> Result<bool, ServiceError> {
        let Some(workflows) = &self.workflows else {
            return Ok(false);
        };
        let job = match self.jobs.get(id).await {
            Ok(job) => job,
            Err(heimdall_ports::StoreError::NotFound) => return Ok(false),
            Err(error) => return Err(ServiceError::Unavailable(error.to_string())),
        };
        let (Some(handle), JobStatus::Running) = (job.plugin_handle.clone(), job.status) else {
            return Ok(false);
        };
        let Some(run) = self.plugin_run(&job).await else {
            return Ok(false);
        };
        let end = match self.ended_work(job, &run, &handle).await {
            Ok(Some(end)) => end,
            Ok(None) => return Ok(false),
            Err(error) => return Err(ServiceError::Unavailable(error.to_string())),
        };
        workflows.resume(id, None, end).await.map_err(|error| ServiceError::Unavailable(error.to_string()))
    }

    /// What a poll of the job's work (`run`, built from `job` as read) answers, when the work
    /// is over: done, or the poll's failure (a run that failed, a job past its deadline). `None`
    /// while it goes on. A failure to ask (the remote service unavailable) is an error: asking
    /// again may work.
    async fn ended_work(&self, job: Job, run: &PluginRun, handle: &Value) -> Result<Option<Resumption>, PluginError> {
        match self.poll_run(job, run, handle, Duration::ZERO).await {
            Ok(answer) if answer.done => Ok(Some(Resumption::Answer(serde_json::to_value(&answer).unwrap_or(Value::Null)))),
            Ok(_) => Ok(None),
            Err(error @ PluginError::Unavailable(_)) => Err(error),
            Err(error) => Ok(Some(Resumption::failure(&error))),
        }
    }
}
