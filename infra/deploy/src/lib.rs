//! Deploying the stack: the function packages and the state machine definition go to a code
//! bucket under a version prefix, then `infra/template.yaml` is created or updated with them,
//! then the config's triggers become the `<stack>-triggers` stack ([`triggers_stack`]).
//! Running it twice with the same inputs changes nothing (CloudFormation answers "no updates",
//! which is success here). Works wherever `AWS_ENDPOINT_URL` points: AWS, LocalStack, moto.

pub mod triggers_stack;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
use heimdall_domain::config::Config;

use crate::triggers_stack::{TriggerTargets, triggers_template};

/// The template and the state machine, as built into this binary.
pub const TEMPLATE: &str = include_str!("../../template.yaml");
pub const STATE_MACHINE: &str = include_str!("../../../statemachines/async-job.asl.json");
/// The functions the template deploys, by package name.
pub const FUNCTIONS: [&str; 10] = [
    "api",
    "dispatcher",
    "events",
    "janitor",
    "plugin-ping",
    "plugin-shell",
    "plugin-dynamodb",
    "plugin-glue",
    "plugin-spark",
    "plugin-snowflake",
];

/// What to deploy where.
#[derive(Debug, Clone)]
pub struct DeploySettings {
    pub stack_name: String,
    /// Created if missing.
    pub code_bucket: String,
    /// Where `<function>.zip` of each of [`FUNCTIONS`] is (`cargo lambda build --output-format zip`).
    pub packages: PathBuf,
    /// Names this version's objects, e.g. `0.1.0-3f2a1b`.
    pub version: String,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// A commands-and-clusters file to deploy with the stack; `None`: the bundled example.
    /// Its triggers become the triggers stack.
    pub config: Option<PathBuf>,
    /// More template parameters, e.g. `DynamoDbTableArns` (the data plugins' rights).
    pub parameters: Vec<(String, String)>,
}

/// The name of the stack holding the triggers of `stack_name`.
pub fn triggers_stack_name(stack_name: &str) -> String {
    format!("{stack_name}-triggers")
}

/// What the deploy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployed {
    Created,
    Updated,
    Unchanged,
}

fn package_key(version: &str, name: &str) -> String {
    format!("heimdall/{version}/{name}")
}

/// Uploads, then creates or updates the stack and waits for it to settle.
pub async fn deploy(sdk: &aws_config::SdkConfig, settings: &DeploySettings) -> anyhow::Result<Deployed> {
    let iam_auth = settings.parameters.iter().any(|(key, value)| key == "AuthType" && value == "IAM");
    if !iam_auth && (settings.jwt_issuer.is_empty() || settings.jwt_audience.is_empty()) {
        bail!("give --jwt-issuer and --jwt-audience (HEIMDALL_JWT_ISSUER, HEIMDALL_JWT_AUDIENCE), or --parameter AuthType=IAM for SigV4-signed callers");
    }
    let s3 = heimdall_adapters_aws::s3_client(sdk);
    if s3.head_bucket().bucket(&settings.code_bucket).send().await.is_err() {
        s3.create_bucket().bucket(&settings.code_bucket).send().await.with_context(|| format!("Failed to create the code bucket {}", settings.code_bucket))?;
    }
    for function in FUNCTIONS {
        let path = settings.packages.join(format!("{function}.zip"));
        let body = std::fs::read(&path).with_context(|| format!("Failed to read the package {} (build it first: infra/deploy.sh does)", path.display()))?;
        s3.put_object()
            .bucket(&settings.code_bucket)
            .key(package_key(&settings.version, &format!("{function}.zip")))
            .body(body.into())
            .send()
            .await
            .with_context(|| format!("Failed to upload {function}.zip"))?;
    }
    s3.put_object()
        .bucket(&settings.code_bucket)
        .key(package_key(&settings.version, "async-job.asl.json"))
        .body(STATE_MACHINE.as_bytes().to_vec().into())
        .send()
        .await
        .context("Failed to upload the state machine definition")?;

    let mut config_location = String::new();
    let mut triggers = Vec::new();
    if let Some(path) = &settings.config {
        let text = std::fs::read_to_string(path).with_context(|| format!("Failed to read the config {}", path.display()))?;
        // Checked before anything changes: a config the functions would refuse is not deployed.
        triggers = Config::parse(&text, &path.display().to_string()).map_err(|error| anyhow!("{error}"))?.triggers;
        let key = package_key(&settings.version, "config.yml");
        s3.put_object().bucket(&settings.code_bucket).key(&key).body(text.into_bytes().into()).send().await.context("Failed to upload the config")?;
        config_location = format!("s3://{}/{key}", settings.code_bucket);
    }

    let cloudformation = aws_sdk_cloudformation::Client::new(sdk);
    let parameter = |key: &str, value: &str| Parameter::builder().parameter_key(key).parameter_value(value).build();
    let mut parameters = vec![
        parameter("CodeBucket", &settings.code_bucket),
        parameter("CodePrefix", &package_key(&settings.version, "")),
        parameter("JwtIssuer", &settings.jwt_issuer),
        parameter("JwtAudience", &settings.jwt_audience),
        parameter("ConfigLocation", &config_location),
    ];
    parameters.extend(settings.parameters.iter().map(|(key, value)| parameter(key, value)));
    let deployed = apply_stack(&cloudformation, &settings.stack_name, TEMPLATE, parameters).await?;

    let stack_outputs = outputs(sdk, &settings.stack_name).await?;
    let output = |key: &str| {
        stack_outputs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).with_context(|| format!("the stack has no output {key}"))
    };
    let targets = TriggerTargets { events_queue_arn: output("EventsQueueArn")?, scheduler_role_arn: output("SchedulerRoleArn")? };
    let triggers_deployed = deploy_triggers(sdk, &settings.stack_name, &triggers, &targets).await?;
    Ok(if deployed == Deployed::Unchanged && triggers_deployed != Deployed::Unchanged { Deployed::Updated } else { deployed })
}

