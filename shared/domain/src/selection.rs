//! Picking where a job runs. Pure functions over the catalog; the caller draws one pair at
//! random from [`candidates`] (weights are a later step).
//!
//! A pair (command, cluster) is a candidate when the command is active and carries every tag
//! of the job's `command_criteria`, and the cluster is active and carries every tag of the
//! command's `cluster_tags` and of the job's `cluster_criteria`. `_id:<id>` pins one.

use crate::cluster::Cluster;
use crate::command::Command;
use crate::tags::{TagSet, carries_all};

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
}

fn unmatched_hint(unmatched: &[String], what: &str) -> String {
    if unmatched.is_empty() {
        format!("each tag is carried by some active {what}, but no single one carries them all")
    } else {
        format!("{unmatched:?} is carried by no active {what} (GET /api/v1/{what}s lists their tags)")
    }
}

/// Every (command, cluster) pair the job may run on, in catalog order.
pub fn candidates<'a>(
    commands: &'a [Command],
    clusters: &'a [Cluster],
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
    Ok(pairs)
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
            is_sync: true,
            max_sync_seconds: None,
            retry: Default::default(),
            allowed_modes: vec![],
            cluster_tags: tags(cluster_tags),
            allowed_callers: vec![],
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

    #[test]
    fn a_ping_job_gets_the_ping_command_on_localhost() {
        let commands = [
            command("ping", &["type:ping"], &["type:localhost"], Active),
            command("shell", &["type:shell"], &["type:localhost"], Active),
        ];
        let clusters = [cluster("local", &["type:localhost"], Active)];
        let pairs = candidates(&commands, &clusters, &criteria(&["type:ping"]), &criteria(&["type:localhost"])).unwrap();
        assert_eq!(ids(&pairs), vec![("ping".into(), "local".into())]);
    }

    #[test]
    fn inactive_commands_and_clusters_are_never_picked() {
        let commands = [
            command("old", &["type:ping"], &[], Inactive),
            command("new", &["type:ping"], &[], Active),
        ];
        let clusters = [cluster("off", &[], Inactive), cluster("on", &[], Active)];
        let pairs = candidates(&commands, &clusters, &criteria(&["type:ping"]), &[]).unwrap();
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
        let pairs = candidates(&commands, &clusters, &criteria(&["type:sql"]), &criteria(&["env:prod"])).unwrap();
        assert_eq!(ids(&pairs), vec![("q".into(), "prod".into())]);
    }

    #[test]
    fn an_id_tag_pins_one_command_and_one_cluster() {
        let commands = [
            command("a", &["type:ping"], &[], Active),
            command("b", &["type:ping"], &[], Active),
        ];
        let clusters = [cluster("x", &[], Active), cluster("y", &[], Active)];
        let pairs = candidates(&commands, &clusters, &criteria(&["type:ping", "_id:b"]), &criteria(&["_id:y"])).unwrap();
        assert_eq!(ids(&pairs), vec![("b".into(), "y".into())]);
    }

    #[test]
    fn several_matches_are_all_offered() {
        let commands = [command("a", &["type:ping"], &[], Active)];
        let clusters = [cluster("x", &[], Active), cluster("y", &[], Active)];
        let pairs = candidates(&commands, &clusters, &criteria(&["type:ping"]), &[]).unwrap();
        assert_eq!(pairs.len(), 2);
    }

    #[test]
    fn no_command_names_the_tag_nobody_carries() {
        let commands = [command("a", &["type:ping"], &[], Active)];
        let clusters = [cluster("x", &[], Active)];
        let error = candidates(&commands, &clusters, &criteria(&["type:ping", "type:nope"]), &[]).unwrap_err();
        assert_eq!(
            error,
            SelectionError::NoCommand { criteria: criteria(&["type:ping", "type:nope"]), unmatched: criteria(&["type:nope"]) }
        );
        assert!(error.to_string().ends_with("[\"type:nope\"] is carried by no active command (GET /api/v1/commands lists their tags)"), "{error}");
    }

    #[test]
    fn tags_that_exist_only_on_different_commands_say_so() {
        let commands = [command("a", &["x:1"], &[], Active), command("b", &["y:1"], &[], Active)];
        let error = candidates(&commands, &[], &criteria(&["x:1", "y:1"]), &[]).unwrap_err();
        assert!(error.to_string().contains("no single one carries them all"), "{error}");
    }

    #[test]
    fn a_tag_only_on_an_inactive_command_counts_as_unmatched() {
        let commands = [command("a", &["type:ping"], &[], Inactive)];
        let error = candidates(&commands, &[], &criteria(&["type:ping"]), &[]).unwrap_err();
        assert!(matches!(error, SelectionError::NoCommand { ref unmatched, .. } if unmatched == &criteria(&["type:ping"])));
    }

    #[test]
    fn no_cluster_names_the_matching_commands_and_the_missing_tag() {
        let commands = [command("a", &["type:ping"], &["type:localhost"], Active)];
        let clusters = [cluster("x", &["type:localhost"], Active)];
        let error = candidates(&commands, &clusters, &criteria(&["type:ping"]), &criteria(&["env:prod"])).unwrap_err();
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

            match candidates(&commands, &clusters, &command_criteria, &cluster_criteria) {
                Ok(pairs) => prop_assert_eq!(ids(&pairs), expected),
                Err(_) => prop_assert!(expected.is_empty()),
            }
        }
    }
}
