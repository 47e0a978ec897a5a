//! The janitor Lambda (every minute from EventBridge Scheduler; SQS trigger on the jobs
//! dead-letter queue): see the library.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (service, _) = heimdall_functions::service_from_env(heimdall_functions::every_plugin).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let service = service.clone();
        async move { heimdall_function_janitor::handle(&service, event.payload).await }
    }))
    .await
}
