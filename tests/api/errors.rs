//! Every client mistake gets a 4xx with `{"error": "...", "code": "..."}` saying what to fix.

use heimdall_tests::{USER, id_of, job, spawn_app};
use serde_json::{Value, json};

async fn error_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}

#[tokio::test]
async fn malformed_json_is_400_invalid_json() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/job"))
        .header("X-Heimdall-User", USER)
        .header("Content-Type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    let body = error_of(response, 400).await;
    assert_eq!(body["code"], "INVALID_JSON");
}

#[tokio::test]
async fn a_missing_field_is_400_naming_it() {
    let app = spawn_app().await;
    let body = error_of(app.submit_job(&json!({"name": "x", "version": "1"})).await, 400).await;
    assert_eq!(body["code"], "BAD_REQUEST");
    assert!(body["error"].as_str().unwrap().contains("command_criteria"), "{body}");
}

#[tokio::test]
async fn a_wrongly_typed_field_is_400_naming_it() {
    let app = spawn_app().await;
    let body = error_of(app.submit_job(&json!({"name": "x", "version": "1", "command_criteria": "type:ping"})).await, 400).await;
    assert!(body["error"].as_str().unwrap().contains("invalid type"), "{body}");
}

#[tokio::test]
async fn criteria_no_command_carries_are_400_recorded_as_a_failed_job() {
    let app = spawn_app().await;
    let body = error_of(app.submit_job(&job("x", &["type:ping", "type:unknown"], json!({}))).await, 400).await;
    assert_eq!(body["code"], "NO_MATCHING_COMMAND");
    assert!(body["error"].as_str().unwrap().contains("type:unknown"), "{body}");
    let recorded = app.get_job(&id_of(&body)).await;
    assert_eq!(recorded["status"], "FAILED");
    assert_eq!(recorded["error"], body["error"]);
}

#[tokio::test]
async fn an_inactive_command_is_never_picked() {
    let app = spawn_app().await;
    let body = error_of(app.submit_job(&job("x", &["type:retired"], json!({}))).await, 400).await;
    assert_eq!(body["code"], "NO_MATCHING_COMMAND");
}

#[tokio::test]
async fn a_command_without_a_fitting_cluster_is_400_no_matching_cluster() {
    let app = spawn_app().await;
    let body = error_of(app.submit_job(&job("x", &["type:needs-gpu"], json!({}))).await, 400).await;
    assert_eq!(body["code"], "NO_MATCHING_CLUSTER");
    assert!(body["error"].as_str().unwrap().contains("needs-gpu"), "{body}");
}

