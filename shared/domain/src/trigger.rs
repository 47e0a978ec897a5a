//! Triggers: jobs submitted by something other than a client. A trigger names one source and a
//! job template whose strings may hold `${...}` placeholders filled from the event:
//!
//! ```yaml
//! triggers:
//!   - name: nightly-report
//!     schedule: "0 2 * * *"          # cron (UTC, seconds optional) or rate(15 minutes)
//!     user: scheduler                 # the job's user (default `heimdall`)
//!     job:
//!       name: nightly-report
//!       version: "1"
//!       command_criteria: [type:shell]
//!       context: {arguments: ["${schedule.time}"]}
//!   - name: load-landed-file
//!     s3: {bucket: landing, prefix: "in/", suffix: ".csv"}   # object created
//!     job: {name: load, version: "1", command_criteria: [type:shell],
//!           context: {arguments: ["s3://${s3.bucket}/${s3.key}"]}}
//!   - name: on-glue-run-failed
//!     event_pattern: {source: [aws.glue], detail: {state: [FAILED]}}   # any EventBridge event
//!     job: {name: page, version: "1", command_criteria: [type:shell],
//!           context: {arguments: ["${detail.jobName}"]}}
//! ```
//! Each source offers its placeholders (every source: `trigger.name`; any other placeholder is
//! a config error naming the trigger and where it stands). One event submits at most one job
//! per trigger, however often it is delivered: the job id is derived from the trigger and the
//! event id, and stores refuse a second job with the same id.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::SecondsFormat;
use croner::Cron;
use serde::Deserialize;
use serde_json::Value;

use crate::event_pattern;
use crate::job::JobRequest;
use crate::job_id::JobId;
use crate::trigger_event::{BusEvent, TriggerEvent};

/// A trigger as configured.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    pub name: String,
    /// A cron expression (UTC) or `rate(N minutes|hours|days)`: the trigger fires at each time.
    pub schedule: Option<String>,
    /// An object created in an S3 bucket (locally: a file in the watch folder of that bucket).
    pub s3: Option<S3Source>,
    /// Any EventBridge event matching this pattern.
    pub event_pattern: Option<Value>,
    /// Who the submitted jobs belong to.
    #[serde(default = "default_user")]
    pub user: String,
    /// The job request, with `${...}` placeholders in its strings.
    pub job: Value,
}

/// The objects an `s3` trigger answers: created in `bucket`, keys with this prefix and suffix.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Source {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub suffix: String,
}

