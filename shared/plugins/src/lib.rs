//! The plugins: each turns a job, its command and its cluster into work done somewhere.
//!
//! # Layout
//! - [`ping`]: answers `Hello, <user>!`; the smallest plugin, for health and smoke tests.
//! - [`shell`]: runs the command's configured argv as a process (never through a shell), in a
//!   sandbox.
//! - [`sandbox`]: that sandbox (job user, Landlock, PID namespace) and
//!   [`harden_server_process`], which every server binary calls at start.

pub mod ping;
pub mod sandbox;
pub mod shell;

use std::sync::Arc;

use heimdall_ports::Plugin;

pub use sandbox::harden_server_process;

/// Every plugin that needs nothing but the local machine. The shell plugin's job user comes
/// from `HEIMDALL_JOB_USER` (see [`shell::ShellPlugin::from_env`]).
pub fn builtin_plugins() -> Vec<Arc<dyn Plugin>> {
    vec![Arc::new(ping::PingPlugin), Arc::new(shell::ShellPlugin::from_env())]
}
