//! The HTTP API, tested through the real server on a loopback port. One module per feature.

mod access;
mod cancel;
mod concurrency;
mod durability;
mod errors;
mod heartbeats;
mod idempotency;
mod limits;
mod live_catalog;
mod listing;
mod metrics;
mod log_ranges;
mod openapi;
mod results;
mod retention;
mod retries;
mod routing;
mod sandbox;
mod triggers;
mod ui_assets;
mod walkthrough;
