use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Heimdall: job orchestration. `heimdall serve` runs the platform on this machine; the other
/// commands are a client of its REST API (or of a deployment's).
///
/// Exit codes of the client commands: 0 done (a waited-for job SUCCEEDED), 1 the request failed
/// (the error on one line), 2 bad usage, 3 the job FAILED, 4 the job was CANCELED.
#[derive(Debug, Parser)]
#[command(name = "heimdall", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Runs the whole platform in one process: REST API, sync and async jobs, durable store.
    Serve(ServeArgs),
    /// Submits a job: criteria and context from flags, or a whole request from a JSON/YAML file or stdin.
    Submit(ClientCommand<SubmitArgs>),
    /// Shows where a job would run (each candidate command and cluster with its chance, and why
    /// everything else is left out), without submitting it. Takes the same flags as submit.
    Route(ClientCommand<SubmitArgs>),
    /// Prints a job's status (and error).
    Status(ClientCommand<JobArg>),
    /// Prints a job.
    Get(ClientCommand<JobArg>),
    /// Prints a job's stdout (or stderr); --follow keeps printing until the job ends.
    Logs(ClientCommand<LogsArgs>),
    /// Prints a job's result as a table, CSV or JSON.
    Result(ClientCommand<ResultArgs>),
    /// Asks a job to stop (only its owner may).
    Cancel(ClientCommand<JobArg>),
    /// Lists jobs, newest first.
    Jobs(ClientCommand<JobsArgs>),
    /// Lists the commands jobs can run.
    Commands(ClientCommand<NoArgs>),
    /// Lists the clusters jobs can run on.
    Clusters(ClientCommand<NoArgs>),
}

/// A client command: where the API is, who is asking, how to print; then its own arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientCommand<T: clap::Args> {
    #[command(flatten)]
    pub connection: Connection,
    #[command(flatten)]
    pub args: T,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The API's base URL (a deployment's ApiUrl, or `heimdall serve`'s address).
    #[arg(long, env = "HEIMDALL_URL", default_value = "http://127.0.0.1:9090")]
    pub service_url: String,
    /// Who is asking (sent as X-Heimdall-User; a deployment takes the user from its authorizer).
    #[arg(long, env = "HEIMDALL_USER")]
    pub user: Option<String>,
    /// A bearer token for a deployment's JWT authorizer.
    #[arg(long, env = "HEIMDALL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Sign requests with AWS SigV4 (standard credential chain and region), for an API using IAM auth.
    #[arg(long, env = "HEIMDALL_SIGV4")]
    pub sigv4: bool,
    /// `text` for people, `json` for scripts (the API's answers as they are).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct NoArgs {}

