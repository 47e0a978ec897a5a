//! How many AWS calls a job costs, and how many Step Functions state transitions: counted on
//! the emulator (the service's clients go through the router, which counts every call) and
//! held under a budget, so a change that adds calls on the hot path shows up here. The figures
//! this prints are in docs/BENCHMARKS.md:
//! `cargo test -p heimdall-tests --test aws aws_calls -- --nocapture`

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use heimdall_domain::JobId;
use heimdall_domain::aws_cost::{AwsPrices, AwsUsage};
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
    let sync_cost = answer["cost_usd"].as_f64().expect("a sync job on AWS answers what it cost");
    // Its result, kept in its item, is read back by the result route.
    let ping_id = answer["id"].as_str().unwrap().to_owned();
    let (status, result) = stack.api_json("alice", "GET", &format!("/api/v1/job/{ping_id}/result"), None).await;
    assert_eq!((status, &result), (200, &answer["result"]));

    // An async shell job, from the api function to the end of its execution.
    let start = stack.counted_calls().len();
    let echo = json!({"name": "echo", "version": "1", "context": {"arguments": ["x"]}, "command_criteria": ["shell:echo"]});
    let (_, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(echo)).await;
    let id: JobId = answer["id"].as_str().unwrap().parse().unwrap();
    let api_calls = stack.counted_calls().len() - start;
    let event = stack.receive_as_sqs_event().await;
    heimdall_function_dispatcher::handle_batch(&stack.service, event).await;
    let dispatcher_calls = stack.counted_calls().len() - start - api_calls;
    assert_eq!(stack.wait_for_execution_end(id, Duration::from_secs(60)).await, "SUCCEEDED");
    let async_calls = stack.counted_calls()[start..].to_vec();
    let step_calls = async_calls.len() - api_calls - dispatcher_calls;

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
    // What each costs at list prices (docs/BENCHMARKS.md), from the calls counted and the
    // items' sizes as stored.
    let ping_kb = item_kb(&stack, ping_id.clone()).await;
    let echo_kb = item_kb(&stack, id.to_string()).await;
    let sync_usage = usage(&sync_calls, ping_kb, 0, &[(0.5, sync_calls.len())]);
    // Submit (done within the step: no finalize step) runs in the shell function (1 GB), the
    // api function has 512 MB, the dispatcher 256 MB: three invocations.
    let async_usage = usage(&async_calls, echo_kb, transitions, &[(0.5, api_calls), (0.25, dispatcher_calls), (1.0, step_calls)]);
    let async_usage = AwsUsage { lambda_requests: 3.0, ..async_usage };
    eprintln!("job items as stored: sync ping {ping_kb:.2} KB, async shell {echo_kb:.2} KB");
    assert!(ping_kb < 1.0, "a small job's item is one write unit per copy: {ping_kb:.2} KB");
    for (kind, usage) in [("sync ping job", sync_usage), ("async shell job", async_usage)] {
        let parts: Vec<String> = usage.priced(&AwsPrices::LIST).iter().map(|(name, dollars)| format!("{name} ${:.2}", dollars * 1e6)).collect();
        eprintln!("{kind}: ${:.2} per million at list prices ({})", usage.cost_usd(&AwsPrices::LIST) * 1e6, parts.join(", "));
    }
    // What the api function metered for the job (its adapters' own count of units, its real
    // Lambda time) is what the calls the router counted cost (with an assumed Lambda time).
    let counted_cost = sync_usage.cost_usd(&AwsPrices::LIST);
    eprintln!("sync ping job: cost_usd answered ${:.2} per million, counted ${:.2}", sync_cost * 1e6, counted_cost * 1e6);
    assert!((sync_cost - counted_cost).abs() <= 0.1 * counted_cost, "answered {sync_cost}, counted {counted_cost}");
    let (_, stored) = stack.api_json("alice", "GET", &format!("/api/v1/job/{ping_id}"), None).await;
    assert_eq!(stored["cost_usd"].as_f64(), Some(sync_cost), "recorded with the job's end");
    assert!(sync_calls.len() <= 3, "sync ping: {sync_calls:?}");
    assert!(!sync_calls.iter().any(|call| call.starts_with("s3:")), "a small result is kept in the job's item: {sync_calls:?}");
    assert!(!sync_calls.iter().any(|call| call == "dynamodb:GetItem"), "a sync job is never read back: {sync_calls:?}");
    assert!(!sync_calls.iter().any(|call| call == "s3:GET"), "a sync job's answer is built from memory, not read back: {sync_calls:?}");
    assert!(async_calls.len() <= 8, "async shell: {async_calls:?}");
    assert_eq!(transitions, 3, "Submit (which claims, runs and ends the job), Done?, Ended");
    assert_eq!(tally(&sweep_calls), BTreeMap::from([("dynamodb:Query", 3)]), "idle sweep: {sweep_calls:?}");
    assert!(retried_calls.len() <= 19, "retried shell: {retried_calls:?}");
    assert_eq!(retried_transitions, 7, "Submit, Fail, Retry?, RetryWait, Submit, Done?, Finalize");
}

/// A job item's size in KB as DynamoDB bills it (attribute names and values).
async fn item_kb(stack: &ServerlessStack, id: String) -> f64 {
    let client = aws_sdk_dynamodb::Client::new(&heimdall_tests::emulator::emulator().sdk_config().await);
    let item = client.get_item().table_name(&stack.settings.table).key("id", AttributeValue::S(id)).send().await.unwrap().item.expect("the job's item");
    if std::env::var_os("HEIMDALL_PRINT_ITEMS").is_some() {
        for (name, value) in &item {
            eprintln!("  {name}: {value:?}");
        }
    }
    heimdall_adapters_aws::dynamo_job_store::item_kb(&item)
}

/// What a job's counted `calls` use, its item being `kb` large: DynamoDB writes count the base
/// item and its five ALL-projected index copies, the two whose key moves (status, updated) twice,
/// plus the keys-only index of active jobs; a consistent GetItem is a read unit per 4 KB, a
/// Query of the keys-only index half a unit. SQS: sent, received and deleted. Lambda duration
/// is assumed (nothing here times real Lambda): 2 ms of work plus 10 ms per AWS call, billed at
/// each function's memory (`functions`: GB, calls made there).
fn usage(calls: &[String], kb: f64, transitions: usize, functions: &[(f64, usize)]) -> AwsUsage {
    let counts = tally(calls);
    let count = |call: &str| counts.get(call).copied().unwrap_or(0) as f64;
    let units = kb.ceil();
    let writes = count("dynamodb:PutItem") + count("dynamodb:UpdateItem");
    AwsUsage {
        api_requests: 1.0,
        lambda_requests: functions.len() as f64,
        lambda_gb_seconds: functions.iter().map(|(gb, calls)| gb * (0.002 + 0.010 * *calls as f64)).sum(),
        state_transitions: transitions as f64,
        dynamodb_write_units: writes * (units * (1.0 + 5.0 + 2.0) + 1.0),
        dynamodb_read_units: count("dynamodb:GetItem") * (kb / 4.0).ceil() + count("dynamodb:Query") * 0.5,
        s3_puts: count("s3:PUT"),
        s3_gets: count("s3:GET"),
        sqs_requests: count("sqs:SendMessage") * 3.0,
    }
}
