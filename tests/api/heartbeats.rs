//! A job running in `heimdall serve` says it is alive every few seconds (what the janitor
//! reads to settle jobs whose process stopped).

use std::time::{Duration, Instant};

use heimdall_tests::{USER, id_of, job, spawn_app};
use serde_json::json;

#[tokio::test]
async fn a_running_job_heartbeats_and_an_ended_one_keeps_its_last_beat() {
    let app = spawn_app().await;
    let id = id_of(&app.submit_ok(&job("nap", &["shell:sleep"], json!({"arguments": ["30"]}))).await);
    app.wait_for_status(&id, Duration::from_secs(10), |s| s == "RUNNING").await;
    let started = app.get_job(&id).await["started_at"].as_i64().unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let beat = loop {
        if let Some(beat) = app.get_job(&id).await["heartbeat_at"].as_i64() {
            break beat;
        }
        assert!(Instant::now() < deadline, "no heartbeat after 20 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    assert!(beat >= started + 9, "the first beat comes after the interval: started {started}, beat {beat}");
    app.cancel_job_as(USER, &id).await;
    assert_eq!(app.wait_until_final(&id).await["status"], "CANCELED");
    assert_eq!(app.get_job(&id).await["heartbeat_at"].as_i64(), Some(beat));
}
