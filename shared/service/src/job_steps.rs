//! An async job's life as separate steps, for a workflow engine that calls one step at a time
//! (the Step Functions state machine in `statemachines/`, each step one Lambda call):
//! dispatch → claim → submit → (wait, poll)* → finalize, and fail from any step's Catch.
//! Between steps only references travel (job id, plugin handle, wait), never output.

use std::time::Duration;

use heimdall_domain::clock::now_epoch_seconds;
use heimdall_domain::{Job, JobId, JobStatus};
use heimdall_ports::{PluginError, PluginRun, PollBackoff, StatusChange, Step, StoreError};
use serde_json::Value;

use crate::job_service::JobService;
use crate::service_error::ServiceError;

/// How often a step whose work runs in it (shell) looks at its job for a cancel.
pub const STEP_WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Where a step left the job: done (go finalize) or not (wait `wait_seconds`, then poll).
#[derive(Debug, Clone, PartialEq)]
pub struct StepAnswer {
    pub done: bool,
    pub handle: Value,
    /// Whole seconds (what a state machine's Wait takes), rounded up so the wait keeps growing.
    pub wait_seconds: u64,
}

impl StepAnswer {
    fn from_step(step: Step, wait: Duration) -> Self {
        let wait_seconds = wait.as_secs_f64().ceil() as u64;
        match step {
            Step::Pending(handle) => Self { done: false, handle, wait_seconds },
            Step::Complete(handle) => Self { done: true, handle, wait_seconds },
        }
    }
}

/// The waits between a state machine's polls of a job that stays pending (each poll taking no
/// time): a second each for the first ten seconds, then a tenth of the time waited so far, in
/// whole seconds, up to five minutes each.
pub fn poll_waits() -> impl Iterator<Item = u64> {
    let mut elapsed = 0;
    std::iter::successors(Some(PollBackoff::FIRST.as_secs()), move |previous| {
        elapsed += previous;
        let next = PollBackoff::after(Duration::from_secs(*previous), Duration::from_secs(elapsed));
        Some(StepAnswer::from_step(Step::Pending(Value::Null), next).wait_seconds)
    })
}

/// What the `fail` step decided: retry after `wait_seconds` (the job stays RUNNING at its
/// next attempt), or the job ended in `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailAnswer {
    pub retry: bool,
    pub wait_seconds: u64,
    pub status: JobStatus,
}

/// What `dispatch_job` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatched {
    Started,
    /// Its workflow had been started already (a duplicate message): nothing to do.
    AlreadyStarted,
    /// It left ACCEPTED meanwhile (canceled, failed): nothing to do.
    NotWaiting(JobStatus),
}

/// A step for a job of `job_plugin` arrived at the function of `function_plugin`.
fn check_plugin(id: JobId, job_plugin: &str, function_plugin: &str) -> Result<(), PluginError> {
    if job_plugin == function_plugin {
        Ok(())
    } else {
        Err(PluginError::InvalidContext(format!(
            "job {id} runs on plugin `{job_plugin}`, but this is the `{function_plugin}` function"
        )))
    }
}

fn not_found(id: JobId) -> PluginError {
    PluginError::InvalidContext(format!("job {id} not found"))
}

fn store_failure(id: JobId, error: StoreError) -> PluginError {
    match error {
        StoreError::NotFound => not_found(id),
        other => PluginError::Unavailable(format!("job store: {other}")),
    }
}

impl JobService {
    /// Starts the workflow of a queued job (what the queue consumer calls on AWS). A job that
    /// is no longer waiting, or whose workflow exists, is done, not an error: queues deliver
    /// at least once.
    #[tracing::instrument(skip(self), fields(job_id = %id))]
    pub async fn dispatch_job(&self, id: JobId) -> Result<Dispatched, ServiceError> {
        let Some(workflows) = &self.workflows else {
            return Err(ServiceError::Internal("this deployment has no workflow engine to dispatch to".into()));
        };
        let job = self.get(id).await?;
        if job.status != JobStatus::Accepted {
            return Ok(Dispatched::NotWaiting(job.status));
        }
        let catalog = self.catalog_naming(job.command_id.as_deref(), None).await;
        let command = job.command_id.as_deref().and_then(|c| catalog.command(c));
        let Some(command) = command else {
            let message = format!("command `{}` is no longer in the config", job.command_id.as_deref().unwrap_or("?"));
            self.settle(job, JobStatus::Failed, Some(message), None).await;
            return Ok(Dispatched::NotWaiting(JobStatus::Failed));
        };
        let started = workflows.start(id, &command.plugin).await.map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        Ok(if started { Dispatched::Started } else { Dispatched::AlreadyStarted })
    }

