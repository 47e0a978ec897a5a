//! Triggers: jobs submitted by something other than a client. A trigger names its source and a
//! job template whose strings may hold `${...}` placeholders filled from the event:
//!
//! ```yaml
//! triggers:
//!   - name: nightly-report
//!     schedule: "0 2 * * *"          # cron, UTC (seconds optional)
//!     user: scheduler                 # the job's user (default `heimdall`)
//!     job:
//!       name: nightly-report
//!       version: "1"
//!       command_criteria: [type:shell]
//!       context: {arguments: ["${schedule.time}"]}
//! ```
//! Sources today: `schedule`. Each source offers its placeholders (a schedule:
//! `schedule.time`, RFC 3339 UTC; every source: `trigger.name`); any other placeholder is a
//! config error naming the trigger and where it stands.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::job::JobRequest;

/// A trigger as configured.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    pub name: String,
    /// A cron expression (UTC): the trigger fires at each of its times.
    pub schedule: Option<String>,
    /// Who the submitted jobs belong to.
    #[serde(default = "default_user")]
    pub user: String,
    /// The job request, with `${...}` placeholders in its strings.
    pub job: Value,
}

fn default_user() -> String {
    "heimdall".to_owned()
}

/// The placeholders a schedule fills.
pub const SCHEDULE_PLACEHOLDERS: [&str; 2] = ["trigger.name", "schedule.time"];

impl Trigger {
    /// The placeholders this trigger's source fills.
    pub fn placeholders(&self) -> &'static [&'static str] {
        &SCHEDULE_PLACEHOLDERS
    }

    /// Checks the source and the template (every placeholder known, the request well formed).
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("field `name` must not be empty".into());
        }
        if self.schedule.as_deref().is_none_or(|s| s.trim().is_empty()) {
            return Err("field `schedule` must give a cron expression, e.g. \"0 2 * * *\" (the only source so far)".into());
        }
        let sample: BTreeMap<&str, String> = self.placeholders().iter().map(|p| (*p, "sample".to_owned())).collect();
        self.render(&sample).map(|_| ())
    }

    /// The job request with every placeholder replaced by `values`.
    pub fn render(&self, values: &BTreeMap<&str, String>) -> Result<JobRequest, String> {
        let filled = fill(&self.job, values, "job")?;
        let request: JobRequest = serde_json::from_value(filled).map_err(|error| format!("field `job`: {error}"))?;
        request.validate().map_err(|error| format!("field `job`: {error}"))?;
        Ok(request)
    }
}

fn fill(value: &Value, values: &BTreeMap<&str, String>, at: &str) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) => Value::String(fill_text(text, values, at)?),
        Value::Array(items) => Value::Array(
            items.iter().enumerate().map(|(i, item)| fill(item, values, &format!("{at}[{i}]"))).collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), fill(v, values, &format!("{at}.{k}"))?))).collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn fill_text(text: &str, values: &BTreeMap<&str, String>, at: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| format!("`{at}`: `${{` without a closing `}}` in \"{text}\""))?;
        let name = after[..end].trim();
        let value = values.get(name).ok_or_else(|| {
            format!(
                "`{at}`: unknown placeholder `${{{name}}}`; this trigger offers {}",
                values.keys().map(|k| format!("${{{k}}}")).collect::<Vec<_>>().join(", ")
            )
        })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn trigger(job: Value) -> Trigger {
        Trigger { name: "nightly".into(), schedule: Some("0 2 * * *".into()), user: "scheduler".into(), job }
    }

    fn values() -> BTreeMap<&'static str, String> {
        BTreeMap::from([("trigger.name", "nightly".to_owned()), ("schedule.time", "2026-11-25T02:00:00Z".to_owned())])
    }

    #[test]
    fn placeholders_are_filled_anywhere_in_the_template() {
        let request = trigger(json!({
            "name": "${trigger.name}-report", "version": "1", "command_criteria": ["type:shell"],
            "context": {"arguments": ["--day", "${schedule.time}"]}
        }))
        .render(&values())
        .unwrap();
        assert_eq!(request.name, "nightly-report");
        assert_eq!(request.context["arguments"][1], "2026-11-25T02:00:00Z");
    }

    #[test]
    fn an_unknown_placeholder_names_where_it_stands_and_what_is_offered() {
        let message = trigger(json!({"name": "x", "version": "1", "command_criteria": ["t:x"], "context": {"key": "${s3.key}"}}))
            .validate()
            .unwrap_err();
        assert!(message.contains("`job.context.key`: unknown placeholder `${s3.key}`"), "{message}");
        assert!(message.contains("${schedule.time}"), "{message}");
    }

    #[test]
    fn an_unclosed_placeholder_and_a_malformed_job_are_refused() {
        let unclosed = trigger(json!({"name": "${trigger.name", "version": "1", "command_criteria": ["t:x"]}));
        assert!(unclosed.validate().unwrap_err().contains("without a closing"));
        let no_criteria = trigger(json!({"name": "x", "version": "1"}));
        assert!(no_criteria.validate().unwrap_err().contains("command_criteria"));
    }

    #[test]
    fn a_trigger_without_a_source_says_which_to_give() {
        let mut no_source = trigger(json!({"name": "x", "version": "1", "command_criteria": ["t:x"]}));
        no_source.schedule = None;
        assert!(no_source.validate().unwrap_err().contains("`schedule`"));
    }
}
