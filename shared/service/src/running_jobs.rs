use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use heimdall_domain::JobId;
use tokio_util::sync::CancellationToken;

/// The cancel handles of the jobs this process is running right now. A cancel request fires
/// the job's token; the execution sees it, asks its plugin to stop, and records CANCELED.
#[derive(Clone, Default)]
pub struct RunningJobs {
    tokens: Arc<Mutex<HashMap<JobId, CancellationToken>>>,
}

impl RunningJobs {
    /// Registers `job`; the registration ends when the returned guard drops. `None` when this
    /// process already runs it (a duplicate delivery): the caller must not run it again.
    pub fn register(&self, job: JobId) -> Option<RunningJob> {
        let token = CancellationToken::new();
        let mut tokens = self.lock();
        if tokens.contains_key(&job) {
            return None;
        }
        tokens.insert(job, token.clone());
        Some(RunningJob { job, token, jobs: self.clone() })
    }

    /// How many jobs this process is running (or waiting to retry) now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether this process is running `job` right now.
    pub fn contains(&self, job: JobId) -> bool {
        self.lock().contains_key(&job)
    }

    /// Fires the cancel token of `job`; false when this process is not running it.
    pub fn cancel(&self, job: JobId) -> bool {
        match self.lock().get(&job) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, CancellationToken>> {
        // A panic while holding this lock leaves the map consistent (single inserts/removes).
        self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One running job's registration.
pub struct RunningJob {
    job: JobId,
    pub token: CancellationToken,
    jobs: RunningJobs,
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        self.jobs.lock().remove(&self.job);
    }
}
