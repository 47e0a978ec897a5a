//! Deploying the stack: the function packages and the state machine definition go to a code
//! bucket under a version prefix, then `infra/template.yaml` is created or updated with them.
//! Running it twice with the same inputs changes nothing (CloudFormation answers "no updates",
//! which is success here). Works wherever `AWS_ENDPOINT_URL` points: AWS, LocalStack, moto.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};

/// The template and the state machine, as built into this binary.
pub const TEMPLATE: &str = include_str!("../../template.yaml");
pub const STATE_MACHINE: &str = include_str!("../../../statemachines/async-job.asl.json");
/// The functions the template deploys, by package name.
pub const FUNCTIONS: [&str; 4] = ["api", "dispatcher", "plugin-ping", "plugin-shell"];

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
    pub config: Option<PathBuf>,
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
    if let Some(path) = &settings.config {
        let text = std::fs::read(path).with_context(|| format!("Failed to read the config {}", path.display()))?;
        let key = package_key(&settings.version, "config.yml");
        s3.put_object().bucket(&settings.code_bucket).key(&key).body(text.into()).send().await.context("Failed to upload the config")?;
        config_location = format!("s3://{}/{key}", settings.code_bucket);
    }

    let cloudformation = aws_sdk_cloudformation::Client::new(sdk);
    let parameter = |key: &str, value: &str| Parameter::builder().parameter_key(key).parameter_value(value).build();
    let parameters = vec![
        parameter("CodeBucket", &settings.code_bucket),
        parameter("CodePrefix", &package_key(&settings.version, "")),
        parameter("JwtIssuer", &settings.jwt_issuer),
        parameter("JwtAudience", &settings.jwt_audience),
        parameter("ConfigLocation", &config_location),
    ];
    let exists = cloudformation.describe_stacks().stack_name(&settings.stack_name).send().await.is_ok_and(|found| {
        found.stacks().first().is_some_and(|stack| stack.stack_status() != Some(&StackStatus::DeleteComplete))
    });
    let deployed = if exists {
        let updated = cloudformation
            .update_stack()
            .stack_name(&settings.stack_name)
            .template_body(TEMPLATE)
            .capabilities(Capability::CapabilityIam)
            .set_parameters(Some(parameters))
            .send()
            .await;
        match updated {
            Ok(_) => Deployed::Updated,
            Err(error) if format!("{:?}", error).contains("No updates are to be performed") => return Ok(Deployed::Unchanged),
            Err(error) => return Err(anyhow::anyhow!(heimdall_ports::error_chain(&error))).context("Failed to update the stack"),
        }
    } else {
        cloudformation
            .create_stack()
            .stack_name(&settings.stack_name)
            .template_body(TEMPLATE)
            .capabilities(Capability::CapabilityIam)
            .set_parameters(Some(parameters))
            .send()
            .await
            .map_err(|error| anyhow::anyhow!(heimdall_ports::error_chain(&error)))
            .context("Failed to create the stack")?;
        Deployed::Created
    };
    wait_until_settled(&cloudformation, &settings.stack_name).await?;
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

/// Deletes the stack and waits for it to go (the table and bucket are retained by policy).
pub async fn destroy(sdk: &aws_config::SdkConfig, stack_name: &str) -> anyhow::Result<()> {
    let cloudformation = aws_sdk_cloudformation::Client::new(sdk);
    cloudformation.delete_stack().stack_name(stack_name).send().await.context("Failed to delete the stack")?;
    wait_until_settled(&cloudformation, stack_name).await
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
