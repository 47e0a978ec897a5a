//! Picking where a job runs. Pure functions over the catalog: [`candidates`] are the pairs a
//! job may run on, [`pick`] draws one with the weights, [`route`] explains the choice.
//!
//! A pair (command, cluster) is a candidate when the command is active and carries every tag
//! of the job's `command_criteria`, and the cluster is active and carries every tag of the
//! command's `cluster_tags` and of the job's `cluster_criteria`; the pair's last health check
//! did not fail; and neither has weight 0, unless pinned. `_id:<id>` pins one. A candidate is picked with probability proportional to command
//! weight × cluster weight (a weight 0 pinned counts as 1).

use crate::cluster::Cluster;
use crate::health::HealthBook;
use crate::command::Command;
use crate::job::ClusterCriteria;
use crate::tags::{TagSet, carries_all};

/// A command's or cluster's weight when the config names none.
pub const DEFAULT_WEIGHT: u32 = 100;
/// The largest weight (a product of two stays far inside `u64`).
pub const MAX_WEIGHT: u32 = 1_000_000;

/// The weight `weight` of the object `id` counts for a job whose criteria are `criteria`: as
/// configured, but a weight 0 pinned with `_id:<id>` counts as 1.
fn effective_weight(weight: u32, id: &str, criteria: &[String]) -> u64 {
    if weight == 0 && criteria.iter().any(|tag| tag.strip_prefix("_id:") == Some(id)) { 1 } else { u64::from(weight) }
}

/// The weight of a pair: command weight × cluster weight, as they count for the job.
pub fn pair_weight(command: &Command, cluster: &Cluster, command_criteria: &[String], cluster_criteria: &[String]) -> u64 {
    effective_weight(command.weight, &command.id, command_criteria) * effective_weight(cluster.weight, &cluster.id, cluster_criteria)
}

/// Draws one of `pairs` with probability proportional to its weight; `uniform` is a number in
/// `[0, 1)` (the caller's randomness, so this stays pure and testable). `None` for no pairs.
pub fn pick<'a>(
    pairs: &[(&'a Command, &'a Cluster)],
    command_criteria: &[String],
    cluster_criteria: &[String],
    uniform: f64,
) -> Option<(&'a Command, &'a Cluster)> {
    let weights: Vec<u64> = pairs.iter().map(|(command, cluster)| pair_weight(command, cluster, command_criteria, cluster_criteria)).collect();
    let total: u64 = weights.iter().sum();
    if total == 0 {
        return pairs.first().copied();
    }
    let mut target = (uniform.clamp(0.0, 1.0) * total as f64) as u64;
    for (pair, weight) in pairs.iter().zip(weights) {
        if target < weight {
            return Some(*pair);
        }
        target -= weight;
    }
    pairs.last().copied()
}

/// Why no pair matched, with what the client can change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("no active command matches the command_criteria {criteria:?}: {}", unmatched_hint(.unmatched, "command"))]
    NoCommand { criteria: Vec<String>, unmatched: Vec<String> },
    #[error(
        "commands {commands:?} match the command_criteria, but no active cluster carries their cluster_tags together with the cluster_criteria {criteria:?}: {}",
        unmatched_hint(.unmatched, "cluster")
    )]
    NoCluster { commands: Vec<String>, criteria: Vec<String>, unmatched: Vec<String> },
    #[error("every cluster matching the criteria fails its health check for the matching commands: {}", .failing.join("; "))]
    OnlyUnhealthy { failing: Vec<String> },
    #[error("every command and cluster matching the criteria has weight 0 in {pairs:?}: such a command or cluster takes jobs only when pinned, e.g. with \"_id:<id>\" in the criteria")]
    OnlyWeightZero { pairs: Vec<String> },
}

fn unmatched_hint(unmatched: &[String], what: &str) -> String {
    if unmatched.is_empty() {
        format!("each tag is carried by some active {what}, but no single one carries them all")
    } else {
        format!("{unmatched:?} is carried by no active {what} (GET /api/v1/{what}s lists their tags)")
    }
}

