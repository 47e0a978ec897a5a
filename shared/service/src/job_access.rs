//! What a caller may read: a job is its owner's unless the config's `access` says more. A job
//! the caller may not read answers exactly as a job that does not exist (404), so its id is
//! never confirmed.

use heimdall_domain::{Caller, Job, JobId};
use heimdall_ports::{JobPage, JobQuery, TextFilter};

use crate::job_service::JobService;
use crate::service_error::ServiceError;

impl JobService {
    /// The job, if `caller` may read it, with its attributes; `NotFound` otherwise.
    pub async fn get_as(&self, caller: &Caller, id: JobId) -> Result<Job, ServiceError> {
        match self.get(id).await {
            Ok(job) if self.catalog_held().access().may_read_job(caller, &job.user) => Ok(self.with_attributes(&*self.catalog().await, job)),
            Ok(_) => Err(ServiceError::job_not_found(id)),
            Err(error) => Err(error),
        }
    }

    /// The jobs `query` matches among those `caller` may see: its own, unless it may list all.
    /// A `username` filter (or pattern) not matching the caller then matches nothing.
    pub async fn list_as(&self, caller: &Caller, query: &JobQuery) -> Result<JobPage, ServiceError> {
        let page = if self.catalog_held().access().may_list_all_jobs(caller) {
            self.list(query).await?
        } else {
            match &query.user {
                Some(filter) if !filter.matches(&caller.user) => JobPage { jobs: Vec::new(), next_cursor: None },
                // Exact, whatever the name holds: a user named `a_b` never sees `axb`'s jobs.
                _ => self.list(&JobQuery { user: Some(TextFilter::Exact(caller.user.clone())), ..query.clone() }).await?,
            }
        };
        let catalog = self.catalog().await;
        let jobs = page.jobs.into_iter().map(|job| self.with_attributes(&catalog, job)).collect();
        Ok(JobPage { jobs, ..page })
    }
}
