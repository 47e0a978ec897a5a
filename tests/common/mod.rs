//! Test helpers: `spawn_app()` starts the real server (the same `run` as `heimdall serve`) on
//! a loopback port with its own data dir, and `TestApp` has one method per API call.
//! Set `TEST_LOG=1` to see the server's logs.

pub mod emulator;

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use heimdall_cli::serve::{ServeAuth, ServeSettings, run};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const USER: &str = "test_user";
const TEST_CONFIG: &str = include_str!("../fixtures/test-config.yml");

/// A running server and a client for it.
pub struct TestApp {
    pub base_url: String,
    /// A client that says it is [`USER`] (requests may override the header).
    pub client: reqwest::Client,
    /// A client that says nothing of who it is.
    pub anonymous: reqwest::Client,
    pub data_dir: PathBuf,
    /// The file the `record-run` command appends each run's job id to.
    pub runs_log: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _scratch: Option<tempfile::TempDir>,
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt().with_env_filter("info").with_test_writer().init();
        }
    });
}

/// A server with the test config and a fresh data dir.
pub async fn spawn_app() -> TestApp {
    let scratch = tempfile::tempdir().expect("a temp dir");
    let mut app = spawn_app_on(scratch.path().to_owned(), Duration::from_secs(5)).await;
    app._scratch = Some(scratch);
    app
}

/// A server with the test config on `data_dir` (kept after the server stops, for restarts).
pub async fn spawn_app_on(data_dir: PathBuf, shutdown_grace: Duration) -> TestApp {
    spawn_app_with(TEST_CONFIG, data_dir, shutdown_grace, offline_aws_config()).await
}

/// A server with `config` (`{{RUNS_LOG}}` replaced) whose AWS plugins use `aws`.
pub async fn spawn_app_with(config: &str, data_dir: PathBuf, shutdown_grace: Duration, aws: aws_config::SdkConfig) -> TestApp {
    spawn(config, data_dir, shutdown_grace, aws, |_| {}).await
}

/// A server with `config` (the test config plus, say, an `access` section) identifying callers
/// by `auth`, on a fresh data dir.
pub async fn spawn_app_with_auth(config: &str, auth: ServeAuth) -> TestApp {
    spawn_app_tuned(config, move |settings| settings.auth = auth).await
}

/// A server with `config` on a fresh data dir, its settings changed by `tune` first.
pub async fn spawn_app_tuned(config: &str, tune: impl FnOnce(&mut ServeSettings)) -> TestApp {
    let scratch = tempfile::tempdir().expect("a temp dir");
    let mut app = spawn(config, scratch.path().to_owned(), Duration::from_secs(5), offline_aws_config(), tune).await;
    app._scratch = Some(scratch);
    app
}

/// The test config (with `{{RUNS_LOG}}` still in it), for tests that extend it.
pub fn test_config() -> &'static str {
    TEST_CONFIG
}

async fn spawn(
    config: &str,
    data_dir: PathBuf,
    shutdown_grace: Duration,
    aws: aws_config::SdkConfig,
    tune: impl FnOnce(&mut ServeSettings),
) -> TestApp {
    init_logs();
    std::fs::create_dir_all(&data_dir).expect("the data dir");
    let runs_log = runs_log_in(&data_dir);
    let config_path = data_dir.with_extension("config.yml");
    std::fs::write(&config_path, fill_runs_log(config, &runs_log)).expect("write the test config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let mut settings = ServeSettings {
        data_dir: data_dir.clone(),
        config: Some(config_path),
        auth: ServeAuth::Header { default_user: None },
        max_sync_jobs: heimdall_service::ServiceSettings::DEFAULT_MAX_SYNC_JOBS,
        shutdown_grace,
        watch_dir: None,
        watch_interval: Duration::from_millis(100),
        retention: None,
        janitor_interval: heimdall_cli::serve::DEFAULT_JANITOR_INTERVAL,
        aws: Some(aws),
    };
    tune(&mut settings);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(run(listener, settings, async move {
        let _ = stopped.await;
    }));
    let app = TestApp {
        base_url,
        client: client_as(USER),
        anonymous: reqwest::Client::new(),
        data_dir,
        runs_log,
        stop: Some(stop),
        server,
        _scratch: None,
    };
    app.wait_until_healthy().await;
    app
}

/// Where the `record-run` command of a test under `root` appends: `root/runs/runs.log`, in a
/// folder a job may write even when it runs as an unprivileged user (a root server's jobs do),
/// `root` made searchable (not listable) for that user.
pub fn runs_log_in(root: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let runs = root.join("runs");
    std::fs::create_dir_all(&runs).expect("the runs folder");
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o711)).expect("chmod the test root");
    std::fs::set_permissions(&runs, std::fs::Permissions::from_mode(0o777)).expect("chmod the runs folder");
    runs.join("runs.log")
}

/// `config` with `{{RUNS_LOG}}` and `{{RUNS_DIR}}` filled in for `runs_log`.
pub fn fill_runs_log(config: &str, runs_log: &Path) -> String {
    let dir = runs_log.parent().expect("the runs log is in a folder");
    config.replace("{{RUNS_LOG}}", &runs_log.display().to_string()).replace("{{RUNS_DIR}}", &dir.display().to_string())
}

/// A client whose every request carries `X-Heimdall-User: <user>`.
pub fn client_as(user: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-heimdall-user", reqwest::header::HeaderValue::from_str(user).expect("a header-safe user"));
    reqwest::Client::builder().default_headers(headers).build().expect("an HTTP client")
}

