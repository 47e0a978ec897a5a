use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The filter used when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info";

/// Starts logging to stderr: human-readable on a terminal, JSON lines otherwise.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        // The current span's fields only, not every enclosing span's again: a job's lines say
        // which job and user; the request's method and path are on its audit line.
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init();
    }
}
