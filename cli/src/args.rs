use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Heimdall: job orchestration. `heimdall serve` runs the platform on this machine.
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
    /// User for requests without an X-Heimdall-User header (local development only).
    #[arg(long, env = "HEIMDALL_DEFAULT_USER")]
    pub default_user: Option<String>,
    /// Seconds running async jobs get to finish when the server stops.
    #[arg(long, env = "HEIMDALL_SHUTDOWN_GRACE", default_value_t = 10)]
    pub shutdown_grace: u64,
    /// The folder standing in for S3 for `s3` triggers: a file created under `<dir>/<bucket>/`
    /// is an object created in that bucket. Default: `<data dir>/buckets`.
    #[arg(long, env = "HEIMDALL_WATCH_DIR")]
    pub watch_dir: Option<PathBuf>,
}
