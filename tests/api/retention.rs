//! Retention: the janitor of `heimdall serve` deletes jobs that ended longer ago than the
//! retention, with their logs and result; jobs still running stay.

use std::time::{Duration, Instant};

use heimdall_tests::{id_of, job, spawn_app_tuned, test_config};
use serde_json::json;

#[tokio::test]
async fn jobs_ended_past_the_retention_are_deleted_with_their_files() {
    let app = spawn_app_tuned(test_config(), |settings| {
        settings.retention = Some(Duration::from_secs(1));
        settings.janitor_interval = Duration::from_millis(200);
    })
    .await;
    let ended = id_of(&app.submit_ok(&job("echo", &["shell:echo"], json!({"arguments": ["bye"]}))).await);
    let running = id_of(&app.submit_ok(&job("nap", &["shell:sleep"], json!({"arguments": ["30"]}))).await);
    let files = app.data_dir.join("jobs").join(&ended);
    assert!(files.join("stdout").exists(), "the ended job's log is on disk");

    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get(&format!("/api/v1/job/{ended}")).await.status() != 404 {
        assert!(Instant::now() < deadline, "job {ended} still there past its retention");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!files.exists(), "{} was left behind", files.display());
    assert_eq!(app.get(&format!("/api/v1/job/{running}")).await.status(), 200, "a running job is never deleted");
}
