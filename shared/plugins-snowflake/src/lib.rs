//! The snowflake plugin (being written).
