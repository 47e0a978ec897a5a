//! Heimdall's `job_attributes`: named links (or texts) shown with a job, e.g. its Spark UI or its
//! query in Snowsight. Commands and clusters declare templates; each job's are rendered from
//! the job, its command and cluster, and what its plugin reported (its step handle):
//!
//! ```yaml
//! job_attributes:
//!   spark_ui: {kind: link, value: "https://console.aws.amazon.com/emr/home#/virtual-clusters/{handle.virtual_cluster_id}/job-runs/{handle.job_run_id}"}
//! ```
//!
//! Placeholders: `{job.id}`, `{job.name}`, `{job.version}`, `{job.user}`, `{job.attempt}`,
//! `{command.id}`, `{command.name}`, `{cluster.id}`, `{cluster.name}`, `{cluster.<context key>}`
//! (a text or number at the top of the cluster's context), `{handle.<key>}` (the plugin's step
//! handle). Values are percent-encoded into a link; an attribute whose placeholders are not all
//! known yet (no handle before the job is submitted) is left out; a link must come out as an
//! `http(s)://` URL.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Cluster, Command, Job};

/// What an attribute is: a link the UI opens, or a text it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttributeKind {
    Link,
    Text,
}

/// One attribute: a template in a command or cluster, rendered on a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobAttribute {
    pub kind: AttributeKind,
    pub value: String,
}

/// Templates by attribute name.
pub type JobAttributes = BTreeMap<String, JobAttribute>;

const NAMESPACES: [&str; 4] = ["job", "command", "cluster", "handle"];

/// What is wrong with `templates` (each problem prefixed with `label`).
pub fn problems(label: &str, templates: &JobAttributes) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, attribute) in templates {
        if name.trim().is_empty() || name.len() > 64 {
            problems.push(format!("{label}: field `job_attributes`: a name must be 1 to 64 characters; got `{name}`"));
        }
        match placeholders(&attribute.value) {
            Err(problem) => problems.push(format!("{label}: field `job_attributes.{name}`: {problem}")),
            Ok(found) => {
                if let Some(unknown) = found.iter().find(|p| !NAMESPACES.iter().any(|ns| p.split_once('.').is_some_and(|(n, key)| n == *ns && !key.is_empty()))) {
                    problems.push(format!(
                        "{label}: field `job_attributes.{name}`: unknown placeholder `{{{unknown}}}`; use job.*, command.*, cluster.* or handle.*"
                    ));
                }
            }
        }
        if attribute.kind == AttributeKind::Link && !(attribute.value.starts_with("https://") || attribute.value.starts_with("http://")) {
            problems.push(format!("{label}: field `job_attributes.{name}`: a link must start with https:// or http://"));
        }
    }
    problems
}

/// The `{…}` placeholders of `template`, or what is malformed.
fn placeholders(template: &str) -> Result<Vec<&str>, String> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after.find('}').ok_or_else(|| format!("`{{` at `{}` is not closed", &rest[start..]))?;
        found.push(&after[..end]);
        rest = &after[end + 1..];
    }
    if rest.contains('}') {
        return Err("a `}` closes no placeholder".into());
    }
    Ok(found)
}

/// The attributes of `job` from the templates of its `command` and `cluster` (the cluster's win
/// on a shared name), those not renderable yet left out.
pub fn render(job: &Job, command: &Command, cluster: &Cluster, command_templates: &JobAttributes, cluster_templates: &JobAttributes) -> JobAttributes {
    command_templates
        .iter()
        .chain(cluster_templates)
        .filter_map(|(name, template)| {
            let value = fill(&template.value, template.kind, |placeholder| lookup(placeholder, job, command, cluster))?;
            Some((name.clone(), JobAttribute { kind: template.kind, value }))
        })
        .collect()
}

