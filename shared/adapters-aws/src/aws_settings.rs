/// Where the platform's AWS resources are. Read once by each binary (from the environment the
/// infrastructure sets) and passed down; adapters never read the environment themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// The DynamoDB table of jobs.
    pub table: String,
    /// The S3 bucket of stdout, stderr and results.
    pub bucket: String,
    /// The SQS queue URL of async jobs.
    pub queue_url: String,
    /// The Step Functions state machine that runs an async job.
    pub state_machine_arn: String,
}

/// The SDK configuration every client is built from: region, credentials and endpoint from
/// the standard chain (`AWS_REGION`, `AWS_ENDPOINT_URL`, …). Load it once per process.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// An S3 client for `config`. Path-style addressing when an endpoint override is set
/// (LocalStack, the emulator): their buckets are not DNS names.
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}
