use async_trait::async_trait;
use heimdall_domain::JobId;
use heimdall_ports::{error_chain, Resumption, WorkflowEnd, WorkflowError, WorkflowState, Workflows};
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

    /// The token of the task the job's execution waits in, if its latest task is the await
    /// step (`AwaitEnd`) and has not ended: read from the task's scheduled event, newest first.
    async fn waiting_token(&self, job: JobId) -> Result<Option<String>, WorkflowError> {
        use aws_sdk_sfn::types::HistoryEventType as Event;
        let history = self.client.get_execution_history().execution_arn(self.execution_arn(job)).reverse_order(true).max_results(25).send().await;
        let history = match history {
            Ok(history) => history,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_execution_does_not_exist()) => return Ok(None),
            Err(error) => return Err(WorkflowError(format!("Step Functions GetExecutionHistory: {}", error_chain(&error)))),
        };
        // Newest first (the emulator ignores reverseOrder and answers oldest first).
        let mut events: Vec<_> = history.events().iter().collect();
        events.sort_by_key(|event| std::cmp::Reverse(event.id()));
        for event in events {
            match event.r#type() {
                Event::TaskScheduled => {
                    let parameters = event.task_scheduled_event_details().map(|details| details.parameters()).unwrap_or_default();
                    let payload = serde_json::from_str::<Value>(parameters).unwrap_or(Value::Null);
                    let payload = &payload["Payload"];
                    return Ok((payload["operation"] == "await").then(|| payload["token"].as_str().map(str::to_owned)).flatten());
                }
                // The latest task is under way: its scheduled event is further back.
                Event::TaskStarted | Event::TaskSubmitted => {}
                // The latest task ended, or the execution did: nothing waits.
                _ => return Ok(None),
            }
        }
        Ok(None)
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

    #[tracing::instrument(skip(self, token, outcome), fields(job_id = %job))]
    async fn resume(&self, job: JobId, token: Option<&str>, outcome: Resumption) -> Result<bool, WorkflowError> {
        let token = match token {
            Some(token) => token.to_owned(),
            None => match self.waiting_token(job).await? {
                Some(token) => token,
                None => return Ok(false),
            },
        };
        // A failure goes as an answer the state machine routes to its fail step (AwaitFailed)
        // with `{Error, Cause}` as a failed step's Catch holds them: the same on AWS as a
        // SendTaskFailure, and the emulator, which drops a task failure's cause, keeps it.
        let output = match outcome {
            Resumption::Answer(answer) => answer,
            Resumption::Failure { error_type, error_message } => {
                let cause = json!({"errorType": error_type, "errorMessage": error_message}).to_string();
                json!({"failure": {"Error": error_type, "Cause": cause}})
            }
        };
        match self.client.send_task_success().task_token(&token).output(output.to_string()).send().await {
            Ok(_) => Ok(true),
            // The wait ended meanwhile (timed out into its safety poll, or resumed by another).
            Err(error) if error.as_service_error().is_some_and(|e| e.is_task_timed_out() || e.is_invalid_token() || e.is_task_does_not_exist()) => Ok(false),
            Err(error) => Err(WorkflowError(format!("Step Functions SendTaskSuccess: {}", error_chain(&error)))),
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