/// The candidates of the first alternative of `cluster_criteria` that has any, with that
/// alternative; when none has, the error of the last one tried, with it.
pub fn first_matching<'a, 'c>(
    commands: &'a [Command],
    clusters: &'a [Cluster],
    health: &HealthBook,
    command_criteria: &[String],
    cluster_criteria: &'c ClusterCriteria,
) -> Result<(Vec<(&'a Command, &'a Cluster)>, &'c [String]), (SelectionError, &'c [String])> {
    let alternatives = cluster_criteria.alternatives();
    let mut last_error = None;
    for alternative in alternatives {
        match candidates(commands, clusters, health, command_criteria, alternative) {
            Ok(pairs) => return Ok((pairs, alternative)),
            Err(error) => last_error = Some((error, alternative)),
        }
    }
    Err(last_error.expect("cluster criteria have at least one alternative"))
}

/// Every (command, cluster) pair the job may run on, in catalog order.
pub fn candidates<'a>(
    commands: &'a [Command],
    clusters: &'a [Cluster],
    health: &HealthBook,
    command_criteria: &[String],
    cluster_criteria: &[String],
) -> Result<Vec<(&'a Command, &'a Cluster)>, SelectionError> {
    let matching_commands: Vec<&Command> = commands
        .iter()
        .filter(|command| command.is_active() && carries_all(&command.tags, command_criteria))
        .collect();
    if matching_commands.is_empty() {
        let active_tags = commands.iter().filter(|c| c.is_active()).map(|c| &c.tags);
        return Err(SelectionError::NoCommand {
            criteria: command_criteria.to_vec(),
            unmatched: tags_carried_by_none(command_criteria, active_tags),
        });
    }

    let pairs: Vec<(&Command, &Cluster)> = matching_commands
        .iter()
        .flat_map(|&command| {
            clusters
                .iter()
                .filter(move |cluster| {
                    cluster.is_active()
                        && carries_all(&cluster.tags, &command.cluster_tags)
                        && carries_all(&cluster.tags, cluster_criteria)
                })
                .map(move |cluster| (command, cluster))
        })
        .collect();
    if pairs.is_empty() {
        let active_tags = clusters.iter().filter(|c| c.is_active()).map(|c| &c.tags);
        return Err(SelectionError::NoCluster {
            commands: matching_commands.iter().map(|c| c.id.clone()).collect(),
            criteria: cluster_criteria.to_vec(),
            unmatched: tags_carried_by_none(cluster_criteria, active_tags),
        });
    }
    let (healthy, unhealthy): (Vec<_>, Vec<_>) = pairs.iter().copied().partition(|(command, cluster)| health.failing(&cluster.id, &command.id).is_none());
    if healthy.is_empty() {
        let failing = unhealthy
            .iter()
            .filter_map(|(command, cluster)| health.failing(&cluster.id, &command.id))
            .map(|check| format!("{}@{}: {}", check.command_id, check.cluster_id, check.error.as_deref().unwrap_or("failed")))
            .collect();
        return Err(SelectionError::OnlyUnhealthy { failing });
    }
    let pairs = healthy;
    let weighted: Vec<(&Command, &Cluster)> =
        pairs.iter().copied().filter(|(command, cluster)| pair_weight(command, cluster, command_criteria, cluster_criteria) > 0).collect();
    if weighted.is_empty() {
        return Err(SelectionError::OnlyWeightZero { pairs: pairs.iter().map(|(command, cluster)| format!("{}@{}", command.id, cluster.id)).collect() });
    }
    Ok(weighted)
}

/// One pair a job may run on, and its chance of being picked.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RouteCandidate {
    pub command_id: String,
    pub cluster_id: String,
    /// Command weight × cluster weight, as they count for this job.
    pub weight: u64,
    /// Its share of the candidates' weight, 0 to 1.
    pub probability: f64,
}

/// A command, a cluster, or a pair of them left out of a job's routing, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RouteExclusion {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    pub reason: String,
}

/// Where a job would run: the candidate pairs with their chances, and everything left out.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RoutePlan {
    /// The cluster tags routing used: the first alternative of `cluster_criteria` that has a
    /// candidate (or the first, when none has).
    pub cluster_criteria: Vec<String>,
    pub candidates: Vec<RouteCandidate>,
    pub excluded: Vec<RouteExclusion>,
}

