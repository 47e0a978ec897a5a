//! Test support shared by the integration tests: the key pair and the fake SQL API.

pub mod fake_snowflake;
pub mod key;
