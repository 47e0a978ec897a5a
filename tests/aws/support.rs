//! Per-test AWS resources with unique names, like a database per test.

use heimdall_domain::{Job, JobRequest, JobStatus};
use serde_json::json;

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid_fragment())
}

fn uuid_fragment() -> String {
    heimdall_domain::JobId::new().to_string().replace('-', "")[20..].to_owned()
}

/// An ACCEPTED job of `user` named `name`, created at `created_at`.
pub fn job(name: &str, user: &str, created_at: i64) -> Job {
    let request: JobRequest = serde_json::from_value(json!({
        "name": name, "version": "1", "command_criteria": ["type:ping"], "tags": ["team:data"]
    }))
    .unwrap();
    let mut job = Job::from_request(request, user, created_at);
    job.status = JobStatus::Accepted;
    job.command_id = Some("ping-0.0.1".into());
    job.command_name = Some("ping-0.0.1".into());
    job
}
