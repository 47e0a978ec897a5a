//! The AWS adapters: the same ports as `heimdall-adapters-local`, on DynamoDB, S3, SQS and Step
//! Functions. SDK types and SDK errors never leave this crate: each adapter translates them
//! into the ports' errors.
//!
//! Every client takes its endpoint from `AWS_ENDPOINT_URL` (read by `aws-config`), so the same
//! code runs against AWS, LocalStack or the moto emulator the tests start.
//!
//! # Layout
//! - [`aws_settings`]: `AwsSettings` (tables, bucket, queue, state machine) and the shared SDK config.
//! - [`dynamo_catalog_store`]: `DynamoCatalogStore`, the live catalog in a table of its own, versioned.
//! - [`dynamo_job_store`]: `DynamoJobStore`; its key design is in `docs/DYNAMODB.md`.
//! - [`stored_job_body`]: the job's `body` attribute, less what the item's attributes hold.
//! - [`s3_artifact_store`]: `S3ArtifactStore`, multipart uploads while a job runs, streamed reads.
//! - [`sqs_job_queue`]: `SqsJobQueue`, the async jobs queue.
//! - [`sfn_workflows`]: `SfnWorkflows`, one execution per async job, named after the job.

pub mod aws_settings;
pub mod dynamo_catalog_store;
pub mod dynamo_job_store;
pub mod s3_artifact_store;
pub mod sfn_workflows;
pub mod sqs_job_queue;
pub mod stored_job_body;

pub use aws_settings::{AwsSettings, load_sdk_config, s3_client};
pub use dynamo_catalog_store::DynamoCatalogStore;
pub use dynamo_job_store::DynamoJobStore;
pub use s3_artifact_store::S3ArtifactStore;
pub use sfn_workflows::SfnWorkflows;
pub use sqs_job_queue::{QueuedJob, SqsJobQueue};