    /// Step `claim`: ACCEPTED → RUNNING. `false`: the job was canceled meanwhile; stop here.
    /// `plugin` is the plugin of the function taking the step: a job of another is refused.
    #[tracing::instrument(skip(self), fields(job_id = %id))]
    pub async fn step_claim(&self, id: JobId, plugin: &str) -> Result<bool, PluginError> {
        let job = self.jobs.get(id).await.map_err(|e| store_failure(id, e))?;
        if let Some(command) = job.command_id.as_deref().and_then(|c| self.catalog_held().command(c).cloned()) {
            check_plugin(id, &command.plugin, plugin)?;
        }
        match job.status {
            JobStatus::Accepted => {}
            JobStatus::Canceling | JobStatus::Canceled => {
                self.settle(job, JobStatus::Canceled, None, None).await;
                return Ok(false);
            }
            // A retried claim whose first try went through.
            JobStatus::Running => return Ok(true),
            other => return Err(PluginError::InvalidContext(format!("job {id} is {other}; it cannot start"))),
        }
        let change = StatusChange::new(JobStatus::Accepted, JobStatus::Running, now_epoch_seconds())
            .expect("ACCEPTED → RUNNING is legal");
        // Written onto the job just read: a cancel in between still makes it a conflict.
        match self.jobs.transition_held(&job, &change).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict { current: JobStatus::Running }) => Ok(true),
            Err(StoreError::Conflict { current }) => {
                let job = self.jobs.get(id).await.map_err(|e| store_failure(id, e))?;
                if current == JobStatus::Canceling {
                    self.settle(job, JobStatus::Canceled, None, None).await;
                }
                Ok(false)
            }
            Err(error) => Err(store_failure(id, error)),
        }
    }

    /// Step `submit`: hands the job to its plugin. Work that runs inside this step (shell) is
    /// claimed first, so a submit retried after a crash never starts it twice, and is watched
    /// while it runs: a cancel stops it within seconds.
    #[tracing::instrument(skip(self), fields(job_id = %id))]
    pub async fn step_submit(&self, id: JobId, plugin: &str) -> Result<StepAnswer, PluginError> {
        let (job, run) = self.running_job(id, plugin).await?;
        let plugin = self.plugin_of(&run)?;
        let step = if plugin.work_runs_in_step() {
            if !self.jobs.claim_work_start(id, now_epoch_seconds()).await.map_err(|e| store_failure(id, e))? {
                return Err(PluginError::JobFailed {
                    message: "the step running this job stopped after it had started the job's work (its function crashed or timed out); the work is not started again, so it never runs twice".into(),
                    exit_code: None,
                });
            }
            self.watched(&run, &*plugin, plugin.submit(&run)).await?
        } else {
            plugin.submit(&run).await?
        };
        self.keep_handle(&job, &step).await;
        Ok(StepAnswer::from_step(step, PollBackoff::FIRST))
    }

    /// Runs in-step `work` while watching the job: every [`STEP_WATCH_INTERVAL`] it reads the
    /// job's status (a cancel stops the work and records CANCELED), and beats every
    /// [`HEARTBEAT_INTERVAL`](crate::job_execution::HEARTBEAT_INTERVAL) so the janitor knows the step lives.
    async fn watched<T>(
        &self,
        run: &PluginRun,
        plugin: &dyn heimdall_ports::Plugin,
        work: impl std::future::Future<Output = Result<T, PluginError>>,
    ) -> Result<T, PluginError> {
        let id = run.job.id;
        let canceled = {
            tokio::pin!(work);
            let mut watch = tokio::time::interval_at(tokio::time::Instant::now() + STEP_WATCH_INTERVAL, STEP_WATCH_INTERVAL);
            let mut last_beat = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    biased;
                    result = &mut work => {
                        // A cancel that came while the work finished wins, as in one process.
                        match self.jobs.get(id).await {
                            Ok(job) if job.status == JobStatus::Canceling => break job,
                            _ => return result,
                        }
                    }
                    _ = watch.tick() => {
                        match self.jobs.get(id).await {
                            Ok(job) if job.status != JobStatus::Running => break job,
                            Ok(_) => {}
                            Err(error) => tracing::warn!(job_id = %id, error.message = %error, "could not look for a cancel"),
                        }
                        if last_beat.elapsed() >= crate::job_execution::HEARTBEAT_INTERVAL {
                            last_beat = tokio::time::Instant::now();
                            self.beat(id).await;
                        }
                    }
                }
            }
            // The work's future is dropped here: its process tree, if still running, is killed.
        };
        if let Err(error) = plugin.cancel(run, None).await {
            tracing::warn!(job_id = %id, error.message = %error, "plugin cancel failed");
        }
        let status = canceled.status;
        if status == JobStatus::Canceling {
            tracing::info!(job_id = %id, "canceled while its step ran: work stopped");
            self.settle(canceled, JobStatus::Canceled, None, None).await;
        }
        Err(PluginError::InvalidContext(format!("job {id} is {status}: its work was stopped")))
    }

    /// Step `poll`: asks the plugin again; fails the job once it has run past its deadline.
    #[tracing::instrument(skip(self, handle), fields(job_id = %id))]
    pub async fn step_poll(&self, id: JobId, plugin: &str, handle: &Value, waited: Duration) -> Result<StepAnswer, PluginError> {
        let (job, run) = self.running_job(id, plugin).await?;
        let limit = self.deadline_seconds(&run);
        let ran_for = now_epoch_seconds() - job.started_at.unwrap_or(job.created_at);
        if ran_for > limit as i64 {
            let plugin = self.plugin_of(&run)?;
            if let Err(error) = plugin.cancel(&run, Some(handle)).await {
                tracing::warn!(job_id = %id, error.message = %error, "could not stop an overdue job");
            }
            return Err(PluginError::TimedOut { seconds: limit });
        }
        let plugin = self.plugin_of(&run)?;
        let step = plugin.poll(&run, handle).await?;
        self.keep_handle(&job, &step).await;
        // The attempt's run time so far bounds the next wait (a retry starts again short).
        let attempt_ran_for = now_epoch_seconds() - job.attempt_started_at.or(job.started_at).unwrap_or(job.created_at);
        Ok(StepAnswer::from_step(step, PollBackoff::after(waited, Duration::from_secs(attempt_ran_for.max(0) as u64))))
    }

    /// Step `finalize`: the plugin stores what is left, the job is SUCCEEDED (or CANCELED if a
    /// cancel came in meanwhile).
    #[tracing::instrument(skip(self, handle), fields(job_id = %id))]
    pub async fn step_finalize(&self, id: JobId, plugin: &str, handle: &Value) -> Result<Job, PluginError> {
        let (job, run) = self.running_job(id, plugin).await?;
        // This step records the end: a small result the plugin writes goes with it.
        let run = run.recording_its_end(self.jobs.recorded_result_limit());
        let plugin = self.plugin_of(&run)?;
        let outcome = match plugin.finalize(&run, handle).await {
            Ok(outcome) => outcome,
            Err(error) => {
                self.keep_written_result(&run).await;
                return Err(error);
            }
        };
        // This step read the job; nothing else writes it but a cancel, which still wins.
        Ok(self.record_end(job, JobStatus::Succeeded, None, outcome.exit_code, run.result_to_record()).await)
    }

    /// Step `fail` (every Catch): records why the job failed. `error_type` is the caught
    /// error's name (a plugin error type, or Step Functions' own): when the command's `retry`
    /// covers it, the next attempt is set up and the answer says to wait `wait_seconds` (in the
    /// state machine, for free) and submit again.
    #[tracing::instrument(skip(self, message), fields(job_id = %id))]
    pub async fn step_fail(&self, id: JobId, error_type: &str, message: String, exit_code: Option<i32>) -> Result<FailAnswer, PluginError> {
        let job = self.jobs.get(id).await.map_err(|e| store_failure(id, e))?;
        if job.status.is_terminal() {
            return Ok(FailAnswer { retry: false, wait_seconds: 0, status: job.status });
        }
        if let Some(plugin) = job.command_id.as_deref().and_then(|c| self.catalog_held().command(c).map(|c| c.plugin.clone())) {
            self.metrics.plugin_error(&plugin, error_type);
        }
        if let Some(retry) = self.plan_retry(&job, error_type, &message, exit_code).await {
            return Ok(FailAnswer { retry: true, wait_seconds: retry.wait_seconds, status: retry.job.status });
        }
        let ended = self.record_end(job, JobStatus::Failed, Some(message), exit_code, None).await;
        Ok(FailAnswer { retry: false, wait_seconds: 0, status: ended.status })
    }

    /// Keeps a pending step's handle on the job, so a cancel from another process can reach
    /// the work (best effort: the state machine carries the handle anyway).
    async fn keep_handle(&self, job: &Job, step: &Step) {
        if let Step::Pending(handle) = step
            && job.plugin_handle.as_ref() != Some(handle)
            && let Err(error) = self.jobs.save_handle(job.id, handle).await
        {
            tracing::warn!(job_id = %job.id, error.message = %error, "could not keep the plugin's handle");
        }
    }

    /// Whether `job`'s plugin runs its work inside a step's process (shell).
    pub(crate) async fn work_runs_in_step(&self, job: &Job) -> bool {
        let catalog = self.catalog_naming(job.command_id.as_deref(), None).await;
        job.command_id
            .as_deref()
            .and_then(|id| catalog.command(id))
            .and_then(|command| self.plugins.get(&command.plugin))
            .is_some_and(|plugin| plugin.work_runs_in_step())
    }

    /// Best-effort stop of a job's plugin work after its workflow was stopped, with the handle
    /// its last step kept.
    pub(crate) async fn cancel_plugin_work(&self, job: &Job) {
        let Some(run) = self.plugin_run(job).await else { return };
        if let Ok(plugin) = self.plugin_of(&run)
            && let Err(error) = plugin.cancel(&run, job.plugin_handle.as_ref()).await
        {
            tracing::warn!(job_id = %job.id, error.message = %error, "plugin cancel failed");
        }
    }

    /// The job, which must be RUNNING on `plugin`, and what its plugin needs.
    async fn running_job(&self, id: JobId, plugin: &str) -> Result<(Job, PluginRun), PluginError> {
        let job = self.jobs.get(id).await.map_err(|e| store_failure(id, e))?;
        if job.status != JobStatus::Running {
            return Err(PluginError::InvalidContext(format!("job {id} is {}, not RUNNING", job.status)));
        }
        let run = self.plugin_run(&job).await.ok_or_else(|| {
            PluginError::InvalidContext(format!(
                "command `{}` or cluster `{}` is no longer in the config",
                job.command_id.as_deref().unwrap_or("?"),
                job.cluster_id.as_deref().unwrap_or("?")
            ))
        })?;
        check_plugin(id, &run.command.plugin, plugin)?;
        Ok((job, run))
    }

    fn plugin_of(&self, run: &PluginRun) -> Result<std::sync::Arc<dyn heimdall_ports::Plugin>, PluginError> {
        self.plugins
            .get(&run.command.plugin)
            .cloned()
            .ok_or_else(|| PluginError::InvalidContext(format!("plugin `{}` is not loaded", run.command.plugin)))
    }

    /// The command's `timeout_seconds` if it sets one below the deployment's limit.
    fn deadline_seconds(&self, run: &PluginRun) -> u64 {
        let own = run.command.context.get("timeout_seconds").and_then(Value::as_u64);
        own.unwrap_or(self.settings.max_job_seconds).min(self.settings.max_job_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machines_wait_is_a_tenth_of_the_time_waited_in_whole_seconds_up_to_the_cap() {
        let waits: Vec<u64> = poll_waits().take(24).collect();
        assert_eq!(waits, vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5]);
        assert!(poll_waits().take(200).all(|wait| wait <= 300), "the cap");
    }

    /// The state transitions of an async job polled for `seconds`: Claim, Claimed?, Submit,
    /// Done?, then Wait, Poll, Done? per poll, then Finalize.
    fn transitions_of_a_job_running(seconds: u64) -> usize {
        let mut elapsed = 0;
        let polls = poll_waits().take_while(|wait| {
            let before = elapsed;
            elapsed += wait;
            before < seconds
        });
        5 + 3 * polls.count()
    }

    #[test]
    fn a_two_hour_job_costs_a_few_hundred_state_transitions_growing_with_the_log_of_its_run_time() {
        let (minute, hour, two_hours, day) = (transitions_of_a_job_running(60), transitions_of_a_job_running(3600), transitions_of_a_job_running(7200), transitions_of_a_job_running(86_400));
        // What scripts/bench prints (docs/BENCHMARKS.md).
        for (label, seconds) in [("10 s", 10), ("1 min", 60), ("10 min", 600), ("30 min", 1800), ("1 h", 3600), ("2 h", 7200), ("24 h", 86_400)] {
            eprintln!("| polled job running {label} | {} state transitions |", transitions_of_a_job_running(seconds));
        }
        assert_eq!(two_hours, 245, "was 743 with waits capped at 30 s");
        assert!(minute < hour && hour < two_hours && two_hours < day, "{minute} {hour} {two_hours} {day}");
        // Doubling the run time past the cap's reach adds polls at five minutes each; below it,
        // about 22 polls per tenfold (log growth).
        assert!(two_hours - hour <= 3 * 12 + 3, "{hour} → {two_hours}");
    }
}
