//! Routing through the api function: the preview answers the same candidates and reasons as
//! `heimdall serve`, from the catalog the function read at cold start.

use serde_json::json;

use crate::serverless_stack::ServerlessStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_function_previews_a_jobs_route_without_creating_it() {
    let stack = ServerlessStack::create().await;
    let body = json!({"name": "r", "version": "1", "command_criteria": ["shell:flaky"], "cluster_criteria": ["type:pool"]});

    let (status, plan) = stack.api_json("alice", "POST", "/api/v1/job/route", Some(body)).await;

    assert_eq!(status, 200, "{plan}");
    let candidates: Vec<(&str, f64)> = plan["candidates"].as_array().unwrap().iter().map(|c| (c["cluster_id"].as_str().unwrap(), c["probability"].as_f64().unwrap())).collect();
    assert_eq!(candidates, vec![("pool-a", 0.5), ("pool-b", 0.5)]);
    assert!(plan["excluded"].as_array().unwrap().iter().any(|e| e["cluster_id"] == "vault-demo" && e["reason"] == "the cluster is INACTIVE"), "{plan}");
    let (_, jobs) = stack.api_json("alice", "GET", "/api/v1/jobs", None).await;
    assert_eq!(jobs["data"], json!([]));
}
