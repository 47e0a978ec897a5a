//! The client commands as a user runs them: the `heimdall` binary against a real
//! `heimdall serve` process, checking what it prints and how it exits.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{ServerProcess, start};

const CONFIG: &str = r#"
commands:
  - {name: ping, version: "1", plugin: ping, is_sync: true, tags: [type:ping]}
  - {name: ping-canary, version: "2", plugin: ping, is_sync: true, weight: 1, tags: [type:ping]}
  - {name: ping-old, version: "0", plugin: ping, status: inactive, tags: [type:ping]}
  - name: echo
    version: "1"
    plugin: shell
    allowed_modes: [sync, async]
    tags: [shell:echo]
    context: {command: [/bin/echo], allow_arguments: true}
  - name: exit-3
    version: "1"
    plugin: shell
    tags: [shell:exit-3]
    context: {command: [/bin/sh, -c, "echo failing >&2; exit 3"]}
  - name: count
    version: "1"
    plugin: shell
    tags: [shell:count]
    context: {command: [/bin/sh, -c, "for i in 1 2 3 4; do echo line $i; sleep 0.4; done"]}
  - name: sleep
    version: "1"
    plugin: shell
    tags: [shell:sleep]
    context: {command: [/bin/sleep, "30"]}
clusters:
  - {name: local, version: "1"}
"#;

