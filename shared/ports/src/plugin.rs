use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use heimdall_domain::{Cluster, Command, Job, JobResult};
use serde_json::Value;

use crate::artifact_store::{Artifact, ArtifactStore, write_whole};
use crate::errors::{PluginError, StoreError};

/// Everything a plugin sees of one job: the job, the command and cluster it was matched to,
/// and where its output goes.
#[derive(Clone)]
pub struct PluginRun {
    pub job: Job,
    pub command: Command,
    pub cluster: Cluster,
    pub artifacts: Arc<dyn ArtifactStore>,
    /// A scratch folder the plugin may create and use for this job (removed by the plugin).
    pub work_dir: PathBuf,
    /// How large a result may stay in memory until the job's end is recorded with it (the job
    /// store's `recorded_result_limit`): 0 unless the process running the plugin also records
    /// the end (not a step that only submits).
    pub recorded_result_limit: usize,
    /// The result [`PluginRun::write_result`] stored.
    pub written_result: Arc<std::sync::OnceLock<WrittenResult>>,
}

/// A result a plugin wrote, kept so a sync job's answer is built from memory rather than read
/// back, and (when small) recorded with the job's end instead of written as an artifact.
#[derive(Debug, Clone)]
pub struct WrittenResult {
    pub result: JobResult,
    /// The result's JSON when it is held here only, for the job's record: no artifact yet.
    pub unrecorded: Option<Arc<str>>,
}

impl PluginRun {
    /// A run of `job` on `command` and `cluster`, writing into `artifacts`.
    pub fn new(job: Job, command: Command, cluster: Cluster, artifacts: Arc<dyn ArtifactStore>, work_dir: PathBuf) -> Self {
        Self { job, command, cluster, artifacts, work_dir, recorded_result_limit: 0, written_result: Default::default() }
    }

    /// The run, a result of at most `limit` bytes left in memory for the job's end.
    pub fn recording_its_end(self, limit: usize) -> Self {
        Self { recorded_result_limit: limit.min(heimdall_domain::job::MAX_RECORDED_RESULT_BYTES), ..self }
    }

    /// Stores `result` as the job's result: in memory for the job's record when it is within
    /// `recorded_result_limit`, else as an artifact.
    pub async fn write_result(&self, result: &JobResult) -> Result<(), PluginError> {
        result.validate().map_err(PluginError::InvalidContext)?;
        let json = serde_json::to_string(result)
            .map_err(|error| PluginError::Unavailable(format!("could not encode the result: {error}")))?;
        let unrecorded = if json.len() <= self.recorded_result_limit {
            Some(Arc::from(json))
        } else {
            write_whole(self.artifacts.as_ref(), self.job.id, Artifact::Result, json.into()).await?;
            None
        };
        let _ = self.written_result.set(WrittenResult { result: result.clone(), unrecorded });
        Ok(())
    }

    /// The small result held for the job's record, to record with a successful end.
    pub fn result_to_record(&self) -> Option<Arc<str>> {
        self.written_result.get().and_then(|written| written.unrecorded.clone())
    }

    /// Writes a result held for the job's record as an artifact after all: the run did not
    /// succeed (a failed attempt keeps what it wrote, as when results were artifacts only).
    pub async fn write_held_result(&self) -> Result<(), StoreError> {
        if let Some(json) = self.result_to_record() {
            write_whole(self.artifacts.as_ref(), self.job.id, Artifact::Result, bytes::Bytes::copy_from_slice(json.as_bytes())).await?;
        }
        Ok(())
    }
}

/// How a finished job ended, beyond success (the result itself is written by the plugin).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOutcome {
    pub exit_code: Option<i32>,
}

/// Where an async job stands after `submit` or `poll`. The handle is small JSON (a statement
/// handle, a job run id): state machines carry it between steps, never logs or results.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Still running: poll again later with this handle.
    Pending(Value),
    /// Done: call `finalize` with this handle.
    Complete(Value),
}

/// What runs a job: [`Plugin::run`] in one call, or in steps: `submit`, then `poll` until
/// complete, then `finalize`, with `cancel` at any point. A Step Functions state machine drives
/// the steps on AWS (one Lambda call each, waiting between polls for free); in one process
/// `run` drives them, inside the submit call for a sync job or on a worker for an async one.
///
/// Plugins whose work fits in one call (ping, shell) do it in `submit` and answer
/// [`Step::Complete`]; the defaults of `poll`, `cancel` and `finalize` fit them.
#[async_trait]
pub trait Plugin: Send + Sync {
    /// The name commands use in their `plugin` field.
    fn name(&self) -> &'static str;

    /// Checks a command's `context` when the config is loaded.
    fn validate_command(&self, _command: &Command) -> Result<(), String> {
        Ok(())
    }

    /// Checks a cluster's `context` when the config is loaded, for clusters its commands use.
    fn validate_cluster(&self, _cluster: &Cluster) -> Result<(), String> {
        Ok(())
    }

