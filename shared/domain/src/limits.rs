//! The config's `limits`: what one user may have going at once, the same on every store.
//!
//! ```yaml
//! limits:
//!   active_jobs_per_user: 100   # NEW, ACCEPTED, RUNNING or CANCELING jobs of one user (Genie's default)
//! ```

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Jobs of one user not yet ended; a submit past it is answered 429.
    #[serde(default = "default_active_jobs_per_user")]
    pub active_jobs_per_user: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { active_jobs_per_user: default_active_jobs_per_user() }
    }
}

fn default_active_jobs_per_user() -> usize {
    100
}

impl Limits {
    pub fn problems(&self) -> Vec<String> {
        if self.active_jobs_per_user == 0 {
            vec!["limits: field `active_jobs_per_user` must be at least 1".to_owned()]
        } else {
            Vec::new()
        }
    }
}
