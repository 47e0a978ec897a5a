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

/// Sends `method path` as `user` (none: no identity), answers status and JSON body.
async fn call(server: &ServerProcess, user: Option<&str>, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", server.base_url));
    if let Some(user) = user {
        request = request.header("X-Heimdall-User", user);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_state_changing_request_writes_one_audit_line_with_who_what_object_outcome_and_source() {
    // GIVEN a server, as a user runs it, logging JSON on stderr
    let server = start(BIG_OUTPUT_CONFIG);
    let ping = json!({"name": "a", "version": "1", "command_criteria": ["type:ping"]});
    let unmatched = json!({"name": "b", "version": "1", "command_criteria": ["type:nothing"]});
    // WHEN a job is submitted, one matches nothing, bob cancels alice's job, someone submits
    // without saying who, and alice reads her job
    let (_, job) = call(&server, Some("alice"), reqwest::Method::POST, "/api/v1/job", Some(ping.clone())).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let (_, refused) = call(&server, Some("alice"), reqwest::Method::POST, "/api/v1/job", Some(unmatched)).await;
    let (status, _) = call(&server, Some("bob"), reqwest::Method::POST, &format!("/api/v1/job/{id}/cancel"), None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&server, None, reqwest::Method::POST, "/api/v1/job", Some(ping)).await;
    assert_eq!(status, 401);
    call(&server, Some("alice"), reqwest::Method::GET, &format!("/api/v1/job/{id}"), None).await;
    // THEN there is one audit line per state-changing request and none for the read
    let lines = server.audit_lines(5);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let expect = [
        ("alice", "POST /api/v1/job", id.as_str(), "ok", 200),
        ("alice", "POST /api/v1/job", refused["id"].as_str().unwrap(), "refused", 400),
        ("bob", "POST /api/v1/job/{id}/cancel", "-", "refused", 404),
        ("-", "POST /api/v1/job", "-", "refused", 401),
    ];
    for (line, (user, action, object, outcome, status)) in lines.iter().zip(expect) {
        assert_eq!(line["user"], user, "{line}");
        assert_eq!(line["action"], action, "{line}");
        assert_eq!(line["object"], object, "{line}");
        assert_eq!(line["outcome"], outcome, "{line}");
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["source"], "127.0.0.1", "{line}");
    }
    assert_eq!(lines[1]["code"], "NO_MATCHING_COMMAND");
    assert!(lines[2]["path"].as_str().unwrap().contains(&id), "the refused cancel names its path");
}

const RETRY_CONFIG: &str = r#"
commands:
  - name: second-time-lucky
    version: "1"
    plugin: shell
    is_sync: false
    tags: [type:retried]
    retry: {max_attempts: 2, delay_seconds: 4, on: [exit_code:1]}
    context:
      # Logs each attempt with its time, then fails the first.
      command: [/bin/sh, -c, 'echo "$HEIMDALL_JOB_ATTEMPT $(date +%s)" >> {{DIR}}/runs/attempts.log; test "$HEIMDALL_JOB_ATTEMPT" -ge 2']
      sandbox: {write_paths: ['{{DIR}}/runs']}
clusters:
  - name: local
    version: "1"
"#;

async fn get_job(server: &ServerProcess, id: &str) -> Value {
    let (status, job) = call(server, Some("tester"), reqwest::Method::GET, &format!("/api/v1/job/{id}"), None).await;
    assert_eq!(status, 200, "{job}");
    job
}

#[tokio::test]
async fn a_server_killed_while_a_job_waits_for_its_retry_runs_the_retry_after_restart_at_its_time() {
    // GIVEN a job whose first attempt failed and whose retry waits 4 s
    let server = start(RETRY_CONFIG);
    let id = submit(&server, "type:retried").await["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let scheduled = loop {
        let job = get_job(&server, &id).await;
        if job["attempt"] == 2 && job["attempt_started_at"].is_i64() {
            break job["attempt_started_at"].as_i64().unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "the first attempt never failed: {job}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    // WHEN the server is killed outright during the wait and started again
    let server = server.kill_and_restart();

    // THEN the retry runs once, not before its time, and the job succeeds
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let job = loop {
        let job = get_job(&server, &id).await;
        if job["status"] != "RUNNING" {
            break job;
        }
        assert!(std::time::Instant::now() < deadline, "the retry never ran: {job}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    let log = std::fs::read_to_string(server.dir.path().join("runs/attempts.log")).unwrap();
    let attempts: Vec<(u32, i64)> = log.lines().map(|l| { let (a, t) = l.split_once(' ').unwrap(); (a.parse().unwrap(), t.parse().unwrap()) }).collect();
    assert_eq!(attempts.iter().map(|(a, _)| *a).collect::<Vec<_>>(), vec![1, 2], "{log}");
    assert!(attempts[1].1 >= scheduled, "the retry ran at {} before its time {scheduled}", attempts[1].1);
    assert_eq!(job["attempts"].as_array().unwrap().len(), 2, "{job}");
}

#[tokio::test]
async fn catalog_changes_are_audited_naming_the_command_and_who_tried() {
    // GIVEN a server whose config makes alice an admin
    let server = start(&format!("{BIG_OUTPUT_CONFIG}access: {{admins: [alice]}}\n"));
    let inactive = json!({"status": "inactive"});
    // WHEN alice deactivates a command and bob tries the same
    let (status, _) = call(&server, Some("alice"), reqwest::Method::PUT, "/api/v1/command/ping/status", Some(inactive.clone())).await;
    assert_eq!(status, 200);
    let (status, _) = call(&server, Some("bob"), reqwest::Method::PUT, "/api/v1/command/ping/status", Some(inactive)).await;
    assert_eq!(status, 403);
    // THEN both are in the audit log, the change naming its command
    let lines = server.audit_lines(2);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!((lines[0]["user"].as_str(), lines[0]["object"].as_str(), lines[0]["outcome"].as_str()), (Some("alice"), Some("command:ping"), Some("ok")), "{}", lines[0]);
    assert_eq!(lines[0]["action"], "PUT /api/v1/command/{id}/status");
    assert_eq!((lines[1]["user"].as_str(), lines[1]["outcome"].as_str(), lines[1]["code"].as_str()), (Some("bob"), Some("refused"), Some("FORBIDDEN")), "{}", lines[1]);
    assert!(lines[1]["path"].as_str().unwrap().ends_with("/command/ping/status"));
}
