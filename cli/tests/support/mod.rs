//! The `heimdall` binary started as a user starts it: `heimdall serve` as a real process on a
//! port of its choosing, for the tests that drive it from outside.
#![allow(dead_code)] // Each test binary uses its own part of this.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct ServerProcess {
    pub child: Child,
    pub base_url: String,
    pub dir: tempfile::TempDir,
    /// The audit lines (target `heimdall::audit`) the server has logged so far.
    audit: Arc<Mutex<Vec<Value>>>,
}

pub fn heimdall(data_dir: &Path, config: &Path) -> Command {
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

/// Starts `heimdall serve` with `config` (`{{DIR}}` replaced by the test's folder, where
/// `runs/` is writable by jobs) and waits for its "serving" log line (JSON on a pipe), which
/// carries the port it bound.
pub fn start(config: &str) -> ServerProcess {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(&runs, std::fs::Permissions::from_mode(0o777)).unwrap();
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, config.replace("{{DIR}}", &dir.path().display().to_string())).unwrap();
    launch(dir)
}

/// `heimdall serve` on the data dir and config in `dir`.
fn launch(dir: tempfile::TempDir) -> ServerProcess {
    let config_path = dir.path().join("config.yml");
    let mut child = heimdall(&dir.path().join("data"), &config_path).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (address_tx, address_rx) = mpsc::channel();
    let audit = Arc::new(Mutex::new(Vec::new()));
    let audit_lines = Arc::clone(&audit);
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let Ok(event) = serde_json::from_str::<Value>(&line) else { continue };
            if event["message"] == "heimdall is serving" {
                let _ = address_tx.send(event["address"].as_str().unwrap_or_default().to_owned());
            }
            if event["target"] == "heimdall::audit" {
                audit_lines.lock().unwrap().push(event);
            }
        }
    });
    let address = address_rx.recv_timeout(Duration::from_secs(30)).expect("the server logs its address");
    ServerProcess { child, base_url: format!("http://{address}"), dir, audit }
}

impl ServerProcess {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Peak resident memory of the server process so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// The audit lines logged so far, waiting up to a second for `count` of them (the log
    /// reaches the pipe a moment after the answer).
    pub fn audit_lines(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.audit.lock().unwrap().len() < count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.audit.lock().unwrap().clone()
    }

    /// Kills the server outright (SIGKILL) and starts a new one on the same data dir and config.
    pub fn kill_and_restart(mut self) -> ServerProcess {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The folder moves to the new server; the old one keeps an empty stand-in to drop.
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        launch(dir)
    }

    pub fn terminate(&mut self) -> ExitStatus {
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
