//! Reliability on the serverless path, through the api function over DynamoDB, S3 and SQS on
//! the emulator: idempotent submit, the active-jobs limit, and a sync job's time limit.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serverless_stack::ServerlessStack;

fn request(name: &str, criteria: &str, is_sync: bool) -> Value {
    json!({"name": name, "version": "1", "is_sync": is_sync, "command_criteria": [criteria], "context": {}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_sent_again_with_its_key_answers_the_first_job_and_queues_once() {
    let stack = ServerlessStack::create().await;
    let key = [("Idempotency-Key", "orders-2026-12-07")];
    let body = json!({"name": "load", "version": "1", "command_criteria": ["shell:echo"], "context": {"arguments": ["x"]}});

    let (status, headers, first) = stack.api_call_with_headers("alice", "POST", "/api/v1/job", Some(body.clone()), &key).await;
    assert_eq!(status, 200, "{first}");
    assert!(headers.get("idempotent-replayed").is_none());
    let (status, headers, again) = stack.api_call_with_headers("alice", "POST", "/api/v1/job", Some(body.clone()), &key).await;

    assert_eq!(status, 200, "{again}");
    assert_eq!(headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    assert_eq!(again["id"], first["id"]);
    let queued = stack.receive_as_sqs_event().await;
    assert_eq!(queued.records.len(), 1, "one job, queued once");
    let (_, listed) = stack.api_json("alice", "GET", "/api/v1/jobs?name=load", None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");

    // The same key with another request: 409 naming the code; bob's key of the same name is his.
    let other = json!({"name": "load", "version": "2", "command_criteria": ["shell:echo"]});
    let (status, _, conflict) = stack.api_call_with_headers("alice", "POST", "/api/v1/job", Some(other), &key).await;
    assert_eq!((status, conflict["code"].as_str()), (409, Some("IDEMPOTENCY_KEY_REUSED")), "{conflict}");
    let (status, _, bobs) = stack.api_call_with_headers("bob", "POST", "/api/v1/job", Some(body), &key).await;
    assert_eq!(status, 200);
    assert_ne!(bobs["id"], first["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_active_jobs_limit_a_submit_is_429_and_records_nothing() {
    let stack = ServerlessStack::create_replacing(&[("{{ACTIVE_JOBS_PER_USER}}", "2")]).await;
    for _ in 0..2 {
        let (status, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(request("nap", "shell:sleep", false))).await;
        assert_eq!(status, 200, "{answer}");
    }

    let (status, headers, answer) = stack.api_call_with_headers("alice", "POST", "/api/v1/job", Some(request("nap", "shell:sleep", false)), &[]).await;

    assert_eq!(status, 429, "{answer}");
    assert!(headers.get("retry-after").is_some());
    assert!(answer["error"].as_str().unwrap().contains("active_jobs_per_user"), "{answer}");
    let (_, listed) = stack.api_json("alice", "GET", "/api/v1/jobs", None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    // A sync job that ends within the call is new work too, and bob has his own room.
    let (status, _) = stack.api_json("alice", "POST", "/api/v1/job", Some(request("p", "type:ping", true))).await;
    assert_eq!(status, 429);
    let (status, _) = stack.api_json("bob", "POST", "/api/v1/job", Some(request("p", "type:ping", true))).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_job_past_its_sync_limit_in_the_api_function_is_stopped_and_failed() {
    let stack = ServerlessStack::create().await;
    let started = Instant::now();

    let (status, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(request("late", "shell:late-sync", true))).await;

    assert_eq!(status, 200, "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3), "answered at the 1 s limit: {:?}", started.elapsed());
    assert_eq!(answer["status"], "FAILED");
    assert!(answer["error"].as_str().unwrap().contains("sync limit of 1 s"), "{answer}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(std::fs::read_to_string(&stack.runs_log).unwrap_or_default(), "", "the stopped process never wrote");
    let (_, stored) = stack.api_json("alice", "GET", &format!("/api/v1/job/{}", answer["id"].as_str().unwrap()), None).await;
    assert_eq!(stored["status"], "FAILED");
}
