//! The use cases of Heimdall, written once over the ports so they run the same in one process
//! and on AWS. Handlers (HTTP, Lambda) call these and do nothing else.
//!
//! # Layout
//! - [`catalog`]: `Catalog`, the commands and clusters at one moment (from the config, or the catalog store), checked against the plugins.
//! - [`catalog_changes`]: admins' `PUT`s of commands, clusters and statuses; the store seeded from the config.
//! - `live_catalog`: the catalog a process routes with, refreshed when the store's version moves.
//! - [`cluster_health`]: health checks of each (cluster, command) pair; failing pairs leave routing.
//! - [`plugin_registry`]: `PluginRegistry`, the plugins a deployment offers, by name.
//! - [`job_service`]: `JobService`: get, list, read output, cancel, run, recover.
//! - [`job_submission`]: `submit`: matching, limits, idempotency keys, then run or queue.
//! - [`job_access`]: what a caller may read (`get_as`, `list_as`): its own jobs unless `access` says more.
//! - [`job_attributes`]: a job's `job_attributes` as answered: templates rendered, its execution's link.
//! - [`job_execution`]: how one job is driven through its plugin's steps to a final status.
//! - [`job_steps`]: the same steps one call at a time, for a workflow engine (Step Functions).
//! - [`awaited_ends`]: jobs whose work announces its end as an event: the workflow waits, then is woken.
//! - [`triggered_jobs`]: jobs submitted by triggers for events and schedules, once per event.
//! - [`retries`]: a failed attempt run again when its command's `retry` covers it.
//! - [`metrics`]: the platform's figures in Prometheus' text format.
//! - [`retention`]: jobs that ended long ago deleted with their artifacts.
//! - [`stuck_jobs`]: every job ends: jobs whose process or workflow stopped, found and settled.
//! - [`running_jobs`]: the cancel handles of the jobs this process is running.
//! - [`service_error`]: `ServiceError`, what went wrong in terms a client can act on.

pub mod catalog;
pub mod awaited_ends;
pub mod catalog_changes;
pub mod cluster_health;
pub mod job_access;
pub mod job_attributes;
pub mod job_execution;
pub mod job_steps;
pub mod job_service;
pub mod job_submission;
mod live_catalog;
pub mod metrics;
pub mod plugin_registry;
pub mod retention;
pub mod retries;
pub mod running_jobs;
pub mod service_error;
pub mod stuck_jobs;
pub mod triggered_jobs;

pub use catalog::Catalog;
pub use job_service::{JobService, ServiceSettings, SubmittedJob};
pub use job_steps::{Dispatched, FailAnswer, StepAnswer, poll_waits};
pub use plugin_registry::PluginRegistry;
pub use service_error::ServiceError;
pub use stuck_jobs::{STALE_AFTER_SECONDS, Sweep};
pub use triggered_jobs::TriggerOutcome;
