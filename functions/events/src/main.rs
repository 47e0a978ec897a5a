//! The events Lambda (SQS trigger on the events queue): see the library.

use heimdall_functions::{FunctionConfig, build_service};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = FunctionConfig::from_env()?;
    let sdk = heimdall_adapters_aws::load_sdk_config().await;
    let service = build_service(&sdk, &config).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<aws_lambda_events::sqs::SqsEvent>| {
        let service = service.clone();
        async move { Ok::<_, lambda_runtime::Error>(heimdall_function_events::handle_batch(&service, event.payload).await) }
    }))
    .await
}
