use async_trait::async_trait;
use heimdall_domain::JobId;
use heimdall_ports::{error_chain, WorkflowEnd, WorkflowError, WorkflowState, Workflows};
use serde_json::Value;


/// Async jobs as Step Functions executions of one state machine, each named after its job:
/// Step Functions itself refuses a second execution of the same job.
#[derive(Clone)]
pub struct SfnWorkflows {
    client: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

impl SfnWorkflows {
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: impl Into<String>) -> Self {
        Self { client, state_machine_arn: state_machine_arn.into() }
    }

    /// `arn:aws:states:REGION:ACCOUNT:stateMachine:NAME` → `…:execution:NAME:JOB_ID`.
    pub fn execution_arn(&self, job: JobId) -> String {
        format!("{}:{job}", self.state_machine_arn.replacen(":stateMachine:", ":execution:", 1))
    }
}

#[async_trait]
impl Workflows for SfnWorkflows {
    /// The execution's page in the Step Functions console of its region.
    fn console_link(&self, job: JobId) -> String {
        let region = self.state_machine_arn.split(':').nth(3).unwrap_or("us-east-1");
        format!("https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{}", self.execution_arn(job))
    }

    #[tracing::instrument(skip(self, input), fields(job_id = %job))]
    async fn start(&self, job: JobId, input: &Value) -> Result<bool, WorkflowError> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(job.to_string())
            .input(input.to_string())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_execution_already_exists()) => Ok(false),
            Err(error) => Err(WorkflowError(format!("Step Functions StartExecution: {}", error_chain(&error)))),
        }
    }

    #[tracing::instrument(skip(self), fields(job_id = %job))]
    async fn stop(&self, job: JobId, reason: &str) -> Result<(), WorkflowError> {
        let result = self
            .client
            .stop_execution()
            .execution_arn(self.execution_arn(job))
            .error("Canceled")
            .cause(reason)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Never started (canceled while queued) or already gone: nothing to stop.
            Err(error) if error.as_service_error().is_some_and(|e| e.is_execution_does_not_exist()) => Ok(()),
            Err(error) => Err(WorkflowError(format!("Step Functions StopExecution: {}", error_chain(&error)))),
        }
    }

    #[tracing::instrument(skip(self), fields(job_id = %job))]
    async fn state(&self, job: JobId) -> Result<WorkflowState, WorkflowError> {
        let result = self.client.describe_execution().execution_arn(self.execution_arn(job)).send().await;
        match result {
            Ok(execution) => Ok(match WorkflowEnd::parse(execution.status().as_str()) {
                Some(end) => WorkflowState::Ended(end),
                None => WorkflowState::Running,
            }),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_execution_does_not_exist()) => Ok(WorkflowState::NotStarted),
            Err(error) => Err(WorkflowError(format!("Step Functions DescribeExecution: {}", error_chain(&error)))),
        }
    }
}