fn lookup(placeholder: &str, job: &Job, command: &Command, cluster: &Cluster) -> Option<String> {
    let (namespace, key) = placeholder.split_once('.')?;
    let scalar = |value: &Value| match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    };
    match (namespace, key) {
        ("job", "id") => Some(job.id.to_string()),
        ("job", "name") => Some(job.name.clone()),
        ("job", "version") => Some(job.version.clone()),
        ("job", "user") => Some(job.user.clone()),
        ("job", "attempt") => Some(job.attempt.to_string()),
        ("command", "id") => Some(command.id.clone()),
        ("command", "name") => Some(command.name.clone()),
        ("cluster", "id") => Some(cluster.id.clone()),
        ("cluster", "name") => Some(cluster.name.clone()),
        ("cluster", key) => cluster.context.get(key).and_then(scalar),
        ("handle", key) => job.plugin_handle.as_ref()?.get(key).and_then(scalar),
        _ => None,
    }
}

/// `template` with each placeholder replaced (percent-encoded in a link); `None` when one is
/// unknown, or a link does not come out as an http(s) URL.
fn fill(template: &str, kind: AttributeKind, lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('}')?;
        let value = lookup(&after[..end])?;
        match kind {
            AttributeKind::Link => out.push_str(&percent_encode(&value)),
            AttributeKind::Text => out.push_str(&value),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    (kind == AttributeKind::Text || out.starts_with("https://") || out.starts_with("http://")).then_some(out)
}

/// Everything but RFC 3986's unreserved characters, percent-encoded: a value cannot add a
/// path, a query or another scheme to a link.
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::JobRequest;

    fn fixture() -> (Job, Command, Cluster) {
        let text = "commands:\n  - {name: etl, version: '1', plugin: spark}\nclusters:\n  - {name: emr-prod, version: '1', context: {region: eu-west-1, port: 18080}}\n";
        let config = Config::parse(text, "t").unwrap();
        let request: JobRequest = serde_json::from_value(serde_json::json!({"name": "daily report", "version": "1", "command_criteria": ["x"]})).unwrap();
        let job = Job::from_request(request, "alice", 0);
        (job, config.commands[0].clone(), config.clusters[0].clone())
    }

    fn template(kind: AttributeKind, value: &str) -> JobAttributes {
        JobAttributes::from([("ui".to_owned(), JobAttribute { kind, value: value.to_owned() })])
    }

    #[test]
    fn a_link_renders_from_the_cluster_and_the_handle_once_the_handle_is_known() {
        let (mut job, command, cluster) = fixture();
        let links = template(AttributeKind::Link, "https://{cluster.region}.console.aws.amazon.com/emr/vc/{handle.virtual_cluster_id}/runs/{handle.job_run_id}?name={job.name}");
        assert!(render(&job, &command, &cluster, &links, &JobAttributes::new()).is_empty(), "no handle yet: left out");
        job.plugin_handle = Some(serde_json::json!({"virtual_cluster_id": "vc-1", "job_run_id": "jr/2"}));
        let rendered = render(&job, &command, &cluster, &links, &JobAttributes::new());
        assert_eq!(rendered["ui"].value, "https://eu-west-1.console.aws.amazon.com/emr/vc/vc-1/runs/jr%2F2?name=daily%20report");
        let text = template(AttributeKind::Text, "port {cluster.port} of {cluster.name}");
        assert_eq!(render(&job, &command, &cluster, &JobAttributes::new(), &text)["ui"].value, "port 18080 of emr-prod");
    }

    #[test]
    fn bad_templates_are_named_and_a_value_cannot_turn_a_link_into_another_scheme() {
        let problems = problems("clusters[0]", &template(AttributeKind::Link, "javascript:{job.id"));
        assert!(problems.iter().any(|p| p.contains("is not closed")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("must start with https://")), "{problems:?}");
        let unknown = problems_of("https://x/{secret.key}");
        assert!(unknown[0].contains("unknown placeholder `{secret.key}`"), "{unknown:?}");
        let (mut job, command, cluster) = fixture();
        job.plugin_handle = Some(serde_json::json!({"host": "javascript:alert(1)//"}));
        let rendered = render(&job, &command, &cluster, &template(AttributeKind::Link, "https://{handle.host}"), &JobAttributes::new());
        assert_eq!(rendered["ui"].value, "https://javascript%3Aalert%281%29%2F%2F");
    }

    fn problems_of(value: &str) -> Vec<String> {
        problems("c", &template(AttributeKind::Link, value))
    }
}
