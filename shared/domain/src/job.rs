use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::job_id::JobId;
use crate::job_status::JobStatus;

/// What a client submits (`POST /api/v1/job`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "ping-test", "version": "0.0.1", "context": {},
    "command_criteria": ["type:ping"], "cluster_criteria": ["type:localhost"]
}))]
pub struct JobRequest {
    /// A name for the job, e.g. `daily-report`.
    pub name: String,
    /// The job's version, e.g. `0.0.1`.
    pub version: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Plugin input (e.g. `{"arguments": ["-n", "3"]}` for shell). An object.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub context: Value,
    /// Tags the command must carry, e.g. `["type:ping"]`.
    pub command_criteria: Vec<String>,
    /// Tags the cluster must carry, e.g. `["type:localhost"]`; or alternatives tried in order,
    /// e.g. `[["tier:prod", "region:us"], ["tier:prod"]]` (the first that matches wins).
    #[serde(default)]
    pub cluster_criteria: ClusterCriteria,
    /// Run inside the call (`true`) or queued (`false`); default: the command's mode.
    #[serde(default)]
    pub is_sync: Option<bool>,
    /// Heimdall's flag to store a sync job's result; results are always stored here.
    #[serde(default)]
    pub store_result_sync: bool,
}

/// A job's `cluster_criteria` as sent: one list of tags (Heimdall's form), or alternatives
/// tried in order, as Genie's cluster criteria are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ClusterCriteria {
    #[schema(example = json!(["type:localhost"]))]
    Tags(Vec<String>),
    #[schema(example = json!([["tier:prod", "region:us"], ["tier:prod"]]))]
    Alternatives(Vec<Vec<String>>),
}

/// Most alternatives a `cluster_criteria` may list.
pub const MAX_CRITERIA_ALTERNATIVES: usize = 8;

impl Default for ClusterCriteria {
    fn default() -> Self {
        ClusterCriteria::Tags(Vec::new())
    }
}

impl From<Vec<String>> for ClusterCriteria {
    fn from(tags: Vec<String>) -> Self {
        ClusterCriteria::Tags(tags)
    }
}

impl ClusterCriteria {
    /// The lists of tags to try, in order (one for a plain list).
    pub fn alternatives(&self) -> Vec<&[String]> {
        match self {
            ClusterCriteria::Tags(tags) => vec![tags.as_slice()],
            ClusterCriteria::Alternatives(lists) if lists.is_empty() => vec![&[]],
            ClusterCriteria::Alternatives(lists) => lists.iter().map(Vec::as_slice).collect(),
        }
    }
}

impl<'de> Deserialize<'de> for ClusterCriteria {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let shape = || {
            serde::de::Error::custom(
                "cluster_criteria must be a list of tags, e.g. [\"type:localhost\"], or a list of such lists tried in order, e.g. [[\"tier:prod\", \"region:us\"], [\"tier:prod\"]]",
            )
        };
        let Value::Array(items) = value else { return Err(shape()) };
        if items.iter().all(Value::is_string) {
            return Ok(ClusterCriteria::Tags(items.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()));
        }
        let lists = items
            .into_iter()
            .map(|item| match item {
                Value::Array(tags) if tags.iter().all(Value::is_string) => Ok(tags.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()),
                _ => Err(shape()),
            })
            .collect::<Result<Vec<Vec<String>>, _>>()?;
        Ok(ClusterCriteria::Alternatives(lists))
    }
}

