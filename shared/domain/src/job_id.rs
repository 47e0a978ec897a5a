use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The id of a job: a UUID made by the server at submission. Version 7, so ids sort by
/// creation time (milliseconds): stores order jobs created in the same second by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(uuid::Uuid);

impl JobId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// The id of a job submitted for an event: a version 7 UUID carrying the event's time and,
    /// in place of random bits, a hash of `key`. The same (time, key) always gives the same id,
    /// so a store's "no second job with this id" makes a redelivered event submit nothing.
    pub fn derived(unix_millis: u64, key: &str) -> Self {
        let hash = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, key.as_bytes());
        let mut bits = [0u8; 10];
        bits.copy_from_slice(&hash.as_bytes()[..10]);
        Self(uuid::Builder::from_unix_timestamp_millis(unix_millis, &bits).into_uuid())
    }
}

impl JobId {
    /// The key attempt `attempt` of this job submits its remote work under (Snowflake's
    /// `requestId`, EMR's client token): a retried step of the same attempt finds the same
    /// work, a new attempt starts new work. The job id itself for the first attempt, a UUID
    /// derived from it and the attempt after.
    pub fn attempt_key(self, attempt: u32) -> String {
        if attempt <= 1 {
            return self.to_string();
        }
        uuid::Uuid::new_v5(&self.0, format!("attempt-{attempt}").as_bytes()).to_string()
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A string that is not a job id.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a job id: job ids are UUIDs such as 0b5a3bd6-7a1e-4b8e-9d35-4c1f6f3b1c2d")]
pub struct InvalidJobId(pub String);

impl FromStr for JobId {
    type Err = InvalidJobId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(text)
            .map(Self)
            .map_err(|_| InvalidJobId(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_attempt_has_its_own_stable_idempotency_key_and_the_first_is_the_job_id() {
        let id = JobId::new();
        assert_eq!(id.attempt_key(1), id.to_string());
        assert_eq!(id.attempt_key(2), id.attempt_key(2));
        assert_ne!(id.attempt_key(2), id.attempt_key(3));
        assert!(id.attempt_key(2).parse::<JobId>().is_ok(), "a UUID, as Snowflake's requestId must be");
    }

    #[test]
    fn a_job_id_round_trips_through_its_text() {
        let id = JobId::new();
        assert_eq!(id.to_string().parse::<JobId>().unwrap(), id);
    }

    #[test]
    fn a_derived_id_depends_on_its_time_and_key_only_and_is_a_version_7_uuid() {
        let id = JobId::derived(1_795_572_000_000, "trigger\nevent-1");
        assert_eq!(id, JobId::derived(1_795_572_000_000, "trigger\nevent-1"));
        assert_ne!(id, JobId::derived(1_795_572_000_000, "trigger\nevent-2"));
        assert_ne!(id, JobId::derived(1_795_572_000_001, "trigger\nevent-1"));
        assert_eq!(id.0.get_version_num(), 7);
        assert_eq!(id.0.get_timestamp().unwrap().to_unix().0, 1_795_572_000);
    }

    #[test]
    fn a_non_uuid_is_rejected_with_the_text_in_the_message() {
        let error = "not-a-uuid".parse::<JobId>().unwrap_err();
        assert!(error.to_string().contains("`not-a-uuid`"));
    }
}
