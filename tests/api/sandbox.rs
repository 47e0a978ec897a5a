//! Shell jobs are sandboxed, tried through `heimdall serve` over HTTP: a job cannot read the
//! server's environment, its data dir or another job's files; everything a job starts (even
//! `setsid`) is gone after a timeout or a cancel; a hostile `result.json` fails the job and the
//! server stays up.

use std::time::Duration;

use heimdall_tests::{TestApp, id_of, job, spawn_app_tuned, test_config};
use serde_json::{Value, json};

const COMMANDS: &str = r#"
  - name: peek
    version: 0.0.1
    plugin: shell
    is_sync: true
    tags: [shell:peek]
    cluster_tags: [type:localhost]
    context: {command: [/bin/cat], allow_arguments: true, end_of_options: true}
  - name: keep-secret
    version: 0.0.1
    plugin: shell
    is_sync: false
    tags: [shell:keep-secret]
    cluster_tags: [type:localhost]
    context: {command: [/bin/sh, -c, 'echo alices-data > mine.txt; sleep 30']}
  - name: escape
    version: 0.0.1
    plugin: shell
    is_sync: false
    tags: [shell:escape]
    cluster_tags: [type:localhost]
    context: {command: [/bin/sh, -c, 'setsid sleep "$0" & sleep "$0"'], allow_arguments: true, timeout_seconds: 60}
  - name: symlink-result
    version: 0.0.1
    plugin: shell
    is_sync: true
    tags: [shell:symlink-result]
    cluster_tags: [type:localhost]
    context: {command: [/bin/ln, -s, /dev/zero, result.json]}
  - name: huge-result
    version: 0.0.1
    plugin: shell
    is_sync: true
    tags: [shell:huge-result]
    cluster_tags: [type:localhost]
    context: {command: [/bin/sh, -c, 'head -c 100000 /dev/zero > result.json'], max_result_bytes: 1000}
  - name: chatty
    version: 0.0.1
    plugin: shell
    is_sync: true
    tags: [shell:chatty]
    cluster_tags: [type:localhost]
    context: {command: [/usr/bin/head, -c, '100000', /dev/zero], max_output_bytes: 1000}
"#;

async fn sandbox_app() -> TestApp {
    let config = test_config().replacen("commands:\n", &format!("commands:{COMMANDS}"), 1);
    spawn_app_tuned(&config, |_| {}).await
}

async fn run_sync(app: &TestApp, criteria: &str, context: Value) -> Value {
    let response = app.submit_job(&job("probe", &[criteria], context)).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn stdout_of(app: &TestApp, id: &str) -> String {
    app.get_text(&format!("/api/v1/job/{id}/stdout")).await
}

#[tokio::test]
async fn a_job_cannot_read_the_servers_environment_its_data_dir_or_another_jobs_files() {
    let app = sandbox_app().await;
    // another user's job leaves a file in its work dir and keeps running
    let other = id_of(&app.submit_job_as("alice", &job("keeper", &["shell:keep-secret"], json!({}))).await.json().await.unwrap());
    let others_file = app.data_dir.join("work").join(&other).join("mine.txt");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !others_file.exists() {
        assert!(std::time::Instant::now() < deadline, "the other job never wrote its file");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let targets = [
        format!("/proc/{}/environ", std::process::id()),
        app.data_dir.join("heimdall.db").display().to_string(),
        app.data_dir.join("jobs").display().to_string(),
        others_file.display().to_string(),
    ];
    for target in targets {
        let answered = run_sync(&app, "shell:peek", json!({"arguments": [target]})).await;
        assert_eq!(answered["status"], "FAILED", "{target}: {answered}");
        let id = id_of(&answered);
        assert_eq!(stdout_of(&app, &id).await, "", "{target} was read");
        let stderr = app.get_text(&format!("/api/v1/job/{id}/stderr")).await;
        assert!(stderr.contains("Permission denied"), "{target}: {stderr}");
    }
    let _ = app.cancel_job_as("alice", &other).await;
}

/// Pids of processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|line| String::from_utf8_lossy(&line).replace('\0', " ").contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

async fn gone_within(marker: &str, wait: Duration) -> bool {
    let deadline = std::time::Instant::now() + wait;
    loop {
        if processes_with(marker).is_empty() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn unique_seconds() -> String {
    format!("2{:03}.{}", std::process::id() % 1000, std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos())
}

#[tokio::test]
async fn a_setsid_grandchild_is_gone_after_a_timeout_and_after_a_cancel() {
    let app = sandbox_app().await;
    for ending in ["timeout", "cancel"] {
        let marker = unique_seconds();
        let mut context = json!({"arguments": [marker]});
        if ending == "timeout" {
            context["timeout_seconds"] = json!(1);
        }
        let id = id_of(&app.submit_ok(&job("escape", &["shell:escape"], context)).await);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while processes_with(&marker).len() < 2 {
            assert!(std::time::Instant::now() < deadline, "{ending}: the job's sleeps never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if ending == "cancel" {
            assert_eq!(app.cancel_job_as(heimdall_tests::USER, &id).await.status(), 200);
        }
        let status = app.wait_for_status(&id, Duration::from_secs(15), heimdall_tests::is_final).await;
        assert_eq!(status["status"], if ending == "cancel" { "CANCELED" } else { "FAILED" }, "{ending}: {status}");
        let gone = gone_within(&marker, Duration::from_secs(5)).await;
        let left = processes_with(&marker);
        for pid in &left {
            // SAFETY: kill(2) of a leftover test process, so a failure does not leak it.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        assert!(gone, "{ending}: processes {left:?} outlived their job");
    }
}

#[tokio::test]
async fn a_symlinked_or_oversized_result_json_fails_the_job_and_the_server_stays_up() {
    let app = sandbox_app().await;
    let symlinked = run_sync(&app, "shell:symlink-result", json!({})).await;
    assert_eq!(symlinked["status"], "FAILED");
    assert!(symlinked["error"].as_str().unwrap().contains("symbolic link"), "{symlinked}");
    let huge = run_sync(&app, "shell:huge-result", json!({})).await;
    assert_eq!(huge["status"], "FAILED");
    assert!(huge["error"].as_str().unwrap().contains("1000"), "{huge}");
    let still_up = run_sync(&app, "type:ping", json!({})).await;
    assert_eq!(still_up["status"], "SUCCEEDED");
}

#[tokio::test]
async fn output_past_max_output_bytes_fails_the_job_saying_so_and_keeps_what_came_before() {
    let app = sandbox_app().await;
    let answered = run_sync(&app, "shell:chatty", json!({})).await;
    assert_eq!(answered["status"], "FAILED");
    assert!(answered["error"].as_str().unwrap().contains("stdout"), "{answered}");
    assert_eq!(stdout_of(&app, &id_of(&answered)).await.len(), 1000);
}

#[tokio::test]
async fn end_of_options_keeps_a_job_argument_from_being_read_as_an_option() {
    let app = sandbox_app().await;
    // `cat --help` would print help; after `--` it is a file name that does not exist
    let answered = run_sync(&app, "shell:peek", json!({"arguments": ["--help"]})).await;
    assert_eq!(answered["status"], "FAILED", "{answered}");
    assert_eq!(stdout_of(&app, &id_of(&answered)).await, "");
}
