//! Test support for the snowflake plugin, shared by its own tests and the end-to-end tests:
//! a key pair made once per test binary (no key file is ever committed) and a fake SQL API v2
//! that verifies the plugin's JWTs against it.
//!
//! # Layout
//! - [`key`]: `TestKey`, the key pair and its independently computed fingerprint.
//! - [`fake_snowflake`]: `FakeSnowflake`, the fake SQL API on a loopback port.

pub mod fake_snowflake;
pub mod key;