#[derive(Debug, Clone, clap::Args)]
pub struct JobArg {
    /// The job's id.
    pub id: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SubmitArgs {
    /// A whole job request (JSON or YAML); `-` reads stdin. Flags given beside it override its fields.
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// The job's name (required unless the file gives it).
    #[arg(long)]
    pub name: Option<String>,
    /// The job's version (required unless the file gives it).
    #[arg(long)]
    pub version: Option<String>,
    /// What the job is for.
    #[arg(long)]
    pub description: Option<String>,
    /// Tags the command must carry (comma-separated or repeated).
    #[arg(long, short = 'c', value_delimiter = ',')]
    pub command_criteria: Vec<String>,
    /// Tags the cluster must carry (comma-separated or repeated).
    #[arg(long, short = 'C', value_delimiter = ',')]
    pub cluster_criteria: Vec<String>,
    /// The job's own tags (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// The job's context as JSON, e.g. '{"query": "select 1"}'.
    #[arg(long, conflicts_with = "context_file")]
    pub context: Option<String>,
    /// The job's context from a JSON or YAML file; `-` reads stdin.
    #[arg(long)]
    pub context_file: Option<PathBuf>,
    /// An argument for the command (`context.arguments`), repeatable.
    #[arg(long = "arg")]
    pub arguments: Vec<String>,
    /// Run it inside the request (the command must allow sync).
    #[arg(long, conflicts_with = "async_")]
    pub sync: bool,
    /// Queue it (the command must allow async).
    #[arg(long = "async")]
    pub async_: bool,
    /// Wait for an async job to end, showing its status; the exit code tells how it ended.
    #[arg(long, short = 'w')]
    pub wait: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    /// The job's id.
    pub id: String,
    /// Print stderr instead of stdout.
    #[arg(long)]
    pub stderr: bool,
    /// Keep printing what the job writes until it ends.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ResultArgs {
    /// The job's id.
    pub id: String,
    #[arg(long, value_enum, default_value_t = ResultFormat::Table)]
    pub format: ResultFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResultFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct JobsArgs {
    /// Only this user's jobs.
    #[arg(long = "for-user")]
    pub username: Option<String>,
    /// Only jobs in these statuses (comma-separated), e.g. RUNNING,FAILED.
    #[arg(long)]
    pub status: Option<String>,
    /// Only jobs with this name.
    #[arg(long)]
    pub name: Option<String>,
    /// Only jobs that ran on this command (id or name).
    #[arg(long)]
    pub command: Option<String>,
    /// Only jobs that ran on this cluster (id or name).
    #[arg(long)]
    pub cluster: Option<String>,
    /// How many (at most 101).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// The page after this cursor (printed under the previous page).
    #[arg(long)]
    pub cursor: Option<String>,
}

/// How `heimdall serve` identifies callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    Header,
    Jwt,
    TrustedProxy,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "HEIMDALL_LISTEN", default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,
    /// Where jobs, their logs and results are kept (created if missing).
    #[arg(long, env = "HEIMDALL_DATA_DIR", default_value = "./.heimdall")]
    pub data_dir: PathBuf,
    /// Commands and clusters (Heimdall's YAML format); default: the bundled example.
    #[arg(long, env = "HEIMDALL_CONFIG")]
    pub config: Option<PathBuf>,
    /// User for requests without an X-Heimdall-User header (local development only; `--auth header`).
    #[arg(long, env = "HEIMDALL_DEFAULT_USER")]
    pub default_user: Option<String>,
    /// How callers are identified: `header` (X-Heimdall-User, only while listening on loopback),
    /// `jwt` (bearer tokens verified against --jwt-issuer, --jwt-audience and --jwks), or
    /// `trusted-proxy` (X-Heimdall-User only beside the secret in HEIMDALL_PROXY_SECRET).
    #[arg(long, env = "HEIMDALL_AUTH", value_enum, default_value_t = AuthMode::Header)]
    pub auth: AuthMode,
    /// `--auth jwt`: the issuer (`iss`) tokens must carry.
    #[arg(long, env = "HEIMDALL_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// `--auth jwt`: the audience (`aud`) tokens must carry.
    #[arg(long, env = "HEIMDALL_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// `--auth jwt`: the signing keys, a JWKS file or an http(s) URL (read at start).
    #[arg(long, env = "HEIMDALL_JWKS")]
    pub jwks: Option<String>,
    /// `--auth trusted-proxy`: the secret the proxy sends as X-Heimdall-Proxy-Secret (give it in
    /// the environment, not on the command line, where other users can read it).
    #[arg(long, env = "HEIMDALL_PROXY_SECRET", hide_env_values = true)]
    pub proxy_secret: Option<String>,
    /// Sync jobs run at once; past it a sync submit is answered 429 with Retry-After.
    #[arg(long, env = "HEIMDALL_MAX_SYNC_JOBS", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_sync_jobs: u16,
    /// Seconds running async jobs get to finish when the server stops.
    #[arg(long, env = "HEIMDALL_SHUTDOWN_GRACE", default_value_t = 10)]
    pub shutdown_grace: u64,
    /// The folder standing in for S3 for `s3` triggers: a file created under `<dir>/<bucket>/`
    /// is an object created in that bucket. Default: `<data dir>/buckets`.
    #[arg(long, env = "HEIMDALL_WATCH_DIR")]
    pub watch_dir: Option<PathBuf>,
    /// Days a job is kept after it ends; then the janitor deletes it with its logs and result.
    /// 0 keeps jobs forever.
    #[arg(long, env = "HEIMDALL_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u32,
}
