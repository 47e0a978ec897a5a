//! Restarting the server loses nothing: jobs, logs and results stay; queued jobs run after
//! the restart; jobs cut off by the stop are recorded FAILED with the reason.

use std::time::Duration;

use heimdall_tests::{file_lines, id_of, job, spawn_app_on};
use serde_json::json;

#[tokio::test]
async fn jobs_their_logs_and_results_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let app = spawn_app_on(data_dir.clone(), Duration::from_secs(5)).await;
    let ping = id_of(&app.submit_ok(&job("ping", &["type:ping"], json!({}))).await);
    let echo = id_of(&app.submit_ok(&job("echo", &["shell:echo"], json!({"arguments": ["kept"]}))).await);
    let before = app.get_job(&echo).await;
    app.stop().await;

    let app = spawn_app_on(data_dir, Duration::from_secs(5)).await;

    assert_eq!(app.get_job(&echo).await, before);
    assert_eq!(app.get_text(&format!("/api/v1/job/{echo}/stdout")).await, "kept\n");
    let result = app.get_json(&format!("/api/v1/job/{ping}/result")).await;
    assert_eq!(result["data"][0][0], "Hello, test_user!");
    assert_eq!(app.get_json("/api/v1/jobs").await["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn after_a_stop_queued_jobs_run_and_cut_off_jobs_are_failed_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    // GIVEN all 4 workers busy with long jobs and one more job queued behind them
    let app = spawn_app_on(data_dir.clone(), Duration::ZERO).await;
    let mut long = Vec::new();
    for _ in 0..4 {
        long.push(id_of(&app.submit_ok(&job("long", &["shell:sleep"], json!({"arguments": ["30"]}))).await));
    }
    for id in &long {
        app.wait_for_status(id, Duration::from_secs(10), |s| s == "RUNNING").await;
    }
    let queued = id_of(&app.submit_ok(&job("queued", &["shell:record-run"], json!({}))).await);
    assert_eq!(app.get_job(&queued).await["status"], "ACCEPTED");

    // WHEN the server stops with no grace and starts again
    let runs_log = app.runs_log.clone();
    app.stop().await;
    let app = spawn_app_on(data_dir, Duration::from_secs(5)).await;

    // THEN the cut-off jobs are FAILED saying why, and the queued one ran exactly once
    for id in &long {
        let job = app.get_job(id).await;
        assert_eq!(job["status"], "FAILED");
        assert!(job["error"].as_str().unwrap().contains("the server stopped while this job was RUNNING"), "{job}");
    }
    assert_eq!(app.wait_until_final(&queued).await["status"], "SUCCEEDED");
    assert_eq!(file_lines(&runs_log), vec![queued]);
}
