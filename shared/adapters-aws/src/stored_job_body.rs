//! The `body` attribute of a job's item: the job as JSON, less what the item's own attributes
//! already hold (id, name, version, user, status, command and cluster ids and names), its
//! system tags (derived from id, name and version) and its null fields.
//!
//! Why: DynamoDB bills a write per KB of item, and five indexes project the whole item, so a
//! byte in the item is written six to eight times per job write. The fields left out were each
//! stored twice; without them a typical small job's item fits in 1 KB instead of 2.
//!
//! Items written before this form have the whole job in `body` (with `id`); they read as before.

use heimdall_domain::Job;
use heimdall_domain::tags::{is_system_tag, system_tags};
use serde_json::{Map, Value};

/// Top-level fields of a job that the item holds as attributes of the same name.
pub(crate) const FIELDS_IN_ATTRIBUTES: [&str; 9] =
    ["id", "name", "version", "user", "status", "command_id", "command_name", "cluster_id", "cluster_name"];

/// The job's tags other than its system tags, under this key when the system tags were left
/// out (they are appended again on reading, as submit appends them).
const USER_TAGS: &str = "user_tags";

/// The body to store for `job`.
pub(crate) fn stored_body(job: &Job) -> Result<String, serde_json::Error> {
    let Value::Object(mut fields) = serde_json::to_value(job)? else {
        unreachable!("a job serializes to a JSON object")
    };
    for field in FIELDS_IN_ATTRIBUTES {
        fields.remove(field);
    }
    let system = system_tags(&job.id.to_string(), &job.name, &job.version);
    if job.tags.ends_with(&system) {
        let user_tags: Vec<Value> = job.tags.iter().filter(|tag| !is_system_tag(tag)).cloned().map(Value::String).collect();
        if user_tags.len() + system.len() == job.tags.len() {
            fields.remove("tags");
            fields.insert(USER_TAGS.to_owned(), Value::Array(user_tags));
        }
    }
    drop_nulls(&mut fields);
    if let Some(Value::Array(attempts)) = fields.get_mut("attempts") {
        for attempt in attempts {
            if let Value::Object(attempt) = attempt {
                drop_nulls(attempt);
            }
        }
    }
    serde_json::to_string(&fields)
}

/// The job from a stored `body` and the item's string attributes (`attribute(name)`).
pub(crate) fn job_from_stored(body: &str, attribute: impl Fn(&str) -> Option<String>) -> Result<Job, String> {
    let mut fields: Map<String, Value> = serde_json::from_str(body).map_err(|error| error.to_string())?;
    // The whole job (the form before this one) has its id.
    if !fields.contains_key("id") {
        for field in FIELDS_IN_ATTRIBUTES {
            if let Some(value) = attribute(field) {
                fields.insert(field.to_owned(), Value::String(value));
            }
        }
        if let Some(Value::Array(mut tags)) = fields.remove(USER_TAGS) {
            let text = |field: &str| fields.get(field).and_then(Value::as_str).unwrap_or_default().to_owned();
            tags.extend(system_tags(&text("id"), &text("name"), &text("version")).into_iter().map(Value::String));
            fields.insert("tags".to_owned(), Value::Array(tags));
        }
    }
    serde_json::from_value(Value::Object(fields)).map_err(|error| error.to_string())
}

fn drop_nulls(fields: &mut Map<String, Value>) {
    fields.retain(|_, value| !value.is_null());
}

#[cfg(test)]
mod tests {
    use super::*;
    use heimdall_domain::{JobRequest, JobStatus};
    use serde_json::json;

    fn attributes_of(job: &Job) -> impl Fn(&str) -> Option<String> {
        let whole = serde_json::to_value(job).unwrap();
        move |name| whole.get(name).and_then(Value::as_str).map(str::to_owned)
    }

    fn submitted(tags: &[&str]) -> Job {
        let request: JobRequest = serde_json::from_value(json!({"name": "nightly", "version": "2", "command_criteria": ["type:ping"], "tags": tags})).unwrap();
        let mut job = Job::from_request(request, "alice", 1_700_000_000);
        job.tags.extend(system_tags(&job.id.to_string(), &job.name, &job.version));
        job.status = JobStatus::Succeeded;
        job.command_id = Some("ping-1".into());
        job
    }

    #[test]
    fn a_job_reads_back_whole_from_its_smaller_body_and_its_attributes() {
        let job = submitted(&["team:data", "x"]);
        let body = stored_body(&job).unwrap();
        assert!(!body.contains("\"id\"") && !body.contains("_name:") && !body.contains("null"), "{body}");
        assert!(body.len() < serde_json::to_string(&job).unwrap().len() * 3 / 4, "{body}");
        assert_eq!(job_from_stored(&body, attributes_of(&job)).unwrap(), job);
    }

    #[test]
    fn tags_not_ending_with_the_system_tags_are_kept_as_they_are() {
        let mut job = submitted(&["team:data"]);
        job.tags.rotate_left(1);
        let body = stored_body(&job).unwrap();
        assert_eq!(job_from_stored(&body, attributes_of(&job)).unwrap(), job);
    }

    #[test]
    fn a_body_of_the_earlier_form_the_whole_job_reads_as_it_is() {
        let job = submitted(&[]);
        let whole = serde_json::to_string(&job).unwrap();
        assert_eq!(job_from_stored(&whole, |_| Some("ignored".into())).unwrap(), job);
    }
}
