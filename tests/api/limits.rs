//! Limits every caller meets: active jobs per user (429 with Retry-After), and a sync job's
//! time inside its request (stopped and FAILED past it, never left running).

use std::time::{Duration, Instant};

use heimdall_tests::{USER, file_lines, id_of, job, spawn_app, spawn_app_tuned, test_config};
use serde_json::{Value, json};

#[tokio::test]
async fn past_the_active_jobs_limit_a_submit_is_429_until_a_job_ends() {
    let config = format!("{}\nlimits: {{active_jobs_per_user: 2}}\n", test_config());
    let app = spawn_app_tuned(&config, |_| {}).await;
    let nap = job("nap", &["shell:sleep"], json!({"arguments": ["30"]}));
    let first = id_of(&app.submit_ok(&nap).await);
    app.submit_ok(&nap).await;

    let refused = app.submit_job(&nap).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_some());
    let answer: Value = refused.json().await.unwrap();
    assert!(answer["error"].as_str().unwrap().contains("active_jobs_per_user"), "{answer}");
    // Nothing was recorded for the refused request; another user is not held to alice's jobs.
    assert_eq!(app.get_json("/api/v1/jobs").await["data"].as_array().unwrap().len(), 2);
    assert_eq!(app.submit_job_as("bob", &nap).await.status(), 200);

    app.cancel_job_as(USER, &first).await;
    app.wait_until_final(&first).await;
    assert_eq!(app.submit_job(&nap).await.status(), 200, "room again once a job ended");
}

#[tokio::test]
async fn a_sync_job_past_its_sync_limit_is_stopped_and_failed_saying_so() {
    let app = spawn_app().await;
    let started = Instant::now();

    let answer = app.submit_ok(&job("late", &["shell:late-sync"], json!({}))).await;

    assert!(started.elapsed() < Duration::from_secs(3), "answered at the 1 s limit, not after the 3 s job: {:?}", started.elapsed());
    assert_eq!(answer["status"], "FAILED", "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(error.contains("sync limit of 1 s") && error.contains("\"is_sync\": false"), "{error}");
    // The process was stopped: it never reaches its write after 3 s.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(file_lines(&app.runs_log), Vec::<String>::new());
    assert_eq!(app.get_job(&id_of(&answer)).await["status"], "FAILED");
}