/// Runs `heimdall <args>` as `alice` against `server`, with `stdin` fed.
fn heimdall_as(server: &ServerProcess, user: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_heimdall"))
        .args(args)
        .env("HEIMDALL_URL", &server.base_url)
        .env("HEIMDALL_USER", user)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn heimdall(server: &ServerProcess, args: &[&str]) -> Output {
    heimdall_as(server, "alice", args, "")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The id an async `submit` printed (`<id> ACCEPTED`).
fn submitted_id(output: &Output) -> String {
    assert!(output.status.success(), "{}", stderr(output));
    stdout(output).split_whitespace().next().unwrap().to_owned()
}

#[test]
fn a_sync_job_prints_its_id_status_and_result_table() {
    let server = start(CONFIG);

    let output = heimdall(&server, &["submit", "--name", "hello", "--version", "1", "-c", "type:ping"]);

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let mut lines = text.lines();
    assert!(lines.next().unwrap().ends_with(" SUCCEEDED"), "{text}");
    assert_eq!(lines.next().unwrap().trim_end(), "message (string)");
    assert_eq!(lines.next().unwrap().trim_end(), "Hello, alice!");
}

#[test]
fn waiting_for_an_async_job_exits_with_its_outcome_and_its_output_can_be_read() {
    let server = start(CONFIG);

    let failed = heimdall(&server, &["submit", "--name", "f", "--version", "1", "-c", "shell:exit-3", "--wait"]);
    assert_eq!(failed.status.code(), Some(3), "{}", stderr(&failed));
    let failed_id = stdout(&failed).split_whitespace().next().unwrap().to_owned();
    assert!(stdout(&failed).trim_end().ends_with("FAILED"));
    assert!(stderr(&failed).contains("exited with code 3"), "{}", stderr(&failed));
    assert_eq!(stdout(&heimdall(&server, &["logs", &failed_id, "--stderr"])), "failing\n");

    let done = heimdall(&server, &["submit", "--name", "e", "--version", "1", "-c", "shell:echo", "--async", "--arg", "a,b", "--arg", "c", "--wait"]);
    assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
    let id = stdout(&done).split_whitespace().next().unwrap().to_owned();
    // Not a terminal: one status line per change on stderr.
    assert!(stderr(&done).contains(&format!("{id} SUCCEEDED")), "{}", stderr(&done));
    assert_eq!(stdout(&heimdall(&server, &["status", &id])), "SUCCEEDED\n");
    assert_eq!(stdout(&heimdall(&server, &["logs", &id])), "a,b c\n");
    let job: Value = serde_json::from_str(&stdout(&heimdall(&server, &["get", "--output", "json", &id]))).unwrap();
    assert_eq!(job["user"], "alice");
    assert_eq!(job["context"]["arguments"], serde_json::json!(["a,b", "c"]));
}

#[test]
fn results_print_as_a_table_csv_or_json() {
    let server = start(CONFIG);
    let id = submitted_id(&heimdall(&server, &["submit", "--name", "p", "--version", "1", "-c", "type:ping"]));

    assert_eq!(stdout(&heimdall(&server, &["result", &id, "--format", "csv"])), "message\r\n\"Hello, alice!\"\r\n", "a comma is quoted");
    let json: Value = serde_json::from_str(&stdout(&heimdall(&server, &["result", &id, "--format", "json"]))).unwrap();
    assert_eq!(json["data"][0][0], "Hello, alice!");
    assert!(stdout(&heimdall(&server, &["result", &id])).starts_with("message (string)"));
}

#[test]
fn logs_follow_prints_a_running_job_s_output_until_it_ends() {
    let server = start(CONFIG);
    let id = submitted_id(&heimdall(&server, &["submit", "--name", "c", "--version", "1", "-c", "shell:count"]));

    let started = Instant::now();
    let followed = heimdall(&server, &["logs", &id, "--follow"]);

    assert_eq!(followed.status.code(), Some(0), "{}", stderr(&followed));
    assert_eq!(stdout(&followed), "line 1\nline 2\nline 3\nline 4\n");
    // It followed the job rather than printing what was there when it started.
    assert!(started.elapsed() >= Duration::from_millis(800), "{:?}", started.elapsed());
}

#[test]
fn a_running_job_is_canceled_and_jobs_commands_and_clusters_are_listed() {
    let server = start(CONFIG);
    let id = submitted_id(&heimdall(&server, &["submit", "--name", "nap", "--version", "1", "-c", "shell:sleep"]));

    let canceled = heimdall(&server, &["cancel", &id]);
    assert!(canceled.status.success(), "{}", stderr(&canceled));
    let answered = stdout(&canceled);
    assert!(answered == format!("{id} CANCELING\n") || answered == format!("{id} CANCELED\n"), "{answered}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while stdout(&heimdall(&server, &["status", &id])) != "CANCELED\n" {
        assert!(Instant::now() < deadline, "the job was not canceled");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Someone else may not cancel it: one line, the API's reason.
    let other = heimdall_as(&server, "mallory", &["cancel", &id], "");
    assert_eq!(other.status.code(), Some(1));

    let listed = stdout(&heimdall(&server, &["jobs", "--for-user", "alice", "--status", "CANCELED"]));
    assert!(listed.starts_with("ID "), "{listed}");
    let row: Vec<&str> = listed.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..5], [id.as_str(), "CANCELED", "nap", "alice", "sleep"], "{listed}");
    let page: Value = serde_json::from_str(&stdout(&heimdall(&server, &["jobs", "--output", "json"]))).unwrap();
    assert_eq!(page["data"][0]["id"], id.as_str());
    let commands = stdout(&heimdall(&server, &["commands"]));
    assert!(commands.lines().any(|l| l.starts_with("ping ") && l.contains("ACTIVE") && l.contains("type:ping")), "{commands}");
    assert!(stdout(&heimdall(&server, &["clusters"])).lines().any(|l| l.starts_with("local ")));
}

#[test]
fn a_request_file_from_stdin_in_yaml_is_submitted() {
    let server = start(CONFIG);
    let request = "name: from-yaml\nversion: '1'\ncommand_criteria: [shell:echo]\ncontext: {arguments: [via, stdin]}\n";

    let output = heimdall_as(&server, "alice", &["submit", "--file", "-", "--sync", "--output", "json"], request);

    assert!(output.status.success(), "{}", stderr(&output));
    let job: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!((job["name"].as_str(), job["status"].as_str()), (Some("from-yaml"), Some("SUCCEEDED")));
    assert_eq!(stdout(&heimdall(&server, &["logs", job["id"].as_str().unwrap()])), "via stdin\n");
}

#[test]
fn errors_are_one_line_with_an_exit_code_that_tells_them_apart() {
    let server = start(CONFIG);

    let not_an_id = heimdall(&server, &["status", "not-a-uuid"]);
    assert_eq!(not_an_id.status.code(), Some(1));
    let line = stderr(&not_an_id);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with("heimdall: `not-a-uuid` is not a job id") && line.contains("(HTTP 400, BAD_REQUEST)"), "{line}");

    let no_match = heimdall(&server, &["submit", "--name", "x", "--version", "1", "-c", "type:nothing"]);
    assert_eq!(no_match.status.code(), Some(1));
    assert!(stderr(&no_match).contains("NO_MATCHING_COMMAND"), "{}", stderr(&no_match));

    let usage = heimdall(&server, &["submit", "--version", "1", "-c", "type:ping"]);
    assert_eq!(usage.status.code(), Some(2));
    assert_eq!(stderr(&usage), "heimdall: give --name (or a --file whose request has `name`)\n");

    let unreachable = Command::new(env!("CARGO_BIN_EXE_heimdall")).args(["jobs", "--service-url", "http://127.0.0.1:9"]).output().unwrap();
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(stderr(&unreachable).contains("cannot reach http://127.0.0.1:9"), "{}", stderr(&unreachable));
}

#[tokio::test]
async fn route_shows_each_candidates_chance_and_why_others_are_left_out_without_submitting() {
    let server = start(CONFIG);

    let output = heimdall(&server, &["route", "--name", "r", "--version", "1", "-c", "type:ping"]);

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = stdout(&output);
    assert!(text.contains(" 99.01%  ping on local") && text.contains("  0.99%  ping-canary on local"), "{text}");
    assert!(text.contains("command ping-old: the command is INACTIVE"), "{text}");
    let none = heimdall(&server, &["route", "--name", "r", "--version", "1", "-c", "type:nothing"]);
    assert_eq!(none.status.code(), Some(1), "{}", stdout(&none));
    assert!(stdout(&none).contains("none: nothing would run this job"));
    let jobs = heimdall(&server, &["jobs", "--output", "json"]);
    let listed: Value = serde_json::from_str(&stdout(&jobs)).unwrap();
    assert_eq!(listed["data"], serde_json::json!([]), "a route submits nothing");
}
