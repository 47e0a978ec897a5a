//! The AWS emulator for the tests: moto's server (DESIGN.md, "Local testing without Docker"),
//! started once per test binary from the project's pinned venv, with Step Functions execution
//! on, and in front of it the Lambda router: moto's Step Functions engine sends every AWS call
//! it makes to `MOTO_PORT`, where this router runs the invoked function's real handler code
//! in-process and forwards everything else to moto.

use std::net::TcpListener as StdListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use heimdall_emulator::lambda_router::{LambdaHandler, LambdaResult};
use heimdall_emulator::lambda_router::LambdaRouter;
use serde_json::json;

pub struct Emulator {
    /// moto's own endpoint: what our AWS clients use.
    pub endpoint: String,
    /// The router's port (moto's `MOTO_PORT`).
    pub router_port: u16,
    router: LambdaRouter,
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn venv() -> PathBuf {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/python-env");
    let output = Command::new(&script).stderr(Stdio::inherit()).output().expect("run scripts/python-env");
    assert!(output.status.success(), "scripts/python-env failed");
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// The emulator of this test binary, started on first use.
pub fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(start)
}

fn start() -> Emulator {
    let moto_port = free_port();
    let router_port = free_port();
    let router = LambdaRouter::default();
    let app = router.app(format!("http://127.0.0.1:{moto_port}"));
    let moto_url = format!("http://127.0.0.1:{moto_port}");
    let venv = venv();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    // One thread owns moto (PR_SET_PDEATHSIG ties moto's life to this thread, which lives as
    // long as the test binary) and runs the router on its own runtime.
    std::thread::Builder::new()
        .name("emulator".into())
        .spawn(move || {
            let mut moto = Command::new(venv.join("bin/moto_server"));
            moto.args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
                .env("MOTO_PORT", router_port.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(if std::env::var_os("TEST_LOG").is_some() { Stdio::inherit() } else { Stdio::null() });
            // SAFETY: prctl in the child between fork and exec only sets a process attribute.
            unsafe {
                moto.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let mut moto = moto.spawn().expect("start moto_server");
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", router_port)).await.unwrap();
                let client = reqwest::Client::new();
                let server = tokio::spawn(async move { axum::serve(listener, app).await });
                wait_for_moto(&client, &moto_url).await;
                // Turn on the Step Functions interpreter (state machines created later execute).
                client
                    .post(format!("{moto_url}/moto-api/config"))
                    .json(&json!({"stepfunctions": {"execute_state_machine": true}}))
                    .send()
                    .await
                    .expect("configure moto")
                    .error_for_status()
                    .expect("moto accepts its config");
                ready_tx.send(()).unwrap();
                let _ = server.await;
            });
            let _ = moto.kill();
            let _ = moto.wait();
        })
        .unwrap();
    ready_rx.recv_timeout(Duration::from_secs(90)).expect("the emulator started");
    Emulator { endpoint: format!("http://127.0.0.1:{moto_port}"), router_port, router }
}

async fn wait_for_moto(client: &reqwest::Client, moto_url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.get(format!("{moto_url}/moto-api/")).send().await.is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Emulator {
    /// Makes `name` invocable by the state machines (its ARN's last part).
    pub fn register_function(&self, name: &str, handler: LambdaHandler) {
        self.router.register(name, handler);
    }

    /// How many times the router ran `name`.
    pub fn invocations_of(&self, name: &str) -> usize {
        self.router.invocations_of(name)
    }

    /// The SDK config every test client uses: moto's endpoint, a fixed region, test keys.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await
    }

    /// The same, but through the router, which counts every call ([`Emulator::forwarded_calls`]).
    pub async fn counted_sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(format!("http://127.0.0.1:{}", self.router_port))
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await
    }

    /// Answers `method path` with `answer` instead of moto, for calls through the router.
    pub fn override_answer(&self, method: &str, path: &str, answer: serde_json::Value) {
        self.router.override_answer(method, path, answer);
    }

    /// The AWS calls that went through the router so far, as `service:Operation`.
    pub fn forwarded_calls(&self) -> Vec<String> {
        self.router.forwarded_calls()
    }

    /// The ARN moto gives a function `name` (its fixed test account).
    pub fn function_arn(&self, name: &str) -> String {
        format!("arn:aws:lambda:us-east-1:123456789012:function:{name}")
    }
}
