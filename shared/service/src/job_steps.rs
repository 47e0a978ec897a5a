//! An async job's life as separate steps, for a workflow engine that calls one step at a time
//! (the Step Functions state machine in `statemachines/`, each step one Lambda call):
//! dispatch → submit (which claims the job) → (wait, poll)* → finalize, and fail from any
//! step's Catch. (`claim` alone is kept for executions started by an earlier state machine.)
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

/// The longest a workflow waits for the event that ends a job's work before it polls once
/// (for an event that never came).
pub const AWAIT_SAFETY_POLL: Duration = Duration::from_secs(3600);

/// Where a step left the job: ended (its end recorded by the step: the workflow ends), done
/// (go finalize) or not (wait `wait_seconds`, then poll; or, `await_event`, wait for the event
/// that says the work ended, at most `await_seconds`); or not run at all (`proceed` false:
/// canceled before it started; the workflow ends). Serialized as the state machine's
/// `ResultSelector`s read it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StepAnswer {
    pub proceed: bool,
    pub ended: bool,
    pub done: bool,
    pub handle: Value,
    /// Whole seconds (what a state machine's Wait takes), rounded up so the wait keeps growing.
    pub wait_seconds: u64,
    pub await_event: bool,
    /// Whole seconds, at least 1 (a Task's timeout).
    pub await_seconds: u64,
}

impl StepAnswer {
    fn from_step(step: Step, wait: Duration) -> Self {
        let wait_seconds = wait.as_secs_f64().ceil() as u64;
        let (done, handle) = match step {
            Step::Pending(handle) => (false, handle),
            Step::Complete(handle) => (true, handle),
        };
        Self { proceed: true, ended: false, done, handle, wait_seconds, await_event: false, await_seconds: 1 }
    }

    /// A pending step of a plugin whose work ends with an event (`ends_with_event`) waits for
    /// it, at most until the safety poll or the job's deadline (`deadline_in` from now).
    fn awaiting_event_if(mut self, ends_with_event: bool, deadline_in: Duration) -> Self {
        if ends_with_event && !self.done {
            self.await_event = true;
            self.await_seconds = deadline_in.min(AWAIT_SAFETY_POLL).as_secs().max(1);
        }
        self
    }

    /// The job will not run: it was canceled before its submit.
    fn not_run() -> Self {
        Self { proceed: false, ..Self::from_step(Step::Pending(Value::Null), Duration::ZERO) }
    }

