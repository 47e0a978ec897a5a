//! The ports: one small trait per capability the service layer needs from the outside world.
//! Each has a local adapter (`heimdall-adapters-local`) and, later, an AWS adapter; the service
//! layer only ever sees these traits, as `Arc<dyn Port>`.
//!
//! # Layout
//! - [`job_store`]: `JobStore`, job records with conditional status changes and filtered,
//!   paginated listing (`JobQuery`, `JobPage`, `StatusChange`).
//! - [`artifact_store`]: `ArtifactStore`, a job's stdout, stderr and result, streamed in and out.
//! - [`catalog_store`]: `CatalogStore`, the live catalog's commands, clusters and health checks, versioned.
//! - [`job_queue`]: `JobQueue`, where async jobs wait for a worker.
//! - [`workflows`]: `Workflows`, an external engine driving async jobs (Step Functions).
//! - [`plugin`]: `Plugin`, what runs a job (sync `run`; async `submit`/`poll`/`cancel`/`finalize`).
//! - [`usage`]: `UsageMeter`, what a piece of work uses of AWS, recorded by the AWS adapters.
//! - [`errors`]: `StoreError`, `QueueError`, `PluginError`.

pub mod artifact_store;
pub mod catalog_store;
pub mod errors;
pub mod job_queue;
pub mod job_store;
pub mod plugin;
pub mod usage;
pub mod workflows;

pub use artifact_store::{Artifact, ArtifactReader, ArtifactStore, ArtifactWriter, ByteRange};
pub use catalog_store::{CatalogKind, CatalogRecord, CatalogStore, StoredCatalog};
pub use errors::{PluginError, QueueError, StoreError, error_chain};
pub use job_queue::JobQueue;
pub use job_store::{JobPage, JobQuery, JobStore, NextAttempt, SortDirection, SortField, StatusChange, TextFilter};
pub use plugin::{Plugin, PluginRun, WrittenResult, PollBackoff, RunOutcome, Step};
pub use workflows::{Resumption, WorkflowEnd, WorkflowError, WorkflowState, Workflows};
