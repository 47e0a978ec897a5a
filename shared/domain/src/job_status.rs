use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a job is in its life. The transition table in [`JobStatus::can_transition_to`] is the
/// only place that says which moves are legal; stores enforce it with conditional writes.
///
/// ```text
///   NEW ──▶ RUNNING (sync) ─────────────┐
///   ACCEPTED (async, queued) ─▶ RUNNING ─┼─▶ SUCCEEDED | FAILED
///   any non-final ─▶ CANCELING ─▶ CANCELED | FAILED
/// ```
/// `KILLED` is accepted in filters and on the wire for Heimdall compatibility; nothing moves a
/// job into it (a job whose worker died is FAILED with an error that says so).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    New,
    Accepted,
    Running,
    Succeeded,
    Failed,
    Canceling,
    Canceled,
    Killed,
}

/// A move the transition table forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a job in status {from} cannot move to {to}")]
pub struct IllegalTransition {
    pub from: JobStatus,
    pub to: JobStatus,
}

impl JobStatus {
    pub const ALL: [JobStatus; 8] = [
        JobStatus::New,
        JobStatus::Accepted,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Canceling,
        JobStatus::Canceled,
        JobStatus::Killed,
    ];

    /// A final status never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Canceled | JobStatus::Killed
        )
    }

    /// Statuses a job may be created in: `NEW` (sync), `ACCEPTED` (async, queued at once) and
    /// `FAILED` (no command or cluster matched: recorded so the client can see why).
    pub fn is_initial(self) -> bool {
        matches!(self, JobStatus::New | JobStatus::Accepted | JobStatus::Failed)
    }

    /// The transition table.
    pub fn can_transition_to(self, next: JobStatus) -> bool {
        use JobStatus::*;
        matches!(
            (self, next),
            (New, Accepted | Running | Failed | Canceling)
                | (Accepted, Running | Failed | Canceling)
                | (Running, Succeeded | Failed | Canceling)
                | (Canceling, Canceled | Failed)
        )
    }

    /// `Ok(next)` when the move is legal, the reason otherwise.
    pub fn transition_to(self, next: JobStatus) -> Result<JobStatus, IllegalTransition> {
        if self.can_transition_to(next) {
            Ok(next)
        } else {
            Err(IllegalTransition { from: self, to: next })
        }
    }

    /// The statuses from which a move to `next` is legal (what a conditional write checks).
    pub fn predecessors_of(next: JobStatus) -> Vec<JobStatus> {
        Self::ALL
            .into_iter()
            .filter(|from| from.can_transition_to(next))
            .collect()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::New => "NEW",
            JobStatus::Accepted => "ACCEPTED",
            JobStatus::Running => "RUNNING",
            JobStatus::Succeeded => "SUCCEEDED",
            JobStatus::Failed => "FAILED",
            JobStatus::Canceling => "CANCELING",
            JobStatus::Canceled => "CANCELED",
            JobStatus::Killed => "KILLED",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no job status.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown job status `{0}`: use one of NEW, ACCEPTED, RUNNING, SUCCEEDED, FAILED, CANCELING, CANCELED, KILLED")]
pub struct UnknownJobStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownJobStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| UnknownJobStatus(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::JobStatus::*;
    use super::*;

    #[test]
    fn the_happy_async_path_is_legal() {
        assert!(Accepted.can_transition_to(Running));
        assert!(Running.can_transition_to(Succeeded));
        assert!(Running.can_transition_to(Failed));
    }

    #[test]
    fn the_sync_path_skips_accepted() {
        assert!(New.can_transition_to(Running));
    }

    #[test]
    fn cancel_goes_through_canceling() {
        for from in [New, Accepted, Running] {
            assert!(from.can_transition_to(Canceling), "{from} -> CANCELING");
            assert!(!from.can_transition_to(Canceled), "{from} -> CANCELED skips CANCELING");
        }
        assert!(Canceling.can_transition_to(Canceled));
    }

    #[test]
    fn a_terminal_status_never_moves() {
        for from in JobStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in JobStatus::ALL {
                assert!(!from.can_transition_to(to), "{from} -> {to} must be illegal");
            }
        }
    }

    #[test]
    fn a_job_cannot_run_twice_or_go_back() {
        assert!(!Running.can_transition_to(Running));
        assert!(!Running.can_transition_to(Accepted));
        assert!(!Accepted.can_transition_to(New));
        assert!(!Canceling.can_transition_to(Running));
        assert!(!Canceling.can_transition_to(Succeeded));
    }

    #[test]
    fn nothing_moves_into_killed_or_new() {
        assert!(JobStatus::predecessors_of(Killed).is_empty());
        assert!(JobStatus::predecessors_of(New).is_empty());
    }

    #[test]
    fn transition_to_reports_both_ends_of_an_illegal_move() {
        let error = Succeeded.transition_to(Running).unwrap_err();
        assert_eq!(error.to_string(), "a job in status SUCCEEDED cannot move to RUNNING");
    }

    #[test]
    fn predecessors_of_running_are_new_and_accepted() {
        assert_eq!(JobStatus::predecessors_of(Running), vec![New, Accepted]);
    }

    #[test]
    fn statuses_parse_case_insensitively_and_serialize_upper_case() {
        assert_eq!("running".parse::<JobStatus>().unwrap(), Running);
        assert_eq!(serde_json::to_string(&Canceling).unwrap(), "\"CANCELING\"");
        assert!("DONE".parse::<JobStatus>().unwrap_err().to_string().contains("SUCCEEDED"));
    }
}
