//! Many clients at once: no job is lost and none runs twice.

use std::collections::HashSet;

use heimdall_tests::{file_lines, id_of, job, spawn_app_tuned, test_config};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_async_submissions_each_run_exactly_once() {
    // One user's 200 jobs, past the default of 100 active jobs per user.
    let app = spawn_app_tuned(&format!("{}\nlimits: {{active_jobs_per_user: 200}}\n", test_config()), |_| {}).await;

    let submissions = (0..200).map(|i| {
        let app = &app;
        async move { id_of(&app.submit_ok(&job(&format!("burst-{i}"), &["shell:record-run"], json!({}))).await) }
    });
    let ids: Vec<String> = futures::future::join_all(submissions).await;

    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 200, "every submission got its own job");
    for id in &ids {
        assert_eq!(app.wait_until_final(id).await["status"], "SUCCEEDED", "job {id}");
    }
    let mut runs = file_lines(&app.runs_log);
    runs.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(runs, expected, "each job ran exactly once");
    let listed = app.get_json("/api/v1/jobs?status=SUCCEEDED&limit=101").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 101);
    assert_eq!(listed["has_more"], true);
}

#[tokio::test]
async fn past_the_sync_job_limit_a_sync_submit_is_429_with_retry_after_and_records_nothing() {
    // GIVEN a server that runs one sync job at a time, running one
    let app = heimdall_tests::spawn_app_tuned(heimdall_tests::test_config(), |settings| settings.max_sync_jobs = 1).await;
    let long = json!({"name": "long", "version": "1", "is_sync": true, "command_criteria": ["shell:sleep"], "context": {"arguments": ["2"]}});
    let first = {
        let (client, url, body) = (app.client.clone(), app.url("/api/v1/job"), long.clone());
        tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap().status() })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.get_json("/api/v1/jobs?status=RUNNING").await["data"].as_array().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the first sync job never ran");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // WHEN a second sync job is submitted
    let second = app.submit_job(&job("second", &["type:ping"], json!({}))).await;
    // THEN it is refused, saying what to do, and nothing of it is recorded
    assert_eq!(second.status(), 429);
    assert_eq!(second.headers()["retry-after"], "1");
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(body["code"], "TOO_MANY_REQUESTS");
    assert!(body["error"].as_str().unwrap().contains("is_sync"), "{body}");
    assert_eq!(app.get_json("/api/v1/jobs").await["data"].as_array().unwrap().len(), 1);
    // AND async jobs are still taken, and once the slot is free sync jobs run again
    let queued = app.submit_job(&json!({"name": "q", "version": "1", "is_sync": false, "command_criteria": ["type:ping-async"]})).await;
    assert_eq!(queued.status(), 200);
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(app.submit_job(&job("third", &["type:ping"], json!({}))).await.status(), 200);
}