/// Creates, updates or (when no trigger needs a resource) deletes the triggers stack of
/// `stack_name`, its rules and schedules sending to `targets`.
pub async fn deploy_triggers(
    sdk: &aws_config::SdkConfig,
    stack_name: &str,
    triggers: &[heimdall_domain::trigger::Trigger],
    targets: &TriggerTargets,
) -> anyhow::Result<Deployed> {
    let cloudformation = aws_sdk_cloudformation::Client::new(sdk);
    let triggers_stack = triggers_stack_name(stack_name);
    match triggers_template(triggers, targets).map_err(|error| anyhow!("{error}"))? {
        Some(template) => {
            let deployed = apply_stack(&cloudformation, &triggers_stack, &template.to_string(), Vec::new()).await?;
            tracing::info!(stack = %triggers_stack, ?deployed, "triggers deployed");
            Ok(deployed)
        }
        None if stack_exists(&cloudformation, &triggers_stack).await => {
            destroy_one(&cloudformation, &triggers_stack).await?;
            Ok(Deployed::Updated)
        }
        None => Ok(Deployed::Unchanged),
    }
}

async fn stack_exists(cloudformation: &aws_sdk_cloudformation::Client, stack_name: &str) -> bool {
    cloudformation.describe_stacks().stack_name(stack_name).send().await.is_ok_and(|found| {
        found.stacks().first().is_some_and(|stack| stack.stack_status() != Some(&StackStatus::DeleteComplete))
    })
}

/// Creates or updates `stack_name` with `template` and waits for it to settle.
async fn apply_stack(
    cloudformation: &aws_sdk_cloudformation::Client,
    stack_name: &str,
    template: &str,
    parameters: Vec<Parameter>,
) -> anyhow::Result<Deployed> {
    let deployed = if stack_exists(cloudformation, stack_name).await {
        let updated = cloudformation
            .update_stack()
            .stack_name(stack_name)
            .template_body(template)
            .capabilities(Capability::CapabilityIam)
            .set_parameters(Some(parameters))
            .send()
            .await;
        match updated {
            Ok(_) => Deployed::Updated,
            Err(error) if format!("{:?}", error).contains("No updates are to be performed") => return Ok(Deployed::Unchanged),
            Err(error) => return Err(anyhow!(heimdall_ports::error_chain(&error))).with_context(|| format!("Failed to update the stack {stack_name}")),
        }
    } else {
        cloudformation
            .create_stack()
            .stack_name(stack_name)
            .template_body(template)
            .capabilities(Capability::CapabilityIam)
            .set_parameters(Some(parameters))
            .send()
            .await
            .map_err(|error| anyhow!(heimdall_ports::error_chain(&error)))
            .with_context(|| format!("Failed to create the stack {stack_name}"))?;
        Deployed::Created
    };
    wait_until_settled(cloudformation, stack_name).await?;
    Ok(deployed)
}

/// The stack's outputs (`ApiUrl`, `JobsTableName`, …).
pub async fn outputs(sdk: &aws_config::SdkConfig, stack_name: &str) -> anyhow::Result<Vec<(String, String)>> {
    let described = aws_sdk_cloudformation::Client::new(sdk).describe_stacks().stack_name(stack_name).send().await.context("Failed to describe the stack")?;
    Ok(described
        .stacks()
        .first()
        .map(|stack| stack.outputs().iter().map(|o| (o.output_key().unwrap_or_default().to_owned(), o.output_value().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default())
}

/// Deletes the triggers stack, then the stack, and waits for them to go (the table and bucket
/// are retained by policy).
pub async fn destroy(sdk: &aws_config::SdkConfig, stack_name: &str) -> anyhow::Result<()> {
    let cloudformation = aws_sdk_cloudformation::Client::new(sdk);
    let triggers_stack = triggers_stack_name(stack_name);
    if stack_exists(&cloudformation, &triggers_stack).await {
        destroy_one(&cloudformation, &triggers_stack).await?;
    }
    destroy_one(&cloudformation, stack_name).await
}

async fn destroy_one(cloudformation: &aws_sdk_cloudformation::Client, stack_name: &str) -> anyhow::Result<()> {
    cloudformation.delete_stack().stack_name(stack_name).send().await.with_context(|| format!("Failed to delete the stack {stack_name}"))?;
    wait_until_settled(cloudformation, stack_name).await
}

async fn wait_until_settled(cloudformation: &aws_sdk_cloudformation::Client, stack_name: &str) -> anyhow::Result<()> {
    for _ in 0..720 {
        let described = match cloudformation.describe_stacks().stack_name(stack_name).send().await {
            Ok(described) => described,
            // A deleted stack is not found by name: that is the end of a destroy.
            Err(_) => return Ok(()),
        };
        let Some(status) = described.stacks().first().and_then(|s| s.stack_status().cloned()) else { return Ok(()) };
        let name = status.as_str();
        if name.ends_with("_IN_PROGRESS") {
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        if name.ends_with("_FAILED") || name.contains("ROLLBACK") {
            let reason = described.stacks().first().and_then(|s| s.stack_status_reason()).unwrap_or("no reason given");
            bail!("the stack {stack_name} ended {name}: {reason}");
        }
        return Ok(());
    }
    bail!("the stack {stack_name} did not settle within an hour")
}
