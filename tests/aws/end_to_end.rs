//! End to end on the emulator, no mocks in the path: API Gateway event → api function →
//! DynamoDB + SQS → dispatcher function → the real state machine, executed by the emulator's
//! Step Functions engine → plugin function (our handler code, through the Lambda router) →
//! DynamoDB + S3 → read back through the api function.

use std::time::Duration;

use heimdall_domain::{JobId, JobStatus};
use heimdall_ports::JobStore;
use heimdall_tests::file_lines;
use serde_json::json;

use crate::serverless_stack::ServerlessStack;

fn job(criteria: &str, context: serde_json::Value) -> serde_json::Value {
    json!({"name": "e2e", "version": "0.0.1", "context": context, "command_criteria": [criteria], "cluster_criteria": ["type:localhost"]})
}


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_shell_job_runs_through_the_state_machine_and_its_stdout_is_served() {
    let stack = ServerlessStack::create().await;

    // The api function answers an API Gateway event; the caller is the authorizer's user,
    // not the header the client sent.
    let (status, answer) = stack
        .api_json("alice", "POST", "/api/v1/job", Some(job("shell:echo", json!({"arguments": ["hello", "serverless"]}))))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "ACCEPTED");
    assert_eq!(answer["user"], "alice");
    let id: JobId = answer["id"].as_str().unwrap().parse().unwrap();

    // The job is in DynamoDB and its message in SQS.
    let store = heimdall_adapters_aws::DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&heimdall_tests::emulator::emulator().sdk_config().await), &stack.settings.table);
    assert_eq!(store.get(id).await.unwrap().status, JobStatus::Accepted);
    let event = stack.receive_as_sqs_event().await;
    assert_eq!(event.records.len(), 1);

    // The dispatcher starts the real state machine, which the emulator executes.
    let response = heimdall_function_dispatcher::handle_batch(&stack.service, event).await;
    assert!(response.batch_item_failures.is_empty());
    let done = stack.wait_for(id, Duration::from_secs(60), |s| s.is_terminal()).await;

    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(stack.wait_for_execution_end(id, Duration::from_secs(20)).await, "SUCCEEDED");
    let (status, stdout) = stack.api_call("alice", "GET", &format!("/api/v1/job/{id}/stdout"), None).await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(stdout).unwrap(), "hello serverless\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_job_exiting_3_ends_failed_with_the_code_and_its_stderr() {
    let stack = ServerlessStack::create().await;
    let id = stack.submit_and_dispatch(job("shell:exit-3", json!({}))).await;

    let done = stack.wait_for(id, Duration::from_secs(60), |s| s.is_terminal()).await;

    assert_eq!(done.status, JobStatus::Failed);
    assert_eq!(done.exit_code, Some(3));
    assert!(done.error.as_deref().unwrap().contains("exited with code 3"), "{done:?}");
    assert_eq!(stack.wait_for_execution_end(id, Duration::from_secs(20)).await, "FAILED");
    let (_, stderr) = stack.api_call("alice", "GET", &format!("/api/v1/job/{id}/stderr"), None).await;
    assert_eq!(String::from_utf8(stderr).unwrap(), "failing\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_its_timeout_ends_failed_saying_so() {
    let stack = ServerlessStack::create().await;
    // The sleep command allows 2 s; this job sleeps 30.
    let id = stack.submit_and_dispatch(job("shell:sleep", json!({"arguments": ["30"]}))).await;

    let done = stack.wait_for(id, Duration::from_secs(60), |s| s.is_terminal()).await;

    assert_eq!(done.status, JobStatus::Failed);
    assert!(done.error.as_deref().unwrap().contains("longer than its timeout of 2 s"), "{done:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_through_the_api_stops_the_execution_and_ends_canceled() {
    let stack = ServerlessStack::create().await;
    let id = stack.submit_and_dispatch(job("shell:sleep", json!({"arguments": ["1"], "timeout_seconds": 2}))).await;
    stack.wait_for(id, Duration::from_secs(30), |s| s == JobStatus::Running).await;

    let (status, answer) = stack.api_json("alice", "POST", &format!("/api/v1/job/{id}/cancel"), None).await;

    assert_eq!(status, 200, "{answer}");
    // CANCELING until the step running the shell process has stopped it (a few seconds).
    assert!(matches!(answer["status"].as_str(), Some("CANCELING" | "CANCELED")), "{answer}");
    // The emulator applies the stop once the Task in flight returns (AWS at once), which may
    // end it through the Catch; whatever runs after, the job stays CANCELED.
    assert_ne!(stack.wait_for_execution_end(id, Duration::from_secs(20)).await, "RUNNING");
    let job = stack.wait_for(id, Duration::from_secs(20), |s| s.is_terminal()).await;
    assert_eq!((job.status, job.canceled_by.as_deref()), (JobStatus::Canceled, Some("alice")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stack.service.get(id).await.unwrap().status, JobStatus::Canceled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_sqs_message_delivered_twice_runs_the_job_once() {
    let stack = ServerlessStack::create().await;
    let (_, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(job("shell:record-run", json!({})))).await;
    let id: JobId = answer["id"].as_str().unwrap().parse().unwrap();
    let event = stack.receive_as_sqs_event().await;

    // Delivered twice: the second delivery while the first execution runs.
    let first = heimdall_function_dispatcher::handle_batch(&stack.service, event.clone()).await;
    let second = heimdall_function_dispatcher::handle_batch(&stack.service, event).await;

    assert!(first.batch_item_failures.is_empty() && second.batch_item_failures.is_empty());
    let done = stack.wait_for(id, Duration::from_secs(60), |s| s.is_terminal()).await;
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    assert_eq!(file_lines(&stack.runs_log), vec![id.to_string()], "the job ran exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_message_fails_alone_in_its_batch() {
    let stack = ServerlessStack::create().await;
    let (_, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(job("shell:echo", json!({"arguments": ["ok"]})))).await;
    let id: JobId = answer["id"].as_str().unwrap().parse().unwrap();
    let mut event = stack.receive_as_sqs_event().await;
    let mut bad = event.records[0].clone();
    bad.message_id = Some("bad-message".into());
    bad.body = Some("not a job id".into());
    event.records.push(bad);

    let response = heimdall_function_dispatcher::handle_batch(&stack.service, event).await;

    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, vec!["bad-message"]);
    let done = stack.wait_for(id, Duration::from_secs(60), |s| s.is_terminal()).await;
    assert_eq!(done.status, JobStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_ping_job_runs_inside_the_api_function() {
    let stack = ServerlessStack::create().await;
    let (status, answer) = stack.api_json("bob", "POST", "/api/v1/job", Some(job("type:ping", json!({})))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "SUCCEEDED");
    assert_eq!(answer["result"]["data"][0][0], "Hello, bob!");
    let (status, answer) = stack.api_json("", "GET", "/api/v1/jobs", None).await;
    assert_eq!(status, 401, "reads need an authenticated caller: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_jobs_stdout_is_readable_before_it_ends() {
    let stack = ServerlessStack::create().await;
    let id = stack.submit_and_dispatch(job("shell:count-slowly", json!({}))).await;

    // The job prints a line every half second for four seconds; its first lines can be read
    // (and followed from an offset) while it still runs.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let early = loop {
        let (status, stdout) = stack.api_call("alice", "GET", &format!("/api/v1/job/{id}/stdout"), None).await;
        assert_eq!(status, 200);
        let running = !stack.service.get(id).await.unwrap().status.is_terminal();
        if !stdout.is_empty() && running {
            break String::from_utf8(stdout).unwrap();
        }
        assert!(running, "the job ended before any of its output could be read");
        assert!(std::time::Instant::now() < deadline, "no output while the job ran");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(early.starts_with("line 1\n") && !early.contains("line 8"), "{early}");

    let done = stack.wait_for(id, Duration::from_secs(60), |s| s.is_terminal()).await;
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    let (_, stdout) = stack.api_call("alice", "GET", &format!("/api/v1/job/{id}/stdout"), None).await;
    let lines: Vec<String> = (1..=8).map(|i| format!("line {i}\n")).collect();
    assert_eq!(String::from_utf8(stdout).unwrap(), lines.concat());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_submit_step_claims_runs_and_ends_a_queued_job_and_runs_nothing_for_one_canceled_before_it() {
    let stack = ServerlessStack::create().await;
    // The step a state machine takes first: the job is ACCEPTED, submit claims it, runs it and,
    // the work done within the step, ends it (no finalize step).
    let (_, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(job("shell:record-run", json!({})))).await;
    let ran: JobId = answer["id"].as_str().unwrap().parse().unwrap();
    let submit = |job_id| heimdall_functions::plugin_step::StepRequest::Submit { job_id };
    let step = heimdall_functions::plugin_step::handle(&stack.service, "shell", submit(ran)).await.unwrap();
    assert_eq!((step["proceed"].as_bool(), step["ended"].as_bool()), (Some(true), Some(true)), "{step}");
    let ended = stack.service.get(ran).await.unwrap();
    assert_eq!(ended.status, JobStatus::Succeeded);
    assert!(ended.work_started_at.is_some(), "the work was claimed in the same write as the job");
    assert_eq!(file_lines(&stack.runs_log), vec![ran.to_string()]);

    // Canceled while its execution was on its way: the submit answers not to proceed.
    let (_, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(job("shell:record-run", json!({})))).await;
    let canceled: JobId = answer["id"].as_str().unwrap().parse().unwrap();
    let (status, _) = stack.api_json("alice", "POST", &format!("/api/v1/job/{canceled}/cancel"), None).await;
    assert_eq!(status, 200);
    let step = heimdall_functions::plugin_step::handle(&stack.service, "shell", submit(canceled)).await.unwrap();
    assert_eq!(step["proceed"].as_bool(), Some(false), "{step}");
    assert_eq!(stack.service.get(canceled).await.unwrap().status, JobStatus::Canceled);
    assert_eq!(file_lines(&stack.runs_log), vec![ran.to_string()], "the canceled job never ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_function_runs_its_plugins_jobs_over_the_whole_config_and_refuses_another_plugins() {
    let stack = ServerlessStack::create().await;
    // The shell function as deployed: it runs (and links) the shell plugin only, over the config
    // that also names ping, dynamodb, glue, spark and snowflake commands, left unchecked there.
    let config = heimdall_functions::FunctionConfig { seeds_catalog: false, ..stack.config.clone() };
    let shell_only = |_: &aws_config::SdkConfig, _: &heimdall_functions::FunctionConfig| {
        heimdall_service::PluginRegistry::running_only([std::sync::Arc::new(heimdall_plugins::shell::ShellPlugin::from_env()) as std::sync::Arc<dyn heimdall_ports::Plugin>])
    };
    let shell_function = heimdall_functions::build_service(&heimdall_tests::emulator::emulator().sdk_config().await, &config, shell_only).await.unwrap();
    assert_eq!(shell_function.plugin_names(), ["shell"]);
    let submit = |job_id| heimdall_functions::plugin_step::StepRequest::Submit { job_id };

    let (_, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(job("shell:record-run", json!({})))).await;
    let shell_job: JobId = answer["id"].as_str().unwrap().parse().unwrap();
    let step = heimdall_functions::plugin_step::handle(&shell_function, "shell", submit(shell_job)).await.unwrap();
    assert_eq!(step["ended"].as_bool(), Some(true), "{step}");
    assert_eq!(stack.service.get(shell_job).await.unwrap().status, JobStatus::Succeeded);

    // A dynamodb job sent to it by mistake is refused, and left as it was.
    let request = json!({"name": "e2e", "version": "0.0.1", "context": {"query": "SELECT * FROM \"t\""}, "command_criteria": ["type:dynamodb"], "cluster_criteria": ["type:dynamodb"]});
    let (status, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(request)).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("ACCEPTED")), "{answer}");
    let other_job: JobId = answer["id"].as_str().unwrap().parse().unwrap();
    let refused = heimdall_functions::plugin_step::handle(&shell_function, "shell", submit(other_job)).await.unwrap_err();
    assert!(refused.error_message.contains("dynamodb"), "{refused:?}");
    assert_eq!(stack.service.get(other_job).await.unwrap().status, JobStatus::Accepted);
}