/// Where a trigger's events come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TriggerSource<'a> {
    Schedule(&'a str),
    S3(&'a S3Source),
    EventPattern(&'a Value),
}

/// A parsed `schedule`.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// A cron expression (5 or 6 fields), parsed.
    Cron(Box<Cron>),
    /// Every so often, counted from when the scheduler starts.
    Rate(Duration),
}

/// A job a trigger submits for an event.
#[derive(Debug, Clone)]
pub struct TriggeredJob {
    /// Derived from the trigger and the event: the same event gives the same id.
    pub job_id: JobId,
    pub event_id: String,
    pub request: JobRequest,
}

fn default_user() -> String {
    "heimdall".to_owned()
}

const SCHEDULE_PLACEHOLDERS: &[&str] = &["trigger.name", "schedule.time"];
const S3_PLACEHOLDERS: &[&str] = &["trigger.name", "event.id", "event.time", "s3.bucket", "s3.key", "s3.size"];
const EVENT_PLACEHOLDERS: &[&str] =
    &["trigger.name", "event.id", "event.time", "event.source", "event.detail-type", "event.account", "event.region"];
/// An `event_pattern` trigger may also name any field of the event's detail: `${detail.a.b}`.
const DETAIL_PREFIX: &str = "detail.";

impl Trigger {
    /// The one source this trigger names.
    pub fn source(&self) -> Result<TriggerSource<'_>, String> {
        match (&self.schedule, &self.s3, &self.event_pattern) {
            (Some(schedule), None, None) => Ok(TriggerSource::Schedule(schedule)),
            (None, Some(s3), None) => Ok(TriggerSource::S3(s3)),
            (None, None, Some(pattern)) => Ok(TriggerSource::EventPattern(pattern)),
            (None, None, None) => Err("give a source: `schedule` (cron or rate), `s3` ({bucket, prefix, suffix}) or `event_pattern`".into()),
            _ => Err("give exactly one source of `schedule`, `s3` and `event_pattern`".into()),
        }
    }

    /// Checks the source and the template (every placeholder known, the request well formed).
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("field `name` must not be empty".into());
        }
        match self.source()? {
            TriggerSource::Schedule(expression) => drop(parse_schedule(expression)?),
            TriggerSource::S3(s3) if s3.bucket.trim().is_empty() => return Err("field `s3.bucket` must name a bucket".into()),
            TriggerSource::S3(_) => {}
            TriggerSource::EventPattern(pattern) => event_pattern::validate(pattern)?,
        }
        self.render(&|name| {
            self.offers(name).then(|| "sample".to_owned())
        })
        .map(|_| ())
    }

    /// The job this trigger submits for `event`: `None` when the event is not for this
    /// trigger, an error when it is but the template cannot be filled from it.
    pub fn job_for(&self, event: &TriggerEvent) -> Option<Result<TriggeredJob, String>> {
        let (event_id, time, values) = match event {
            TriggerEvent::Scheduled { trigger, time } => {
                if *trigger != self.name || self.schedule.is_none() {
                    return None;
                }
                let time_text = time.to_rfc3339_opts(SecondsFormat::Secs, true);
                (time_text.clone(), *time, BTreeMap::from([("schedule.time", time_text)]))
            }
            TriggerEvent::Event(event) => (event.id.clone(), event.time, self.event_values(event)?),
        };
        let rendered = self.render(&|name| match name {
            "trigger.name" => Some(self.name.clone()),
            _ if name.starts_with(DETAIL_PREFIX) && self.offers_detail() => match event {
                TriggerEvent::Event(event) => detail_field(&event.body, &name[DETAIL_PREFIX.len()..]),
                TriggerEvent::Scheduled { .. } => None,
            },
            _ => values.get(name).cloned(),
        });
        let job_id = JobId::derived(time.timestamp_millis().max(0) as u64, &format!("{}\n{event_id}", self.name));
        Some(rendered.map(|request| TriggeredJob { job_id, event_id, request }))
    }

    /// The placeholders of an event this trigger answers, or `None`.
    fn event_values(&self, event: &BusEvent) -> Option<BTreeMap<&'static str, String>> {
        let common = [("event.id", event.id.clone()), ("event.time", event.time.to_rfc3339_opts(SecondsFormat::Secs, true))];
        let text = |field: &str| event.body.get(field).and_then(Value::as_str).unwrap_or_default().to_owned();
        match self.source().ok()? {
            TriggerSource::S3(s3) => {
                let (bucket, key, size) = event.created_object()?;
                if bucket != s3.bucket || !key.starts_with(&s3.prefix) || !key.ends_with(&s3.suffix) {
                    return None;
                }
                let object = [("s3.bucket", bucket.to_owned()), ("s3.key", key.to_owned()), ("s3.size", size.unwrap_or(0).to_string())];
                Some(common.into_iter().chain(object).collect())
            }
            TriggerSource::EventPattern(pattern) => {
                if !event_pattern::matches(pattern, &event.body) {
                    return None;
                }
                let fields = [
                    ("event.source", text("source")),
                    ("event.detail-type", text("detail-type")),
                    ("event.account", text("account")),
                    ("event.region", text("region")),
                ];
                Some(common.into_iter().chain(fields).collect())
            }
            TriggerSource::Schedule(_) => None,
        }
    }

    fn placeholders(&self) -> &'static [&'static str] {
        match (&self.schedule, &self.s3) {
            (Some(_), _) => SCHEDULE_PLACEHOLDERS,
            (None, Some(_)) => S3_PLACEHOLDERS,
            (None, None) => EVENT_PLACEHOLDERS,
        }
    }

    fn offers_detail(&self) -> bool {
        self.event_pattern.is_some()
    }

    /// Whether `name` is a placeholder this trigger's source fills.
    fn offers(&self, name: &str) -> bool {
        self.placeholders().contains(&name) || (self.offers_detail() && name.starts_with(DETAIL_PREFIX))
    }

    /// The job request with every placeholder replaced by what `lookup` answers.
    fn render(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<JobRequest, String> {
        let offered = {
            let mut names: Vec<String> = self.placeholders().iter().map(|p| format!("${{{p}}}")).collect();
            if self.offers_detail() {
                names.push("${detail.<field>}".into());
            }
            names.join(", ")
        };
        let filled = fill(&self.job, &|name, at| {
            lookup(name).ok_or_else(|| {
                if self.offers(name) {
                    format!("`{at}`: the event has no `{name}`")
                } else {
                    format!("`{at}`: unknown placeholder `${{{name}}}`; this trigger offers {offered}")
                }
            })
        }, "job")?;
        let request: JobRequest = serde_json::from_value(filled).map_err(|error| format!("field `job`: {error}"))?;
        request.validate().map_err(|error| format!("field `job`: {error}"))?;
        Ok(request)
    }
}

