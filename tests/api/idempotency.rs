//! Idempotent submit: a client that lost its answer sends the same request with the same
//! `Idempotency-Key` and gets the first job back; the work runs once.

use std::time::Duration;

use heimdall_tests::{USER, file_lines, id_of, job, spawn_app};
use serde_json::{Value, json};

async fn submit_keyed(app: &heimdall_tests::TestApp, user: &str, key: &str, body: &Value) -> (u16, Option<String>, Value) {
    let response = app
        .client
        .post(app.url("/api/v1/job"))
        .header("X-Heimdall-User", user)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap().to_owned());
    (status, replayed, response.json().await.unwrap())
}

#[tokio::test]
async fn the_same_request_sent_again_with_its_key_answers_the_first_job_and_runs_once() {
    let app = spawn_app().await;
    let body = job("nightly-load", &["shell:record-run"], json!({}));

    let (status, replayed, first) = submit_keyed(&app, USER, "load-2026-12-07", &body).await;
    assert_eq!((status, replayed), (200, None), "{first}");
    // The client lost that answer and sends the same request, its fields in another order.
    let reordered: Value = serde_json::from_str(&serde_json::to_string(&json!({
        "cluster_criteria": body["cluster_criteria"], "command_criteria": body["command_criteria"],
        "context": {}, "version": body["version"], "name": body["name"],
    })).unwrap()).unwrap();
    let (status, replayed, again) = submit_keyed(&app, USER, "load-2026-12-07", &reordered).await;

    assert_eq!((status, replayed.as_deref()), (200, Some("true")), "{again}");
    assert_eq!(again["id"], first["id"]);
    let id = id_of(&first);
    app.wait_until_final(&id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(file_lines(&app.runs_log), vec![id.clone()], "the job's work ran once");
    let listed = app.get_json("/api/v1/jobs?name=nightly-load").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    // A finished sync job replays with its result, as first answered.
    let (_, _, sync_first) = submit_keyed(&app, USER, "ping-1", &job("p", &["type:ping"], json!({}))).await;
    let (_, replayed, sync_again) = submit_keyed(&app, USER, "ping-1", &job("p", &["type:ping"], json!({}))).await;
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!((&sync_again["id"], &sync_again["result"]), (&sync_first["id"], &sync_first["result"]));
}

#[tokio::test]
async fn the_same_key_with_another_request_is_a_conflict_and_keys_are_per_user() {
    let app = spawn_app().await;
    let (_, _, first) = submit_keyed(&app, USER, "k-42", &job("a", &["type:ping"], json!({}))).await;

    let (status, _, answer) = submit_keyed(&app, USER, "k-42", &job("b", &["type:ping"], json!({}))).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["code"], "IDEMPOTENCY_KEY_REUSED");
    let message = answer["error"].as_str().unwrap();
    assert!(message.contains("k-42") && message.contains(first["id"].as_str().unwrap()), "{message}");

    // bob's k-42 is his own: a new job, not alice's.
    let (status, replayed, bobs) = submit_keyed(&app, "bob", "k-42", &job("a", &["type:ping"], json!({}))).await;
    assert_eq!((status, replayed), (200, None));
    assert_ne!(bobs["id"], first["id"]);
}

#[tokio::test]
async fn a_malformed_key_is_a_400_that_records_nothing() {
    let app = spawn_app().await;
    for key in ["has space", &"k".repeat(256)] {
        let (status, _, answer) = submit_keyed(&app, USER, key, &job("a", &["type:ping"], json!({}))).await;
        assert_eq!(status, 400, "{key}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("Idempotency-Key"), "{answer}");
    }
    let listed = app.get_json("/api/v1/jobs").await;
    assert_eq!(listed["data"], json!([]));
}
