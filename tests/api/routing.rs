//! Routing: weights split traffic between commands carrying the same tags (a canary), and
//! `POST /api/v1/job/route` shows where a job would run and why everything else was left out,
//! without creating a job.

use heimdall_tests::{USER, job, spawn_app};
use serde_json::{Value, json};

async fn route(app: &heimdall_tests::TestApp, user: &str, body: &Value) -> (u16, Value) {
    let response = app.client.post(app.url("/api/v1/job/route")).header("X-Heimdall-User", user).json(body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn the_route_preview_gives_each_candidates_chance_and_creates_no_job() {
    let app = spawn_app().await;

    let (status, plan) = route(&app, USER, &job("canary", &["type:canary"], json!({}))).await;

    assert_eq!(status, 200, "{plan}");
    let chances: Vec<(&str, &str, f64)> = plan["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["command_id"].as_str().unwrap(), c["cluster_id"].as_str().unwrap(), c["probability"].as_f64().unwrap()))
        .collect();
    assert_eq!(chances, vec![("canary-stable", "localhost-0.0.1", 0.99), ("canary-new", "localhost-0.0.1", 0.01)]);
    let reasons: Vec<String> = plan["excluded"].as_array().unwrap().iter().map(|e| format!("{} {} {}", e["command_id"], e["cluster_id"], e["reason"])).collect();
    assert!(reasons.iter().any(|r| r.starts_with("\"retired\" null") && r.contains("INACTIVE")), "{reasons:#?}");
    assert!(reasons.iter().any(|r| r.starts_with("\"ping-0.0.1\" null") && r.contains("lacks the command_criteria tags")), "{reasons:#?}");
    assert!(reasons.iter().any(|r| r.starts_with("null \"warehouse\"") && r.contains("INACTIVE")), "{reasons:#?}");
    assert_eq!(app.get_json("/api/v1/jobs").await["data"], json!([]), "a preview creates no job");
}

#[tokio::test]
async fn the_preview_names_allowed_callers_and_modes_that_leave_a_command_out() {
    let app = spawn_app().await;

    let (_, plan) = route(&app, USER, &job("admin", &["type:admins-only"], json!({}))).await;
    assert_eq!(plan["candidates"], json!([]), "{plan}");
    let excluded = plan["excluded"].as_array().unwrap();
    assert!(excluded.iter().any(|e| e["command_id"] == "admins-only" && e["reason"].as_str().unwrap().contains("allowed_callers")), "{plan}");
    let (_, for_admin) = route(&app, "admin-alice", &job("admin", &["type:admins-only"], json!({}))).await;
    assert_eq!(for_admin["candidates"][0]["command_id"], "admins-only");

    let mut async_only_sync = job("s", &["type:sync-only"], json!({}));
    async_only_sync["is_sync"] = json!(false);
    let (_, plan) = route(&app, USER, &async_only_sync).await;
    assert_eq!(plan["candidates"], json!([]));
    assert!(plan["excluded"].as_array().unwrap().iter().any(|e| e["command_id"] == "sync-only" && e["reason"].as_str().unwrap().contains("does not run async jobs")), "{plan}");

    let (status, error) = route(&app, USER, &json!({"name": "", "version": "1", "command_criteria": ["type:ping"]})).await;
    assert_eq!((status, error["code"].as_str()), (400, Some("BAD_REQUEST")), "{error}");
    let anonymous = app.anonymous.post(app.url("/api/v1/job/route")).json(&job("a", &["type:ping"], json!({}))).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn jobs_split_between_the_canary_and_the_stable_command_by_weight() {
    let app = spawn_app().await;
    let mut on_canary = 0;
    for _ in 0..200 {
        let answer = app.submit_ok(&job("canary", &["type:canary"], json!({}))).await;
        if answer["command_id"] == "canary-new" {
            on_canary += 1;
        }
    }
    // 1 % of 200: P(more than 12) is below one in a billion.
    assert!(on_canary <= 12, "{on_canary} of 200 jobs went to the canary");
}

#[tokio::test]
async fn cluster_criteria_alternatives_are_tried_in_order_and_the_first_that_matches_wins() {
    let app = spawn_app().await;
    let with = |alternatives: Value| {
        let mut body = job("fallback", &["type:ping"], json!({}));
        body["cluster_criteria"] = alternatives;
        body
    };

    // The first alternative matches no cluster: the second is used.
    let answer = app.submit_ok(&with(json!([["data:remote"], ["data:local"]]))).await;
    assert_eq!((answer["status"].as_str(), answer["cluster_id"].as_str()), (Some("SUCCEEDED"), Some("localhost-0.0.1")), "{answer}");
    assert_eq!(answer["cluster_criteria"], json!(["data:local"]));
    assert_eq!(answer["cluster_criteria_alternatives"], json!([["data:remote"], ["data:local"]]));
    let (_, plan) = route(&app, USER, &with(json!([["data:remote"], ["data:local"]]))).await;
    assert_eq!(plan["cluster_criteria"], json!(["data:local"]), "{plan}");

    // A plain list keeps its meaning; no alternative matching is a 400 naming the last tried.
    let plain = app.submit_ok(&with(json!(["data:local"]))).await;
    assert_eq!(plain["cluster_id"], "localhost-0.0.1");
    assert!(plain.get("cluster_criteria_alternatives").is_none(), "{plain}");
    let none = app.submit_job(&with(json!([["data:remote"], ["region:mars"]]))).await;
    assert_eq!(none.status(), 400);
    let error: Value = none.json().await.unwrap();
    assert_eq!(error["code"], "NO_MATCHING_CLUSTER", "{error}");
    assert!(error["error"].as_str().unwrap().contains("region:mars"), "{error}");
    let malformed = app.submit_job(&with(json!([["a"], "b"]))).await;
    assert_eq!(malformed.status(), 400);
}
