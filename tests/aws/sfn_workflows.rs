use heimdall_adapters_aws::SfnWorkflows;
use heimdall_domain::JobId;
use heimdall_ports::Workflows;
use heimdall_tests::emulator::emulator;
use serde_json::json;

use crate::support::unique;

const WAIT_A_MINUTE: &str = r#"{"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": true}}}"#;

async fn workflows() -> (SfnWorkflows, aws_sdk_sfn::Client) {
    let config = emulator().sdk_config().await;
    let client = aws_sdk_sfn::Client::new(&config);
    let created = client
        .create_state_machine()
        .name(unique("wait"))
        .definition(WAIT_A_MINUTE)
        .role_arn("arn:aws:iam::123456789012:role/heimdall-test")
        .send()
        .await
        .unwrap();
    (SfnWorkflows::new(client.clone(), created.state_machine_arn, "heimdall-plugin-{plugin}"), client)
}

#[tokio::test]
async fn a_job_starts_once_and_a_second_start_is_reported_not_failed() {
    let (workflows, client) = workflows().await;
    let job = JobId::new();

    assert!(workflows.start(job, "snowflake").await.unwrap());
    // Delivered again: Step Functions answers a start with the same name and input as the
    // running execution with that execution; with another input, ExecutionAlreadyExists,
    // reported as already started. Either way one execution.
    assert!(workflows.start(job, "snowflake").await.is_ok());
    assert!(!workflows.start(job, "spark").await.unwrap());
    let listed = client.list_executions().state_machine_arn(workflows.execution_arn(job).rsplit_once(':').unwrap().0.replacen(":execution:", ":stateMachine:", 1)).send().await.unwrap();
    assert_eq!(listed.executions().len(), 1);

    let execution = client.describe_execution().execution_arn(workflows.execution_arn(job)).send().await.unwrap();
    assert_eq!(execution.name(), Some(job.to_string().as_str()));
    // The input the state machine reads: the adapter's, not the service's.
    let input: serde_json::Value = serde_json::from_str(execution.input().unwrap()).unwrap();
    assert_eq!(input, json!({"job_id": job, "function": "heimdall-plugin-snowflake", "plugin": "snowflake"}));
}

#[tokio::test]
async fn stop_aborts_a_running_execution_and_ignores_one_that_never_started() {
    let (workflows, client) = workflows().await;
    let job = JobId::new();
    workflows.start(job, "ping").await.unwrap();

    workflows.stop(job, "canceled by alice").await.unwrap();
    workflows.stop(JobId::new(), "never started").await.unwrap();

    let execution = client.describe_execution().execution_arn(workflows.execution_arn(job)).send().await.unwrap();
    assert_eq!(execution.status().as_str(), "ABORTED");
}
