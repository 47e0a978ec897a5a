//! Retries of failed attempts: a command's `retry` says which failures run the job again, how
//! often and after how long.
//!
//! ```yaml
//! retry: {max_attempts: 3, delay_seconds: 2, backoff: 2.0, on: [exit_code:1, TimedOut, Unavailable]}
//! ```
//! `on` names plugin error types (`JobFailed`, `TimedOut`, `Unavailable`, `InvalidContext`) or
//! `exit_code:<n>`; default `[Unavailable]`. The wait before attempt n+1 is
//! `delay_seconds × backoff^(n-1)`, with up to 20 % of jitter added so many jobs failing at once
//! do not come back at once.

use serde::{Deserialize, Serialize};

/// The error types a plugin reports (what `on` may name besides exit codes).
pub const RETRYABLE_ERROR_TYPES: [&str; 4] = ["JobFailed", "TimedOut", "Unavailable", "InvalidContext"];
/// The most attempts a command may allow.
pub const MAX_ATTEMPTS: u32 = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    #[serde(default = "one")]
    pub max_attempts: u32,
    /// The wait before the second attempt.
    #[serde(default)]
    pub delay_seconds: u64,
    /// Each wait is the one before times this (≥ 1).
    #[serde(default = "two")]
    pub backoff: f64,
    /// Which failures are retried: error types and `exit_code:<n>`.
    #[serde(default = "unavailable")]
    pub on: Vec<String>,
}

fn one() -> u32 {
    1
}

fn two() -> f64 {
    2.0
}

fn unavailable() -> Vec<String> {
    vec!["Unavailable".to_owned()]
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 1, delay_seconds: 0, backoff: 2.0, on: unavailable() }
    }
}

impl RetryPolicy {
    /// What is wrong with the policy, for the config's error list.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=MAX_ATTEMPTS).contains(&self.max_attempts) {
            problems.push(format!("field `retry.max_attempts` must be 1 to {MAX_ATTEMPTS}; got {}", self.max_attempts));
        }
        if !self.backoff.is_finite() || self.backoff < 1.0 || self.backoff > 10.0 {
            problems.push(format!("field `retry.backoff` must be from 1.0 to 10.0; got {}", self.backoff));
        }
        if self.delay_seconds > 24 * 3600 {
            problems.push(format!("field `retry.delay_seconds` must be at most a day (86400); got {}", self.delay_seconds));
        }
        for (index, condition) in self.on.iter().enumerate() {
            let known = RETRYABLE_ERROR_TYPES.contains(&condition.as_str())
                || condition.strip_prefix("exit_code:").is_some_and(|code| code.parse::<i32>().is_ok());
            if !known {
                problems.push(format!(
                    "field `retry.on[{index}]`: `{condition}` is neither an error type ({}) nor exit_code:<n>",
                    RETRYABLE_ERROR_TYPES.join(", ")
                ));
            }
        }
        problems
    }

    /// Whether a failure of `error_type` (and `exit_code`) is one `on` retries.
    pub fn covers(&self, error_type: &str, exit_code: Option<i32>) -> bool {
        self.on.iter().any(|condition| match condition.strip_prefix("exit_code:") {
            Some(code) => exit_code.is_some_and(|exit| code.parse() == Ok(exit)),
            None => condition == error_type,
        })
    }

    /// The wait before attempt `failed + 1` after attempt `failed` failed with `error_type`,
    /// or `None` when it is not retried (not covered, or no attempts left). `jitter` in 0..1
    /// adds up to a fifth of the wait.
    pub fn wait_before_next(&self, failed: u32, error_type: &str, exit_code: Option<i32>, jitter: f64) -> Option<u64> {
        if failed >= self.max_attempts || !self.covers(error_type, exit_code) {
            return None;
        }
        let base = self.delay_seconds as f64 * self.backoff.powi(failed.saturating_sub(1) as i32);
        Some((base * (1.0 + 0.2 * jitter.clamp(0.0, 1.0))).round() as u64)
    }
}

/// One attempt of a job, recorded when it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    /// 1-based.
    pub attempt: u32,
    pub cluster_id: Option<String>,
    pub cluster_name: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: i64,
    /// How it ended: FAILED, SUCCEEDED or CANCELED.
    pub status: crate::JobStatus,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> RetryPolicy {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn the_issues_example_retries_exit_code_1_timeouts_and_outages_with_growing_waits() {
        let retry = policy("{max_attempts: 3, delay_seconds: 2, backoff: 2.0, on: [exit_code:1, TimedOut, Unavailable]}");
        assert!(retry.problems().is_empty());
        assert_eq!(retry.wait_before_next(1, "JobFailed", Some(1), 0.0), Some(2));
        assert_eq!(retry.wait_before_next(2, "TimedOut", None, 0.0), Some(4));
        assert_eq!(retry.wait_before_next(2, "TimedOut", None, 1.0), Some(5), "at most a fifth more");
        assert_eq!(retry.wait_before_next(3, "Unavailable", None, 0.0), None, "no attempt left");
        assert_eq!(retry.wait_before_next(1, "JobFailed", Some(2), 0.0), None, "exit code 2 is not retried");
        assert_eq!(retry.wait_before_next(1, "InvalidContext", None, 0.0), None);
    }

    #[test]
    fn defaults_retry_nothing_and_bad_values_are_named() {
        assert_eq!(RetryPolicy::default().wait_before_next(1, "Unavailable", None, 0.0), None);
        let problems = policy("{max_attempts: 0, backoff: 0.5, on: [Flaky, 'exit_code:x']}").problems();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[2].contains("`Flaky` is neither"), "{problems:?}");
    }
}
