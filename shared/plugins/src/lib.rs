//! The plugins: each turns a job, its command and its cluster into work done somewhere.
//!
//! # Layout
//! - [`ping`]: answers `Hello, <user>!`; the smallest plugin, for health and smoke tests.
//! - [`shell`]: runs the command's configured argv as a process (never through a shell).

pub mod ping;
pub mod shell;

use std::sync::Arc;

use heimdall_ports::Plugin;

/// Every plugin that needs nothing but the local machine.
pub fn builtin_plugins() -> Vec<Arc<dyn Plugin>> {
    vec![Arc::new(ping::PingPlugin), Arc::new(shell::ShellPlugin)]
}