#[tokio::test]
async fn an_unknown_job_is_404_and_a_malformed_id_is_400() {
    let app = spawn_app().await;
    let unknown = "0b5a3bd6-7a1e-4b8e-9d35-4c1f6f3b1c2d";
    for suffix in ["", "/status", "/stdout", "/stderr", "/result"] {
        let body = error_of(app.get(&format!("/api/v1/job/{unknown}{suffix}")).await, 404).await;
        assert_eq!(body["code"], "NOT_FOUND", "{suffix}");
    }
    let body = error_of(app.get("/api/v1/job/not-a-uuid").await, 400).await;
    assert!(body["error"].as_str().unwrap().contains("not-a-uuid"), "{body}");
    error_of(app.get("/api/v1/command/nope").await, 404).await;
    error_of(app.get("/api/v1/cluster/nope").await, 404).await;
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let app = spawn_app().await;
    let huge = "x".repeat(2 * 1024 * 1024);
    let body = error_of(app.submit_job(&job("big", &["type:ping"], json!({"blob": huge}))).await, 413).await;
    assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_415() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/job"))
        .header("X-Heimdall-User", USER)
        .header("Content-Type", "text/plain")
        .body(job("x", &["type:ping"], json!({})).to_string())
        .send()
        .await
        .unwrap();
    let body = error_of(response, 415).await;
    assert_eq!(body["code"], "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test]
async fn a_request_without_a_user_is_401_and_loses_nothing() {
    let app = spawn_app().await;
    let response = app.anonymous.post(app.url("/api/v1/job")).json(&job("x", &["type:ping"], json!({}))).send().await.unwrap();
    let body = error_of(response, 401).await;
    assert_eq!(body["code"], "UNAUTHENTICATED");
    assert!(body["error"].as_str().unwrap().contains("X-Heimdall-User"));
    assert_eq!(app.get_json("/api/v1/jobs").await["data"], json!([]), "nothing was recorded");
}

#[tokio::test]
async fn a_caller_outside_allowed_callers_is_403() {
    let app = spawn_app().await;
    let body = error_of(app.submit_job(&job("x", &["type:admins-only"], json!({}))).await, 403).await;
    assert_eq!(body["code"], "FORBIDDEN");
    let admin = app.submit_job_as("admin-alice", &job("x", &["type:admins-only"], json!({}))).await;
    assert_eq!(admin.status(), 200);
}

#[tokio::test]
async fn asking_for_a_mode_the_command_does_not_allow_is_400() {
    let app = spawn_app().await;
    let mut request = job("x", &["type:sync-only"], json!({}));
    request["is_sync"] = json!(false);
    let body = error_of(app.submit_job(&request).await, 400).await;
    assert_eq!(body["code"], "MODE_NOT_ALLOWED");
    assert!(body["error"].as_str().unwrap().contains("\"is_sync\": true"), "{body}");
}

#[tokio::test]
async fn a_context_the_command_refuses_is_400_invalid_job_context() {
    let app = spawn_app().await;
    let body = error_of(app.submit_job(&job("x", &["shell:exit-3"], json!({"arguments": ["--force"]}))).await, 400).await;
    assert_eq!(body["code"], "INVALID_JOB_CONTEXT");
    assert!(body["error"].as_str().unwrap().contains("allow_arguments"), "{body}");
    let body = error_of(app.submit_job(&job("x", &["type:ping"], json!([1, 2]))).await, 400).await;
    assert!(body["error"].as_str().unwrap().starts_with("context must be a JSON object"), "{body}");
}

#[tokio::test]
async fn bad_list_filters_are_400_naming_the_filter() {
    let app = spawn_app().await;
    for (query, needle) in [
        ("limit=0", "limit"),
        ("limit=-3", "limit"),
        ("status=DONE", "status"),
        ("direction=up", "direction"),
        ("created_after=yesterday", "created_after"),
        ("cursor=forged", "cursor"),
        ("id=nope", "id"),
    ] {
        let body = error_of(app.get(&format!("/api/v1/jobs?{query}")).await, 400).await;
        assert!(body["error"].as_str().unwrap().contains(needle), "{query}: {body}");
    }
    error_of(app.get("/api/v1/commands?status=gone").await, 400).await;
}

#[tokio::test]
async fn what_heimdalls_own_web_ui_sends_is_taken_as_heimdall_takes_it() {
    let app = spawn_app().await;
    // A limit past the most is clamped and an unknown order falls back, each said in a header.
    let response = app.get("/api/v1/jobs?limit=500&order_by=name").await;
    assert_eq!(response.status(), 200);
    let adjusted = response.headers()["x-heimdall-adjusted"].to_str().unwrap().to_owned();
    assert!(adjusted.contains("limit=101 (asked 500") && adjusted.contains("order_by=created_at (asked `name`"), "{adjusted}");
    assert!(app.get("/api/v1/jobs?limit=20").await.headers().get("x-heimdall-adjusted").is_none());
    // Jobs carry system tags, as commands and clusters do (a client's own are replaced).
    let mut named = job("findme", &["type:ping"], json!({}));
    named["tags"] = json!(["team:data", "_name:forged"]);
    let submitted = app.submit_ok(&named).await;
    let id = submitted["id"].as_str().unwrap();
    assert_eq!(submitted["tags"], json!(["team:data", format!("_id:{id}"), "_name:findme", "_version:0.0.1"]));
    let found = app.get_json("/api/v1/jobs?tags=_name:findme").await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(app.get_json("/api/v1/jobs?tags=_name:forged").await["data"], json!([]));
    // Several catalog statuses at once, comma-separated.
    let commands = app.get_json("/api/v1/commands?status=ACTIVE,INACTIVE").await;
    let statuses: std::collections::BTreeSet<&str> = commands["data"].as_array().unwrap().iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["ACTIVE", "INACTIVE"].into_iter().collect());
    let inactive = app.get_json("/api/v1/clusters?status=inactive").await;
    assert!(inactive["data"].as_array().unwrap().iter().all(|c| c["status"] == "INACTIVE") && !inactive["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let app = spawn_app().await;
    let body = error_of(app.get("/api/v1/nothing-here").await, 404).await;
    assert!(body["error"].as_str().unwrap().contains("/api/v1/nothing-here"));
    let response = app.client.delete(app.url("/api/v1/jobs")).send().await.unwrap();
    let body = error_of(response, 405).await;
    assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn each_client_mistake_is_answered_as_on_every_store() {
    let app = spawn_app().await;
    for mistake in heimdall_tests::client_mistakes("type:ping") {
        let request = match mistake.method {
            "POST" => app.client.post(app.url(&mistake.path)).json(mistake.body.as_ref().unwrap()),
            _ => app.client.get(app.url(&mistake.path)),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, mistake.status, "{}: {}", mistake.what, &text[..text.len().min(300)]);
        assert!(text.contains(mistake.needle), "{}: {}", mistake.what, &text[..text.len().min(300)]);
    }
}
