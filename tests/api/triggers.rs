//! Scheduled triggers in `heimdall serve`: a cron schedule fires a job from its template, with
//! the schedule's time filled in, as the trigger's user.

use std::time::{Duration, Instant};

use heimdall_tests::{offline_aws_config, spawn_app_with};
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
"#;

#[tokio::test]
async fn a_schedule_fires_its_job_template_with_the_time_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(CONFIG, dir.path().join("data"), Duration::from_secs(5), offline_aws_config()).await;

    let deadline = Instant::now() + Duration::from_secs(10);
    let fired: Value = loop {
        let page = app.get_json("/api/v1/jobs?username=scheduler&status=SUCCEEDED").await;
        if let Some(job) = page["data"].as_array().unwrap().first() {
            break job.clone();
        }
        assert!(Instant::now() < deadline, "the schedule fired no job");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    assert_eq!(fired["name"], "every-second");
    assert_eq!(fired["user"], "scheduler");
    let tag = fired["tags"][0].as_str().unwrap();
    assert!(tag.starts_with("fired:20") && tag.ends_with('Z'), "{tag}");
}

#[tokio::test]
async fn a_bad_cron_expression_stops_start_up_naming_the_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, CONFIG.replace("* * * * * *", "every day")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let settings = heimdall_cli::serve::ServeSettings {
        data_dir: dir.path().join("data"),
        config: Some(config_path),
        default_user: None,
        shutdown_grace: Duration::from_secs(1),
        aws: Some(offline_aws_config()),
    };

    let error = heimdall_cli::serve::run(listener, settings, std::future::pending()).await.unwrap_err();

    let message = format!("{error:#}");
    assert!(message.contains("triggers[0] (name `every-second`): field `schedule`: `every day` is not a cron expression"), "{message}");
}
