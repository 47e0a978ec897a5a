//! The snowflake plugin: a job's SQL runs as one statement through Snowflake's SQL API v2
//! (<https://docs.snowflake.com/en/developer-guide/sql-api>), authenticated with a key-pair
//! JWT, and its result is streamed into the job's result artifact.
//!
//! Command context (config):
//! ```yaml
//! context:
//!   role: ANALYST            # overrides the cluster's role (optional)
//!   timeout_seconds: 3600    # the statement timeout, and the most a job may ask for (optional)
//! ```
//! Cluster context (config):
//! ```yaml
//! context:
//!   account: myorg-myaccount          # required; `xy12345.us-east-1` style works too
//!   user: HEIMDALL_SVC                # required
//!   private_key: /secrets/sf_key.p8   # required: where the PKCS#8 PEM key is (`file:///…` too)
//!   warehouse: REPORTING_WH           # optional, like database, schema and role:
//!   database: ANALYTICS               #   the user's defaults apply when left out
//!   schema: PUBLIC
//!   role: REPORTER
//!   endpoint: https://proxy.internal  # optional, replaces https://<account>.snowflakecomputing.com
//! ```
//! Job context: `query` (required), `bindings` (Snowflake bind variables, passed through),
//! `timeout_seconds`.
//!
//! The result's columns carry Snowflake's names and type names (`fixed`, `text`, …); cell
//! values stay as Snowflake sends them: strings, or null.
//!
//! # Layout
//! - [`plugin`]: [`SnowflakePlugin`], the `Plugin` steps: submit, poll, cancel, finalize.
//! - [`private_key`]: where a key lives ([`PrivateKeyRef`]), loading it ([`PrivateKeyLoader`],
//!   [`FileKeyLoader`]) and the redacted key text ([`PrivateKeyPem`]).
//! - `settings`: the command, cluster and job contexts, parsed and checked.
//! - `jwt`: the key-pair JWT and the public key fingerprint Snowflake identifies the key by.
//! - `sql_api`: the HTTP calls, and what each of Snowflake's answers means for the job.
//! - `result_stream`: writes the result artifact one partition at a time.

pub mod plugin;
pub mod private_key;

mod jwt;
mod result_stream;
mod settings;
mod sql_api;

pub use plugin::SnowflakePlugin;
pub use private_key::{FileKeyLoader, PrivateKeyLoader, PrivateKeyPem, PrivateKeyRef};
pub use settings::MAX_TIMEOUT_SECONDS;
