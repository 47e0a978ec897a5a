//! Runs the command's configured argv as a child process, never through a shell.
//!
//! Command context (config):
//! ```yaml
//! context:
//!   command: [/usr/bin/env, printf, "%s\n"]  # argv; required
//!   allow_arguments: true      # the job's `arguments` are appended (default false)
//!   env: {LC_ALL: C}           # fixed environment
//!   allowed_env: [REPORT_DAY]  # variables the job's `env` may set
//!   timeout_seconds: 600       # default 3600; a job may ask for less, never more
//! ```
//! Job context: `arguments: [..]`, `env: {..}`, `timeout_seconds`.
//!
//! The child gets a clean environment (never the server's: it holds credentials), a scratch
//! working directory, no stdin, and its own process group so a timeout or a cancel stops every
//! process it started. stdout and stderr stream to the artifact store in 64 KiB chunks while it
//! runs. A `result.json` it leaves in its working directory becomes the job's result.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use heimdall_domain::{Command, JobResult};
use heimdall_ports::{Artifact, ArtifactWriter, Plugin, PluginError, PluginRun, Step};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};

pub const DEFAULT_TIMEOUT_SECONDS: u64 = 3600;
/// A `result.json` larger than this is refused rather than loaded.
pub const MAX_RESULT_FILE_BYTES: u64 = 64 * 1024 * 1024;
const CHUNK_BYTES: usize = 64 * 1024;
const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct ShellPlugin;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShellCommandSettings {
    command: Vec<String>,
    #[serde(default)]
    allow_arguments: bool,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    allowed_env: Vec<String>,
    #[serde(default = "default_timeout")]
    timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECONDS
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShellJobContext {
    #[serde(default)]
    arguments: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    timeout_seconds: Option<u64>,
}

impl ShellCommandSettings {
    fn parse(command: &Command) -> Result<Self, String> {
        let settings: Self = serde_json::from_value(command.context.clone())
            .map_err(|error| format!("shell command context: {error}"))?;
        if settings.command.is_empty() || settings.command[0].trim().is_empty() {
            return Err("shell command context: `command` must be a non-empty argv list, e.g. [/bin/echo, hello]".into());
        }
        if settings.timeout_seconds == 0 {
            return Err("shell command context: `timeout_seconds` must be at least 1".into());
        }
        for name in settings.env.keys().chain(&settings.allowed_env) {
            if !is_env_name(name) {
                return Err(format!("shell command context: `{name}` is not an environment variable name"));
            }
        }
        Ok(settings)
    }
}

impl ShellJobContext {
    fn parse(context: &Value, settings: &ShellCommandSettings, command_id: &str) -> Result<Self, String> {
        let job: Self = serde_json::from_value(context.clone())
            .map_err(|error| format!("shell job context: {error}"))?;
        if !job.arguments.is_empty() && !settings.allow_arguments {
            return Err(format!(
                "shell job context: command `{command_id}` does not accept `arguments` (its config has no `allow_arguments: true`)"
            ));
        }
        if let Some(name) = job.env.keys().find(|name| !settings.allowed_env.contains(name)) {
            return Err(format!(
                "shell job context: command `{command_id}` does not let jobs set `{name}`; allowed: {:?}",
                settings.allowed_env
            ));
        }
        if job.arguments.iter().chain(job.env.values()).any(|text| text.contains('\0')) {
            return Err("shell job context: arguments and env values must not contain NUL bytes".into());
        }
        match job.timeout_seconds {
            Some(0) => Err("shell job context: `timeout_seconds` must be at least 1".into()),
            Some(asked) if asked > settings.timeout_seconds => Err(format!(
                "shell job context: `timeout_seconds` {asked} is above the command's limit of {}",
                settings.timeout_seconds
            )),
            _ => Ok(job),
        }
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[async_trait]
impl Plugin for ShellPlugin {
    fn name(&self) -> &'static str {
        "shell"
    }

    fn validate_command(&self, command: &Command) -> Result<(), String> {
        ShellCommandSettings::parse(command).map(|_| ())
    }

    fn validate_job(&self, context: &Value, command: &Command) -> Result<(), String> {
        let settings = ShellCommandSettings::parse(command)?;
        ShellJobContext::parse(context, &settings, &command.id).map(|_| ())
    }

    async fn submit(&self, run: &PluginRun) -> Result<Step, PluginError> {
        let settings = ShellCommandSettings::parse(&run.command).map_err(PluginError::InvalidContext)?;
        let job = ShellJobContext::parse(&run.job.context, &settings, &run.command.id)
            .map_err(PluginError::InvalidContext)?;
        let work_dir = WorkDir::create(&run.work_dir).await?;
        let exit_code = run_process(run, &settings, job, work_dir.path()).await?;
        collect_result_file(run, work_dir.path()).await?;
        Ok(Step::Complete(json!({ "exit_code": exit_code })))
    }
}

async fn run_process(
    run: &PluginRun,
    settings: &ShellCommandSettings,
    job: ShellJobContext,
    work_dir: &Path,
) -> Result<i32, PluginError> {
    let timeout_seconds = job.timeout_seconds.unwrap_or(settings.timeout_seconds);
    let program = &settings.command[0];
    let mut process = tokio::process::Command::new(program);
    process
        .args(&settings.command[1..])
        .args(&job.arguments)
        .current_dir(work_dir)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .env("HOME", work_dir)
        .env("LANG", "C.UTF-8")
        .env("HEIMDALL_JOB_ID", run.job.id.to_string())
        .env("HEIMDALL_JOB_NAME", &run.job.name)
        .env("HEIMDALL_USER", &run.job.user)
        .envs(&settings.env)
        .envs(&job.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);

    let stdout_writer = run.artifacts.create(run.job.id, Artifact::Stdout).await?;
    let stderr_writer = run.artifacts.create(run.job.id, Artifact::Stderr).await?;
    let mut child = process.spawn().map_err(|error| PluginError::JobFailed {
        message: format!("could not start `{program}`: {error}"),
        exit_code: None,
    })?;
    // Dropped when this future is (a cancel) or on return: every process of the job stops.
    let group = ProcessGroup(child.id());
    let stdout_pump = tokio::spawn(pump(child.stdout.take(), stdout_writer));
    let stderr_pump = tokio::spawn(pump(child.stderr.take(), stderr_writer));

    let waited = tokio::time::timeout(Duration::from_secs(timeout_seconds), child.wait()).await;
    // The leader is done (or overdue): stop what it left behind so the pipes close.
    drop(group);
    let status = match waited {
        Ok(status) => status.map_err(|error| PluginError::Unavailable(format!("lost the process: {error}")))?,
        Err(_) => {
            let _ = child.wait().await;
            let _ = join_pumps(stdout_pump, stderr_pump).await;
            return Err(PluginError::TimedOut { seconds: timeout_seconds });
        }
    };
    join_pumps(stdout_pump, stderr_pump).await?;
    exit_code_of(status, program)
}

fn exit_code_of(status: ExitStatus, program: &str) -> Result<i32, PluginError> {
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(0),
        (Some(code), _) => Err(PluginError::JobFailed {
            message: format!("`{program}` exited with code {code}"),
            exit_code: Some(code),
        }),
        (None, signal) => Err(PluginError::JobFailed {
            message: format!("`{program}` was killed by signal {}", signal.unwrap_or(0)),
            exit_code: None,
        }),
    }
}

async fn join_pumps(
    stdout: tokio::task::JoinHandle<Result<u64, PluginError>>,
    stderr: tokio::task::JoinHandle<Result<u64, PluginError>>,
) -> Result<(), PluginError> {
    for pump in [stdout, stderr] {
        pump.await
            .map_err(|error| PluginError::Unavailable(format!("log copy stopped: {error}")))??;
    }
    Ok(())
}

/// How often a running job's new output is made readable (where the store needs telling).
const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Copies a pipe into an artifact in bounded chunks; memory stays at one chunk. New output is
/// published every `PUBLISH_EVERY`, so a reader can follow the job.
async fn pump(
    pipe: Option<impl AsyncRead + Unpin>,
    mut writer: Box<dyn ArtifactWriter>,
) -> Result<u64, PluginError> {
    if let Some(mut pipe) = pipe {
        let mut buffer = vec![0u8; CHUNK_BYTES];
        let mut publish = tokio::time::interval_at(tokio::time::Instant::now() + PUBLISH_EVERY, PUBLISH_EVERY);
        let mut unpublished = false;
        loop {
            tokio::select! {
                read = pipe.read(&mut buffer) => {
                    let read = read.map_err(|error| PluginError::Unavailable(format!("could not read the process output: {error}")))?;
                    if read == 0 {
                        break;
                    }
                    writer.write(Bytes::copy_from_slice(&buffer[..read])).await?;
                    unpublished = true;
                }
                _ = publish.tick(), if unpublished => {
                    writer.publish().await?;
                    unpublished = false;
                }
            }
        }
    }
    Ok(writer.finish().await?)
}

async fn collect_result_file(run: &PluginRun, work_dir: &Path) -> Result<(), PluginError> {
    let path = work_dir.join("result.json");
    let Ok(metadata) = tokio::fs::metadata(&path).await else {
        return Ok(());
    };
    if metadata.len() > MAX_RESULT_FILE_BYTES {
        return Err(PluginError::JobFailed {
            message: format!("result.json is {} bytes; the limit is {MAX_RESULT_FILE_BYTES}", metadata.len()),
            exit_code: Some(0),
        });
    }
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|error| PluginError::Unavailable(format!("could not read result.json: {error}")))?;
    let result: JobResult = serde_json::from_slice(&bytes).map_err(|error| PluginError::JobFailed {
        message: format!("result.json is not a result (`{{\"columns\": [..], \"data\": [..]}}`): {error}"),
        exit_code: Some(0),
    })?;
    run.write_result(&result).await.map_err(|error| match error {
        PluginError::InvalidContext(message) => PluginError::JobFailed {
            message: format!("result.json: {message}"),
            exit_code: Some(0),
        },
        other => other,
    })
}

