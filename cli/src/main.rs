use clap::Parser;
use heimdall_cli::args::{Cli, CliCommand};
use heimdall_cli::{serve, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init();
    let outcome = match cli.command {
        CliCommand::Serve(args) => serve::serve(args).await,
    };
    if let Err(error) = &outcome {
        tracing::error!(error.cause_chain = ?error, error.message = %error, "heimdall stopped on an error");
    }
    outcome
}