    /// The step ran the job to its end and recorded it (no finalize step).
    fn ended() -> Self {
        Self { ended: true, ..Self::from_step(Step::Complete(Value::Null), Duration::ZERO) }
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
    /// With the job's `plugin` known (the queue message says it), the workflow is started
    /// without reading the job: one that left ACCEPTED meanwhile (canceled while queued) ends
    /// at its submit step, one whose command is gone fails there.
    pub async fn dispatch_job(&self, id: JobId, plugin: Option<&str>) -> Result<Dispatched, ServiceError> {
        let Some(workflows) = &self.workflows else {
            return Err(ServiceError::Internal("this deployment has no workflow engine to dispatch to".into()));
        };
        let plugin = match plugin.filter(|plugin| !plugin.is_empty()) {
            Some(plugin) => plugin.to_owned(),
            None => {
                let job = self.get(id).await?;
                if job.status != JobStatus::Accepted {
                    return Ok(Dispatched::NotWaiting(job.status));
                }
                let Some(plugin) = self.plugin_name_of(&job).await else {
                    let message = format!("command `{}` is no longer in the config", job.command_id.as_deref().unwrap_or("?"));
                    self.settle(job, JobStatus::Failed, Some(message), None).await;
                    return Ok(Dispatched::NotWaiting(JobStatus::Failed));
                };
                plugin
            }
        };
        let started = workflows.start(id, &plugin).await.map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        Ok(if started { Dispatched::Started } else { Dispatched::AlreadyStarted })
    }

    /// Step `claim` of the earlier state machine (submit claims now; executions started before
    /// still call it): ACCEPTED → RUNNING. `false`: the job was canceled meanwhile; stop here.
    #[tracing::instrument(skip(self), fields(job_id = %id))]
    pub async fn step_claim(&self, id: JobId, plugin: &str) -> Result<bool, PluginError> {
        let job = self.jobs.get(id).await.map_err(|e| store_failure(id, e))?;
        self.plugin_of_job(&job, plugin)?;
        match job.status {
            JobStatus::Accepted => Ok(self.claim_queued(job, false).await?.is_some()),
            JobStatus::Canceling | JobStatus::Canceled => {
                self.settle(job, JobStatus::Canceled, None, None).await;
                Ok(false)
            }
            // A retried claim whose first try went through.
            JobStatus::Running => Ok(true),
            other => Err(PluginError::InvalidContext(format!("job {id} is {other}; it cannot start"))),
        }
    }

    /// Step `submit`: claims a job still ACCEPTED (ACCEPTED → RUNNING; one step and two state
    /// transitions fewer than a claim step of its own), then hands it to its plugin. Work that
    /// runs inside this step (shell) is claimed first, in the same write as the job, so a submit
    /// retried after a crash never starts it twice; it is watched while it runs: a cancel stops
    /// it within seconds. A job canceled before it ran answers `proceed: false`.
    #[tracing::instrument(skip(self), fields(job_id = %id))]
    pub async fn step_submit(&self, id: JobId, plugin: &str) -> Result<StepAnswer, PluginError> {
        let job = self.jobs.get(id).await.map_err(|e| store_failure(id, e))?;
        let runs_in_step = self.plugin_of_job(&job, plugin)?.is_some_and(|plugin| plugin.work_runs_in_step());
        let (job, work_claimed) = match job.status {
            JobStatus::Accepted => match self.claim_queued(job, runs_in_step).await? {
                Some((running, claimed_here)) => (running, claimed_here && runs_in_step),
                None => return Ok(StepAnswer::not_run()),
            },
            JobStatus::Canceling | JobStatus::Canceled => {
                self.settle(job, JobStatus::Canceled, None, None).await;
                return Ok(StepAnswer::not_run());
            }
            _ => (job, false),
        };
        // A plugin done within this step is finalized here too: its small result goes with the end.
        let run = self.run_of(job.clone(), plugin).await?.recording_its_end(self.jobs.recorded_result_limit());
        let plugin = self.plugin_of(&run)?;
        let step = if plugin.work_runs_in_step() {
            if !work_claimed && !self.jobs.claim_work_start(id, now_epoch_seconds()).await.map_err(|e| store_failure(id, e))? {
                return Err(PluginError::JobFailed {
                    message: "the step running this job stopped after it had started the job's work (its function crashed or timed out); the work is not started again, so it never runs twice".into(),
                    exit_code: None,
                });
            }
            self.watched(&run, &*plugin, plugin.submit(&run)).await
        } else {
            plugin.submit(&run).await
        };
        let step = match step {
            Ok(step) => step,
            Err(error) => {
                self.keep_written_result(&run).await;
                return Err(error);
            }
        };
        match step {
            // Done already (ping, shell): finalized and ended in this step, with no finalize
            // step (a Lambda call, a read and a state transition fewer).
            Step::Complete(handle) => {
                self.finish(job, &run, &*plugin, &handle).await?;
                Ok(StepAnswer::ended())
            }
            Step::Pending(_) => {
                self.keep_written_result(&run).await;
                self.keep_handle(&job, &step).await;
                let deadline_in = self.deadline_in(&job, &run);
                Ok(StepAnswer::from_step(step, PollBackoff::FIRST).awaiting_event_if(plugin.ends_with_event(&run), deadline_in))
            }
        }
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
                        // A cancel that came while the work failed wins, as in one process (a
                        // success needs no look: its end is written only onto a RUNNING job).
                        if result.is_ok() {
                            return result;
                        }
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
        self.poll_run(job, &run, handle, waited).await
    }

    /// A poll of `job`'s work, as read by the caller (`run` built from it).
    pub(crate) async fn poll_run(&self, job: Job, run: &PluginRun, handle: &Value, waited: Duration) -> Result<StepAnswer, PluginError> {
        let id = job.id;
        let limit = self.deadline_seconds(run);
        let ran_for = now_epoch_seconds() - job.started_at.unwrap_or(job.created_at);
        if ran_for > limit as i64 {
            let plugin = self.plugin_of(run)?;
            if let Err(error) = plugin.cancel(run, Some(handle)).await {
                tracing::warn!(job_id = %id, error.message = %error, "could not stop an overdue job");
            }
            return Err(PluginError::TimedOut { seconds: limit });
        }
        let plugin = self.plugin_of(run)?;
        let step = plugin.poll(run, handle).await?;
        self.keep_handle(&job, &step).await;
        // The attempt's run time so far bounds the next wait (a retry starts again short).
        let attempt_ran_for = now_epoch_seconds() - job.attempt_started_at.or(job.started_at).unwrap_or(job.created_at);
        let answer = StepAnswer::from_step(step, PollBackoff::after(waited, Duration::from_secs(attempt_ran_for.max(0) as u64)));
        Ok(answer.awaiting_event_if(plugin.ends_with_event(run), self.deadline_in(&job, run)))
    }

    /// How long `job` may still run before its deadline (the command's timeout).
    fn deadline_in(&self, job: &Job, run: &PluginRun) -> Duration {
        let ran_for = now_epoch_seconds() - job.started_at.unwrap_or(job.created_at);
        // A second past it, so the safety poll that ends the wait finds the job overdue.
        Duration::from_secs((self.deadline_seconds(run) as i64 - ran_for + 1).max(1) as u64)
    }

    /// Step `finalize`: the plugin stores what is left, the job is SUCCEEDED (or CANCELED if a
    /// cancel came in meanwhile).
    #[tracing::instrument(skip(self, handle), fields(job_id = %id))]
    pub async fn step_finalize(&self, id: JobId, plugin: &str, handle: &Value) -> Result<Job, PluginError> {
        let (job, run) = self.running_job(id, plugin).await?;
        // This step records the end: a small result the plugin writes goes with it.
        let run = run.recording_its_end(self.jobs.recorded_result_limit());
        let plugin = self.plugin_of(&run)?;
        self.finish(job, &run, &*plugin, handle).await
    }

    /// The plugin's finalize, then the end recorded onto `job` as this step read it: nothing
    /// else writes it but a cancel, which still wins. A result the run held goes with the end
    /// (or, when finalize fails, to the artifact store).
    async fn finish(&self, job: Job, run: &PluginRun, plugin: &dyn heimdall_ports::Plugin, handle: &Value) -> Result<Job, PluginError> {
        let outcome = match plugin.finalize(run, handle).await {
            Ok(outcome) => outcome,
            Err(error) => {
                self.keep_written_result(run).await;
                return Err(error);
            }
        };
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
        self.plugin_name_of(job).await.and_then(|name| self.plugins.get(&name).cloned()).is_some_and(|plugin| plugin.work_runs_in_step())
    }

    /// The name of `job`'s command's plugin; `None` when the command is gone from the catalog.
    pub(crate) async fn plugin_name_of(&self, job: &Job) -> Option<String> {
        let catalog = self.catalog_naming(job.command_id.as_deref(), None).await;
        job.command_id.as_deref().and_then(|id| catalog.command(id)).map(|command| command.plugin.clone())
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

    /// Claims an ACCEPTED job: ACCEPTED → RUNNING written onto the job just read (a cancel in
    /// between makes it a conflict), with its work claimed in the same write when `claim_work`.
    /// `None`: canceled meanwhile (settled here), not to run; else the job RUNNING and whether
    /// this call claimed it (not an earlier try of the same step).
    async fn claim_queued(&self, job: Job, claim_work: bool) -> Result<Option<(Job, bool)>, PluginError> {
        let id = job.id;
        let now = now_epoch_seconds();
        let change = StatusChange::new(JobStatus::Accepted, JobStatus::Running, now).expect("ACCEPTED → RUNNING is legal");
        let mut held = job;
        if claim_work {
            held.work_started_at = Some(now);
        }
        match self.jobs.transition_held(&held, &change).await {
            Ok(running) => Ok(Some((running, true))),
            Err(StoreError::Conflict { current }) => {
                let found = self.jobs.get(id).await.map_err(|e| store_failure(id, e))?;
                match current {
                    JobStatus::Canceling => {
                        self.settle(found, JobStatus::Canceled, None, None).await;
                        Ok(None)
                    }
                    JobStatus::Canceled => Ok(None),
                    // Claimed by an earlier try of this step whose answer was lost.
                    JobStatus::Running => Ok(Some((found, false))),
                    other => Err(PluginError::InvalidContext(format!("job {id} is {other}; it cannot start"))),
                }
            }
            Err(error) => Err(store_failure(id, error)),
        }
    }

    /// The plugin of `job`'s command, refusing a job of another plugin than `plugin` (the one
    /// of the function taking the step); `None` when the command is gone.
    fn plugin_of_job(&self, job: &Job, plugin: &str) -> Result<Option<std::sync::Arc<dyn heimdall_ports::Plugin>>, PluginError> {
        let Some(command) = job.command_id.as_deref().and_then(|c| self.catalog_held().command(c).cloned()) else {
            return Ok(None);
        };
        check_plugin(job.id, &command.plugin, plugin)?;
        Ok(self.plugins.get(&command.plugin).cloned())
    }

    /// The job, which must be RUNNING on `plugin`, and what its plugin needs.
    pub(crate) async fn running_job(&self, id: JobId, plugin: &str) -> Result<(Job, PluginRun), PluginError> {
        let job = self.jobs.get(id).await.map_err(|e| store_failure(id, e))?;
        let run = self.run_of(job.clone(), plugin).await?;
        Ok((job, run))
    }

    /// What `job`'s plugin needs to take a step, the job being RUNNING on `plugin`.
    async fn run_of(&self, job: Job, plugin: &str) -> Result<PluginRun, PluginError> {
        let id = job.id;
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
        Ok(run)
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

    /// The state transitions of an async job polled for `seconds`: Submit (which claims), Done?,
    /// then Wait, Poll, Done? per poll, then Finalize.
    fn transitions_of_a_job_running(seconds: u64) -> usize {
        let mut elapsed = 0;
        let polls = poll_waits().take_while(|wait| {
            let before = elapsed;
            elapsed += wait;
            before < seconds
        });
        3 + 3 * polls.count()
    }

    /// The state transitions of a job awaiting its work's end event for `seconds`: Submit,
    /// Done?, AwaitEnd, then Done?, Finalize when the event comes, and Poll, Done?, AwaitEnd
    /// for each safety poll (each hour that passes without it).
    fn transitions_of_an_awaited_job(seconds: u64) -> usize {
        5 + 3 * (seconds.div_ceil(AWAIT_SAFETY_POLL.as_secs()) - 1) as usize
    }

    #[test]
    fn a_two_hour_job_costs_a_few_hundred_state_transitions_growing_with_the_log_of_its_run_time() {
        let (minute, hour, two_hours, day) = (transitions_of_a_job_running(60), transitions_of_a_job_running(3600), transitions_of_a_job_running(7200), transitions_of_a_job_running(86_400));
        // What scripts/bench prints (docs/BENCHMARKS.md).
        for (label, seconds) in [("10 s", 10), ("1 min", 60), ("10 min", 600), ("30 min", 1800), ("1 h", 3600), ("2 h", 7200), ("24 h", 86_400)] {
            eprintln!("| polled job running {label} | {} state transitions |", transitions_of_a_job_running(seconds));
        }
        for (label, seconds) in [("10 s", 10), ("2 h", 7200), ("24 h", 86_400)] {
            eprintln!("| spark job awaiting EMR's event, running {label} | {} state transitions |", transitions_of_an_awaited_job(seconds));
        }
        assert_eq!(two_hours, 243, "was 743 with waits capped at 30 s and a claim step of its own");
        assert_eq!(transitions_of_an_awaited_job(7200), 8, "Submit, Done?, AwaitEnd, Done?, Finalize and one safety poll");
        assert!(minute < hour && hour < two_hours && two_hours < day, "{minute} {hour} {two_hours} {day}");
        // Doubling the run time past the cap's reach adds polls at five minutes each; below it,
        // about 22 polls per tenfold (log growth).
        assert!(two_hours - hour <= 3 * 12 + 3, "{hour} → {two_hours}");
    }

    #[test]
    fn a_pending_step_of_a_plugin_ending_with_an_event_waits_for_it_until_the_safety_poll_or_the_deadline() {
        let pending = || StepAnswer::from_step(Step::Pending(Value::Null), Duration::from_secs(1));
        let waits = pending().awaiting_event_if(true, Duration::from_secs(7200));
        assert!(waits.await_event);
        assert_eq!(waits.await_seconds, AWAIT_SAFETY_POLL.as_secs());
        assert_eq!(pending().awaiting_event_if(true, Duration::from_secs(90)).await_seconds, 90, "not past the deadline");
        assert!(!pending().awaiting_event_if(false, Duration::from_secs(90)).await_event, "other plugins poll");
        let done = StepAnswer::from_step(Step::Complete(Value::Null), Duration::from_secs(1)).awaiting_event_if(true, Duration::from_secs(90));
        assert!(!done.await_event, "a done step goes to finalize");
        // What the state machine's ResultSelectors read.
        let fields: Vec<String> = serde_json::to_value(&waits).unwrap().as_object().unwrap().keys().cloned().collect();
        assert_eq!(fields, ["await_event", "await_seconds", "done", "ended", "handle", "proceed", "wait_seconds"]);
    }
}
