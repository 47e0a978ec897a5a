//! What a caller may read: a job is its owner's unless the config's `access` says more. A job
//! the caller may not read answers exactly as a job that does not exist (404), so its id is
//! never confirmed.

use heimdall_domain::{Caller, Job, JobId};
use heimdall_ports::{JobPage, JobQuery};

use crate::job_service::JobService;
use crate::service_error::ServiceError;

impl JobService {
    /// The job, if `caller` may read it; `NotFound` otherwise.
    pub async fn get_as(&self, caller: &Caller, id: JobId) -> Result<Job, ServiceError> {
        match self.get(id).await {
            Ok(job) if self.catalog_held().access().may_read_job(caller, &job.user) => Ok(job),
            Ok(_) => Err(ServiceError::job_not_found(id)),
            Err(error) => Err(error),
        }
    }

    /// The jobs `query` matches among those `caller` may see: its own, unless it may list all.
    /// A `username` filter naming someone else then matches nothing.
    pub async fn list_as(&self, caller: &Caller, query: &JobQuery) -> Result<JobPage, ServiceError> {
        if self.catalog_held().access().may_list_all_jobs(caller) {
            return self.list(query).await;
        }
        match query.user.as_deref() {
            Some(user) if user != caller.user => Ok(JobPage { jobs: Vec::new(), next_cursor: None }),
            _ => self.list(&JobQuery { user: Some(caller.user.clone()), ..query.clone() }).await,
        }
    }
}
