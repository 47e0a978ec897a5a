//! Cancel: only the owner, only unfinished jobs; a running process is stopped.

use std::time::{Duration, Instant};

use heimdall_tests::{USER, id_of, job, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn canceling_a_running_job_stops_its_process_and_ends_canceled() {
    let app = spawn_app().await;
    let id = id_of(&app.submit_ok(&job("long", &["shell:sleep"], json!({"arguments": ["30"]}))).await);
    app.wait_for_status(&id, Duration::from_secs(10), |s| s == "RUNNING").await;
    let asked = Instant::now();

    let response = app.cancel_job_as(USER, &id).await;

    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert!(matches!(answer["status"].as_str(), Some("CANCELING" | "CANCELED")), "{answer}");
    let done = app.wait_until_final(&id).await;
    assert_eq!(done["status"], "CANCELED");
    assert!(asked.elapsed() < Duration::from_secs(10), "the 30 s sleep was not stopped");
    assert_eq!(app.get_job(&id).await["canceled_by"], USER);
}

#[tokio::test]
async fn canceling_a_queued_job_ends_it_at_once_and_it_never_runs() {
    let app = spawn_app().await;
    // GIVEN every worker busy (the test config's pool has 4)
    let mut busy = Vec::new();
    for _ in 0..4 {
        busy.push(id_of(&app.submit_ok(&job("busy", &["shell:sleep"], json!({"arguments": ["30"]}))).await));
    }
    for id in &busy {
        app.wait_for_status(id, Duration::from_secs(10), |s| s == "RUNNING").await;
    }
    let queued = id_of(&app.submit_ok(&job("queued", &["shell:sleep"], json!({"arguments": ["30"]}))).await);

    // WHEN it is canceled while waiting
    let answer: Value = app.cancel_job_as(USER, &queued).await.json().await.unwrap();

    // THEN it is CANCELED at once and never starts, even once a worker frees up
    assert_eq!(answer["status"], "CANCELED");
    app.cancel_job_as(USER, &busy[0]).await;
    app.wait_until_final(&busy[0]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let job = app.get_job(&queued).await;
    assert_eq!(job["status"], "CANCELED");
    assert_eq!(job["started_at"], json!(null));
}

#[tokio::test]
async fn only_the_owner_may_cancel() {
    let app = spawn_app().await;
    let id = id_of(&app.submit_ok(&job("long", &["shell:sleep"], json!({"arguments": ["30"]}))).await);

    let response = app.cancel_job_as("mallory", &id).await;

    // mallory may not read the job, so for her it does not exist
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "NOT_FOUND");
    assert!(!body["error"].as_str().unwrap().contains(USER), "the owner is not revealed: {body}");
    app.cancel_job_as(USER, &id).await;
}

#[tokio::test]
async fn a_finished_job_cannot_be_canceled() {
    let app = spawn_app().await;
    let id = id_of(&app.submit_ok(&job("ping", &["type:ping"], json!({}))).await);

    let response = app.cancel_job_as(USER, &id).await;

    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("already ended SUCCEEDED"), "{body}");
}
