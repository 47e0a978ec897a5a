use clap::Parser;
use heimdall_cli::args::{Cli, CliCommand};
use heimdall_cli::{client, serve, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let CliCommand::Serve(args) = cli.command else {
        // The client commands print their own one-line errors and say how they ended.
        std::process::exit(client::run(cli.command).await);
    };
    telemetry::init();
    let outcome = serve::serve(args).await;
    if let Err(error) = &outcome {
        tracing::error!(error.cause_chain = ?error, error.message = %error, "heimdall stopped on an error");
    }
    outcome
}