    /// Checks a job's `context` against the command at submission (a 400 for the client).
    fn validate_job(&self, _context: &Value, _command: &Command) -> Result<(), String> {
        Ok(())
    }

    /// Checks that `cluster` can run `command`'s jobs now (reachable, credentials accepted,
    /// the resource there): a cheap call, run every `health_interval` for clusters with
    /// `health_check: true`. An error says what failed; the pair leaves routing until a check
    /// passes. The default (ping) has nothing to check.
    async fn check_health(&self, _command: &Command, _cluster: &Cluster) -> Result<(), String> {
        Ok(())
    }

    /// Whether the plugin can run a job inside one call.
    fn supports_sync(&self) -> bool {
        true
    }

    /// Whether a job's work runs inside the `submit` call's own process (shell: the call waits
    /// for the job's process) rather than elsewhere, reached through the handle (a warehouse, a
    /// cluster). Such work stops when that call is dropped, so on AWS the step itself watches
    /// for a cancel; and it cannot be asked about after a crash, so a retried `submit` must
    /// never start it again. Remote work is submitted under the job's id as idempotency key
    /// (Snowflake's `requestId`, EMR's client token), so a retried `submit` finds it.
    fn work_runs_in_step(&self) -> bool {
        false
    }

    /// Whether `run`'s remote work announces its end as an event that reaches this deployment
    /// (EMR on EKS's "EMR Job Run State Change" on the account's EventBridge). A workflow engine
    /// then waits for that event between polls instead of polling on a schedule (no Lambda
    /// time, a few state transitions whatever the run time), with a slow safety poll for an
    /// event that never comes.
    fn ends_with_event(&self, _run: &PluginRun) -> bool {
        false
    }

    /// Runs the whole job in this process: `submit`, then `poll` with a growing wait until
    /// complete, then `finalize`. Sync jobs run this inside the submit call, and `heimdall
    /// serve` runs async jobs with it on its workers; on AWS the state machine drives the same
    /// steps one Lambda call at a time. `handle` always holds the latest handle, so a caller
    /// that stops waiting (a cancel) can pass it to [`Plugin::cancel`]. A plugin with a native
    /// one-call API may override it.
    async fn run(&self, run: &PluginRun, handle: &mut Option<Value>) -> Result<RunOutcome, PluginError> {
        let mut step = self.submit(run).await?;
        let mut backoff = PollBackoff::default();
        loop {
            match step {
                Step::Pending(pending) => {
                    *handle = Some(pending.clone());
                    tokio::time::sleep(backoff.next_delay()).await;
                    step = self.poll(run, &pending).await?;
                }
                Step::Complete(complete) => {
                    *handle = Some(complete.clone());
                    return self.finalize(run, &complete).await;
                }
            }
        }
    }

    /// Starts the job.
    async fn submit(&self, run: &PluginRun) -> Result<Step, PluginError>;

    /// Asks how the job started by `submit` is doing.
    async fn poll(&self, _run: &PluginRun, handle: &Value) -> Result<Step, PluginError> {
        Ok(Step::Complete(handle.clone()))
    }

    /// Stops the job (best effort); `handle` is `None` when it was never submitted.
    async fn cancel(&self, _run: &PluginRun, _handle: Option<&Value>) -> Result<(), PluginError> {
        Ok(())
    }

    /// Collects the outcome of a complete job (and stores its result if not done yet).
    async fn finalize(&self, _run: &PluginRun, handle: &Value) -> Result<RunOutcome, PluginError> {
        Ok(RunOutcome { exit_code: handle.get("exit_code").and_then(Value::as_i64).map(|c| c as i32) })
    }
}

/// The wait between polls of a pending job: a tenth of the time it has run so far (so a
/// finished job is noticed within 10 % of its run time), never shorter than the wait before,
/// at least a second and at most five minutes. The waits grow geometrically (×1.1), so the
/// polls of a job grow with the log of its run time: a two-hour query takes 80 polls, not the
/// 237 a 30 s cap took. The state machine's Wait loop uses the same numbers.
#[derive(Debug, Clone)]
pub struct PollBackoff {
    started: std::time::Instant,
    last: Duration,
}

impl PollBackoff {
    pub const FIRST: Duration = Duration::from_secs(1);
    pub const CAP: Duration = Duration::from_secs(300);
    /// The share of the run time so far a wait may take.
    pub const SHARE: f64 = 0.1;

    /// The wait before the next poll, from the time this backoff was made.
    pub fn next_delay(&mut self) -> Duration {
        self.last = Self::after(self.last, self.started.elapsed());
        self.last
    }

    /// The wait that follows a wait of `previous` for work that has run `elapsed` (for callers
    /// that carry them themselves, like a state machine's steps).
    pub fn after(previous: Duration, elapsed: Duration) -> Duration {
        elapsed.mul_f64(Self::SHARE).max(previous).clamp(Self::FIRST, Self::CAP)
    }
}

impl Default for PollBackoff {
    fn default() -> Self {
        Self { started: std::time::Instant::now(), last: Duration::ZERO }
    }
}
