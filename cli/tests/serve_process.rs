//! The `heimdall` binary as a user runs it: a real process, real signals, real memory.

mod support;

use std::process::Stdio;

use serde_json::{Value, json};
use support::{ServerProcess, heimdall, start};

const BIG_OUTPUT_CONFIG: &str = r#"
commands:
  - name: two-hundred-mb
    version: "1"
    plugin: shell
    is_sync: true
    tags: [type:big]
    context:
      command: [/usr/bin/head, -c, "209715200", /dev/zero]
  - name: ping
    version: "1"
    plugin: ping
    is_sync: true
    tags: [type:ping]
clusters:
  - name: local
    version: "1"
"#;

async fn submit(server: &ServerProcess, criteria: &str) -> Value {
    let body = json!({"name": "t", "version": "1", "command_criteria": [criteria]});
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/job", server.base_url))
        .header("X-Heimdall-User", "tester")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_job_writing_200_mb_to_stdout_completes_while_the_server_stays_far_below_that() {
    let server = start(BIG_OUTPUT_CONFIG);

    let job = submit(&server, "type:big").await;

    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    let stdout_url = format!("{}/api/v1/job/{}/stdout", server.base_url, job["id"].as_str().unwrap());
    let mut response = reqwest::Client::new().get(stdout_url).header("X-Heimdall-User", "tester").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut streamed = 0usize;
    while let Some(chunk) = response.chunk().await.unwrap() {
        streamed += chunk.len();
    }
    assert_eq!(streamed, 200 * 1024 * 1024, "the whole output was kept and streams back");
    let peak_mib = server.peak_rss_kib() / 1024;
    eprintln!("peak RSS of heimdall serve across a 200 MiB stdout job and its read-back: {peak_mib} MiB");
    assert!(peak_mib < 64, "peak RSS {peak_mib} MiB: output is being held in memory");
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_and_a_second_server_cannot_share_its_data_dir() {
    let mut server = start(BIG_OUTPUT_CONFIG);
    assert_eq!(submit(&server, "type:ping").await["status"], "SUCCEEDED");

    let data_dir = server.dir.path().join("data");
    let config = server.dir.path().join("config.yml");
    let second = heimdall(&data_dir, &config).stderr(Stdio::piped()).output().unwrap();
    assert!(!second.status.success());
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(message.contains("another heimdall serve is using the data dir"), "{message}");

    let status = server.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn a_bad_config_stops_start_up_with_a_message_naming_file_entry_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.yml");
    std::fs::write(&config, "commands:\n  - {name: x, version: '1', plugin: shel}\n").unwrap();

    let output = heimdall(&dir.path().join("data"), &config).output().unwrap();

    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("broken.yml"), "{message}");
    assert!(message.contains("commands[0] (id `x`): field `plugin`: unknown plugin `shel`"), "{message}");
}
