//! The `heimdall` binary as a user runs it: a real process, real signals, real memory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct ServerProcess {
    child: Child,
    base_url: String,
    _dir: tempfile::TempDir,
}

fn heimdall(data_dir: &Path, config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_heimdall"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--shutdown-grace", "2"])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Starts `heimdall serve` with `config` and waits for its "serving" log line (JSON on a
/// pipe), which carries the port it bound.
fn start(config: &str) -> ServerProcess {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = heimdall(&dir.path().join("data"), &config_path).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (address_tx, address_rx) = mpsc::channel();
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<Value>(&line)
                && event["message"] == "heimdall is serving" {
                    let _ = address_tx.send(event["address"].as_str().unwrap_or_default().to_owned());
                }
        }
    });
    let address = address_rx.recv_timeout(Duration::from_secs(30)).expect("the server logs its address");
    ServerProcess { child, base_url: format!("http://{address}"), _dir: dir }
}

impl ServerProcess {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Peak resident memory of the server process so far, in KiB (`VmHWM`).
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn terminate(&mut self) -> ExitStatus {
        // SAFETY: sends SIGTERM to the child we started; no memory is involved.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let mut response = reqwest::get(stdout_url).await.unwrap();
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

    let data_dir = server._dir.path().join("data");
    let config = server._dir.path().join("config.yml");
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
