//! The AWS adapters and the serverless path, against the emulator the tests start themselves
//! (moto's server; see `common/emulator.rs`). One module per adapter, plus end to end.

mod access;
mod aws_calls;
mod data_plugins;
mod dynamo_job_store;
mod end_to_end;
mod event_triggers;
mod function_config;
mod iam_enforced;
mod live_catalog;
mod infra_template;
mod reliability;
mod routing;
mod serverless_stack;
mod s3_artifact_store;
mod sfn_workflows;
mod snowflake;
mod spark;
mod sqs_job_queue;
mod support;
