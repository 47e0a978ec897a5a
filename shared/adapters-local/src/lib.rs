//! The local adapters: everything `heimdall serve` needs to run the platform in one process
//! with no AWS, durable across restarts.
//!
//! # Layout
//! - [`sqlite_job_store`]: `SqliteJobStore`, jobs in an embedded SQLite file (WAL mode).
//!   SQLite over redb because listing jobs is filtering, ordering and paging on several fields:
//!   that is SQL with indexes, where a key-value store would need hand-made secondary indexes.
//! - [`sqlite_database`]: `SqliteDatabase`, the one connection both SQLite stores share, on a
//!   thread of its own that commits concurrent work together (group commit).
//! - [`sqlite_catalog_store`]: `SqliteCatalogStore`, the live catalog in the same file.
//! - [`fs_artifact_store`]: `FsArtifactStore`, stdout/stderr/result as files under the data dir.
//! - [`local_plugin_run`]: a plugin run laid out as `heimdall serve` lays one out, for plugin tests.
//! - [`local_triggers`]: `LocalTriggers`, schedules and watched folders (the S3 stand-in) of
//!   `heimdall serve`.
//! - [`in_process_queue`]: `InProcessJobQueue` and `LocalWorkers`, a channel and a bounded
//!   worker pool; durability comes from the job store (queued jobs are `ACCEPTED` rows).

pub mod fs_artifact_store;
pub mod in_process_queue;
pub mod local_plugin_run;
pub mod local_triggers;
pub mod sqlite_catalog_store;
pub mod sqlite_database;
pub mod sqlite_job_store;

pub use fs_artifact_store::FsArtifactStore;
pub use in_process_queue::{InProcessJobQueue, LocalWorkers};
pub use local_plugin_run::local_plugin_run;
pub use local_triggers::{LocalTriggerSettings, LocalTriggers};
pub use sqlite_catalog_store::SqliteCatalogStore;
pub use sqlite_database::SqliteDatabase;
pub use sqlite_job_store::SqliteJobStore;
