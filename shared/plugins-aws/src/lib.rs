//! The AWS data plugins (being written).