fn first_attempt() -> u32 {
    1
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

// One set of limits for every store: what SQLite holds, a DynamoDB item (400 KB, string sets
// without duplicates) holds too, so a client's mistake is the same 400 on both runtimes.
pub const MAX_NAME_LENGTH: usize = 255;
/// A job's context, as JSON, is at most this large: the job record must fit a DynamoDB item
/// (400 KB) with room for the rest, and state machine payloads carry no context anyway.
pub const MAX_CONTEXT_BYTES: usize = 256 * 1024;
pub const MAX_TAGS: usize = 64;
pub const MAX_DESCRIPTION_LENGTH: usize = 4096;
/// The whole job record as JSON (context, tags, criteria, error, …): under a DynamoDB item's
/// 400 KB with room for the item's index attributes.
pub const MAX_JOB_BYTES: usize = 300 * 1024;
/// A job's `error` is cut to this many bytes (a plugin may quote a whole remote answer).
pub const MAX_ERROR_BYTES: usize = 8 * 1024;
/// The most any job store keeps of a result (JSON) in the job's record, written by the change
/// that ends the job instead of as an artifact (each store says how much it keeps:
/// `JobStore::recorded_result_limit`). The record stays under a DynamoDB item's 400 KB beside
/// `MAX_JOB_BYTES`.
pub const MAX_RECORDED_RESULT_BYTES: usize = 32 * 1024;

impl JobRequest {
    /// The request with repeated tags and criteria dropped (first occurrence kept): a tag set
    /// means the same with a tag once or twice, and DynamoDB string sets refuse duplicates.
    pub fn normalized(mut self) -> Self {
        for list in [&mut self.tags, &mut self.command_criteria] {
            dedupe(list);
        }
        match &mut self.cluster_criteria {
            ClusterCriteria::Tags(tags) => dedupe(tags),
            ClusterCriteria::Alternatives(lists) => lists.iter_mut().for_each(dedupe),
        }
        self
    }

    /// Checks what needs no catalog: non-empty names, well-formed tags, an object context,
    /// every length within the limits above.
    pub fn validate(&self) -> Result<(), String> {
        check_text("name", &self.name)?;
        check_text("version", &self.version)?;
        let description_length = self.description.as_deref().map_or(0, |d| d.chars().count());
        if description_length > MAX_DESCRIPTION_LENGTH {
            return Err(format!("description is {description_length} characters; at most {MAX_DESCRIPTION_LENGTH} are allowed"));
        }
        if self.command_criteria.is_empty() {
            return Err(
                "command_criteria must name at least one tag, e.g. [\"type:ping\"]".to_owned()
            );
        }
        check_tags("command_criteria", &self.command_criteria)?;
        match &self.cluster_criteria {
            ClusterCriteria::Tags(tags) => check_tags("cluster_criteria", tags)?,
            ClusterCriteria::Alternatives(lists) => {
                if lists.len() > MAX_CRITERIA_ALTERNATIVES {
                    return Err(format!("cluster_criteria lists {} alternatives; at most {MAX_CRITERIA_ALTERNATIVES} are allowed", lists.len()));
                }
                for (index, tags) in lists.iter().enumerate() {
                    check_tags(&format!("cluster_criteria[{index}]"), tags)?;
                }
            }
        }
        check_tags("tags", &self.tags)?;
        if !self.context.is_object() {
            return Err(format!(
                "context must be a JSON object, e.g. {{}}; got {}",
                json_kind(&self.context)
            ));
        }
        let size = self.context.to_string().len();
        if size > MAX_CONTEXT_BYTES {
            return Err(format!(
                "context is {size} bytes of JSON; at most {MAX_CONTEXT_BYTES} are allowed (pass large inputs by reference, e.g. an S3 URI)"
            ));
        }
        Ok(())
    }
}

/// Drops repeated entries, keeping the first of each in its place.
pub fn dedupe<T: Eq + std::hash::Hash + Clone>(list: &mut Vec<T>) {
    let mut seen = std::collections::HashSet::new();
    list.retain(|item| seen.insert(item.clone()));
}

/// A job's error as every store keeps it: cut to [`MAX_ERROR_BYTES`], saying it was cut.
pub fn bounded_error(message: impl Into<String>) -> String {
    truncate_text(message.into(), MAX_ERROR_BYTES)
}

/// `text` cut to at most `max` bytes on a character boundary, saying it was cut.
fn truncate_text(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub(20);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (cut at {max} bytes)", &text[..end])
}

fn check_text(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if value.chars().count() > MAX_NAME_LENGTH {
        return Err(format!("{field} is longer than {MAX_NAME_LENGTH} characters"));
    }
    Ok(())
}

fn check_tags(field: &str, tags: &[String]) -> Result<(), String> {
    if tags.len() > MAX_TAGS {
        return Err(format!("{field} has {} tags; at most {MAX_TAGS} are allowed", tags.len()));
    }
    match tags.iter().position(|tag| tag.trim().is_empty() || tag.chars().count() > MAX_NAME_LENGTH) {
        Some(index) => Err(format!(
            "{field}[{index}] must be a non-empty tag of at most {MAX_NAME_LENGTH} characters, e.g. \"type:ping\""
        )),
        None => Ok(()),
    }
}

/// The JSON type name of a value, for error messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A job as stored and answered (`GET /api/v1/job/{id}`). Times are Unix epoch seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    #[schema(value_type = String, format = Uuid)]
    pub id: JobId,
    pub name: String,
    pub version: String,
    pub description: String,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub context: Value,
    pub user: String,
    pub command_criteria: Vec<String>,
    /// The cluster tags routing used: the alternative that matched when several were sent.
    /// Left out when none (as Heimdall answers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_criteria: Vec<String>,
    /// The alternatives sent, in order, when `cluster_criteria` was a list of lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_criteria_alternatives: Vec<Vec<String>>,
    pub is_sync: bool,
    pub store_result_sync: bool,
    pub status: JobStatus,
    /// Why the job failed or was canceled.
    pub error: Option<String>,
    /// The exit code of a process the job ran (shell), when it ran one.
    pub exit_code: Option<i32>,
    pub command_id: Option<String>,
    pub command_name: Option<String>,
    pub cluster_id: Option<String>,
    pub cluster_name: Option<String>,
    pub canceled_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// When the process running the job last said it is alive (every few seconds while it
    /// runs in a process that can: `heimdall serve`, a sync job in a function). A janitor fails
    /// a job whose heartbeat stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_at: Option<i64>,
    /// When a step started the job's work in its own process (a shell job on AWS), claimed
    /// once: a step retried after a crash finds it set and never starts the work again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_started_at: Option<i64>,
    /// The attempt running or last run, 1-based (a command's `retry` may run a job again).
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// Every attempt that ended, oldest first (the last one included once the job ended).
    #[serde(default)]
    pub attempts: Vec<crate::retry::Attempt>,
    /// When the current attempt (the second or a later one) starts, or started: while it lies
    /// ahead, the job waits for its retry, still RUNNING.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_started_at: Option<i64>,
    /// The plugin's reference to work running elsewhere (a Snowflake statement handle, an EMR
    /// job run), kept so a cancel can reach it. Never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub plugin_handle: Option<Value>,
    /// Links shown with the job (Heimdall's `job_attributes`): rendered from its command's and
    /// cluster's templates when the job is answered, never stored.
    #[serde(default, skip_serializing_if = "crate::job_attributes::JobAttributes::is_empty", skip_deserializing)]
    pub job_attributes: crate::job_attributes::JobAttributes,
    /// What the job cost on AWS at list prices, in US dollars (API Gateway and Lambda requests,
    /// Lambda GB-seconds, DynamoDB write and read units with every index copy, S3 and SQS
    /// requests), metered by the functions that ran it and recorded with its end. Set for sync
    /// jobs on AWS; absent under `heimdall serve` and, for now, for async jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl Job {
    /// The last time anything showed the job alive: its heartbeat, its start, its last change,
    /// the start of its current attempt (in the future while it waits for a retry).
    pub fn last_sign_of_life(&self) -> i64 {
        [self.heartbeat_at, self.started_at, Some(self.updated_at), self.attempt_started_at].into_iter().flatten().max().unwrap_or(self.created_at)
    }

    /// Whether the job is between attempts: RUNNING, a retry set up, its work not begun.
    pub fn waits_for_retry(&self) -> bool {
        self.status == JobStatus::Running && self.attempt_started_at.is_some() && self.work_started_at.is_none()
    }

    /// The current attempt as it ended at `at`, `status`, with `error` and `exit_code`.
    pub fn attempt_record(&self, at: i64, status: JobStatus, error: Option<String>, exit_code: Option<i32>) -> crate::retry::Attempt {
        crate::retry::Attempt {
            attempt: self.attempt,
            cluster_id: self.cluster_id.clone(),
            cluster_name: self.cluster_name.clone(),
            started_at: self.attempt_started_at.or(self.started_at),
            finished_at: at,
            status,
            error,
            exit_code,
        }
    }

    /// Whether the whole record fits every store ([`MAX_JOB_BYTES`] of JSON).
    pub fn check_size(&self) -> Result<(), String> {
        let size = serde_json::to_vec(self).map(|bytes| bytes.len()).unwrap_or(usize::MAX);
        if size > MAX_JOB_BYTES {
            return Err(format!(
                "the job is {size} bytes of JSON with its tags, criteria and context; at most {MAX_JOB_BYTES} are allowed (pass large inputs by reference, e.g. an S3 URI)"
            ));
        }
        Ok(())
    }

    /// A new job record for `request`, submitted by `user`, not yet matched or stored.
    pub fn from_request(request: JobRequest, user: &str, now: i64) -> Self {
        Self {
            id: JobId::new(),
            name: request.name,
            version: request.version,
            description: request.description.unwrap_or_default(),
            tags: request.tags,
            context: request.context,
            user: user.to_owned(),
            command_criteria: request.command_criteria,
            cluster_criteria: request.cluster_criteria.alternatives()[0].to_vec(),
            cluster_criteria_alternatives: match request.cluster_criteria {
                ClusterCriteria::Alternatives(lists) => lists,
                ClusterCriteria::Tags(_) => Vec::new(),
            },
            is_sync: request.is_sync.unwrap_or(false),
            store_result_sync: request.store_result_sync,
            status: JobStatus::New,
            error: None,
            exit_code: None,
            command_id: None,
            command_name: None,
            cluster_id: None,
            cluster_name: None,
            canceled_by: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
            heartbeat_at: None,
            work_started_at: None,
            attempt: 1,
            attempts: Vec::new(),
            attempt_started_at: None,
            plugin_handle: None,
            job_attributes: Default::default(),
            cost_usd: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: Value) -> Result<JobRequest, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn repeated_tags_and_criteria_are_kept_once_in_order() {
        let request = request(serde_json::json!({
            "name": "a", "version": "1", "command_criteria": ["t:x", "t:y", "t:x"], "tags": ["b", "a", "b", "b"]
        }))
        .unwrap()
        .normalized();
        assert_eq!(request.command_criteria, ["t:x", "t:y"]);
        assert_eq!(request.tags, ["b", "a"]);
    }

    #[test]
    fn a_job_over_the_record_limit_is_refused_and_errors_are_cut() {
        let mut job = Job::from_request(request(serde_json::json!({"name": "a", "version": "1", "command_criteria": ["t:x"]})).unwrap(), "u", 0);
        assert!(job.check_size().is_ok());
        job.context = serde_json::json!({"a": "x".repeat(MAX_CONTEXT_BYTES), "b": "y".repeat(MAX_CONTEXT_BYTES)});
        assert!(job.check_size().unwrap_err().contains("at most"));
        let cut = bounded_error("é".repeat(10_000));
        assert!(cut.len() <= MAX_ERROR_BYTES + 30 && cut.ends_with("bytes)"), "{}", cut.len());
    }

    #[test]
    fn cluster_criteria_are_a_list_of_tags_or_alternatives_in_order() {
        let plain = request(serde_json::json!({"name": "a", "version": "1", "command_criteria": ["t:x"], "cluster_criteria": ["a:1", "a:1"]})).unwrap().normalized();
        assert_eq!(plain.cluster_criteria, ClusterCriteria::Tags(vec!["a:1".into()]));
        let ordered = request(serde_json::json!({"name": "a", "version": "1", "command_criteria": ["t:x"], "cluster_criteria": [["tier:prod", "region:us"], ["tier:prod"]]})).unwrap();
        assert_eq!(ordered.cluster_criteria.alternatives(), vec![&["tier:prod".to_owned(), "region:us".to_owned()][..], &["tier:prod".to_owned()][..]]);
        let job = Job::from_request(ordered.clone(), "u", 0);
        assert_eq!((job.cluster_criteria.len(), job.cluster_criteria_alternatives.len()), (2, 2));
        assert_eq!(serde_json::to_value(&ordered.cluster_criteria).unwrap(), serde_json::json!([["tier:prod", "region:us"], ["tier:prod"]]));
        for bad in [serde_json::json!("tier:prod"), serde_json::json!([["a"], "b"]), serde_json::json!([1])] {
            let error = request(serde_json::json!({"name": "a", "version": "1", "command_criteria": ["t:x"], "cluster_criteria": bad})).unwrap_err();
            assert!(error.to_string().contains("cluster_criteria must be a list of tags"), "{error}");
        }
        let too_many = request(serde_json::json!({"name": "a", "version": "1", "command_criteria": ["t:x"], "cluster_criteria": vec![vec!["a"]; 9]})).unwrap();
        assert!(too_many.validate().unwrap_err().contains("at most 8"));
    }

    #[test]
    fn the_readme_ping_request_is_valid() {
        let request = request(serde_json::json!({
            "name": "ping-test", "version": "0.0.1", "context": {},
            "command_criteria": ["type:ping"], "cluster_criteria": ["type:localhost"]
        }))
        .unwrap();
        assert!(request.validate().is_ok());
        assert_eq!(request.is_sync, None);
    }

    #[test]
    fn a_missing_command_criteria_is_a_parse_error_that_names_it() {
        let error = request(serde_json::json!({"name": "a", "version": "1"})).unwrap_err();
        assert!(error.to_string().contains("command_criteria"), "{error}");
    }

    #[test]
    fn an_unknown_field_is_rejected_by_name() {
        let error = request(serde_json::json!({
            "name": "a", "version": "1", "command_criteria": ["x"], "comand": 1
        }))
        .unwrap_err();
        assert!(error.to_string().contains("comand"), "{error}");
    }

    #[test]
    fn empty_criteria_blank_names_and_non_object_context_are_rejected() {
        let base = serde_json::json!({"name": "a", "version": "1", "command_criteria": ["t:x"]});
        let cases = [
            ("command_criteria", serde_json::json!([])),
            ("name", serde_json::json!("  ")),
            ("context", serde_json::json!([1])),
            ("cluster_criteria", serde_json::json!([""])),
            ("context", serde_json::json!({"blob": "x".repeat(MAX_CONTEXT_BYTES)})),
            ("description", serde_json::json!("d".repeat(MAX_DESCRIPTION_LENGTH + 1))),
            ("tags", serde_json::json!(vec!["t:x"; MAX_TAGS + 1].iter().enumerate().map(|(i, t)| format!("{t}{i}")).collect::<Vec<_>>())),
        ];
        for (field, value) in cases {
            let mut json = base.clone();
            json[field] = value;
            let message = request(json).unwrap().validate().unwrap_err();
            assert!(message.starts_with(field), "{field}: {message}");
        }
    }
}
