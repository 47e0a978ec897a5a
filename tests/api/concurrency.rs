//! Many clients at once: no job is lost and none runs twice.

use std::collections::HashSet;

use heimdall_tests::{file_lines, id_of, job, spawn_app};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_async_submissions_each_run_exactly_once() {
    let app = spawn_app().await;

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
