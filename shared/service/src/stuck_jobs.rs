//! Every job ends. A job whose process stopped (a killed function, a crashed server) or whose
//! workflow ended without recording the job's end is found here and settled with an error that
//! says why. `heimdall serve`'s janitor task and the AWS janitor function both call
//! [`JobService::sweep_stuck_jobs`]; engine events and dead letters settle jobs sooner.

use heimdall_domain::clock::now_epoch_seconds;
use heimdall_domain::{Job, JobId, JobStatus};
use heimdall_ports::{WorkflowEnd, WorkflowState};

use crate::job_service::JobService;
use crate::service_error::ServiceError;

/// A job running in a process is given up after this long without a sign of life (it beats
/// every `HEARTBEAT_INTERVAL`, 10 s); a quiet async job's workflow is looked at after it.
pub const STALE_AFTER_SECONDS: i64 = 60;

/// What one sweep settled: each job, the status it ended in, and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sweep {
    pub settled: Vec<(JobId, JobStatus, String)>,
    /// Quiet async jobs whose workflow is still running (waiting between polls): left alone.
    pub still_running: usize,
}

impl JobService {
    /// Settles every job not ended and quiet for [`STALE_AFTER_SECONDS`] at `now` whose process
    /// or workflow is gone. Costs one listing per status and, per quiet async job, one look at
    /// its workflow.
    pub async fn sweep_stuck_jobs(&self, now: i64) -> Result<Sweep, ServiceError> {
        let mut sweep = Sweep::default();
        for job in self.all_in(&[JobStatus::New, JobStatus::Running, JobStatus::Canceling]).await? {
            let quiet = now - job.last_sign_of_life();
            if quiet <= STALE_AFTER_SECONDS || self.running.contains(job.id) {
                continue;
            }
            if self.workflows.is_none() && job.waits_for_retry() {
                // Between attempts in this process's queue (after a restart, behind busy
                // workers): a worker runs it, nothing is stuck.
                continue;
            }
            let (id, from) = (job.id, job.status);
            let ended = match (&self.workflows, job.is_sync || job.status == JobStatus::New) {
                // Run by a process (a sync job, or any job of `heimdall serve`): its heartbeat stopped.
                (None, _) | (Some(_), true) => Some(match job.status {
                    JobStatus::Canceling => self.settle(job, JobStatus::Canceled, None, None).await,
                    JobStatus::New => {
                        let why = format!("never started: the process that accepted it stopped (quiet for {quiet} s)");
                        self.settle(job, JobStatus::Failed, Some(why), None).await
                    }
                    _ => {
                        let why = format!("no heartbeat for {quiet} s: the process running the job stopped before it ended (a function timed out or was killed, or a server died)");
                        self.settle(job, JobStatus::Failed, Some(why), None).await
                    }
                }),
                (Some(workflows), false) => match workflows.state(id).await.map_err(|e| ServiceError::Unavailable(e.to_string()))? {
                    WorkflowState::Running => {
                        sweep.still_running += 1;
                        None
                    }
                    WorkflowState::Ended(end) => Some(self.settle_ended_workflow(job, end).await),
                    WorkflowState::NotStarted => Some(self.settle_ended_workflow(job, WorkflowEnd::Aborted).await),
                },
            };
            if let Some(ended) = ended.filter(|ended| ended.status.is_terminal() && ended.status != from) {
                tracing::warn!(job_id = %id, from = %from, to = %ended.status, error.message = ended.error.as_deref().unwrap_or(""), "settled a stuck job");
                sweep.settled.push((id, ended.status, ended.error.unwrap_or_default()));
            }
        }
        Ok(sweep)
    }

    /// A job's workflow ended (`end`, as Step Functions reports it to EventBridge). A job that
    /// has not ended is settled: CANCELED if it was being canceled, FAILED saying how the
    /// execution ended otherwise. `None` for a job that is not there or had ended.
    pub async fn settle_workflow_end(&self, id: JobId, end: WorkflowEnd) -> Result<Option<Job>, ServiceError> {
        let job = match self.get(id).await {
            Ok(job) if !job.status.is_terminal() => job,
            Ok(_) | Err(ServiceError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error),
        };
        if job.status == JobStatus::Canceling && now_epoch_seconds() - job.last_sign_of_life() <= STALE_AFTER_SECONDS {
            // A canceled execution whose step may still be stopping the job's work: the step
            // records CANCELED once it has; the sweep does if it never does.
            return Ok(None);
        }
        Ok(Some(self.settle_ended_workflow(job, end).await))
    }

    async fn settle_ended_workflow(&self, job: Job, end: WorkflowEnd) -> Job {
        if job.status == JobStatus::Canceling {
            return self.settle(job, JobStatus::Canceled, None, None).await;
        }
        let why = format!("its execution ended {} before the job's end was recorded", end.as_str());
        self.settle(job, JobStatus::Failed, Some(why), None).await
    }

    /// A queued job whose queue message was dead-lettered (every dispatch of it failed): FAILED
    /// saying so, or CANCELED if a cancel came first. `None` for a job that had left the queue.
    pub async fn settle_dead_letter(&self, id: JobId) -> Result<Option<Job>, ServiceError> {
        let job = match self.get(id).await {
            Ok(job) if matches!(job.status, JobStatus::Accepted | JobStatus::Canceling) => job,
            Ok(_) | Err(ServiceError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error),
        };
        if job.status == JobStatus::Canceling {
            return Ok(Some(self.settle(job, JobStatus::Canceled, None, None).await));
        }
        let why = "never dispatched: its queue message was dead-lettered after every attempt to start its workflow failed".to_owned();
        Ok(Some(self.settle(job, JobStatus::Failed, Some(why), None).await))
    }
}
