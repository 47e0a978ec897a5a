//! Runs the command's configured argv as a child process, never through a shell, in a sandbox.
//!
//! Command context (config; checked when the config loads):
//! ```yaml
//! context:
//!   command: [/usr/bin/env, printf, "%s\n"]  # argv; required
//!   allow_arguments: true      # the job's `arguments` are appended (default false)
//!   end_of_options: true       # always put `--` after `command`, before any job arguments (default false)
//!   env: {LC_ALL: C}           # fixed environment
//!   allowed_env: [REPORT_DAY]  # variables the job's `env` may set
//!   timeout_seconds: 600       # default 3600; a job may ask for less, never more
//!   max_output_bytes: 1048576  # per stream (stdout, stderr); default 1 GiB; past it the job is stopped and fails
//!   max_result_bytes: 1048576  # result.json's size limit; default 64 MiB
//!   sandbox:                   # extra file access (absolute paths; missing ones are skipped)
//!     read_paths: [/srv/reference]   # read and execute beneath
//!     write_paths: [/srv/exports]    # anything beneath
//! ```
//! Job context: `arguments: [..]`, `env: {..}`, `timeout_seconds`.
//!
//! What the job gets: a clean environment (never the server's: it holds credentials) with `PATH`,
//! `HOME` and `TMPDIR` (both its work dir), `LANG`, `HEIMDALL_JOB_ID`, `HEIMDALL_JOB_ATTEMPT` (1-based), `HEIMDALL_JOB_NAME`,
//! `HEIMDALL_USER`, plus the command's `env` and the job's; no stdin; its work dir as current
//! directory (owned by the job user, mode 0700, removed afterwards). stdout and stderr stream to the
//! artifact store in 64 KiB chunks while it runs. A `result.json` it leaves in its work dir becomes
//! the job's result: it must be a regular file of its own (a symbolic link, FIFO, device,
//! directory or hard link fails the job, is never followed and never waited on) and at most
//! `max_result_bytes` long.
//!
//! The sandbox ([`crate::sandbox`]; [`ShellPlugin::sandbox_report`] says what a machine offers,
//! and the plugin logs it when it is built):
//! - **Never root**: when the server is root the job runs as `HEIMDALL_JOB_USER` (default
//!   `nobody`) without supplementary groups; otherwise as the server's user. The server should
//!   call [`crate::harden_server_process`] so a same-user job cannot read its memory or environ.
//! - **Landlock**: read/execute on system folders (`/usr`, `/bin`, `/sbin`, `/lib*`, `/etc`,
//!   `/opt`; read on `/proc`, `/sys`), read/write on `/dev/{null,zero,full,random,urandom}`,
//!   everything beneath its work dir and the command's `sandbox.write_paths`, read beneath
//!   `sandbox.read_paths`. Not `/tmp`: `TMPDIR` is the work dir. The data dir, the job store,
//!   other jobs' work dirs and key files are refused (`Permission denied`). A program outside the
//!   system folders needs its folder in `read_paths`. The system folders are readable by every
//!   job: keep the server's own secrets out of `/etc` and `/opt`. Without Landlock (old kernel)
//!   the job runs unrestricted, with one warning in the log.
//! - **Paths**: under a root server the job user must be able to search (`--x`) the work dir's
//!   ancestors for the absolute `$HOME`/`$TMPDIR` to work; relative paths always do (the
//!   chdir happens before the switch).
//! - **The whole tree stops**: the job runs in a PID namespace of its own; when its main process
//!   ends, at the timeout, on a cancel, when it passes `max_output_bytes`, or when the server
//!   dies, every process it started dies with it, `setsid` and daemons included, so nothing
//!   outlives the job or a restart. Where namespaces are refused (AWS Lambda) the process the
//!   server spawns is the job's child subreaper: every process the job starts stays below it,
//!   `setsid` or not, and is killed when the job ends (by the subreaper), at the timeout or on a
//!   cancel (by the server, before the subreaper). Either way the wait for its output to close is bounded: once the
//!   main process has ended or was killed, the output copy gets [`OUTPUT_GRACE`] and is then cut,
//!   so an inherited descriptor kept by an escaped process never hangs the job.
//!
//! A job killed by a signal inside the namespace reports exit code 128 + the signal (as a shell
//! does).

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use heimdall_domain::{Cluster, Command, JobResult};
use heimdall_ports::{Artifact, ArtifactWriter, Plugin, PluginError, PluginRun, Step};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Notify, watch};

use crate::sandbox::{Confinement, ShellSandbox};

pub const DEFAULT_TIMEOUT_SECONDS: u64 = 3600;
/// A `result.json` larger than this is refused rather than loaded (unless the command's
/// `max_result_bytes` says otherwise).
pub const MAX_RESULT_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// The default `max_output_bytes`: per stream.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 1024 * 1024 * 1024;
/// How long the output copy may go on once the job's main process has ended or was killed.
pub const OUTPUT_GRACE: Duration = Duration::from_secs(2);
const CHUNK_BYTES: usize = 64 * 1024;
const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const RESULT_FILE: &str = "result.json";

/// The shell plugin. [`ShellPlugin::from_env`] is what [`crate::builtin_plugins`] uses.
pub struct ShellPlugin {
    /// The resolved sandbox, or why jobs cannot run (e.g. an unknown `HEIMDALL_JOB_USER`): said
    /// when the config loads and by every job, never a panic.
    confinement: Result<Arc<Confinement>, String>,
}

impl ShellPlugin {
    /// Resolves `sandbox` now (the job user, Landlock, namespaces). An error is kept and
    /// reported by `validate_command` and `submit`.
    pub fn new(sandbox: ShellSandbox) -> Self {
        let confinement = Confinement::new(&sandbox).map(Arc::new).map_err(|error| format!("the shell plugin cannot run jobs: {error}"));
        match &confinement {
            Ok(confinement) => tracing::info!(sandbox = %confinement.report(), "shell jobs' sandbox"),
            Err(error) => tracing::error!(%error, "shell plugin"),
        }
        Self { confinement }
    }