/// Kills a whole process group when dropped.
struct ProcessGroup(Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) with a negative pid signals the group the child leads; it reads
            // no memory of ours. ESRCH (the group is already gone) is fine.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

/// The job's scratch folder, removed when the run ends however it ends.
struct WorkDir(PathBuf);

impl WorkDir {
    async fn create(path: &Path) -> Result<Self, PluginError> {
        tokio::fs::create_dir_all(path)
            .await
            .map_err(|error| PluginError::Unavailable(format!("could not create {}: {error}", path.display())))?;
        Ok(Self(path.to_owned()))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(path = %self.0.display(), %error, "could not remove a job's work dir");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use heimdall_adapters_local::FsArtifactStore;
    use heimdall_domain::config::Config;
    use heimdall_domain::{Job, JobRequest};

    use super::*;

    struct Fixture {
        run: PluginRun,
        _dir: tempfile::TempDir,
    }

    impl Fixture {
        /// A shell command with `context` (YAML flow mapping) and a job with `job_context`.
        fn new(context: &str, job_context: Value) -> Self {
            let yaml = format!(
                "commands:\n  - {{name: sh, version: '1', plugin: shell, context: {context}}}\nclusters:\n  - {{name: local, version: '1'}}\n"
            );
            let config = Config::parse(&yaml, "test.yml").unwrap();
            let request: JobRequest = serde_json::from_value(json!({
                "name": "t", "version": "1", "command_criteria": ["_id:sh"], "context": job_context
            }))
            .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let run = PluginRun {
                job: Job::from_request(request, "alice", 0),
                command: config.commands[0].clone(),
                cluster: config.clusters[0].clone(),
                artifacts: Arc::new(FsArtifactStore::new(dir.path().join("jobs"))),
                work_dir: dir.path().join("work"),
            };
            Self { run, _dir: dir }
        }

        async fn submit(&self) -> Result<Step, PluginError> {
            ShellPlugin.validate_job(&self.run.job.context, &self.run.command).map_err(PluginError::InvalidContext)?;
            ShellPlugin.submit(&self.run).await
        }

        async fn artifact(&self, artifact: Artifact) -> String {
            let reader = self.run.artifacts.open(self.run.job.id, artifact).await.unwrap().unwrap();
            String::from_utf8(reader.read_all().await.unwrap()).unwrap()
        }
    }

    #[tokio::test]
    async fn arguments_reach_the_program_as_separate_argv_entries_never_through_a_shell() {
        // GIVEN arguments a shell would expand, split or run
        let fixture = Fixture::new(
            "{command: [/usr/bin/printf, '%s|'], allow_arguments: true}",
            json!({"arguments": ["a b", "$HOME", "; rm -rf /", "`id`", "*"]}),
        );
        // WHEN the job runs
        assert_eq!(fixture.submit().await.unwrap(), Step::Complete(json!({"exit_code": 0})));
        // THEN each arrives verbatim
        assert_eq!(fixture.artifact(Artifact::Stdout).await, "a b|$HOME|; rm -rf /|`id`|*|");
    }

    #[tokio::test]
    async fn arguments_are_refused_unless_the_command_allows_them() {
        let fixture = Fixture::new("{command: [/bin/echo]}", json!({"arguments": ["x"]}));
        let error = fixture.submit().await.unwrap_err();
        assert!(matches!(&error, PluginError::InvalidContext(m) if m.contains("allow_arguments")), "{error}");
    }

    #[tokio::test]
    async fn an_unknown_job_context_key_is_named() {
        let fixture = Fixture::new("{command: [/bin/echo]}", json!({"argv": ["x"]}));
        let error = fixture.submit().await.unwrap_err();
        assert!(error.to_string().contains("unknown field `argv`"), "{error}");
    }

    #[tokio::test]
    async fn a_non_zero_exit_fails_the_job_with_its_code_and_keeps_stderr() {
        let fixture = Fixture::new(
            "{command: [/bin/sh, -c, 'echo oops >&2; exit 3']}",
            json!({}),
        );
        let error = fixture.submit().await.unwrap_err();
        assert_eq!(error.exit_code(), Some(3));
        assert_eq!(error.error_type(), PluginError::JOB_FAILED);
        assert!(error.to_string().contains("exited with code 3"), "{error}");
        assert_eq!(fixture.artifact(Artifact::Stderr).await, "oops\n");
    }

    #[tokio::test]
    async fn a_missing_program_fails_with_a_message_naming_it() {
        let fixture = Fixture::new("{command: [/nonexistent/tool]}", json!({}));
        let error = fixture.submit().await.unwrap_err();
        assert!(error.to_string().contains("could not start `/nonexistent/tool`"), "{error}");
    }

    #[tokio::test]
    async fn a_job_past_its_timeout_is_stopped_with_every_process_it_started() {
        // GIVEN a job that starts a background child and then sleeps past its timeout
        let fixture = Fixture::new(
            "{command: [/bin/sh, -c, 'sleep 30 & echo $! > child.pid; cp child.pid \"$HOME/../child.pid\"; sleep 30'], timeout_seconds: 1}",
            json!({}),
        );
        let started = std::time::Instant::now();
        // WHEN it runs
        let error = fixture.submit().await.unwrap_err();
        // THEN it is stopped at the timeout, and so is its background child
        assert_eq!(error, PluginError::TimedOut { seconds: 1 });
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid_file = fixture.run.work_dir.parent().unwrap().join("child.pid");
        let pid: i32 = std::fs::read_to_string(pid_file).unwrap().trim().parse().unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        // SAFETY: signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0 && !is_zombie(pid);
        assert!(!alive, "background child {pid} survived the timeout");
    }

    fn is_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| stat.split(' ').nth(2) == Some("Z"))
            .unwrap_or(true)
    }

    #[tokio::test]
    async fn a_job_may_shorten_but_not_lengthen_the_timeout() {
        let fixture = Fixture::new("{command: [/bin/sleep], allow_arguments: true, timeout_seconds: 5}", json!({"timeout_seconds": 6}));
        let error = fixture.submit().await.unwrap_err();
        assert!(error.to_string().contains("above the command's limit of 5"), "{error}");
    }

    #[tokio::test]
    async fn the_child_sees_a_clean_environment_plus_what_config_allows() {
        // SAFETY: set before any child is spawned in this test; the variable is unique to it.
        unsafe { std::env::set_var("HEIMDALL_TEST_SERVER_SECRET", "do-not-leak") };
        let fixture = Fixture::new(
            "{command: [/usr/bin/env], env: {FIXED: one}, allowed_env: [DAY]}",
            json!({"env": {"DAY": "monday"}}),
        );
        fixture.submit().await.unwrap();
        let env = fixture.artifact(Artifact::Stdout).await;
        assert!(env.contains("FIXED=one\n") && env.contains("DAY=monday\n"), "{env}");
        assert!(env.contains(&format!("HEIMDALL_JOB_ID={}\n", fixture.run.job.id)), "{env}");
        assert!(!env.contains("do-not-leak"), "the server's environment leaked: {env}");
    }

    #[tokio::test]
    async fn a_job_may_not_set_an_environment_variable_the_command_does_not_allow() {
        let fixture = Fixture::new("{command: [/usr/bin/env], allowed_env: [DAY]}", json!({"env": {"LD_PRELOAD": "/x.so"}}));
        let error = fixture.submit().await.unwrap_err();
        assert!(error.to_string().contains("does not let jobs set `LD_PRELOAD`"), "{error}");
    }

    #[tokio::test]
    async fn a_result_json_left_in_the_working_directory_becomes_the_result() {
        let fixture = Fixture::new(
            r#"{command: [/bin/sh, -c, 'printf "{\"columns\":[{\"name\":\"n\",\"type\":\"int\"}],\"data\":[[1],[2]]}" > result.json']}"#,
            json!({}),
        );
        fixture.submit().await.unwrap();
        let result: JobResult = serde_json::from_str(&fixture.artifact(Artifact::Result).await).unwrap();
        assert_eq!(result.data, vec![vec![json!(1)], vec![json!(2)]]);
        assert!(!fixture.run.work_dir.exists(), "the work dir must be removed");
    }

    #[tokio::test]
    async fn a_malformed_result_json_fails_the_job_saying_so() {
        let fixture = Fixture::new(r#"{command: [/bin/sh, -c, 'echo "{\"rows\": 1}" > result.json']}"#, json!({}));
        let error = fixture.submit().await.unwrap_err();
        assert!(error.to_string().contains("result.json is not a result"), "{error}");
    }

    #[tokio::test]
    async fn large_output_streams_to_the_store_whole() {
        // 8 MiB through the pipe in 64 KiB chunks arrives byte for byte.
        let fixture = Fixture::new("{command: [/usr/bin/head, -c, '8388608', /dev/zero]}", json!({}));
        fixture.submit().await.unwrap();
        let reader = fixture.run.artifacts.open(fixture.run.job.id, Artifact::Stdout).await.unwrap().unwrap();
        assert_eq!(reader.length, Some(8 * 1024 * 1024));
    }

    #[test]
    fn command_settings_are_checked_when_the_config_loads() {
        let bad = [
            ("{command: []}", "non-empty argv"),
            ("{command: [/bin/echo], timeout_seconds: 0}", "at least 1"),
            ("{command: [/bin/echo], allowed_env: ['1BAD']}", "not an environment variable name"),
            ("{command: [/bin/echo], shell: true}", "unknown field `shell`"),
            ("{}", "missing field `command`"),
        ];
        for (context, expected) in bad {
            let fixture = Fixture::new(context, json!({}));
            let message = ShellPlugin.validate_command(&fixture.run.command).unwrap_err();
            assert!(message.contains(expected), "{context}: {message}");
        }
    }
}
