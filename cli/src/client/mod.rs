//! The `heimdall` client commands: `submit`, `status`, `get`, `logs`, `result`, `cancel`,
//! `jobs`, `commands`, `clusters`. They talk only to the public REST API, so they work against
//! `heimdall serve` and a deployment alike.
//!
//! - [`api_client`]: `ApiClient`, requests with the user header, a bearer token or SigV4, and
//!   the API's error answers turned into one line.
//! - [`sigv4`]: signing a request with the standard AWS credential chain.
//! - [`commands`]: what each command does.
//! - [`render`]: tables and CSV for people.

pub mod api_client;
pub mod commands;
pub mod render;
pub mod sigv4;

pub use api_client::{ApiClient, ClientError};
pub use commands::run;