    /// [`ShellSandbox::from_env`]: everything on, the job user from `HEIMDALL_JOB_USER`.
    pub fn from_env() -> Self {
        match ShellSandbox::from_env() {
            Ok(sandbox) => Self::new(sandbox),
            Err(error) => {
                let error = format!("the shell plugin cannot run jobs: {error}");
                tracing::error!(%error, "shell plugin");
                Self { confinement: Err(error) }
            }
        }
    }

    /// What this plugin's sandbox does on this machine, one line per mechanism.
    pub fn sandbox_report(&self) -> String {
        match &self.confinement {
            Ok(confinement) => confinement.report(),
            Err(error) => error.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShellCommandSettings {
    command: Vec<String>,
    #[serde(default)]
    allow_arguments: bool,
    #[serde(default)]
    end_of_options: bool,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    allowed_env: Vec<String>,
    #[serde(default = "default_timeout")]
    timeout_seconds: u64,
    #[serde(default = "default_max_output")]
    max_output_bytes: u64,
    #[serde(default = "default_max_result")]
    max_result_bytes: u64,
    #[serde(default)]
    sandbox: SandboxPaths,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SandboxPaths {
    #[serde(default)]
    read_paths: Vec<PathBuf>,
    #[serde(default)]
    write_paths: Vec<PathBuf>,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECONDS
}

fn default_max_output() -> u64 {
    DEFAULT_MAX_OUTPUT_BYTES
}

fn default_max_result() -> u64 {
    MAX_RESULT_FILE_BYTES
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
        for (name, value) in [("max_output_bytes", settings.max_output_bytes), ("max_result_bytes", settings.max_result_bytes)] {
            if value == 0 {
                return Err(format!("shell command context: `{name}` must be at least 1"));
            }
        }
        for name in settings.env.keys().chain(&settings.allowed_env) {
            if !is_env_name(name) {
                return Err(format!("shell command context: `{name}` is not an environment variable name"));
            }
        }
        for (key, paths) in [("read_paths", &settings.sandbox.read_paths), ("write_paths", &settings.sandbox.write_paths)] {
            if let Some(path) = paths.iter().find(|path| !path.is_absolute()) {
                return Err(format!("shell command context: `sandbox.{key}`: `{}` is not an absolute path", path.display()));
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

    /// The job's process is a child of the `submit` call.
    fn work_runs_in_step(&self) -> bool {
        true
    }

    fn validate_command(&self, command: &Command) -> Result<(), String> {
        self.confinement.as_ref().map_err(Clone::clone)?;
        ShellCommandSettings::parse(command).map(|_| ())
    }

    fn validate_job(&self, context: &Value, command: &Command) -> Result<(), String> {
        let settings = ShellCommandSettings::parse(command)?;
        ShellJobContext::parse(context, &settings, &command.id).map(|_| ())
    }

    /// Jobs can run here: the sandbox is in place and the command's executable exists and may
    /// be executed. (Running it would run the command's own code, with whatever effects it has:
    /// the check stops at what starting it needs.)
    async fn check_health(&self, command: &Command, _cluster: &Cluster) -> Result<(), String> {
        self.confinement.as_ref().map_err(Clone::clone)?;
        let settings = ShellCommandSettings::parse(command)?;
        let program = settings.command[0].clone();
        tokio::task::spawn_blocking(move || executable_problem(&program).map_or(Ok(()), Err))
            .await
            .map_err(|error| format!("the check stopped: {error}"))?
    }

    async fn submit(&self, run: &PluginRun) -> Result<Step, PluginError> {
        let confinement = self.confinement.as_ref().map_err(|error| PluginError::Unavailable(error.clone()))?;
        let settings = ShellCommandSettings::parse(&run.command).map_err(PluginError::InvalidContext)?;
        let job = ShellJobContext::parse(&run.job.context, &settings, &run.command.id)
            .map_err(PluginError::InvalidContext)?;
        let work_dir = WorkDir::create(&run.work_dir, confinement.job_ids()).await?;
        let exit_code = run_process(confinement, run, &settings, job, work_dir.path()).await?;
        collect_result_file(run, work_dir.path(), settings.max_result_bytes).await?;
        Ok(Step::Complete(json!({ "exit_code": exit_code })))
    }
}

/// Why `program` (a path, or a name looked up on the jobs' PATH) cannot be started, if it cannot.
fn executable_problem(program: &str) -> Option<String> {
    let candidates: Vec<PathBuf> = if program.contains('/') {
        vec![PathBuf::from(program)]
    } else {
        SAFE_PATH.split(':').map(|dir| Path::new(dir).join(program)).collect()
    };
    let Some(found) = candidates.iter().find(|path| path.exists()) else {
        return Some(if program.contains('/') {
            format!("the executable `{program}` does not exist")
        } else {
            format!("no executable `{program}` on the jobs' PATH ({SAFE_PATH})")
        });
    };
    match std::fs::metadata(found) {
        Ok(metadata) if metadata.is_file() && metadata.permissions().mode() & 0o111 != 0 => None,
        Ok(_) => Some(format!("`{}` is not an executable file", found.display())),
        Err(error) => Some(format!("`{}` cannot be read: {error}", found.display())),
    }
}

/// How the wait for the job's main process ended.
enum Ended {
    Exited(std::io::Result<ExitStatus>),
    TimedOut,
    OverLimit,
}

async fn run_process(
    confinement: &Confinement,
    run: &PluginRun,
    settings: &ShellCommandSettings,
    job: ShellJobContext,
    work_dir: &Path,
) -> Result<i32, PluginError> {
    let timeout_seconds = job.timeout_seconds.unwrap_or(settings.timeout_seconds);
    let program = &settings.command[0];
    let mut process = tokio::process::Command::new(program);
    process.args(&settings.command[1..]);
    if settings.end_of_options {
        process.arg("--");
    }
    process
        .args(&job.arguments)
        .current_dir(work_dir)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .env("HOME", work_dir)
        .env("TMPDIR", work_dir)
        .env("LANG", "C.UTF-8")
        .env("HEIMDALL_JOB_ID", run.job.id.to_string())
        .env("HEIMDALL_JOB_ATTEMPT", run.job.attempt.to_string())
        .env("HEIMDALL_JOB_NAME", &run.job.name)
        .env("HEIMDALL_USER", &run.job.user)
        .envs(&settings.env)
        .envs(&job.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);

    // Built here, before the fork: the child only applies it.
    let ruleset = confinement
        .ruleset(work_dir, &settings.sandbox.read_paths, &settings.sandbox.write_paths)
        .map_err(|error| PluginError::Unavailable(format!("could not build the job's Landlock rules: {error}")))?;
    let plan = confinement.child_plan(ruleset.as_ref().map(AsRawFd::as_raw_fd));
    // SAFETY: `enter` makes only async-signal-safe system calls on values computed above (see
    // its doc); the ruleset descriptor it uses stays open until spawn has returned.
    unsafe {
        process.pre_exec(move || plan.enter());
    }

    let stdout_writer = run.artifacts.create(run.job.id, Artifact::Stdout).await?;
    let stderr_writer = run.artifacts.create(run.job.id, Artifact::Stderr).await?;
    let spawned = process.spawn();
    drop(ruleset);
    let mut child = spawned.map_err(|error| PluginError::JobFailed {
        message: format!("could not start `{program}`: {error}"),
        exit_code: None,
    })?;
    // Dropped when this future is (a cancel) or on return: the job's process group is killed.
    // With a PID namespace, killing the child tokio waits for (kill_on_drop) is what matters:
    // the namespace dies with it.
    let mut group = ProcessGroup { leader: child.id(), reaped: false };
    let over_limit = Arc::new(Notify::new());
    let (stop, stopped) = watch::channel(false);
    let stdout_pump = tokio::spawn(pump(child.stdout.take(), stdout_writer, settings.max_output_bytes, over_limit.clone(), stopped.clone()));
    let stderr_pump = tokio::spawn(pump(child.stderr.take(), stderr_writer, settings.max_output_bytes, over_limit.clone(), stopped));

    let ended = tokio::select! {
        status = child.wait() => Ended::Exited(status),
        () = tokio::time::sleep(Duration::from_secs(timeout_seconds)) => Ended::TimedOut,
        () = over_limit.notified() => Ended::OverLimit,
    };
    // The main process is done (with a namespace, so is every other one; without one, its
    // reaper killed them) or must stop now.
    group.reaped = matches!(ended, Ended::Exited(_));
    drop(group);
    if !matches!(ended, Ended::Exited(_)) {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    let pumps = async { (stdout_pump.await, stderr_pump.await) };
    tokio::pin!(pumps);
    let (stdout, stderr) = match tokio::time::timeout(OUTPUT_GRACE, &mut pumps).await {
        Ok(joined) => joined,
        Err(_) => {
            tracing::warn!(job = %run.job.id, "a process outside the job's process group still holds its output; the output copy is cut");
            let _ = stop.send(true);
            pumps.await
        }
    };
    let mut limited = None;
    for (stream, pumped) in [("stdout", stdout), ("stderr", stderr)] {
        let pumped = pumped.map_err(|error| PluginError::Unavailable(format!("log copy stopped: {error}")))??;
        if pumped.over_limit && limited.is_none() {
            limited = Some(stream);
        }
    }
    if let Some(stream) = limited {
        return Err(PluginError::JobFailed {
            message: format!(
                "the job's {stream} passed the command's limit of {} bytes (`max_output_bytes`); the job was stopped and its {stream} cut there",
                settings.max_output_bytes
            ),
            exit_code: None,
        });
    }
    match ended {
        Ended::Exited(status) => {
            exit_code_of(status.map_err(|error| PluginError::Unavailable(format!("lost the process: {error}")))?, program)
        }
        Ended::TimedOut => Err(PluginError::TimedOut { seconds: timeout_seconds }),
        Ended::OverLimit => Err(PluginError::Unavailable("an output limit was reported but no stream passed it".into())),
    }
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

/// How often a running job's new output is made readable (where the store needs telling).
const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

struct Pumped {
    /// The stream passed `limit`: what came before is kept, the rest was not read.
    over_limit: bool,
}

/// Copies a pipe into an artifact in bounded chunks; memory stays at one chunk. New output is
/// published every `PUBLISH_EVERY`, so a reader can follow the job. Stops at `limit` bytes
/// (telling `over_limit`) or when `stop` says so (or its sender is gone), and always finishes
/// the artifact with what it has.
async fn pump(
    pipe: Option<impl AsyncRead + Unpin>,
    mut writer: Box<dyn ArtifactWriter>,
    limit: u64,
    over_limit: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) -> Result<Pumped, PluginError> {
    let mut pumped = Pumped { over_limit: false };
    if let Some(mut pipe) = pipe {
        let mut buffer = vec![0u8; CHUNK_BYTES];
        let mut publish = tokio::time::interval_at(tokio::time::Instant::now() + PUBLISH_EVERY, PUBLISH_EVERY);
        let mut unpublished = false;
        let mut written = 0u64;
        loop {
            tokio::select! {
                read = pipe.read(&mut buffer) => {
                    let read = read.map_err(|error| PluginError::Unavailable(format!("could not read the process output: {error}")))?;
                    if read == 0 {
                        break;
                    }
                    let room = usize::try_from(limit - written).unwrap_or(usize::MAX);
                    let kept = read.min(room);
                    if kept > 0 {
                        writer.write(Bytes::copy_from_slice(&buffer[..kept])).await?;
                        written += kept as u64;
                        unpublished = true;
                    }
                    if read > room {
                        pumped.over_limit = true;
                        over_limit.notify_one();
                        break;
                    }
                }
                _ = publish.tick(), if unpublished => {
                    writer.publish().await?;
                    unpublished = false;
                }
                () = async { let _ = stop.wait_for(|stop| *stop).await; } => break,
            }
        }
    }
    writer.finish().await?;
    Ok(pumped)
}

/// Loads `result.json` if the job left one: a regular file (opened without following a link
/// and without blocking on a FIFO), one link, read up to `cap` + 1 bytes and refused past `cap`.
async fn collect_result_file(run: &PluginRun, work_dir: &Path, cap: u64) -> Result<(), PluginError> {
    let refuse = |message: String| PluginError::JobFailed { message, exit_code: Some(0) };
    let path = work_dir.join(RESULT_FILE);
    let opened = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(&path)
        .await;
    let file = match opened {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refuse("result.json is a symbolic link; it must be a regular file (links are not followed)".into()));
        }
        Err(error) if error.raw_os_error() == Some(libc::ENXIO) => {
            return Err(refuse("result.json is a socket; it must be a regular file".into()));
        }
        Err(error) => return Err(refuse(format!("could not open result.json: {error}"))),
    };
    let metadata = file
        .metadata()
        .await
        .map_err(|error| PluginError::Unavailable(format!("could not stat result.json: {error}")))?;
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let kind = if file_type.is_fifo() {
            "a FIFO"
        } else if file_type.is_dir() {
            "a directory"
        } else if file_type.is_char_device() || file_type.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(refuse(format!("result.json is {kind}; it must be a regular file")));
    }
    if metadata.nlink() > 1 {
        return Err(refuse(format!("result.json has {} hard links; it must be a file of its own", metadata.nlink())));
    }
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .await
        .map_err(|error| PluginError::Unavailable(format!("could not read result.json: {error}")))?;
    if bytes.len() as u64 > cap {
        return Err(refuse(format!("result.json is larger than the limit of {cap} bytes (`max_result_bytes`)")));
    }
    let result: JobResult = serde_json::from_slice(&bytes)
        .map_err(|error| refuse(format!("result.json is not a result (`{{\"columns\": [..], \"data\": [..]}}`): {error}")))?;
    run.write_result(&result).await.map_err(|error| match error {
        PluginError::InvalidContext(message) => refuse(format!("result.json: {message}")),
        other => other,
    })
}

/// Stops a job's processes when dropped (timeout, cancel, output limit): every descendant of
/// the helper tokio spawned (all of them, `setsid` or not: the helper is their subreaper or
/// their namespace's parent), then the helper's process group. Once the helper has been waited
/// for (`reaped`) its pid may belong to someone else, so nothing is signalled: it already
/// took its processes down as it ended.
struct ProcessGroup {
    leader: Option<u32>,
    reaped: bool,
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        if let Some(pid) = self.leader.and_then(|pid| i32::try_from(pid).ok()) {
            crate::sandbox::kill_descendants_of(pid);
            // SAFETY: kill(2) with a negative pid signals the group the child leads; it reads
            // no memory of ours. ESRCH (the group is already gone) is fine.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

/// The job's scratch folder, removed when the run ends however it ends. Owned by the job user,
/// mode 0700.
struct WorkDir(PathBuf);

impl WorkDir {
    async fn create(path: &Path, owner: Option<(u32, u32)>) -> Result<Self, PluginError> {
        let failed = |error: std::io::Error| PluginError::Unavailable(format!("could not create {}: {error}", path.display()));
        tokio::fs::create_dir_all(path).await.map_err(failed)?;
        let work_dir = Self(path.to_owned());
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(failed)?;
        }
        tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).await.map_err(failed)?;
        Ok(work_dir)
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
    use heimdall_domain::config::Config;
    use heimdall_domain::JobRequest;

    use super::*;
    use crate::sandbox::ShellSandbox;

    /// The plugin every test uses: the default sandbox (jobs as `nobody` under root).
    fn plugin() -> &'static ShellPlugin {
        static PLUGIN: std::sync::OnceLock<ShellPlugin> = std::sync::OnceLock::new();
        PLUGIN.get_or_init(|| {
            crate::harden_server_process();
            ShellPlugin::new(ShellSandbox::default())
        })
    }

    struct Fixture {
        run: PluginRun,
        _dir: tempfile::TempDir,
    }

    impl Fixture {
        /// A shell command with `context` (YAML flow mapping; `@DIR@` stands for the fixture's
        /// temp dir, the work dir's parent) and a job with `job_context`.
        fn new(context: &str, job_context: Value) -> Self {
            let dir = tempfile::tempdir().unwrap();
            // Searchable (not readable) by the job user, as a data dir should be, so the job's
            // absolute $HOME and $TMPDIR work; what guards the rest is Landlock.
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
            let context = context.replace("@DIR@", dir.path().to_str().unwrap());
            let yaml = format!(
                "commands:\n  - {{name: sh, version: '1', plugin: shell, context: {context}}}\nclusters:\n  - {{name: local, version: '1'}}\n"
            );
            let config = Config::parse(&yaml, "test.yml").unwrap();
            let request: JobRequest = serde_json::from_value(json!({
                "name": "t", "version": "1", "command_criteria": ["_id:sh"], "context": job_context
            }))
            .unwrap();
            let run = heimdall_adapters_local::local_plugin_run(dir.path(), &config, request, "alice");
            Self { run, _dir: dir }
        }

        async fn submit(&self) -> Result<Step, PluginError> {
            self.submit_with(plugin()).await
        }

        async fn submit_with(&self, plugin: &ShellPlugin) -> Result<Step, PluginError> {
            plugin.validate_command(&self.run.command).map_err(PluginError::InvalidContext)?;
            plugin.validate_job(&self.run.job.context, &self.run.command).map_err(PluginError::InvalidContext)?;
            plugin.submit(&self.run).await
        }

        fn dir(&self) -> &Path {
            self.run.work_dir.parent().unwrap()
        }

        /// What the job wrote to `artifact` (nothing written leaves no artifact: empty).
        async fn artifact(&self, artifact: Artifact) -> String {
            match self.run.artifacts.open(self.run.job.id, artifact).await.unwrap() {
                Some(reader) => String::from_utf8(reader.read_all().await.unwrap()).unwrap(),
                None => String::new(),
            }
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

    /// A number `sleep` accepts and no other process on the machine has in its argv.
    fn unique_sleep() -> String {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let next = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("299.{}{next:03}", std::process::id())
    }

    /// Host pids of the live processes with `marker` as an argument (found through /proc: inside
    /// the job's PID namespace its pids are not ours).
    fn processes_with(marker: &str) -> Vec<i32> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else { continue };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
            if cmdline.split(|byte| *byte == 0).any(|arg| arg == marker.as_bytes()) {
                found.push(pid);
            }
        }
        found
    }

    /// Polls until `done` holds, for at most `limit`; says whether it did.
    async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if done() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        done()
    }

    fn kill_all(pids: &[i32]) {
        for pid in pids {
            // SAFETY: kill(2) on pids we just found by their unique argument.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
    }

    #[tokio::test]
    async fn a_job_past_its_timeout_is_stopped_with_every_process_it_started() {
        timeout_stops_every_process(plugin()).await;
    }

    #[tokio::test]
    async fn without_a_pid_namespace_a_job_past_its_timeout_is_stopped_with_every_process_it_started() {
        // As on Lambda: the job's helper is its subreaper, and the server kills what is below it.
        timeout_stops_every_process(&ShellPlugin::new(ShellSandbox { pid_namespace: false, ..ShellSandbox::default() })).await;
    }

    async fn timeout_stops_every_process(plugin: &ShellPlugin) {
        // GIVEN a job that starts a background child in a session of its own (setsid: out of
        // the process group) and then sleeps past its timeout; both keep stdout open
        let marker = unique_sleep();
        let fixture = Fixture::new(
            &format!("{{command: [/bin/sh, -c, 'setsid sleep {marker} & sleep {marker}'], timeout_seconds: 2}}"),
            json!({}),
        );
        let started = std::time::Instant::now();
        // WHEN it runs
        let (result, seen) = tokio::join!(fixture.submit_with(plugin), eventually(Duration::from_secs(5), || processes_with(&marker).len() >= 2));
        // THEN it is stopped at the timeout, promptly, and so is the escaped child
        assert!(seen, "the job's two sleeps never showed up");
        assert_eq!(result.unwrap_err(), PluginError::TimedOut { seconds: 2 });
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        let gone = eventually(Duration::from_secs(5), || processes_with(&marker).is_empty()).await;
        let left = processes_with(&marker);
        kill_all(&left);
        assert!(gone, "processes {left:?} survived the timeout");
    }

    #[tokio::test]
    async fn a_cancelled_job_is_stopped_with_every_process_it_started() {
        cancel_stops_every_process(plugin()).await;
    }

    #[tokio::test]
    async fn without_a_pid_namespace_a_cancelled_job_is_stopped_with_every_process_it_started() {
        cancel_stops_every_process(&ShellPlugin::new(ShellSandbox { pid_namespace: false, ..ShellSandbox::default() })).await;
    }

    async fn cancel_stops_every_process(plugin: &ShellPlugin) {
        // GIVEN a running job with a setsid'd child
        let marker = unique_sleep();
        let fixture = Fixture::new(&format!("{{command: [/bin/sh, -c, 'setsid sleep {marker} & sleep {marker}']}}"), json!({}));
        // WHEN the future running it is dropped once both processes run (the service's cancel
        // aborts the task running the plugin)
        tokio::select! {
            result = fixture.submit_with(plugin) => panic!("the job ended by itself: {result:?}"),
            seen = eventually(Duration::from_secs(10), || processes_with(&marker).len() >= 2) => assert!(seen, "the job's sleeps never showed up"),
        }
        // THEN every process of the job is gone
        let gone = eventually(Duration::from_secs(5), || processes_with(&marker).is_empty()).await;
        let left = processes_with(&marker);
        kill_all(&left);
        assert!(gone, "processes {left:?} survived the cancel");
    }

    #[tokio::test]
    async fn nothing_a_job_started_outlives_its_main_process() {
        // GIVEN a job whose main process leaves a setsid'd child holding stdout and exits 0
        let marker = unique_sleep();
        // (the pause lets the child get out of the process group first)
        let fixture = Fixture::new(&format!("{{command: [/bin/sh, -c, 'setsid sleep {marker} & sleep 1; echo started']}}"), json!({}));
        let started = std::time::Instant::now();
        // WHEN it runs THEN it succeeds at once (the child does not hold the job) and leaves
        // nothing behind
        let (result, seen) = tokio::join!(fixture.submit(), eventually(Duration::from_secs(5), || !processes_with(&marker).is_empty()));
        assert!(seen, "the setsid'd sleep never showed up");
        assert_eq!(result.unwrap(), Step::Complete(json!({"exit_code": 0})));
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        assert_eq!(fixture.artifact(Artifact::Stdout).await, "started\n");
        let gone = eventually(Duration::from_secs(5), || processes_with(&marker).is_empty()).await;
        let left = processes_with(&marker);
        kill_all(&left);
        assert!(gone, "processes {left:?} outlived the job");
    }

    #[tokio::test]
    async fn without_a_pid_namespace_nothing_a_job_started_outlives_its_main_process() {
        // GIVEN the fallback (no PID namespace, as on Lambda) and a job whose setsid'd child
        // would keep stdout open after the main process exits
        // (THEN, below: the job's subreaper kills it when the main process ends)
        let plugin = ShellPlugin::new(ShellSandbox { pid_namespace: false, ..ShellSandbox::default() });
        let marker = unique_sleep();
        let fixture = Fixture::new(&format!("{{command: [/bin/sh, -c, 'setsid sleep {marker} & sleep 1; echo started']}}"), json!({}));
        let started = std::time::Instant::now();
        // WHEN it runs
        let result = fixture.submit_with(&plugin).await;
        // THEN the output wait ends after the grace, with the output so far
        let elapsed = started.elapsed();
        let left = processes_with(&marker);
        kill_all(&left);
        assert_eq!(result.unwrap(), Step::Complete(json!({"exit_code": 0})));
        assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
        assert_eq!(fixture.artifact(Artifact::Stdout).await, "started\n");
        assert!(left.is_empty(), "the setsid'd sleep {left:?} outlived its job's main process");
    }

    #[tokio::test]
    async fn a_killed_process_tree_ends_the_job_with_the_signal_as_exit_code() {
        // The main process inside the namespace is killed by a signal: reported as 128 + 9.
        let fixture = Fixture::new("{command: [/bin/sh, -c, 'kill -9 $$']}", json!({}));
        let error = fixture.submit().await.unwrap_err();
        assert!(matches!(error.exit_code(), Some(137)) || error.to_string().contains("signal 9"), "{error}");
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
            ("{command: [/bin/echo], end_of_options: 'yes'}", "invalid type"),
            ("{command: [/bin/echo], max_output_bytes: 0}", "`max_output_bytes` must be at least 1"),
            ("{command: [/bin/echo], max_output_bytes: lots}", "invalid type"),
            ("{command: [/bin/echo], max_result_bytes: 0}", "`max_result_bytes` must be at least 1"),
            ("{command: [/bin/echo], max_result_bytes: -1}", "invalid value"),
            ("{command: [/bin/echo], sandbox: [/srv]}", "invalid type"),
            ("{command: [/bin/echo], sandbox: {read_paths: /srv}}", "invalid type"),
            ("{command: [/bin/echo], sandbox: {read_paths: [srv/data]}}", "`sandbox.read_paths`: `srv/data` is not an absolute path"),
            ("{command: [/bin/echo], sandbox: {write_paths: [./out]}}", "`sandbox.write_paths`: `./out` is not an absolute path"),
            ("{command: [/bin/echo], sandbox: {exec_paths: [/srv]}}", "unknown field `exec_paths`"),
        ];
        for (context, expected) in bad {
            let fixture = Fixture::new(context, json!({}));
            let message = plugin().validate_command(&fixture.run.command).unwrap_err();
            assert!(message.contains(expected), "{context}: {message}");
        }
    }

    const ENVIRON_SECRET: &str = "HEIMDALL_TEST_ENVIRON_SECRET";
    const ENVIRON_MODE: &str = "HEIMDALL_TEST_ENVIRON_MODE";

    /// Runs environ_probe_server in a new process of this test binary with a secret in its
    /// real environment (/proc/<pid>/environ shows what a process started with, so set_var
    /// would prove nothing), as `user` if given; returns its output.
    fn run_environ_probe(test_name: &str, mode: &str, user: Option<u32>) -> (String, String) {
        let secret = format!("s3cret-{}-{:?}", std::process::id(), std::time::SystemTime::now());
        let mut exe = std::env::current_exe().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut probe = std::process::Command::new(&exe);
        if let Some(uid) = user {
            // The build folder may be closed to that user: run a copy.
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let copy = dir.path().join("probe");
            std::fs::copy(&exe, &copy).unwrap();
            exe = copy;
            probe = std::process::Command::new(&exe);
            std::os::unix::process::CommandExt::uid(&mut probe, uid);
            std::os::unix::process::CommandExt::gid(&mut probe, uid);
        }
        let output = probe
            .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
            .env(ENVIRON_SECRET, &secret)
            .env(ENVIRON_MODE, mode)
            .output()
            .unwrap();
        let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success() && report.contains("1 passed"), "{report}");
        (report, secret)
    }

    #[test]
    fn a_job_cannot_read_the_server_environment_through_proc() {
        if let Ok(secret) = std::env::var(ENVIRON_SECRET) {
            return environ_probe_server(secret);
        }
        // GIVEN a server with a secret in its environment, hardened, with the default sandbox
        // WHEN it runs a job that reads /proc/<server pid>/environ THEN the job fails to, and the
        // secret does not reach its output (asserted in environ_probe_server)
        let (report, secret) = run_environ_probe("shell::tests::a_job_cannot_read_the_server_environment_through_proc", "default", None);
        assert!(!report.contains(&secret), "{report}");
    }

    #[test]
    fn harden_server_process_alone_keeps_the_environment_from_a_same_user_job() {
        if let Ok(secret) = std::env::var(ENVIRON_SECRET) {
            return environ_probe_server(secret);
        }
        // GIVEN a server that is not root (nobody, when this test runs as root) with none of the
        // sandbox but the process hardening (no namespace, no Landlock: jobs run as the server's
        // own user), as on a Lambda without Landlock
        // SAFETY: plain getter.
        let user = (unsafe { libc::geteuid() } == 0).then_some(65534);
        // WHEN it runs the same job before and after harden_server_process THEN the first one
        // reads the secret (the control) and the second cannot (asserted in the probe)
        run_environ_probe("shell::tests::harden_server_process_alone_keeps_the_environment_from_a_same_user_job", "bare", user);
    }

    /// The server half of the tests above, run in the child process they start, with the secret
    /// in its environment.
    fn environ_probe_server(secret: String) {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(environ_probe_server_async(secret));
    }

    async fn environ_probe_server_async(secret: String) {
        let own = std::fs::read(format!("/proc/{}/environ", std::process::id())).unwrap();
        assert!(String::from_utf8_lossy(&own).contains(&secret), "the secret is not where a job would look");
        let command = format!("{{command: [/bin/cat, /proc/{}/environ]}}", std::process::id());
        let plugin = if std::env::var(ENVIRON_MODE).as_deref() == Ok("bare") {
            let plugin = ShellPlugin::new(ShellSandbox { landlock: false, pid_namespace: false, ..ShellSandbox::default() });
            let control = Fixture::new(&command, json!({}));
            control.submit_with(&plugin).await.unwrap();
            assert!(control.artifact(Artifact::Stdout).await.contains(&secret), "the control job could not read the environment");
            plugin
        } else {
            ShellPlugin::new(ShellSandbox::default())
        };
        crate::harden_server_process();
        let fixture = Fixture::new(&command, json!({}));
        let error = fixture.submit_with(&plugin).await.unwrap_err();
        assert_eq!(error.exit_code(), Some(1), "{error}");
        assert!(!fixture.artifact(Artifact::Stdout).await.contains(&secret), "the server's environment leaked");
        let stderr = fixture.artifact(Artifact::Stderr).await;
        assert!(stderr.contains("Permission denied"), "{stderr}");
    }

    /// Makes `path` (a file with `text`) world-readable in world-searchable folders, so only the
    /// sandbox stands between the job and it.
    fn plant(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::set_permissions(path.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    #[tokio::test]
    async fn a_job_cannot_read_the_data_dir_or_another_jobs_work_dir() {
        // GIVEN a job store next to the work dir and another job's work dir, owned by the same
        // job user (so file permissions do not stop it), all readable by that user
        let fixture = Fixture::new("{command: [/bin/sh, -c, 'cat ../data/heimdall.db; cat ../other-job/key.pem']}", json!({}));
        plant(&fixture.dir().join("data/heimdall.db"), "JOB-STORE-ROWS");
        let other = fixture.dir().join("other-job");
        plant(&other.join("key.pem"), "OTHER-JOBS-KEY");
        std::os::unix::fs::chown(&other, Some(65534), Some(65534)).unwrap();
        std::os::unix::fs::chown(other.join("key.pem"), Some(65534), Some(65534)).unwrap();
        // WHEN it tries to read them
        let error = fixture.submit().await.unwrap_err();
        // THEN both reads are refused
        assert_eq!(error.exit_code(), Some(1), "{error}");
        let stdout = fixture.artifact(Artifact::Stdout).await;
        assert!(!stdout.contains("JOB-STORE-ROWS") && !stdout.contains("OTHER-JOBS-KEY"), "{stdout}");
        let stderr = fixture.artifact(Artifact::Stderr).await;
        assert_eq!(stderr.matches("Permission denied").count(), 2, "{stderr}");
    }

    #[tokio::test]
    async fn a_command_may_grant_extra_paths() {
        // GIVEN the same layout, with the command granting the data folder for reading and an
        // export folder for writing
        let fixture = Fixture::new(
            "{command: [/bin/sh, -c, 'cat @DIR@/data/reference.txt && echo out > @DIR@/exports/out.txt && ! echo no > @DIR@/data/x'], sandbox: {read_paths: ['@DIR@/data'], write_paths: ['@DIR@/exports', /nonexistent/skipped]}}",
            json!({}),
        );
        plant(&fixture.dir().join("data/reference.txt"), "REFERENCE");
        let exports = fixture.dir().join("exports");
        std::fs::create_dir(&exports).unwrap();
        std::fs::set_permissions(&exports, std::fs::Permissions::from_mode(0o777)).unwrap();
        // WHEN it runs THEN it reads the one, writes the other, and still cannot write the first
        fixture.submit().await.unwrap();
        assert_eq!(fixture.artifact(Artifact::Stdout).await, "REFERENCE");
        assert_eq!(std::fs::read_to_string(exports.join("out.txt")).unwrap(), "out\n");
        assert!(!fixture.dir().join("data/x").exists());
    }

    #[tokio::test]
    async fn a_job_of_a_root_server_runs_as_nobody_in_a_work_dir_it_owns() {
        // GIVEN a job that says who it is, who owns its work dir, and uses $TMPDIR
        let fixture = Fixture::new(
            "{command: [/bin/sh, -c, 'id -u; id -G; stat -c %u:%a .; test \"$TMPDIR\" = \"$PWD\" && mktemp >/dev/null && echo tmp-ok; echo x > /tmp/heimdall-escape-$$ || echo no-tmp']}",
            json!({}),
        );
        fixture.submit().await.unwrap();
        let stdout = fixture.artifact(Artifact::Stdout).await;
        // SAFETY: plain getters.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let expected = if uid == 0 { "65534\n65534\n65534:700\n".to_owned() } else { format!("{uid}\n{gid}\n{uid}:700\n") };
        assert!(stdout.starts_with(&expected), "{stdout}");
        assert!(stdout.ends_with("tmp-ok\nno-tmp\n"), "{stdout}");
    }

    #[test]
    fn an_unknown_job_user_is_a_clear_error_not_a_panic() {
        let plugin = ShellPlugin::new(ShellSandbox { job_user: crate::sandbox::JobUser::Name("no-such-user-heimdall".into()), ..ShellSandbox::default() });
        let fixture = Fixture::new("{command: [/bin/echo]}", json!({}));
        // SAFETY: plain getter.
        if unsafe { libc::geteuid() } == 0 {
            let message = plugin.validate_command(&fixture.run.command).unwrap_err();
            assert!(message.contains("`no-such-user-heimdall` does not exist"), "{message}");
            assert!(plugin.sandbox_report().contains("does not exist"));
        } else {
            // Not root: nothing to switch, the setting is not used.
            plugin.validate_command(&fixture.run.command).unwrap();
        }
    }

    #[tokio::test]
    async fn a_result_json_that_is_a_symlink_fifo_directory_hard_link_or_too_large_fails_saying_so() {
        let cases = [
            ("ln -s /etc/passwd result.json", "{}", "is a symbolic link"),
            ("mkfifo result.json", "{}", "is a FIFO"),
            ("mkdir result.json", "{}", "is a directory"),
            ("echo {} > mine; ln mine result.json", "{}", "has 2 hard links"),
            ("head -c 1000 /dev/zero > result.json", "{max_result_bytes: 100}", "larger than the limit of 100 bytes"),
        ];
        for (script, extra, expected) in cases {
            let extra = extra.trim_matches(|c| c == '{' || c == '}');
            let separator = if extra.is_empty() { "" } else { ", " };
            let fixture = Fixture::new(&format!("{{command: [/bin/sh, -c, '{script}']{separator}{extra}}}"), json!({}));
            let started = std::time::Instant::now();
            let error = tokio::time::timeout(Duration::from_secs(10), fixture.submit()).await.expect("hung").unwrap_err();
            assert!(error.to_string().contains(expected), "{script}: {error}");
            assert_eq!(error.error_type(), PluginError::JOB_FAILED, "{script}");
            assert!(started.elapsed() < Duration::from_secs(10));
        }
    }

    #[tokio::test]
    async fn output_past_max_output_bytes_stops_the_job_and_keeps_what_came_before() {
        // GIVEN a command limited to 1000 bytes per stream
        let fixture = Fixture::new("{command: [/usr/bin/head, -c, '100000', /dev/zero], max_output_bytes: 1000}", json!({}));
        // WHEN it writes more
        let error = fixture.submit().await.unwrap_err();
        // THEN it fails naming the stream and the limit, and stdout holds the first 1000 bytes
        assert_eq!(error.error_type(), PluginError::JOB_FAILED);
        assert!(error.to_string().contains("stdout passed the command's limit of 1000 bytes"), "{error}");
        let reader = fixture.run.artifacts.open(fixture.run.job.id, Artifact::Stdout).await.unwrap().unwrap();
        assert_eq!(reader.length, Some(1000));
    }

    #[tokio::test]
    async fn a_job_that_never_stops_writing_is_stopped_at_the_output_limit() {
        let fixture = Fixture::new("{command: [/bin/sh, -c, 'yes >&2'], max_output_bytes: 100000}", json!({}));
        let started = std::time::Instant::now();
        let error = fixture.submit().await.unwrap_err();
        assert!(error.to_string().contains("stderr passed the command's limit of 100000 bytes"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        assert_eq!(fixture.artifact(Artifact::Stderr).await.len(), 100000);
    }

    #[tokio::test]
    async fn end_of_options_puts_a_double_dash_before_the_arguments() {
        let fixture = Fixture::new(
            "{command: [/usr/bin/printf, '%s|'], allow_arguments: true, end_of_options: true}",
            json!({"arguments": ["a"]}),
        );
        fixture.submit().await.unwrap();
        assert_eq!(fixture.artifact(Artifact::Stdout).await, "--|a|");
    }

    /// `/proc/<pid>/stat`'s process group.
    fn process_group(pid: i32) -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(") ")?.1.split(' ').nth(2)?.parse().ok()
    }

    #[tokio::test]
    async fn killing_only_the_spawned_process_takes_the_whole_job_down() {
        // GIVEN a running job with a setsid'd child
        let marker = unique_sleep();
        let fixture = Fixture::new(&format!("{{command: [/bin/sh, -c, 'setsid sleep {marker} & sleep {marker}']}}"), json!({}));
        let submit = fixture.submit();
        tokio::pin!(submit);
        tokio::select! {
            result = &mut submit => panic!("the job ended by itself: {result:?}"),
            seen = eventually(Duration::from_secs(10), || processes_with(&marker).len() >= 2) => assert!(seen),
        }
        // WHEN only the process tokio spawned (the leader of the main sleep's process group,
        // outside the namespace) is killed from outside, as the OOM killer might. (The plugin's
        // group kill after the wait and PID 1's PDEATHSIG both cover this; the PDEATHSIG chain
        // alone is what nothing_a_job_started_outlives_its_server checks.)
        let spawned = processes_with(&marker)
            .into_iter()
            .filter_map(|pid| process_group(pid).filter(|group| *group != pid))
            .next()
            .expect("the main sleep is in the spawned process's group");
        // SAFETY: kill(2) on the job's own helper process.
        assert_eq!(unsafe { libc::kill(spawned, libc::SIGKILL) }, 0);
        // THEN the job ends and the namespace dies with it (PDEATHSIG chain)
        let result = tokio::time::timeout(Duration::from_secs(10), &mut submit).await.expect("the job did not end");
        assert!(result.is_err(), "{result:?}");
        let gone = eventually(Duration::from_secs(5), || processes_with(&marker).is_empty()).await;
        let left = processes_with(&marker);
        kill_all(&left);
        assert!(gone, "processes {left:?} survived their helper");
    }

    const SERVER_MARKER: &str = "HEIMDALL_TEST_SERVER_MARKER";

    #[test]
    fn nothing_a_job_started_outlives_its_server() {
        if let Ok(marker) = std::env::var(SERVER_MARKER) {
            return job_server_that_gets_killed(marker, true);
        }
        server_kill_leaves_nothing("shell::tests::nothing_a_job_started_outlives_its_server");
    }

    #[test]
    fn without_a_pid_namespace_nothing_a_job_started_outlives_its_server() {
        if let Ok(marker) = std::env::var(SERVER_MARKER) {
            return job_server_that_gets_killed(marker, false);
        }
        server_kill_leaves_nothing("shell::tests::without_a_pid_namespace_nothing_a_job_started_outlives_its_server");
    }

    fn server_kill_leaves_nothing(test_name: &str) {
        // GIVEN a "server" (this test binary again) running a job with a setsid'd child
        let marker = unique_sleep();
        let dir = tempfile::tempdir().unwrap();
        let mut server = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test_name, "--test-threads=1"])
            .env(SERVER_MARKER, &marker)
            .env("TMPDIR", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let seen = runtime.block_on(eventually(Duration::from_secs(20), || processes_with(&marker).len() >= 2));
        // WHEN the server is killed outright (no destructor, no cancel runs)
        server.kill().unwrap();
        server.wait().unwrap();
        // THEN the job's processes die with it
        let gone = runtime.block_on(eventually(Duration::from_secs(5), || processes_with(&marker).is_empty()));
        let left = processes_with(&marker);
        kill_all(&left);
        assert!(seen, "the job's sleeps never showed up");
        assert!(gone, "processes {left:?} outlived the server");
    }

    /// The server half of the test above, run in the child process it starts: runs a job until
    /// it is killed.
    fn job_server_that_gets_killed(marker: String, pid_namespace: bool) {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(job_server_async(marker, pid_namespace));
    }

    async fn job_server_async(marker: String, pid_namespace: bool) {
        let fixture = Fixture::new(&format!("{{command: [/bin/sh, -c, 'setsid sleep {marker} & sleep {marker}']}}"), json!({}));
        let plugin = ShellPlugin::new(ShellSandbox { pid_namespace, ..ShellSandbox::default() });
        let _ = fixture.submit_with(&plugin).await;
    }
}
