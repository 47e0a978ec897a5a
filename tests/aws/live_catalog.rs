//! The live catalog on the emulator: a change made through one api function instance is used
//! by another warm instance within its refresh (a versioned cache over the catalog table), and
//! a spark cluster whose virtual cluster is terminated leaves routing (the janitor's health
//! checks) and comes back when a virtual cluster of its name runs again.

use std::time::Duration;

use serde_json::{Value, json};

use crate::serverless_stack::{CATALOG_REFRESH, ServerlessStack};
use crate::support::{create_virtual_cluster, unique};

/// An admin of the serverless config (`group:platform`): the JWT carries the group.
const ADMIN: &str = "platform-admin";

fn admin_claims(user: &str) -> Value {
    json!({"jwt": {"claims": {"sub": "0000-sub", "username": user, "cognito:groups": "[platform]"}, "scopes": null}})
}

#[tokio::test]
async fn a_command_put_through_one_api_instance_runs_the_next_job_on_another() {
    let stack = ServerlessStack::create().await;
    // A second instance, warm before the change.
    let other = stack.another_api_instance().await;
    let hello = json!({"name": "hello", "version": "1", "plugin": "ping", "is_sync": true, "tags": ["type:hello"], "cluster_tags": ["type:localhost"]});
    let ping = json!({"name": "h", "version": "1", "command_criteria": ["type:hello"]});
    let (status, _) = other.api_json("alice", "POST", "/api/v1/job", Some(ping.clone())).await;
    assert_eq!(status, 400, "no such command yet");

    let (status, bytes) = stack.api_call_with(admin_claims(ADMIN), "PUT", "/api/v1/command/hello", Some(hello)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let (status, refused) = stack.api_json("alice", "PUT", "/api/v1/command/hello/status", Some(json!({"status": "inactive"}))).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("FORBIDDEN")), "{refused}");

    tokio::time::sleep(CATALOG_REFRESH + Duration::from_millis(200)).await;
    let (status, answer) = other.api_json("alice", "POST", "/api/v1/job", Some(ping.clone())).await;
    assert_eq!((status, answer["command_id"].as_str(), answer["status"].as_str()), (200, Some("hello"), Some("SUCCEEDED")), "{answer}");

    // Deactivated through the first instance: the other stops picking it.
    let (status, _) = stack.api_call_with(admin_claims(ADMIN), "PUT", "/api/v1/command/hello/status", Some(json!({"status": "inactive"}))).await;
    assert_eq!(status, 200);
    tokio::time::sleep(CATALOG_REFRESH + Duration::from_millis(200)).await;
    let (status, answer) = other.api_json("alice", "POST", "/api/v1/job", Some(ping)).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("NO_MATCHING_COMMAND")), "{answer}");
}

#[tokio::test]
async fn an_async_jobs_answer_links_to_its_step_functions_execution_and_its_logs() {
    let stack = ServerlessStack::create().await;
    let id = stack.submit_and_dispatch(json!({"name": "p", "version": "1", "is_sync": false, "command_criteria": ["type:ping"]})).await;
    stack.wait_for(id, Duration::from_secs(30), |status| status.is_terminal()).await;

    let (status, job) = stack.api_json("alice", "GET", &format!("/api/v1/job/{id}"), None).await;

    assert_eq!(status, 200, "{job}");
    let expected = format!("https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/{}", stack.execution_arn(id));
    assert_eq!(job["job_attributes"]["execution"], json!({"kind": "link", "value": expected}), "{job}");
    let logs = job["job_attributes"]["logs"]["value"].as_str().unwrap();
    assert!(logs.starts_with("https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/$252Faws$252Flambda$252Fhd-"), "{logs}");
    assert!(logs.ends_with(&format!("-plugins/log-events$3FfilterPattern$3D%22{id}%22")), "{logs}");
}

#[tokio::test]
async fn a_spark_cluster_whose_virtual_cluster_is_terminated_leaves_routing_and_comes_back() {
    let emr = aws_sdk_emrcontainers::Client::new(&heimdall_tests::emulator::emulator().sdk_config().await);
    let name = unique("vc-health");
    let first = create_virtual_cluster(&emr, &name).await;
    let stack = ServerlessStack::create_replacing(&[("{{SPARK_CLUSTER}}", &name), ("{{SPARK_HEALTH_CHECK}}", "true")]).await;
    let spark_job = json!({"name": "q", "version": "1", "command_criteria": ["type:spark"], "context": {"query": "select 1"}});

    let checks = stack.service.check_cluster_health().await.unwrap();
    assert!(checks.iter().any(|c| c.cluster_id == name && c.is_ok()), "{checks:?}");
    let (status, health) = stack.api_json("alice", "GET", &format!("/api/v1/cluster/{name}/health"), None).await;
    assert_eq!((status, health["healthy"].as_bool()), (200, Some(true)), "{health}");

    emr.delete_virtual_cluster().id(&first).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // the cluster's health_interval
    let answer = heimdall_function_janitor::handle(&stack.service, json!({})).await.unwrap();
    assert_eq!(answer["health_failing"], 1, "{answer}");

    let (status, health) = stack.api_json("alice", "GET", "/api/v1/clusters/health", None).await;
    assert_eq!((status, health["healthy"].as_bool()), (503, Some(false)), "{health}");
    let failing = health["checks"].as_array().unwrap().iter().find(|c| c["cluster_id"] == name.as_str()).unwrap();
    assert!(failing["error"].as_str().unwrap().contains(&format!("no running EMR on EKS virtual cluster is named `{name}`")), "{health}");
    let (status, refused) = stack.api_json("alice", "POST", "/api/v1/job", Some(spark_job.clone())).await;
    assert_eq!((status, refused["code"].as_str()), (400, Some("NO_MATCHING_CLUSTER")), "{refused}");

    recreate_virtual_cluster(&emr, &name).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    heimdall_function_janitor::handle(&stack.service, json!({})).await.unwrap();
    let (status, _) = stack.api_json("alice", "GET", "/api/v1/clusters/health", None).await;
    assert_eq!(status, 200);
    let (status, accepted) = stack.api_json("alice", "POST", "/api/v1/job", Some(spark_job)).await;
    assert_eq!((status, accepted["cluster_id"].as_str()), (200, Some(name.as_str())), "{accepted}");
}

/// A new virtual cluster named `name` (a new client token: the first one's names the old one).
async fn recreate_virtual_cluster(emr: &aws_sdk_emrcontainers::Client, name: &str) {
    use aws_sdk_emrcontainers::types::{ContainerInfo, ContainerProvider, ContainerProviderType, EksInfo};
    let provider = ContainerProvider::builder()
        .id("eks-cluster")
        .r#type(ContainerProviderType::Eks)
        .info(ContainerInfo::EksInfo(EksInfo::builder().namespace(format!("{name}-again")).build()))
        .build()
        .unwrap();
    emr.create_virtual_cluster().name(name).container_provider(provider).client_token(unique("token")).send().await.unwrap();
}
