//! Retries: a failed attempt that its command's `retry` covers runs again after a growing wait,
//! on another matching cluster when there is one. The job stays RUNNING between attempts; each
//! attempt is recorded, and what it wrote is kept aside as that attempt's. The same decision
//! serves `heimdall serve` (its executor waits) and Step Functions (its `fail` step answers the
//! wait, and the state machine waits for free).

use heimdall_domain::clock::now_epoch_seconds;
use heimdall_domain::selection::{candidates, pick};
use heimdall_domain::{Job, JobStatus};
use heimdall_ports::{NextAttempt, StoreError};
use rand::Rng;

use crate::catalog::Catalog;
use crate::job_service::JobService;

/// A retry decided: the job as stored at its next attempt, and the wait before it.
#[derive(Debug, Clone)]
pub struct Retry {
    pub job: Job,
    pub wait_seconds: u64,
}

impl JobService {
    /// After attempt `job.attempt` failed with `error_type` (a plugin error type or a Step
    /// Functions error name), `message` and `exit_code`: the next attempt, recorded, when the
    /// command's retry policy covers the failure and attempts are left; `None` when the failure
    /// stands (not covered, none left, or the job moved on, e.g. canceled).
    pub(crate) async fn plan_retry(&self, job: &Job, error_type: &str, message: &str, exit_code: Option<i32>) -> Option<Retry> {
        if job.status != JobStatus::Running {
            return None;
        }
        let catalog = self.catalog_naming(job.command_id.as_deref(), None).await;
        let command = catalog.command(job.command_id.as_deref()?)?;
        let wait_seconds = command.retry.wait_before_next(job.attempt, error_type, exit_code, rand::rng().random::<f64>())?;
        let (cluster_id, cluster_name) = next_cluster(&catalog, job)?;
        let now = now_epoch_seconds();
        let next = NextAttempt {
            failed: job.attempt_record(now, JobStatus::Failed, Some(heimdall_domain::job::bounded_error(message)), exit_code),
            cluster_id,
            cluster_name,
            starts_at: now + i64::try_from(wait_seconds).unwrap_or(i64::MAX / 2),
        };
        let stored = match self.jobs.next_attempt(job.id, &next).await {
            Ok(stored) => stored,
            Err(StoreError::Conflict { current }) => {
                tracing::info!(job_id = %job.id, %current, "not retried: the job moved on");
                return None;
            }
            Err(error) => {
                tracing::error!(job_id = %job.id, error.message = %error, "could not record the next attempt; the failure stands");
                return None;
            }
        };
        if let Err(error) = self.artifacts.archive_attempt(job.id, job.attempt).await {
            tracing::warn!(job_id = %job.id, attempt = job.attempt, error.message = %error, "could not keep the failed attempt's output aside");
        }
        self.metrics.retried(job);
        tracing::info!(job_id = %job.id, failed = job.attempt, next = stored.attempt, wait_seconds, cluster = stored.cluster_id.as_deref().unwrap_or(""), "attempt failed; retrying");
        Some(Retry { job: stored, wait_seconds })
    }
}

/// The cluster of the next attempt, drawn by weight (as routing draws) among the command's
/// matching healthy clusters no attempt has run on yet, else among those other than the last,
/// else the last.
fn next_cluster(catalog: &Catalog, job: &Job) -> Option<(String, String)> {
    let pairs = candidates(catalog.commands(), catalog.clusters(), catalog.health(), &job.command_criteria, &job.cluster_criteria).ok()?;
    let own: Vec<_> = pairs.into_iter().filter(|(command, _)| Some(command.id.as_str()) == job.command_id.as_deref()).collect();
    let last = |id: &str| job.cluster_id.as_deref() == Some(id);
    let tried = |id: &str| last(id) || job.attempts.iter().any(|a| a.cluster_id.as_deref() == Some(id));
    let untried: Vec<_> = own.iter().copied().filter(|(_, cluster)| !tried(&cluster.id)).collect();
    let others: Vec<_> = own.iter().copied().filter(|(_, cluster)| !last(&cluster.id)).collect();
    let pool = if untried.is_empty() { others } else { untried };
    match pick(&pool, &job.command_criteria, &job.cluster_criteria, rand::rng().random::<f64>()) {
        Some((_, cluster)) => Some((cluster.id.clone(), cluster.name.clone())),
        None => Some((job.cluster_id.clone()?, job.cluster_name.clone().unwrap_or_default())),
    }
}