/// An AWS configuration for servers whose tests use no AWS: a fixed region and an endpoint on
/// loopback, so nothing ever looks for a region or credentials on the network.
pub fn offline_aws_config() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .build()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn wait_until_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(response) = self.client.get(self.url("/health")).send().await
                && response.status().is_success() {
                    return;
                }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the server did not become healthy");
    }

    /// Stops the server gracefully and waits for it; the data dir stays.
    pub async fn stop(mut self) -> PathBuf {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let server = std::mem::replace(&mut self.server, tokio::spawn(async { Ok(()) }));
        server.await.expect("the server task").expect("the server stopped cleanly");
        self.data_dir.clone()
    }

    pub async fn submit_job_as(&self, user: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/job"))
            .header("X-Heimdall-User", user)
            .json(body)
            .send()
            .await
            .expect("POST /api/v1/job")
    }

    pub async fn submit_job(&self, body: &Value) -> reqwest::Response {
        self.submit_job_as(USER, body).await
    }

    /// Submits and returns the answered job, asserting a 200.
    pub async fn submit_ok(&self, body: &Value) -> Value {
        let response = self.submit_job(body).await;
        let status = response.status();
        let json: Value = response.json().await.expect("a JSON answer");
        assert_eq!(status, 200, "submit answered {status}: {json}");
        json
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_as(&self, user: &str, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).header("X-Heimdall-User", user).send().await.expect("GET")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON answer")
    }

    pub async fn get_text(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.expect("a text answer")
    }

    pub async fn get_job(&self, id: &str) -> Value {
        self.get_json(&format!("/api/v1/job/{id}")).await
    }

    pub async fn cancel_job_as(&self, user: &str, id: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/api/v1/job/{id}/cancel")))
            .header("X-Heimdall-User", user)
            .send()
            .await
            .expect("POST cancel")
    }

    /// Polls `/status` until `done` accepts the status, or fails after `timeout`.
    pub async fn wait_for_status(&self, id: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> Value {
        self.wait_for_status_as(USER, id, timeout, done).await
    }

    /// `wait_for_status` reading as `user` (the job's owner or an admin).
    pub async fn wait_for_status_as(&self, user: &str, id: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let response = self.get_as(user, &format!("/api/v1/job/{id}/status")).await;
            assert_eq!(response.status(), 200, "GET /api/v1/job/{id}/status as {user}");
            let status: Value = response.json().await.expect("a JSON answer");
            if done(status["status"].as_str().unwrap_or_default()) {
                return status;
            }
            assert!(Instant::now() < deadline, "job {id} still {status} after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits for a final status.
    pub async fn wait_until_final(&self, id: &str) -> Value {
        self.wait_for_status(id, Duration::from_secs(30), is_final).await
    }
}

pub fn is_final(status: &str) -> bool {
    matches!(status, "SUCCEEDED" | "FAILED" | "CANCELED" | "KILLED")
}

/// A job request with the walkthrough's shape.
pub fn job(name: &str, command_criteria: &[&str], context: Value) -> Value {
    json!({
        "name": name,
        "version": "0.0.1",
        "context": context,
        "command_criteria": command_criteria,
        "cluster_criteria": ["type:localhost"],
    })
}

/// The id of an answered job.
pub fn id_of(job: &Value) -> String {
    job["id"].as_str().expect("the job has an id").to_owned()
}

/// The lines of a text file; none if it does not exist.
pub fn file_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// A request a client may get wrong, and what every runtime must answer: the same status (a
/// 400 names the field), never a 5xx. Run against `heimdall serve` (SQLite) and the api
/// function (DynamoDB) alike.
pub struct ClientMistake {
    pub what: &'static str,
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
    pub status: u16,
    /// In the error message (400) or the answer (200).
    pub needle: &'static str,
}

/// The mistakes of issue "Keep tenants apart" that DynamoDB once answered 503; `criteria` is
/// a command criteria that runs a sync job on both runtimes.
pub fn client_mistakes(criteria: &str) -> Vec<ClientMistake> {
    // A sync job request with `fields` added.
    let submit = |fields: Value| {
        let mut body = json!({"name": "m", "version": "1", "is_sync": true, "command_criteria": [criteria]});
        body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        body
    };
    let control = "\u{1}";
    let heavy_tags: Vec<String> = (0..64).map(|i| format!("{i}:{}", control.repeat(250))).collect();
    vec![
        ClientMistake {
            what: "repeated tags are kept once",
            method: "POST",
            path: "/api/v1/job".into(),
            body: Some(submit(json!({"tags": ["team:data", "team:data", "env:test", "team:data"]}))),
            status: 200,
            needle: r#""tags":["team:data","env:test","_id:"#,
        },
        ClientMistake {
            what: "a description past the limit",
            method: "POST",
            path: "/api/v1/job".into(),
            body: Some(submit(json!({"description": "d".repeat(5000)}))),
            status: 400,
            needle: "description",
        },
        ClientMistake {
            what: "a job whose record would not fit a DynamoDB item",
            method: "POST",
            path: "/api/v1/job".into(),
            body: Some(submit(json!({"context": {"blob": "x".repeat(250_000)}, "tags": heavy_tags, "description": control.repeat(4000)}))),
            status: 400,
            needle: "bytes of JSON",
        },
        ClientMistake {
            what: "created_after later than created_before",
            method: "GET",
            path: "/api/v1/jobs?created_after=2000000000&created_before=1000000000".into(),
            body: None,
            status: 400,
            needle: "created_after",
        },
        ClientMistake {
            what: "hundreds of statuses",
            method: "GET",
            path: format!("/api/v1/jobs?status={}", vec!["RUNNING"; 300].join(",")),
            body: None,
            status: 200,
            needle: r#""data":"#,
        },
        ClientMistake {
            what: "repeated tag filters",
            method: "GET",
            path: format!("/api/v1/jobs?tags={}", vec!["a:b"; 200].join(",")),
            body: None,
            status: 200,
            needle: r#""data":"#,
        },
    ]
}
