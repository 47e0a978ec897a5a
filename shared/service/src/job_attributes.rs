//! Heimdall's `job_attributes` on the jobs a caller reads: its command's and cluster's templates
//! rendered, and where a workflow engine drives it, links to its execution and its logs.

use heimdall_domain::Job;
use heimdall_domain::job_attributes::{AttributeKind, JobAttribute, render};

use crate::catalog::Catalog;
use crate::job_service::JobService;

impl JobService {
    /// `job` with its attributes (see `heimdall_domain::job_attributes`), from `catalog` as this
    /// process holds it: a job whose command or cluster the copy lacks has only its links (no
    /// store read for what is a display).
    pub(crate) fn with_attributes(&self, catalog: &Catalog, mut job: Job) -> Job {
        let command = job.command_id.as_deref().and_then(|id| catalog.command(id));
        let cluster = job.cluster_id.as_deref().and_then(|id| catalog.cluster(id));
        let mut attributes = match (command, cluster) {
            (Some(command), Some(cluster)) => render(&job, command, cluster, &command.job_attributes, &cluster.job_attributes),
            _ => Default::default(),
        };
        if let Some(workflows) = &self.workflows
            && !job.is_sync
            && job.started_at.is_some()
        {
            for (name, value) in workflows.console_links(job.id) {
                attributes.insert(name.to_owned(), JobAttribute { kind: AttributeKind::Link, value });
            }
        }
        job.job_attributes = attributes;
        job
    }
}
