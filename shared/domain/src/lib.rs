//! The domain of Heimdall: what a command, a cluster and a job are, the rules a job's status
//! follows, how a job picks its command and cluster, and the YAML config file.
//!
//! No I/O, no async runtime, no AWS: every other crate builds on these types.
//!
//! # Layout
//! - [`job_id`]: `JobId`, the server-made UUID of a job.
//! - [`job_status`]: `JobStatus` and its transition table, enforced in one place.
//! - [`resource_status`]: `ResourceStatus` of commands and clusters (active, inactive, deleted).
//! - [`tags`]: tag sets and the system tags (`_id:`, `_name:`, `_version:`).
//! - [`command`], [`cluster`]: what to run and where.
//! - [`job`]: `Job` (the stored record) and `JobRequest` (what a client submits).
//! - [`job_attributes`]: Heimdall's `job_attributes`, links shown with a job, templated by commands and clusters.
//! - [`job_result`]: a job's result table (`columns` + `data`).
//! - [`selection`]: the pure function that picks (command, cluster) pairs for a job.
//! - [`health`]: the last health check of each (cluster, command) pair (`HealthBook`).
//! - [`config`]: the YAML config file (Heimdall's format), parsed and validated.
//! - [`trigger`]: `Trigger`, jobs submitted on a schedule or an event, from a template.
//! - [`trigger_event`]: what fires a trigger (an EventBridge-shaped event or a schedule's time).
//! - [`event_pattern`]: EventBridge event patterns, matched as EventBridge does.
//! - [`access`]: `Caller` and `AccessPolicy` (the config's `access`): who reads and cancels which jobs.
//! - [`text_filter`]: `TextFilter`, a listing's text filter: exact, or Heimdall's `like` pattern.
//! - [`clock`]: epoch-second timestamps.
//! - [`idempotency`]: `Idempotency-Key` claims, so a submit sent twice makes one job.
//! - [`retry`]: a command's `retry` policy and the record of each attempt.
//! - [`limits`]: the config's `limits` (active jobs per user).
//! - [`names`]: the machine error codes shared by every layer.
//! - [`redaction`]: contexts with their secrets hidden, as the catalog API shows them.

pub mod access;
pub mod aws_cost;
pub mod clock;
pub mod cluster;
pub mod command;
pub mod config;
pub mod event_pattern;
pub mod health;
pub mod idempotency;
pub mod job;
pub mod job_attributes;
pub mod job_id;
pub mod job_result;
pub mod job_status;
pub mod limits;
pub mod names;
pub mod redaction;
pub mod resource_status;
pub mod retry;
pub mod selection;
pub mod tags;
pub mod text_filter;
pub mod trigger;
pub mod trigger_event;

pub use access::{AccessPolicy, Caller};
pub use cluster::Cluster;
pub use command::Command;
pub use job::{ClusterCriteria, Job, JobRequest};
pub use job_id::JobId;
pub use job_result::{JobResult, ResultColumn};
pub use job_status::{IllegalTransition, JobStatus};
pub use resource_status::ResourceStatus;