impl RoutePlan {
    /// Leaves out the candidates of `command_id`, saying `reason`, and shares the chances
    /// again among the others.
    pub fn exclude_command(&mut self, command_id: &str, reason: String) {
        if !self.candidates.iter().any(|c| c.command_id == command_id) {
            return;
        }
        self.candidates.retain(|c| c.command_id != command_id);
        self.excluded.push(RouteExclusion { command_id: Some(command_id.to_owned()), cluster_id: None, reason });
        let total: u64 = self.candidates.iter().map(|c| c.weight).sum();
        for candidate in &mut self.candidates {
            candidate.probability = if total == 0 { 0.0 } else { candidate.weight as f64 / total as f64 };
        }
    }
}

/// Explains the routing of a job with these criteria: each candidate pair with its chance
/// (what [`pick`] draws from), and each command, cluster or pair left out with the reason.
pub fn route(commands: &[Command], clusters: &[Cluster], health: &HealthBook, command_criteria: &[String], cluster_criteria: &[String]) -> RoutePlan {
    let mut plan = RoutePlan { cluster_criteria: cluster_criteria.to_vec(), ..RoutePlan::default() };
    let mut leave_out = |command: Option<&str>, cluster: Option<&str>, reason: String| {
        plan.excluded.push(RouteExclusion { command_id: command.map(str::to_owned), cluster_id: cluster.map(str::to_owned), reason });
    };
    let missing = |tags: &TagSet, wanted: &mut dyn Iterator<Item = &String>| -> Vec<String> { wanted.filter(|t| !tags.contains(*t)).cloned().collect() };
    let mut matching = Vec::new();
    for command in commands {
        let lacks = missing(&command.tags, &mut command_criteria.iter());
        if !command.is_active() {
            leave_out(Some(&command.id), None, format!("the command is {}", command.status.as_str()));
        } else if !lacks.is_empty() {
            leave_out(Some(&command.id), None, format!("the command lacks the command_criteria tags {lacks:?}"));
        } else if effective_weight(command.weight, &command.id, command_criteria) == 0 {
            leave_out(Some(&command.id), None, format!("the command has weight 0: it takes jobs only when pinned with \"_id:{}\"", command.id));
        } else {
            matching.push(command);
        }
    }
    let mut pairs = Vec::new();
    for cluster in clusters {
        if !cluster.is_active() {
            let reason = if cluster.status == crate::resource_status::ResourceStatus::Active {
                format!("the cluster's registration expired: it did not register again within its ttl_seconds ({})", cluster.ttl_seconds.unwrap_or_default())
            } else {
                format!("the cluster is {}", cluster.status.as_str())
            };
            leave_out(None, Some(&cluster.id), reason);
            continue;
        }
        if effective_weight(cluster.weight, &cluster.id, cluster_criteria) == 0 {
            leave_out(None, Some(&cluster.id), format!("the cluster has weight 0: it takes jobs only when pinned with \"_id:{}\"", cluster.id));
            continue;
        }
        for command in &matching {
            let lacks = missing(&cluster.tags, &mut command.cluster_tags.iter().chain(cluster_criteria.iter()));
            if !lacks.is_empty() {
                leave_out(Some(&command.id), Some(&cluster.id), format!("the cluster lacks {lacks:?} (the command's cluster_tags and the cluster_criteria)"));
            } else if let Some(check) = health.failing(&cluster.id, &command.id) {
                leave_out(
                    Some(&command.id),
                    Some(&cluster.id),
                    format!("unhealthy: its {} health check failed at {}: {}", check.plugin, check.checked_at, check.error.as_deref().unwrap_or("no detail")),
                );
            } else {
                pairs.push((*command, cluster));
            }
        }
    }
    let weights: Vec<u64> = pairs.iter().map(|(command, cluster)| pair_weight(command, cluster, command_criteria, cluster_criteria)).collect();
    let total: u64 = weights.iter().sum();
    plan.candidates = pairs
        .iter()
        .zip(weights)
        .map(|((command, cluster), weight)| RouteCandidate {
            command_id: command.id.clone(),
            cluster_id: cluster.id.clone(),
            weight,
            probability: if total == 0 { 0.0 } else { weight as f64 / total as f64 },
        })
        .collect();
    // Likeliest first; ties in catalog order.
    plan.candidates.sort_by(|a, b| b.weight.cmp(&a.weight));
    plan
}

