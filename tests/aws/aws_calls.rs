//! How many AWS calls a job costs, and how many Step Functions state transitions: counted on
//! the emulator (the service's clients go through the router, which counts every call) and
//! held under a budget, so a change that adds calls on the hot path shows up here. The figures
//! this prints are in docs/BENCHMARKS.md:
//! `cargo test -p heimdall-tests --test aws aws_calls -- --nocapture`

use std::collections::BTreeMap;
use std::time::Duration;

use heimdall_domain::JobId;
use serde_json::json;

use crate::serverless_stack::ServerlessStack;

fn tally(calls: &[String]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for call in calls {
        *counts.entry(call.as_str()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_ping_and_an_async_shell_job_stay_within_their_aws_call_budgets() {
    let stack = ServerlessStack::create_counted().await;

    // A sync ping job, inside the api function.
    let start = stack.counted_calls().len();
    let ping = json!({"name": "ping", "version": "1", "command_criteria": ["type:ping"]});
    let (status, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(ping)).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCEEDED")));
    let sync_calls = stack.counted_calls()[start..].to_vec();
    // Its result, kept in its item, is read back by the result route.
    let (status, result) = stack.api_json("alice", "GET", &format!("/api/v1/job/{}/result", answer["id"].as_str().unwrap()), None).await;
    assert_eq!((status, &result), (200, &answer["result"]));

    // An async shell job, from the api function to the end of its execution.
    let start = stack.counted_calls().len();
    let echo = json!({"name": "echo", "version": "1", "context": {"arguments": ["x"]}, "command_criteria": ["shell:echo"]});
    let (_, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(echo)).await;
    let id: JobId = answer["id"].as_str().unwrap().parse().unwrap();
    let event = stack.receive_as_sqs_event().await;
    heimdall_function_dispatcher::handle_batch(&stack.service, event).await;
    assert_eq!(stack.wait_for_execution_end(id, Duration::from_secs(60)).await, "SUCCEEDED");
    let async_calls = stack.counted_calls()[start..].to_vec();

    let history = stack
        .sfn
        .get_execution_history()
        .execution_arn(format!("{}:{id}", stack.settings.state_machine_arn.replacen(":stateMachine:", ":execution:", 1)))
        .send()
        .await
        .unwrap();
    let transitions = history.events().iter().filter(|e| e.r#type().as_str().ends_with("StateEntered")).count();

    // A job whose first attempt fails and whose retry succeeds (its command retries exit code 1).
    let start = stack.counted_calls().len();
    let flaky = json!({"name": "flaky", "version": "1", "command_criteria": ["shell:flaky"], "cluster_criteria": ["type:pool"]});
    let (_, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(flaky)).await;
    let retried: JobId = answer["id"].as_str().unwrap().parse().unwrap();
    let event = stack.receive_as_sqs_event().await;
    heimdall_function_dispatcher::handle_batch(&stack.service, event).await;
    assert_eq!(stack.wait_for_execution_end(retried, Duration::from_secs(60)).await, "SUCCEEDED");
    let retried_calls = stack.counted_calls()[start..].to_vec();
    let history = stack.sfn.get_execution_history().execution_arn(stack.execution_arn(retried)).send().await.unwrap();
    let retried_transitions = history.events().iter().filter(|e| e.r#type().as_str().ends_with("StateEntered")).count();

    // The janitor's sweep on a deployment with nothing running: one Query per status it watches.
    let start = stack.counted_calls().len();
    let sweep = stack.service.sweep_stuck_jobs(heimdall_domain::clock::now_epoch_seconds()).await.unwrap();
    assert!(sweep.settled.is_empty(), "{sweep:?}");
    let sweep_calls = stack.counted_calls()[start..].to_vec();

    eprintln!("idle janitor sweep: {} AWS calls {:?}", sweep_calls.len(), tally(&sweep_calls));
    eprintln!("sync ping job: {} AWS calls {:?}", sync_calls.len(), tally(&sync_calls));
    eprintln!("async shell job: {} AWS calls {:?}", async_calls.len(), tally(&async_calls));
    eprintln!("async shell job: {transitions} state transitions");
    eprintln!("retried shell job (fails once, then succeeds): {} AWS calls {:?}; {retried_transitions} state transitions", retried_calls.len(), tally(&retried_calls));
    assert!(sync_calls.len() <= 3, "sync ping: {sync_calls:?}");
    assert!(!sync_calls.iter().any(|call| call.starts_with("s3:")), "a small result is kept in the job's item: {sync_calls:?}");
    assert!(!sync_calls.iter().any(|call| call == "dynamodb:GetItem"), "a sync job is never read back: {sync_calls:?}");
    assert!(!sync_calls.iter().any(|call| call == "s3:GET"), "a sync job's answer is built from memory, not read back: {sync_calls:?}");
    assert!(async_calls.len() <= 13, "async shell: {async_calls:?}");
    assert_eq!(transitions, 5, "Claim, Claimed?, Submit, Done?, Finalize");
    assert_eq!(tally(&sweep_calls), BTreeMap::from([("dynamodb:Query", 3)]), "idle sweep: {sweep_calls:?}");
    assert!(retried_calls.len() <= 24, "retried shell: {retried_calls:?}");
    assert_eq!(retried_transitions, 9, "Claim, Claimed?, Submit, Fail, Retry?, RetryWait, Submit, Done?, Finalize");
}
