//! What every Heimdall Lambda shares. Each function's `main` is: read [`FunctionConfig`] from
//! the environment, build the service with [`build_service`], hand its handler to the runtime.
//!
//! # Layout
//! - [`function_config`]: `FunctionConfig`, the environment the infrastructure sets, read once.
//! - [`wiring`]: the service over the AWS adapters, and the config read from a file, S3 or SSM.
//! - [`plugin_step`]: the handler of the plugin Lambdas: one state machine step per call.
//! - [`sqs_batch`]: SQS batches handled record by record, failures reported one by one.

pub mod function_config;
pub mod plugin_step;
pub mod sqs_batch;
pub mod wiring;

pub use function_config::{DEFAULT_FUNCTION_MAX_SYNC_SECONDS, FunctionConfig};
pub use wiring::{all_plugins, build_service, every_plugin, no_plugin, read_config, service_from_env};