fn tags_carried_by_none<'a>(
    criteria: &[String],
    tag_sets: impl Iterator<Item = &'a TagSet> + Clone,
) -> Vec<String> {
    criteria
        .iter()
        .filter(|tag| !tag_sets.clone().any(|tags| tags.contains(*tag)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::resource_status::ResourceStatus;
    use crate::tags::system_tags;

    fn tags(list: &[&str]) -> TagSet {
        list.iter().map(|t| t.to_string()).collect()
    }

    fn command(id: &str, own: &[&str], cluster_tags: &[&str], status: ResourceStatus) -> Command {
        let mut all = tags(own);
        all.extend(system_tags(id, id, "1"));
        Command {
            id: id.into(),
            name: id.into(),
            version: "1".into(),
            description: String::new(),
            user: "test".into(),
            tags: all,
            status,
            plugin: "ping".into(),
            weight: DEFAULT_WEIGHT,
            is_sync: true,
            max_sync_seconds: None,
            retry: Default::default(),
            allowed_modes: vec![],
            cluster_tags: tags(cluster_tags),
            allowed_callers: vec![],
            job_attributes: Default::default(),
            context: serde_json::json!({}),
            created_at: 0,
            updated_at: 0,
            caller_patterns: vec![],
        }
    }

    fn cluster(id: &str, own: &[&str], status: ResourceStatus) -> Cluster {
        let mut all = tags(own);
        all.extend(system_tags(id, id, "1"));
        Cluster {
            id: id.into(),
            name: id.into(),
            version: "1".into(),
            description: String::new(),
            user: "test".into(),
            tags: all,
            status,
            health_check: false,
            health_interval: 60,
            ttl_seconds: None,
            expires_at: None,
            weight: DEFAULT_WEIGHT,
            job_attributes: Default::default(),
            context: serde_json::json!({}),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn criteria(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    fn ids(pairs: &[(&Command, &Cluster)]) -> Vec<(String, String)> {
        pairs.iter().map(|(c, k)| (c.id.clone(), k.id.clone())).collect()
    }

    use ResourceStatus::{Active, Inactive};

    /// A seeded stream of uniform numbers in [0, 1) (xorshift64*), for repeatable draws.
    fn uniforms(mut state: u64) -> impl Iterator<Item = f64> {
        std::iter::from_fn(move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            Some((state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64)
        })
    }

    #[test]
    fn a_canary_at_weight_1_beside_99_takes_about_one_job_in_a_hundred() {
        let mut stable = command("stable", &["type:etl"], &["type:localhost"], Active);
        stable.weight = 99;
        let mut canary = command("canary", &["type:etl"], &["type:localhost"], Active);
        canary.weight = 1;
        let (commands, clusters) = (vec![stable, canary], vec![cluster("local", &["type:localhost"], Active)]);
        let criteria = criteria(&["type:etl"]);
        let pairs = candidates(&commands, &clusters, &HealthBook::default(), &criteria, &[]).unwrap();

        let draws = 10_000;
        let canaries = uniforms(0x5eed).take(draws).filter(|u| pick(&pairs, &criteria, &[], *u).unwrap().0.id == "canary").count();

        // Binomial(10,000, 0.01): mean 100, standard deviation 9.95; four of them either side.
        assert!((60..=140).contains(&canaries), "{canaries} of {draws} went to the canary");
        let plan = route(&commands, &clusters, &HealthBook::default(), &criteria, &[]);
        let chances: Vec<(String, f64)> = plan.candidates.iter().map(|c| (c.command_id.clone(), c.probability)).collect();
        assert_eq!(chances, vec![("stable".to_owned(), 0.99), ("canary".to_owned(), 0.01)]);
    }

    #[test]
    fn weight_0_takes_jobs_only_when_pinned_and_cluster_weights_multiply() {
        let mut dark = command("dark", &["type:etl"], &["type:localhost"], Active);
        dark.weight = 0;
        let live = command("live", &["type:etl"], &["type:localhost"], Active);
        let mut big = cluster("big", &["type:localhost"], Active);
        big.weight = 300;
        let (commands, clusters) = (vec![dark, live], vec![big, cluster("small", &["type:localhost"], Active)]);

        let pairs = candidates(&commands, &clusters, &HealthBook::default(), &criteria(&["type:etl"]), &[]).unwrap();
        assert_eq!(ids(&pairs).iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(), ["live", "live"]);
        let plan = route(&commands, &clusters, &HealthBook::default(), &criteria(&["type:etl"]), &[]);
        assert_eq!(plan.candidates.iter().map(|c| (c.cluster_id.as_str(), c.probability)).collect::<Vec<_>>(), [("big", 0.75), ("small", 0.25)]);
        assert!(plan.excluded.iter().any(|e| e.command_id.as_deref() == Some("dark") && e.reason.contains("weight 0")), "{plan:?}");

        let pinned = candidates(&commands, &clusters, &HealthBook::default(), &criteria(&["_id:dark"]), &[]).unwrap();
        assert_eq!(ids(&pinned).len(), 2);
        let only_dark = vec![commands[0].clone()];
        assert!(matches!(candidates(&only_dark, &clusters, &HealthBook::default(), &criteria(&["type:etl"]), &[]), Err(SelectionError::OnlyWeightZero { .. })));
    }

    #[test]
    fn a_pair_whose_health_check_failed_is_left_out_and_an_expired_registration_too() {
        let commands = vec![command("etl", &["type:etl"], &["type:spark"], Active)];
        let mut expired = cluster("spark-gone", &["type:spark"], Active);
        expired.ttl_seconds = Some(30);
        expired.expires_at = Some(crate::clock::now_epoch_seconds() - 1);
        let clusters = vec![cluster("spark-a", &["type:spark"], Active), cluster("spark-b", &["type:spark"], Active), expired];
        let failed = crate::health::HealthCheck {
            cluster_id: "spark-a".into(),
            cluster_name: "spark-a".into(),
            command_id: "etl".into(),
            plugin: "spark".into(),
            status: crate::health::HealthStatus::Error,
            latency_ms: 3,
            error: Some("virtual cluster is TERMINATED".into()),
            checked_at: 7,
        };
        let health = HealthBook::new([failed.clone()]);
        let pairs = candidates(&commands, &clusters, &health, &criteria(&["type:etl"]), &[]).unwrap();
        assert_eq!(ids(&pairs), [("etl".to_owned(), "spark-b".to_owned())]);
        let plan = route(&commands, &clusters, &health, &criteria(&["type:etl"]), &[]);
        let reasons: Vec<&str> = plan.excluded.iter().map(|e| e.reason.as_str()).collect();
        assert!(reasons.iter().any(|r| r.starts_with("unhealthy: its spark health check failed") && r.ends_with("virtual cluster is TERMINATED")), "{reasons:?}");
        assert!(reasons.iter().any(|r| r.contains("registration expired")), "{reasons:?}");

        let only_failing = HealthBook::new([failed.clone(), crate::health::HealthCheck { cluster_id: "spark-b".into(), ..failed }]);
        let error = candidates(&commands, &clusters, &only_failing, &criteria(&["type:etl"]), &[]).unwrap_err();
        assert!(error.to_string().contains("etl@spark-a: virtual cluster is TERMINATED"), "{error}");
    }

    #[test]
    fn the_route_says_why_each_command_and_cluster_was_left_out() {
        let commands = vec![
            command("etl", &["type:etl"], &["type:spark"], Active),
            command("old", &["type:etl"], &["type:spark"], Inactive),
            command("other", &["type:ping"], &["type:spark"], Active),
        ];
        let clusters = vec![
            cluster("spark-us", &["type:spark", "region:us"], Active),
            cluster("spark-eu", &["type:spark", "region:eu"], Active),
            cluster("spark-old", &["type:spark", "region:us"], Inactive),
        ];
        let plan = route(&commands, &clusters, &HealthBook::default(), &criteria(&["type:etl"]), &criteria(&["region:us"]));
        assert_eq!(plan.candidates.iter().map(|c| (c.command_id.as_str(), c.cluster_id.as_str())).collect::<Vec<_>>(), [("etl", "spark-us")]);
        let reasons: Vec<(Option<&str>, Option<&str>, &str)> = plan.excluded.iter().map(|e| (e.command_id.as_deref(), e.cluster_id.as_deref(), e.reason.as_str())).collect();
        assert!(reasons.contains(&(Some("old"), None, "the command is INACTIVE")), "{reasons:?}");
        assert!(reasons.contains(&(Some("other"), None, "the command lacks the command_criteria tags [\"type:etl\"]")), "{reasons:?}");
        assert!(reasons.contains(&(None, Some("spark-old"), "the cluster is INACTIVE")), "{reasons:?}");
        assert!(reasons.iter().any(|(c, k, r)| *c == Some("etl") && *k == Some("spark-eu") && r.contains("region:us")), "{reasons:?}");
    }

    #[test]
    fn a_ping_job_gets_the_ping_command_on_localhost() {
        let commands = [
            command("ping", &["type:ping"], &["type:localhost"], Active),
            command("shell", &["type:shell"], &["type:localhost"], Active),
        ];
        let clusters = [cluster("local", &["type:localhost"], Active)];
        let pairs = candidates(&commands, &clusters, &HealthBook::default(), &criteria(&["type:ping"]), &criteria(&["type:localhost"])).unwrap();
        assert_eq!(ids(&pairs), vec![("ping".into(), "local".into())]);
    }

    #[test]
    fn inactive_commands_and_clusters_are_never_picked() {
        let commands = [
            command("old", &["type:ping"], &[], Inactive),
            command("new", &["type:ping"], &[], Active),
        ];
        let clusters = [cluster("off", &[], Inactive), cluster("on", &[], Active)];
        let pairs = candidates(&commands, &clusters, &HealthBook::default(), &criteria(&["type:ping"]), &[]).unwrap();
        assert_eq!(ids(&pairs), vec![("new".into(), "on".into())]);
    }

    #[test]
    fn the_cluster_must_carry_the_commands_cluster_tags_and_the_jobs_criteria() {
        let commands = [command("q", &["type:sql"], &["engine:snowflake"], Active)];
        let clusters = [
            cluster("dev", &["engine:snowflake", "env:dev"], Active),
            cluster("prod", &["engine:snowflake", "env:prod"], Active),
            cluster("spark-prod", &["engine:spark", "env:prod"], Active),
        ];
        let pairs = candidates(&commands, &clusters, &HealthBook::default(), &criteria(&["type:sql"]), &criteria(&["env:prod"])).unwrap();
        assert_eq!(ids(&pairs), vec![("q".into(), "prod".into())]);
    }

    #[test]
    fn an_id_tag_pins_one_command_and_one_cluster() {
        let commands = [
            command("a", &["type:ping"], &[], Active),
            command("b", &["type:ping"], &[], Active),
        ];
        let clusters = [cluster("x", &[], Active), cluster("y", &[], Active)];
        let pairs = candidates(&commands, &clusters, &HealthBook::default(), &criteria(&["type:ping", "_id:b"]), &criteria(&["_id:y"])).unwrap();
        assert_eq!(ids(&pairs), vec![("b".into(), "y".into())]);
    }

    #[test]
    fn several_matches_are_all_offered() {
        let commands = [command("a", &["type:ping"], &[], Active)];
        let clusters = [cluster("x", &[], Active), cluster("y", &[], Active)];
        let pairs = candidates(&commands, &clusters, &HealthBook::default(), &criteria(&["type:ping"]), &[]).unwrap();
        assert_eq!(pairs.len(), 2);
    }

    #[test]
    fn no_command_names_the_tag_nobody_carries() {
        let commands = [command("a", &["type:ping"], &[], Active)];
        let clusters = [cluster("x", &[], Active)];
        let error = candidates(&commands, &clusters, &HealthBook::default(), &criteria(&["type:ping", "type:nope"]), &[]).unwrap_err();
        assert_eq!(
            error,
            SelectionError::NoCommand { criteria: criteria(&["type:ping", "type:nope"]), unmatched: criteria(&["type:nope"]) }
        );
        assert!(error.to_string().ends_with("[\"type:nope\"] is carried by no active command (GET /api/v1/commands lists their tags)"), "{error}");
    }

    #[test]
    fn tags_that_exist_only_on_different_commands_say_so() {
        let commands = [command("a", &["x:1"], &[], Active), command("b", &["y:1"], &[], Active)];
        let error = candidates(&commands, &[], &HealthBook::default(), &criteria(&["x:1", "y:1"]), &[]).unwrap_err();
        assert!(error.to_string().contains("no single one carries them all"), "{error}");
    }

    #[test]
    fn a_tag_only_on_an_inactive_command_counts_as_unmatched() {
        let commands = [command("a", &["type:ping"], &[], Inactive)];
        let error = candidates(&commands, &[], &HealthBook::default(), &criteria(&["type:ping"]), &[]).unwrap_err();
        assert!(matches!(error, SelectionError::NoCommand { ref unmatched, .. } if unmatched == &criteria(&["type:ping"])));
    }

    #[test]
    fn no_cluster_names_the_matching_commands_and_the_missing_tag() {
        let commands = [command("a", &["type:ping"], &["type:localhost"], Active)];
        let clusters = [cluster("x", &["type:localhost"], Active)];
        let error = candidates(&commands, &clusters, &HealthBook::default(), &criteria(&["type:ping"]), &criteria(&["env:prod"])).unwrap_err();
        assert_eq!(
            error,
            SelectionError::NoCluster { commands: vec!["a".into()], criteria: criteria(&["env:prod"]), unmatched: criteria(&["env:prod"]) }
        );
    }

    fn tag_strategy() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["t:a", "t:b", "t:c", "t:d"]).prop_map(String::from)
    }

    proptest! {
        /// Every pair offered satisfies the rule, and every pair that satisfies it is offered.
        #[test]
        fn candidates_are_exactly_the_pairs_that_satisfy_the_rule(
            command_specs in prop::collection::vec((prop::collection::vec(tag_strategy(), 0..3), prop::collection::vec(tag_strategy(), 0..2), any::<bool>()), 0..5),
            cluster_specs in prop::collection::vec((prop::collection::vec(tag_strategy(), 0..3), any::<bool>()), 0..5),
            command_criteria in prop::collection::vec(tag_strategy(), 1..3),
            cluster_criteria in prop::collection::vec(tag_strategy(), 0..2),
        ) {
            let status = |active: bool| if active { Active } else { Inactive };
            let commands: Vec<Command> = command_specs.iter().enumerate().map(|(i, (own, ct, active))| {
                let own: Vec<&str> = own.iter().map(String::as_str).collect();
                let ct: Vec<&str> = ct.iter().map(String::as_str).collect();
                command(&format!("c{i}"), &own, &ct, status(*active))
            }).collect();
            let clusters: Vec<Cluster> = cluster_specs.iter().enumerate().map(|(i, (own, active))| {
                let own: Vec<&str> = own.iter().map(String::as_str).collect();
                cluster(&format!("k{i}"), &own, status(*active))
            }).collect();

            let expected: Vec<(String, String)> = commands.iter().flat_map(|c| clusters.iter().map(move |k| (c, k)))
                .filter(|(c, k)| c.is_active() && k.is_active()
                    && command_criteria.iter().all(|t| c.tags.contains(t))
                    && c.cluster_tags.iter().all(|t| k.tags.contains(t))
                    && cluster_criteria.iter().all(|t| k.tags.contains(t)))
                .map(|(c, k)| (c.id.clone(), k.id.clone()))
                .collect();

            match candidates(&commands, &clusters, &HealthBook::default(), &command_criteria, &cluster_criteria) {
                Ok(pairs) => prop_assert_eq!(ids(&pairs), expected),
                Err(_) => prop_assert!(expected.is_empty()),
            }
        }
    }
}
