//! Who may do what: the caller as the transport established it, and the config's `access`
//! section that says who sees which jobs.
//!
//! ```yaml
//! access:
//!   admins: [alice, "group:platform"]   # see every job, cancel any job
//!   job_visibility: owner               # owner (default) | all (every caller reads every job)
//!   groups: {data-eng: [bob, carol]}    # local groups; on AWS groups also come from the token
//!   iam_principals:                     # IAM auth: principal ARN pattern (`*` any text) → user
//!     - {arn: "arn:aws:sts::123456789012:assumed-role/analyst-alice/*", user: alice}
//! ```
//! Everything here is pure: the API builds a [`Caller`] from what it trusts (loopback header,
//! verified token, API Gateway's context) and the service asks the [`AccessPolicy`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// The prefix that makes an `admins` or `allowed_callers` entry name a group.
pub const GROUP_PREFIX: &str = "group:";
/// A user name is at most this long (what every store holds and every log line can carry).
pub const MAX_USER_LENGTH: usize = 255;

/// An authenticated caller: a user and the groups it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: String,
    pub groups: BTreeSet<String>,
}

impl Caller {
    pub fn new(user: impl Into<String>) -> Self {
        Self { user: user.into(), groups: BTreeSet::new() }
    }

    pub fn with_groups(mut self, groups: impl IntoIterator<Item = String>) -> Self {
        self.groups.extend(groups);
        self
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.contains(group)
    }

    /// Whether `entry` (a user name, or `group:<name>`) names this caller.
    pub fn is_named_by(&self, entry: &str) -> bool {
        match entry.strip_prefix(GROUP_PREFIX) {
            Some(group) => self.in_group(group),
            None => entry == self.user,
        }
    }
}

/// Checks a user name from any source: non-blank, bounded, printable.
pub fn check_user_name(user: &str) -> Result<(), String> {
    if user.trim().is_empty() {
        return Err("the user name is empty".into());
    }
    if user.len() > MAX_USER_LENGTH || user.chars().any(char::is_control) {
        return Err(format!("a user name must be at most {MAX_USER_LENGTH} printable characters"));
    }
    Ok(())
}

/// Who sees a job besides its owner and the admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobVisibility {
    /// Only the owner (and admins) read a job.
    #[default]
    Owner,
    /// Every authenticated caller reads every job; cancel stays the owner's (and admins').
    All,
}

/// One `iam_principals` entry: callers whose IAM principal ARN matches `arn` are `user`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamPrincipalMapping {
    /// The principal's ARN; `*` matches any text (e.g. any session name).
    pub arn: String,
    pub user: String,
}

impl IamPrincipalMapping {
    fn matches(&self, arn: &str) -> bool {
        wildcard_match(&self.arn, arn)
    }
}

/// The config's `access` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessPolicy {
    /// Users and `group:<name>` entries that see and cancel every job.
    #[serde(default)]
    pub admins: Vec<String>,
    #[serde(default)]
    pub job_visibility: JobVisibility,
    /// Local groups: group name → member user names.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// How IAM principals become users (IAM auth only); first match wins.
    #[serde(default)]
    pub iam_principals: Vec<IamPrincipalMapping>,
}

impl AccessPolicy {
    /// Problems with the section, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, admin) in self.admins.iter().enumerate() {
            let name = admin.strip_prefix(GROUP_PREFIX).unwrap_or(admin);
            if let Err(problem) = check_user_name(name) {
                problems.push(format!("access: field `admins[{i}]`: {problem}"));
            }
        }
        for (group, members) in &self.groups {
            if let Err(problem) = check_user_name(group) {
                problems.push(format!("access: field `groups`: group `{group}`: {problem}"));
            }
            for (i, member) in members.iter().enumerate() {
                if let Err(problem) = check_user_name(member) {
                    problems.push(format!("access: field `groups.{group}[{i}]`: {problem}"));
                }
            }
        }
        for (i, mapping) in self.iam_principals.iter().enumerate() {
            if !mapping.arn.starts_with("arn:") {
                problems.push(format!("access: field `iam_principals[{i}].arn`: `{}` is not an ARN pattern (arn:aws:…)", mapping.arn));
            }
            if let Err(problem) = check_user_name(&mapping.user) {
                problems.push(format!("access: field `iam_principals[{i}].user`: {problem}"));
            }
        }
        problems
    }

    /// `caller` with the local groups it is a member of added.
    pub fn resolve(&self, caller: Caller) -> Caller {
        let local = self
            .groups
            .iter()
            .filter(|(_, members)| members.iter().any(|m| *m == caller.user))
            .map(|(group, _)| group.clone())
            .collect::<Vec<_>>();
        caller.with_groups(local)
    }

    pub fn is_admin(&self, caller: &Caller) -> bool {
        self.admins.iter().any(|entry| caller.is_named_by(entry))
    }

    /// Whether `caller` reads a job owned by `owner`.
    pub fn may_read_job(&self, caller: &Caller, owner: &str) -> bool {
        caller.user == owner || self.job_visibility == JobVisibility::All || self.is_admin(caller)
    }

    /// Whether `caller` lists jobs of every user (otherwise only its own).
    pub fn may_list_all_jobs(&self, caller: &Caller) -> bool {
        self.job_visibility == JobVisibility::All || self.is_admin(caller)
    }

    /// Whether `caller` cancels a job owned by `owner`.
    pub fn may_cancel_job(&self, caller: &Caller, owner: &str) -> bool {
        caller.user == owner || self.is_admin(caller)
    }

    /// The user an IAM principal is: a configured mapping, else the name a caller cannot pick
    /// itself (an IAM user's name, an assumed role's role name, never its session name).
    pub fn user_for_iam_principal(&self, arn: &str) -> Option<String> {
        if let Some(mapping) = self.iam_principals.iter().find(|m| m.matches(arn)) {
            return Some(mapping.user.clone());
        }
        iam_principal_name(arn)
    }
}

