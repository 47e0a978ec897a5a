/// Where the platform's AWS resources are. Read once by each binary (from the environment the
/// infrastructure sets) and passed down; adapters never read the environment themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// The DynamoDB table of jobs.
    pub table: String,
    /// The DynamoDB table of the live catalog (commands, clusters, health checks).
    pub catalog_table: String,
    /// The S3 bucket of stdout, stderr and results.
    pub bucket: String,
    /// The SQS queue URL of async jobs.
    pub queue_url: String,
    /// The Step Functions state machine that runs an async job.
    pub state_machine_arn: String,
}

/// The region used when neither the environment (`AWS_REGION`) nor the profile names one.
pub const FALLBACK_REGION: &str = "us-east-1";

/// The SDK configuration every client is built from: credentials and endpoint from the standard
/// chain (`AWS_ENDPOINT_URL`, …), the region from `AWS_REGION` or the profile, else
/// [`FALLBACK_REGION`]. Loading makes no network call (the instance metadata region lookup is
/// left out, so `heimdall serve` on a laptop starts at once); credentials resolve on first use.
/// Load it once per process.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    use aws_config::meta::region::RegionProviderChain;
    use aws_config::profile::ProfileFileRegionProvider;
    use aws_config::environment::EnvironmentVariableRegionProvider;
    let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(ProfileFileRegionProvider::new())
        .or_else(aws_config::Region::new(FALLBACK_REGION));
    aws_config::defaults(aws_config::BehaviorVersion::latest()).region(region).load().await
}

/// An S3 client for `config`. Path-style addressing when an endpoint override is set
/// (LocalStack, the emulator): their buckets are not DNS names.
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}
