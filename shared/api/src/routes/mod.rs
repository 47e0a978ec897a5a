//! The handlers, one file per resource.

pub mod catalog;
pub mod health;
pub mod jobs;
pub mod ui;