/// The part of an IAM principal ARN its holder cannot choose: `user/<path>/<name>` → name,
/// `assumed-role/<role>/<session>` → role (the session name is the caller's choice), `role/<name>`
/// → name, `root` → `root@<account>`.
pub fn iam_principal_name(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some(service), Some(_region), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let segments: Vec<&str> = resource.split('/').collect();
    let name = match (service, segments.as_slice()) {
        ("sts", ["assumed-role", role, _session]) => *role,
        ("iam", ["root"]) => return Some(format!("root@{account}")),
        ("iam", ["user" | "role", .., name]) => *name,
        _ => return None,
    };
    (!name.is_empty()).then(|| name.to_owned())
}

/// `pattern` with `*` matching any run of characters, everything else literal.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pieces: Vec<&str> = pattern.split('*').collect();
    if pieces.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> AccessPolicy {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn owners_read_their_jobs_and_others_do_not_unless_admin_or_visibility_all() {
        let access = policy("admins: [alice, 'group:platform']\ngroups: {platform: [dave]}\n");
        let bob = access.resolve(Caller::new("bob"));
        let dave = access.resolve(Caller::new("dave"));
        assert!(access.may_read_job(&bob, "bob"));
        assert!(!access.may_read_job(&bob, "carol"));
        assert!(access.may_read_job(&Caller::new("alice"), "carol"));
        assert!(access.may_read_job(&dave, "carol"), "dave is an admin through group platform");
        assert!(!access.may_list_all_jobs(&bob));
        let open = policy("job_visibility: all\n");
        assert!(open.may_read_job(&bob, "carol") && open.may_list_all_jobs(&bob));
        assert!(!open.may_cancel_job(&bob, "carol"), "visibility all does not grant cancel");
    }

    #[test]
    fn groups_from_a_token_count_like_local_ones() {
        let access = policy("admins: ['group:platform']\n");
        let caller = Caller::new("erin").with_groups(["platform".to_owned()]);
        assert!(access.is_admin(&caller));
        assert!(!access.is_admin(&Caller::new("platform")), "a user named like a group is not in it");
    }

    #[test]
    fn an_assumed_role_is_its_role_never_its_session_name() {
        let arn = "arn:aws:sts::123456789012:assumed-role/analyst/alice";
        assert_eq!(iam_principal_name(arn).as_deref(), Some("analyst"));
        assert_eq!(iam_principal_name("arn:aws:iam::123456789012:user/teams/bob").as_deref(), Some("bob"));
        assert_eq!(iam_principal_name("arn:aws:iam::123456789012:root").as_deref(), Some("root@123456789012"));
        assert_eq!(iam_principal_name("alice"), None);
    }

    #[test]
    fn iam_mappings_match_with_wildcards_first_match_wins() {
        let access = policy(
            "iam_principals:\n  - {arn: 'arn:aws:sts::1:assumed-role/heimdall-alice/*', user: alice}\n  - {arn: 'arn:aws:sts::1:assumed-role/*/*', user: anyone}\n",
        );
        assert_eq!(access.user_for_iam_principal("arn:aws:sts::1:assumed-role/heimdall-alice/x").as_deref(), Some("alice"));
        assert_eq!(access.user_for_iam_principal("arn:aws:sts::1:assumed-role/other/alice").as_deref(), Some("anyone"));
        assert_eq!(access.user_for_iam_principal("arn:aws:iam::1:user/carol").as_deref(), Some("carol"));
        assert!(!wildcard_match("a*b*c", "acb"));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
    }

    #[test]
    fn bad_entries_are_named() {
        let access = policy("admins: ['']\niam_principals: [{arn: 'alice', user: a}]\n");
        let problems = access.problems();
        assert!(problems.iter().any(|p| p.contains("admins[0]")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("iam_principals[0].arn")), "{problems:?}");
    }
}
