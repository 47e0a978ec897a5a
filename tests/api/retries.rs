//! Retries on `heimdall serve`: a failed attempt that its command's `retry` covers runs again
//! after its wait, on another matching cluster; every attempt is recorded and its output kept.

use std::time::Duration;

use heimdall_tests::{id_of, job, spawn_app};
use serde_json::{Value, json};

fn pool_job(criteria: &str) -> Value {
    let mut body = job("retried", &[criteria], json!({}));
    body["cluster_criteria"] = json!(["type:pool"]);
    body
}

#[tokio::test]
async fn a_job_failing_its_first_attempt_succeeds_on_the_second_on_another_cluster() {
    let app = spawn_app().await;
    let id = id_of(&app.submit_ok(&pool_job("shell:flaky")).await);

    // Between attempts it stays RUNNING, at attempt 2.
    let waiting = app.wait_for_status(&id, Duration::from_secs(15), |s| s != "ACCEPTED").await;
    assert!(matches!(waiting["status"].as_str(), Some("RUNNING" | "SUCCEEDED")), "{waiting}");
    let done = app.wait_for_status(&id, Duration::from_secs(20), heimdall_tests::is_final).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");

    let job = app.get_job(&id).await;
    assert_eq!(job["attempt"], 2);
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{job}");
    assert_eq!((attempts[0]["attempt"].as_u64(), attempts[0]["status"].as_str(), attempts[0]["exit_code"].as_i64()), (Some(1), Some("FAILED"), Some(1)));
    assert_eq!((attempts[1]["attempt"].as_u64(), attempts[1]["status"].as_str()), (Some(2), Some("SUCCEEDED")));
    assert_ne!(attempts[0]["cluster_id"], attempts[1]["cluster_id"], "the second attempt ran on the other cluster");
    assert_eq!(job["cluster_id"], attempts[1]["cluster_id"]);
    // The wait before it: delay_seconds 1 (plus at most a fifth of jitter).
    let gap = attempts[1]["started_at"].as_i64().unwrap() - attempts[0]["finished_at"].as_i64().unwrap();
    assert!((1..=2).contains(&gap), "waited {gap} s");
    // Each attempt's output is kept; the latest by default.
    assert_eq!(app.get_text(&format!("/api/v1/job/{id}/stdout?attempt=1")).await, "attempt 1\n");
    assert_eq!(app.get_text(&format!("/api/v1/job/{id}/stdout?attempt=2")).await, "attempt 2\n");
    assert_eq!(app.get_text(&format!("/api/v1/job/{id}/stdout")).await, "attempt 2\n");
}

#[tokio::test]
async fn a_job_gives_up_after_max_attempts_with_every_attempt_recorded_and_readable() {
    let app = spawn_app().await;
    let id = id_of(&app.submit_ok(&pool_job("shell:always-fails")).await);

    let done = app.wait_for_status(&id, Duration::from_secs(20), heimdall_tests::is_final).await;

    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["exit_code"], 1);
    let job = app.get_job(&id).await;
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.iter().map(|a| a["attempt"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2, 3], "{job}");
    assert!(attempts.iter().all(|a| a["status"] == "FAILED" && a["exit_code"] == 1 && a["error"].as_str().is_some_and(|e| e.contains("code 1"))), "{job}");
    for n in 1..=3 {
        assert_eq!(app.get_text(&format!("/api/v1/job/{id}/stdout?attempt={n}")).await, format!("try {n}\n"));
        assert_eq!(app.get_text(&format!("/api/v1/job/{id}/stderr?attempt={n}")).await, format!("bad {n}\n"));
    }
    let missing = app.get(&format!("/api/v1/job/{id}/stdout?attempt=4")).await;
    assert_eq!(missing.status(), 404);
    let bad = app.get(&format!("/api/v1/job/{id}/stdout?attempt=0")).await;
    assert_eq!(bad.status(), 400);
}