/// Parses `rate(N unit)` or a cron expression.
pub fn parse_schedule(expression: &str) -> Result<Schedule, String> {
    let expression = expression.trim();
    if let Some(inner) = expression.strip_prefix("rate(").and_then(|rest| rest.strip_suffix(')')) {
        let bad = || format!("field `schedule`: `{expression}` is not a rate; write e.g. rate(15 minutes), rate(1 hour) or rate(2 days)");
        let (count, unit) = inner.trim().split_once(' ').ok_or_else(bad)?;
        let count: u64 = count.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
        let seconds = match unit.trim() {
            "minute" | "minutes" => 60,
            "hour" | "hours" => 3600,
            "day" | "days" => 86_400,
            _ => return Err(bad()),
        };
        return Ok(Schedule::Rate(Duration::from_secs(count * seconds)));
    }
    if expression.is_empty() {
        return Err("field `schedule` must give a cron expression (e.g. \"0 2 * * *\") or a rate (e.g. rate(15 minutes))".into());
    }
    let cron = Cron::from_str(expression)
        .map_err(|error| format!("field `schedule`: `{expression}` is not a cron expression: {error}"))?;
    Ok(Schedule::Cron(Box::new(cron)))
}

/// A field of the event's detail as text (objects and arrays as JSON).
fn detail_field(event: &Value, path: &str) -> Option<String> {
    let value = path.split('.').try_fold(event.get("detail")?, |value, part| value.get(part))?;
    Some(match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

type Lookup<'a> = &'a dyn Fn(&str, &str) -> Result<String, String>;

fn fill(value: &Value, lookup: Lookup<'_>, at: &str) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) => Value::String(fill_text(text, lookup, at)?),
        Value::Array(items) => Value::Array(
            items.iter().enumerate().map(|(i, item)| fill(item, lookup, &format!("{at}[{i}]"))).collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), fill(v, lookup, &format!("{at}.{k}"))?))).collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn fill_text(text: &str, lookup: Lookup<'_>, at: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| format!("`{at}`: `${{` without a closing `}}` in \"{text}\""))?;
        out.push_str(&lookup(after[..end].trim(), at)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;

    fn scheduled(job: Value) -> Trigger {
        Trigger { name: "nightly".into(), schedule: Some("0 2 * * *".into()), s3: None, event_pattern: None, user: "scheduler".into(), job }
    }

    fn on_s3(job: Value) -> Trigger {
        let s3 = S3Source { bucket: "landing".into(), prefix: "in/".into(), suffix: ".csv".into() };
        Trigger { name: "load".into(), schedule: None, s3: Some(s3), event_pattern: None, user: "loader".into(), job }
    }

    fn at_two() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 2, 0, 0).unwrap()
    }

    fn job_with_context(context: Value) -> Value {
        json!({"name": "${trigger.name}-job", "version": "1", "command_criteria": ["type:shell"], "context": context})
    }

    #[test]
    fn a_schedule_fills_its_time_anywhere_in_the_template() {
        let trigger = scheduled(job_with_context(json!({"arguments": ["--day", "${schedule.time}"]})));
        trigger.validate().unwrap();
        let event = TriggerEvent::Scheduled { trigger: "nightly".into(), time: at_two() };
        let job = trigger.job_for(&event).unwrap().unwrap();
        assert_eq!(job.request.name, "nightly-job");
        assert_eq!(job.request.context["arguments"][1], "2026-11-25T02:00:00Z");
        let other = TriggerEvent::Scheduled { trigger: "hourly".into(), time: at_two() };
        assert!(trigger.job_for(&other).is_none());
    }

    #[test]
    fn the_same_event_gives_the_same_job_id_and_another_event_another() {
        let trigger = on_s3(job_with_context(json!({"arguments": ["s3://${s3.bucket}/${s3.key}"]})));
        let first = BusEvent::object_created("e-1".into(), at_two(), "landing", "in/a.csv", 3);
        let job = trigger.job_for(&TriggerEvent::Event(first.clone())).unwrap().unwrap();
        let again = trigger.job_for(&TriggerEvent::Event(first)).unwrap().unwrap();
        assert_eq!(job.job_id, again.job_id);
        assert_eq!(job.request.context["arguments"][0], "s3://landing/in/a.csv");
        let second = BusEvent::object_created("e-2".into(), at_two(), "landing", "in/a.csv", 3);
        assert_ne!(trigger.job_for(&TriggerEvent::Event(second)).unwrap().unwrap().job_id, job.job_id);
    }

    #[test]
    fn an_s3_trigger_answers_only_its_bucket_prefix_and_suffix() {
        let trigger = on_s3(job_with_context(json!({})));
        for (bucket, key) in [("other", "in/a.csv"), ("landing", "out/a.csv"), ("landing", "in/a.json")] {
            let event = BusEvent::object_created("e".into(), at_two(), bucket, key, 1);
            assert!(trigger.job_for(&TriggerEvent::Event(event)).is_none(), "{bucket}/{key}");
        }
    }

    #[test]
    fn an_event_pattern_trigger_fills_detail_fields_and_says_which_is_missing() {
        let trigger = Trigger {
            name: "glue-failed".into(),
            schedule: None,
            s3: None,
            event_pattern: Some(json!({"source": ["aws.glue"], "detail": {"state": ["FAILED"]}})),
            user: "ops".into(),
            job: job_with_context(json!({"arguments": ["${detail.jobName}", "${event.source}", "${detail.run.attempt}"]})),
        };
        trigger.validate().unwrap();
        let body = |detail: Value| {
            json!({"id": "g1", "time": "2026-11-25T02:00:00Z", "source": "aws.glue", "detail-type": "Glue Job State Change", "detail": detail})
        };
        let failed = BusEvent::parse(body(json!({"state": "FAILED", "jobName": "etl", "run": {"attempt": 2}}))).unwrap();
        let job = trigger.job_for(&TriggerEvent::Event(failed)).unwrap().unwrap();
        assert_eq!(job.request.context["arguments"], json!(["etl", "aws.glue", "2"]));
        let succeeded = BusEvent::parse(body(json!({"state": "SUCCEEDED", "jobName": "etl"}))).unwrap();
        assert!(trigger.job_for(&TriggerEvent::Event(succeeded)).is_none());
        let no_name = BusEvent::parse(body(json!({"state": "FAILED", "run": {"attempt": 1}}))).unwrap();
        let message = trigger.job_for(&TriggerEvent::Event(no_name)).unwrap().unwrap_err();
        assert!(message.contains("the event has no `detail.jobName`"), "{message}");
    }

    #[test]
    fn an_unknown_placeholder_names_where_it_stands_and_what_is_offered() {
        let message = scheduled(job_with_context(json!({"key": "${s3.key}"}))).validate().unwrap_err();
        assert!(message.contains("`job.context.key`: unknown placeholder `${s3.key}`"), "{message}");
        assert!(message.contains("${schedule.time}"), "{message}");
        let message = on_s3(job_with_context(json!({"key": "${detail.x}"}))).validate().unwrap_err();
        assert!(message.contains("unknown placeholder `${detail.x}`") && message.contains("${s3.key}"), "{message}");
    }

    #[test]
    fn an_unclosed_placeholder_and_a_malformed_job_are_refused() {
        let unclosed = scheduled(json!({"name": "${trigger.name", "version": "1", "command_criteria": ["t:x"]}));
        assert!(unclosed.validate().unwrap_err().contains("without a closing"));
        let no_criteria = scheduled(json!({"name": "x", "version": "1"}));
        assert!(no_criteria.validate().unwrap_err().contains("command_criteria"));
    }

    #[test]
    fn a_trigger_needs_exactly_one_valid_source() {
        let mut none = scheduled(job_with_context(json!({})));
        none.schedule = None;
        assert!(none.validate().unwrap_err().contains("give a source"));
        let mut two = on_s3(job_with_context(json!({})));
        two.event_pattern = Some(json!({"source": ["x"]}));
        assert!(two.validate().unwrap_err().contains("exactly one source"));
        let mut bad_pattern = on_s3(job_with_context(json!({})));
        bad_pattern.s3 = None;
        bad_pattern.event_pattern = Some(json!({"source": "x"}));
        assert!(bad_pattern.validate().unwrap_err().contains("give a list"));
    }

    #[test]
    fn schedules_are_cron_or_rate_and_bad_ones_say_how_to_write_them() {
        assert_eq!(parse_schedule("rate(15 minutes)").unwrap(), Schedule::Rate(Duration::from_secs(900)));
        assert_eq!(parse_schedule("rate(1 day)").unwrap(), Schedule::Rate(Duration::from_secs(86_400)));
        assert!(matches!(parse_schedule("*/5 * * * *").unwrap(), Schedule::Cron(..)));
        assert!(parse_schedule("rate(0 minutes)").unwrap_err().contains("rate(15 minutes)"));
        assert!(parse_schedule("rate(5 fortnights)").unwrap_err().contains("is not a rate"));
        assert!(parse_schedule("every day").unwrap_err().contains("is not a cron expression"));
    }
}
