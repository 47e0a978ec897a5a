//! The `heimdall` binary's library: what `main` parses and runs, shaped so tests can start the
//! server on port 0 and stop it on demand.
//!
//! # Layout
//! - [`args`]: the command line (clap), every option also from a `HEIMDALL_` variable.
//! - [`serve`]: `heimdall serve`: the whole platform in one process on the local adapters.
//! - [`background`]: `Background`, a task beside the server, stopped with it.
//! - [`health_checks`]: `heimdall serve`'s health checks of clusters, each at its interval.
//! - [`janitor`]: `heimdall serve`'s background sweep: jobs past their retention deleted.
//! - [`client`]: the client commands (`submit`, `logs`, `jobs`, …) over the REST API.
//! - [`telemetry`]: tracing set-up (JSON when stderr is not a terminal).

pub mod args;
pub mod client;
pub mod background;
pub mod health_checks;
pub mod janitor;
pub mod serve;
pub mod telemetry;
