//! `heimdall-deploy deploy|destroy`: see the library; `infra/deploy.sh` builds the packages and
//! runs it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use heimdall_deploy::{DeploySettings, deploy, destroy, outputs};

#[derive(Parser)]
#[command(name = "heimdall-deploy", about = "Deploys or destroys the Heimdall stack")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Uploads the packages and the state machine, then creates or updates the stack.
    Deploy {
        #[arg(long, env = "HEIMDALL_STACK", default_value = "heimdall")]
        stack_name: String,
        #[arg(long, env = "HEIMDALL_CODE_BUCKET")]
        code_bucket: String,
        /// Folder with `<function>.zip` of every function (api, dispatcher, events, plugin-*).
        #[arg(long)]
        packages: PathBuf,
        #[arg(long)]
        version: String,
        /// The JWT issuer (with the default AuthType JWT).
        #[arg(long, env = "HEIMDALL_JWT_ISSUER", default_value = "")]
        jwt_issuer: String,
        /// The JWT audiences, comma-separated (with the default AuthType JWT).
        #[arg(long, env = "HEIMDALL_JWT_AUDIENCE", default_value = "")]
        jwt_audience: String,
        /// The commands, clusters and triggers to deploy with the stack (default: the bundled
        /// example); its triggers become the `<stack>-triggers` stack.
        #[arg(long, env = "HEIMDALL_CONFIG_FILE")]
        config: Option<PathBuf>,
        /// A template parameter, `Key=Value` (repeatable), e.g.
        /// `DynamoDbTableArns=arn:aws:dynamodb:us-east-1:123456789012:table/orders`.
        #[arg(long = "parameter", value_parser = parse_parameter)]
        parameters: Vec<(String, String)>,
    },
    /// Deletes the stack (the jobs table and the artifacts bucket are kept).
    Destroy {
        #[arg(long, env = "HEIMDALL_STACK", default_value = "heimdall")]
        stack_name: String,
    },
}

fn parse_parameter(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("`{text}`: write a parameter as Key=Value"))?;
    Ok((key.trim().to_owned(), value.to_owned()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").with_writer(std::io::stderr).init();
    let sdk = heimdall_adapters_aws::load_sdk_config().await;
    match Cli::parse().command {
        Command::Deploy { stack_name, code_bucket, packages, version, jwt_issuer, jwt_audience, config, parameters } => {
            let settings =
                DeploySettings { stack_name: stack_name.clone(), code_bucket, packages, version, jwt_issuer, jwt_audience, config, parameters };
            let deployed = deploy(&sdk, &settings).await?;
            println!("stack {stack_name}: {deployed:?}");
            for (key, value) in outputs(&sdk, &stack_name).await? {
                println!("{key}: {value}");
            }
        }
        Command::Destroy { stack_name } => {
            destroy(&sdk, &stack_name).await?;
            println!("stack {stack_name}: deleted");
        }
    }
    Ok(())
}
