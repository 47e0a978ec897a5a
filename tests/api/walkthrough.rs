//! The README's walkthrough, step by step.

use heimdall_tests::{USER, id_of, job, spawn_app};
use serde_json::json;

#[tokio::test]
async fn a_ping_job_answers_finished_with_its_command_cluster_timings_and_result() {
    let app = spawn_app().await;

    let answered = app.submit_ok(&job("ping-test", &["type:ping"], json!({}))).await;

    assert_eq!(answered["status"], "SUCCEEDED");
    assert_eq!(answered["user"], USER);
    assert_eq!(answered["is_sync"], true);
    assert_eq!(answered["command_id"], "ping-0.0.1");
    assert_eq!(answered["cluster_id"], "localhost-0.0.1");
    for time in ["created_at", "updated_at", "started_at", "finished_at"] {
        assert!(answered[time].as_i64().unwrap() > 1_700_000_000, "{time}: {answered}");
    }
    assert_eq!(
        answered["result"],
        json!({"columns": [{"name": "message", "type": "string"}], "data": [["Hello, test_user!"]]})
    );
}

#[tokio::test]
async fn every_read_endpoint_answers_for_a_finished_job() {
    let app = spawn_app().await;
    let id = id_of(&app.submit_ok(&job("ping-test", &["type:ping"], json!({}))).await);

    let stored = app.get_job(&id).await;
    assert_eq!(stored["status"], "SUCCEEDED");
    assert!(stored.get("result").is_none(), "GET /job/{{id}} carries no result");
    let status = app.get_json(&format!("/api/v1/job/{id}/status")).await;
    assert_eq!(status["status"], "SUCCEEDED");
    assert_eq!(status["error"], json!(null));
    assert_eq!(app.get_text(&format!("/api/v1/job/{id}/stdout")).await, "");
    assert_eq!(app.get_text(&format!("/api/v1/job/{id}/stderr")).await, "");
    let result = app.get(&format!("/api/v1/job/{id}/result")).await;
    assert_eq!(result.headers()["content-type"], "application/json");
    let result: serde_json::Value = result.json().await.unwrap();
    assert_eq!(result["data"][0][0], "Hello, test_user!");
}

#[tokio::test]
async fn commands_and_clusters_list_the_config_with_system_tags() {
    let app = spawn_app().await;

    let commands = app.get_json("/api/v1/commands").await;
    let ping = commands["data"].as_array().unwrap().iter().find(|c| c["id"] == "ping-0.0.1").unwrap();
    assert_eq!(ping["status"], "ACTIVE");
    assert_eq!(ping["plugin"], "ping");
    assert!(ping["tags"].as_array().unwrap().contains(&json!("_id:ping-0.0.1")));

    let shells = app.get_json("/api/v1/commands?plugin=shell&_rsc=cachebuster").await;
    assert!(shells["data"].as_array().unwrap().iter().all(|c| c["plugin"] == "shell"));
    let one = app.get_json("/api/v1/commands?id=echo").await;
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    assert_eq!(app.get_json("/api/v1/command/echo").await["name"], "echo");

    let clusters = app.get_json("/api/v1/clusters").await;
    assert_eq!(clusters["data"][0]["id"], "localhost-0.0.1");
    assert_eq!(app.get_json("/api/v1/cluster/localhost-0.0.1").await["status"], "ACTIVE");
    // Heimdall's status routes: the status and when it last changed.
    let status = app.get_json("/api/v1/command/retired/status").await;
    assert_eq!(status["status"], "INACTIVE");
    assert!(status["updated_at"].is_i64(), "{status}");
    assert_eq!(app.get_json("/api/v1/cluster/localhost-0.0.1/status").await["status"], "ACTIVE");
    assert_eq!(app.get("/api/v1/cluster/nowhere/status").await.status(), 404);
    assert_eq!(app.get_json("/api/v1/job/statuses").await.as_array().unwrap().len(), 8);
    assert_eq!(app.get_json("/api/v1/cluster/statuses").await, json!(["ACTIVE", "INACTIVE", "DELETED"]));
}

#[tokio::test]
async fn a_sync_shell_job_answers_finished_and_its_stdout_is_readable() {
    let app = spawn_app().await;

    let answered = app.submit_ok(&job("echo", &["shell:echo"], json!({"arguments": ["hello", "world"]}))).await;

    assert_eq!(answered["status"], "SUCCEEDED");
    assert_eq!(answered["exit_code"], 0);
    let stdout = app.get_text(&format!("/api/v1/job/{}/stdout", id_of(&answered))).await;
    assert_eq!(stdout, "hello world\n");
}

#[tokio::test]
async fn an_async_shell_job_is_accepted_at_once_then_runs_and_finishes() {
    let app = spawn_app().await;

    let mut request = job("echo-async", &["shell:echo"], json!({"arguments": ["later"]}));
    request["is_sync"] = json!(false);
    let answered = app.submit_ok(&request).await;

    assert_eq!(answered["status"], "ACCEPTED");
    assert_eq!(answered["is_sync"], false);
    let id = id_of(&answered);
    let status = app.wait_until_final(&id).await;
    assert_eq!(status["status"], "SUCCEEDED");
    assert_eq!(app.get_text(&format!("/api/v1/job/{id}/stdout")).await, "later\n");
}

#[tokio::test]
async fn polling_sees_an_async_job_running_before_it_succeeds() {
    let app = spawn_app().await;
    let id = id_of(&app.submit_ok(&job("nap", &["shell:sleep"], json!({"arguments": ["1"]}))).await);

    let running = app.wait_for_status(&id, std::time::Duration::from_secs(10), |s| s != "ACCEPTED").await;
    assert_eq!(running["status"], "RUNNING");
    let done = app.wait_until_final(&id).await;
    assert_eq!(done["status"], "SUCCEEDED");
    let job = app.get_job(&id).await;
    assert!(job["started_at"].as_i64().unwrap() <= job["finished_at"].as_i64().unwrap());
}

#[tokio::test]
async fn a_failing_shell_job_is_failed_with_its_exit_code_and_stderr() {
    let app = spawn_app().await;

    let answered = app.submit_ok(&job("fail", &["shell:exit-3"], json!({}))).await;

    assert_eq!(answered["status"], "FAILED");
    assert_eq!(answered["exit_code"], 3);
    assert!(answered["error"].as_str().unwrap().contains("exited with code 3"), "{answered}");
    let id = id_of(&answered);
    assert_eq!(app.get_text(&format!("/api/v1/job/{id}/stderr")).await, "failing\n");
    let result = app.get(&format!("/api/v1/job/{id}/result")).await;
    assert_eq!(result.status(), 404);
    let body: serde_json::Value = result.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("ended FAILED without a result"), "{body}");
}

#[tokio::test]
async fn a_shell_job_that_writes_result_json_has_that_result() {
    let app = spawn_app().await;
    let answered = app.submit_ok(&job("table", &["shell:table"], json!({}))).await;
    assert_eq!(answered["result"]["data"], json!([[1], [2]]));
    assert_eq!(answered["result"]["columns"][0]["type"], "int");
}
