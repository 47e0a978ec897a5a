//! The dispatcher Lambda (SQS trigger on the jobs queue): see the library.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    heimdall_functions::sqs_batch::run_sqs_function(heimdall_functions::no_plugin, |service, event| async move {
        heimdall_function_dispatcher::handle_batch(&service, event).await
    })
    .await
}
