//! `heimdall-emulator bootstrap` creates the stack's resources wherever `AWS_ENDPOINT_URL`
//! points (moto, LocalStack, or AWS itself); `heimdall-emulator router` serves the Lambda
//! router in front of moto, running the plugin functions in-process with the environment the
//! real functions get. `localstack/emulator.sh` runs both around moto.

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use heimdall_emulator::lambda_router::{LambdaHandler, LambdaRouter};
use heimdall_emulator::stack::{create_events_queue, create_stack};
use heimdall_functions::{FunctionConfig, build_service, plugin_step};
use serde_json::Value;

#[derive(Parser)]
#[command(name = "heimdall-emulator", about = "The local AWS stack: bootstrap and Lambda router")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates the table, bucket, queues and state machine; prints the functions' environment.
    Bootstrap {
        #[arg(long, default_value = "heimdall")]
        prefix: String,
        /// The role the state machine runs as.
        #[arg(long, default_value = "arn:aws:iam::000000000000:role/heimdall-state-machine")]
        role_arn: String,
    },
    /// Serves the Lambda router (moto's MOTO_PORT) running the plugin functions in-process, and
    /// feeds the jobs queue to the dispatcher function, the events queue
    /// (`HEIMDALL_EVENTS_QUEUE_URL`) to the events function and the jobs dead-letter queue to the
    /// janitor function, as Lambda's event source mappings do; runs the janitor every minute.
    Router {
        #[arg(long, default_value = "127.0.0.1:5001")]
        listen: String,
        /// moto's own endpoint, where everything but invocations goes.
        #[arg(long, default_value = "http://127.0.0.1:5000")]
        moto: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").with_writer(std::io::stderr).init();
    let sdk = heimdall_adapters_aws::load_sdk_config().await;
    match Cli::parse().command {
        Command::Bootstrap { prefix, role_arn } => {
            let settings = create_stack(&sdk, &prefix, &role_arn).await?;
            println!("export HEIMDALL_TABLE={}", settings.table);
            println!("export HEIMDALL_CATALOG_TABLE={}", settings.catalog_table);
            println!("export HEIMDALL_BUCKET={}", settings.bucket);
            println!("export HEIMDALL_QUEUE_URL={}", settings.queue_url);
            println!("export HEIMDALL_STATE_MACHINE_ARN={}", settings.state_machine_arn);
            println!("export HEIMDALL_PLUGIN_FUNCTION={prefix}-plugin-{{plugin}}");
            let events = create_events_queue(&sdk, &prefix).await?;
            println!("export HEIMDALL_EVENTS_QUEUE_URL={}", events.url);
            println!("export HEIMDALL_EVENTS_QUEUE_ARN={}", events.arn);
        }
        Command::Router { listen, moto } => {
            let config = FunctionConfig::from_env()?;
            let service = build_service(&sdk, &config, heimdall_functions::every_plugin).await?;
            let router = LambdaRouter::default();
            for plugin in service.plugin_names() {
                let service = service.clone();
                let handler: LambdaHandler = Arc::new(move |payload: Value| {
                    let service = service.clone();
                    Box::pin(async move {
                        let request = serde_json::from_value(payload).map_err(|e| ("InvalidRequest".to_owned(), e.to_string()))?;
                        plugin_step::handle(&service, plugin, request).await.map_err(|f| (f.error_type, f.error_message))
                    })
                });
                router.register(&config.plugin_function_template.replace("{plugin}", plugin), handler);
            }
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            let dispatcher = service.clone();
            tokio::spawn(heimdall_emulator::queue_poller::run(sqs.clone(), config.aws.queue_url.clone(), move |event| {
                let service = dispatcher.clone();
                async move { heimdall_function_dispatcher::handle_batch(&service, event).await }
            }));
            // The events function, fed as its event source mapping would (bootstrap prints the URL).
            if let Ok(events_queue) = std::env::var("HEIMDALL_EVENTS_QUEUE_URL") {
                let events = service.clone();
                tokio::spawn(heimdall_emulator::queue_poller::run(sqs.clone(), events_queue, move |event| {
                    let service = events.clone();
                    async move { heimdall_function_events::handle_batch(&service, event).await }
                }));
            }
            // The janitor: the jobs dead-letter queue (`<jobs queue>-dlq`, as bootstrap makes it)
            // and a sweep every minute, as its event source mapping and schedule would.
            let jobs_queue_name = config.aws.queue_url.rsplit('/').next().unwrap_or_default();
            let dead_letters = sqs.get_queue_url().queue_name(heimdall_emulator::stack::dead_letter_queue_name(jobs_queue_name)).send().await;
            if let Ok(Some(dead_letters)) = dead_letters.map(|answer| answer.queue_url) {
                let janitor = service.clone();
                tokio::spawn(heimdall_emulator::queue_poller::run(sqs.clone(), dead_letters, move |event| {
                    let service = janitor.clone();
                    async move { heimdall_function_janitor::handle_dead_letters(&service, event).await }
                }));
            }
            let janitor = service.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                    if let Err(error) = heimdall_function_janitor::handle(&janitor, serde_json::json!({"source": "heimdall.janitor"})).await {
                        tracing::warn!(error.message = %error, "janitor sweep failed");
                    }
                }
            });
            let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("Failed to listen on {listen}"))?;
            tracing::info!(%listen, %moto, "Lambda router serving");
            axum::serve(listener, router.app(moto)).await?;
        }
    }
    Ok(())
}
