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

/// A running EMR on EKS virtual cluster named `name` (on an EKS namespace of the same name);
/// its id.
pub async fn create_virtual_cluster(emr: &aws_sdk_emrcontainers::Client, name: &str) -> String {
    use aws_sdk_emrcontainers::types::{ContainerInfo, ContainerProvider, ContainerProviderType, EksInfo};
    let provider = ContainerProvider::builder()
        .id("eks-cluster")
        .r#type(ContainerProviderType::Eks)
        .info(ContainerInfo::EksInfo(EksInfo::builder().namespace(name).build()))
        .build()
        .unwrap();
    let created = emr.create_virtual_cluster().name(name).container_provider(provider).client_token(name).send().await.unwrap();
    created.id().unwrap().to_owned()
}
