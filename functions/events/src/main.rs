//! The events Lambda (SQS trigger on the events queue): see the library.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    heimdall_functions::sqs_batch::run_sqs_function(heimdall_functions::every_plugin, |service, event| async move {
        heimdall_function_events::handle_batch(&service, event).await
    })
    .await
}
