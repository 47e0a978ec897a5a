use async_trait::async_trait;
use heimdall_domain::JobId;
use heimdall_ports::{error_chain, WorkflowEnd, WorkflowError, WorkflowState, Workflows};
use serde_json::{Value, json};


/// Async jobs as Step Functions executions of one state machine, each named after its job:
/// Step Functions itself refuses a second execution of the same job.
#[derive(Clone)]
pub struct SfnWorkflows {
    client: aws_sdk_sfn::Client,
    state_machine_arn: String,
    /// The name (or ARN) of a plugin's Lambda, `{plugin}` standing for the plugin's name.
    function_template: String,
    /// The log group of the plugin functions, whose lines carry the job's id.
    log_group: Option<String>,
}

impl SfnWorkflows {
    /// Executions of `state_machine_arn`, whose Task states call the function `function_template`
    /// names (`{plugin}` replaced by the job's plugin).
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: impl Into<String>, function_template: impl Into<String>) -> Self {
        Self { client, state_machine_arn: state_machine_arn.into(), function_template: function_template.into(), log_group: None }
    }

    /// The execution's input, as `statemachines/async-job.asl.json` reads it: the job, the
    /// function its Task states call, and the plugin that function must be.
    pub fn execution_input(&self, job: JobId, plugin: &str) -> Value {
        json!({"job_id": job, "function": self.function_template.replace("{plugin}", plugin), "plugin": plugin})
    }

    /// Links also to the job's lines in `log_group` (the plugin functions').
    pub fn with_log_group(mut self, log_group: Option<String>) -> Self {
        self.log_group = log_group;
        self
    }

    /// `arn:aws:states:REGION:ACCOUNT:stateMachine:NAME` → `…:execution:NAME:JOB_ID`.
    pub fn execution_arn(&self, job: JobId) -> String {
        format!("{}:{job}", self.state_machine_arn.replacen(":stateMachine:", ":execution:", 1))
    }
}

#[async_trait]
impl Workflows for SfnWorkflows {
    /// `execution`: the execution's page in the Step Functions console of its region; `logs`:
    /// the plugin functions' log group filtered on the job's id.
    fn console_links(&self, job: JobId) -> Vec<(&'static str, String)> {
        let region = self.state_machine_arn.split(':').nth(3).unwrap_or("us-east-1");
        let console = format!("https://{region}.console.aws.amazon.com");
        let mut links = vec![("execution", format!("{console}/states/home?region={region}#/v2/executions/details/{}", self.execution_arn(job)))];
        if let Some(group) = &self.log_group {
            // The console's own escaping of a log group in its fragment: `/` as `$252F`.
            let group = group.replace('/', "$252F");
            links.push(("logs", format!("{console}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{group}/log-events$3FfilterPattern$3D%22{job}%22")));
        }
        links
    }

    #[tracing::instrument(skip(self), fields(job_id = %job))]
    async fn start(&self, job: JobId, plugin: &str) -> Result<bool, WorkflowError> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(job.to_string())
            .input(self.execution_input(job, plugin).to_string())
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
