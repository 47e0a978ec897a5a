//! Triggers in `heimdall serve`: a schedule fires a job from its template with the schedule's
//! time filled in; a file dropped into a watched bucket folder fires the `s3` trigger once,
//! with the bucket and key filled in; bad triggers stop start-up naming what is wrong.

use std::time::{Duration, Instant};

use heimdall_tests::{TestApp, offline_aws_config, spawn_app_with};
use serde_json::Value;

const CONFIG: &str = r#"
commands:
  - {name: ping, version: "1", plugin: ping, is_sync: false, tags: [type:ping]}
clusters:
  - {name: here, version: "1"}
triggers:
  - name: every-second
    schedule: "* * * * * *"
    user: scheduler
    job:
      name: "${trigger.name}"
      version: "1"
      command_criteria: [type:ping]
      tags: ["fired:${schedule.time}"]
  - name: landed-csv
    s3: {bucket: landing, prefix: "in/", suffix: ".csv"}
    user: loader
    job:
      name: load
      version: "1"
      command_criteria: [type:ping]
      tags: ["object:s3://${s3.bucket}/${s3.key}", "size:${s3.size}"]
"#;

/// Waits for the first job the query finds among the jobs of the trigger's user.
async fn first_job(app: &TestApp, query: &str) -> Value {
    let user = query.split('&').find_map(|pair| pair.strip_prefix("username=")).expect("the query names the trigger's user");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page: Value = app.get_as(user, &format!("/api/v1/jobs?{query}")).await.json().await.unwrap();
        if let Some(job) = page["data"].as_array().unwrap().first() {
            return job.clone();
        }
        assert!(Instant::now() < deadline, "no job for {query}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_schedule_fires_its_job_template_with_the_time_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(CONFIG, dir.path().join("data"), Duration::from_secs(5), offline_aws_config()).await;

    let fired = first_job(&app, "username=scheduler&status=SUCCEEDED").await;

    assert_eq!(fired["name"], "every-second");
    assert_eq!(fired["user"], "scheduler");
    let tag = fired["tags"][0].as_str().unwrap();
    assert!(tag.starts_with("fired:20") && tag.ends_with('Z'), "{tag}");
}

#[tokio::test]
async fn a_file_in_a_watched_bucket_folder_fires_its_trigger_once() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let app = spawn_app_with(CONFIG, data_dir.clone(), Duration::from_secs(5), offline_aws_config()).await;
    let folder = data_dir.join("buckets/landing/in/2026");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("orders.csv"), "id\n1\n").unwrap();
    // Not for this trigger: another suffix, another prefix, a hidden file being written.
    std::fs::write(folder.join("orders.json"), "{}").unwrap();
    std::fs::write(data_dir.join("buckets/landing/readme.csv"), "x").unwrap();
    std::fs::write(folder.join(".orders.csv.part"), "id\n").unwrap();

    let fired = first_job(&app, "username=loader").await;

    let tags: Vec<&str> = fired["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert!(tags.contains(&"object:s3://landing/in/2026/orders.csv"), "{tags:?}");
    assert!(tags.contains(&"size:5"), "{tags:?}");
    // Many scans later, and across a restart, the same file has fired exactly once.
    tokio::time::sleep(Duration::from_millis(800)).await;
    app.stop().await;
    let app = spawn_app_with(CONFIG, data_dir, Duration::from_secs(5), offline_aws_config()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let page: Value = app.get_as("loader", "/api/v1/jobs?username=loader").await.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
}

async fn start_up_error(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let settings = heimdall_cli::serve::ServeSettings {
        data_dir: dir.path().join("data"),
        config: Some(config_path),
        auth: heimdall_cli::serve::ServeAuth::Header { default_user: None },
        max_sync_jobs: heimdall_service::ServiceSettings::DEFAULT_MAX_SYNC_JOBS,
        shutdown_grace: Duration::from_secs(1),
        watch_dir: None,
        watch_interval: Duration::from_secs(1),
        retention: None,
        janitor_interval: heimdall_cli::serve::DEFAULT_JANITOR_INTERVAL,
        aws: Some(offline_aws_config()),
    };
    let error = heimdall_cli::serve::run(listener, settings, std::future::pending()).await.unwrap_err();
    format!("{error:#}")
}

#[tokio::test]
async fn bad_schedules_and_placeholders_stop_start_up_naming_the_trigger() {
    let message = start_up_error(&CONFIG.replace("* * * * * *", "every day")).await;
    assert!(message.contains("triggers[0] (name `every-second`): field `schedule`: `every day` is not a cron expression"), "{message}");

    let message = start_up_error(&CONFIG.replace("${s3.key}", "${detail.key}")).await;
    assert!(message.contains("triggers[1] (name `landed-csv`): `job.tags[0]`: unknown placeholder `${detail.key}`"), "{message}");
    assert!(message.contains("this trigger offers ${trigger.name}, ${event.id}, ${event.time}, ${s3.bucket}, ${s3.key}, ${s3.size}"), "{message}");
}
