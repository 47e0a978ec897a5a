//! The events function: turns what arrives on the events queue into triggered jobs.
//!
//! Everything that fires a trigger on AWS is sent to one SQS queue (buffered, retried, with a
//! dead-letter queue), and each message body is one of:
//! - an EventBridge event (rules for `s3` and `event_pattern` triggers target the queue; S3
//!   buckets with EventBridge notifications on send `Object Created` events that way);
//! - an S3 event notification (`{"Records": [{"eventSource": "aws:s3", …}]}`), for buckets
//!   that notify the queue directly; S3's `s3:TestEvent` is acknowledged and ignored;
//! - a schedule's firing, `{"trigger": "<name>", "time": "<RFC 3339>"}`, which EventBridge
//!   Scheduler sends with `<aws.scheduler.scheduled-time>` filled in.
//!
//! - a Step Functions "Execution Status Change" event of the jobs' state machine (a rule sends
//!   `FAILED`, `TIMED_OUT` and `ABORTED` ones): the job the execution ran is settled if the
//!   execution ended before recording it (`JobService::settle_workflow_end`), no trigger fires.
//!
//! - an EMR on EKS "EMR Job Run State Change" event (a rule sends those of runs that ended): the
//!   workflow of the spark job the run belongs to, waiting for that end, is handed it
//!   (`JobService::wake_awaiting`), no trigger fires.
//!
//! Each other event goes to `JobService::submit_for_event`: one job per answering trigger, and a
//! redelivered event submits nothing new. A message no trigger can use is logged and dropped
//! (retrying it would not help); a message that is not an event, or a backend failure, fails
//! the record so SQS retries it and finally keeps it in the dead-letter queue.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use heimdall_domain::JobId;
use heimdall_domain::trigger_event::{BusEvent, TriggerEvent};
use heimdall_ports::WorkflowEnd;
use heimdall_functions::sqs_batch::handle_records;
use heimdall_service::JobService;
use serde_json::Value;
use std::sync::Arc;

/// Handles every record of `event`; answers the ones to retry.
pub async fn handle_batch(service: &Arc<JobService>, event: SqsEvent) -> SqsBatchResponse {
    handle_records(event, |record| handle_record(service, record)).await
}

async fn handle_record(service: &Arc<JobService>, record: SqsMessage) -> Result<(), String> {
    let body = record.body.as_deref().ok_or("the message has no body")?;
    if let Some((job, end)) = execution_end(body) {
        if let Some(settled) = service.settle_workflow_end(job, end).await.map_err(|error| error.to_string())? {
            tracing::warn!(job_id = %job, execution = end.as_str(), status = %settled.status, "job settled after its execution ended");
        }
        return Ok(());
    }
    if let Some(job) = emr_run_end(body) {
        let woke = service.wake_awaiting(job).await.map_err(|error| error.to_string())?;
        tracing::info!(job_id = %job, woke, "EMR job run ended");
        return Ok(());
    }
    for event in trigger_events(body)? {
        let outcomes = service.submit_for_event(&event).await.map_err(|error| error.to_string())?;
        if outcomes.is_empty() {
            tracing::info!(event = %describe(&event), "no trigger answers this event");
        }
    }
    Ok(())
}

/// The job and end of a Step Functions "Execution Status Change" event that is an end (the
/// execution is named after its job); `None` for anything else.
pub fn execution_end(body: &str) -> Option<(JobId, WorkflowEnd)> {
    let value: Value = serde_json::from_str(body).ok()?;
    if value["source"] != "aws.states" || value["detail-type"] != "Step Functions Execution Status Change" {
        return None;
    }
    let job = value["detail"]["name"].as_str()?.parse().ok()?;
    Some((job, WorkflowEnd::parse(value["detail"]["status"].as_str()?)?))
}

/// The job of an EMR on EKS "EMR Job Run State Change" event for a run that ended (COMPLETED,
/// FAILED, CANCELLED), the run named after its job; `None` for anything else.
pub fn emr_run_end(body: &str) -> Option<JobId> {
    let value: Value = serde_json::from_str(body).ok()?;
    if value["source"] != "aws.emr-containers" || value["detail-type"] != "EMR Job Run State Change" {
        return None;
    }
    if !matches!(value["detail"]["state"].as_str()?, "COMPLETED" | "FAILED" | "CANCELLED") {
        return None;
    }
    heimdall_plugins_aws::spark::job_of_run_name(value["detail"]["name"].as_str()?)
}

/// The events a message body carries; an error says why the body is none of the known shapes.
pub fn trigger_events(body: &str) -> Result<Vec<TriggerEvent>, String> {
    let value: Value = serde_json::from_str(body).map_err(|error| format!("the message is not JSON: {error}"))?;
    if value.get("detail-type").is_some() {
        return Ok(vec![TriggerEvent::Event(BusEvent::parse(value)?)]);
    }
    if let Some(records) = value.get("Records").and_then(Value::as_array) {
        return records.iter().filter_map(|record| s3_record(record).transpose()).collect();
    }
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    if let (Some(trigger), Some(time)) = (value.get("trigger").and_then(Value::as_str), value.get("time").and_then(Value::as_str)) {
        let time = DateTime::parse_from_rfc3339(time).map_err(|error| format!("the schedule's `time` `{time}` is not RFC 3339: {error}"))?;
        return Ok(vec![TriggerEvent::Scheduled { trigger: trigger.to_owned(), time: time.with_timezone(&Utc) }]);
    }
    Err("the message is neither an EventBridge event, an S3 notification nor a schedule's {trigger, time}".into())
}

/// An S3 notification record as an object-created event; `None` for other S3 events.
fn s3_record(record: &Value) -> Result<Option<TriggerEvent>, String> {
    let text = |pointer: &str| record.pointer(pointer).and_then(Value::as_str);
    if text("/eventSource") != Some("aws:s3") || !text("/eventName").is_some_and(|name| name.starts_with("ObjectCreated:")) {
        return Ok(None);
    }
    let bucket = text("/s3/bucket/name").ok_or("an S3 record without s3.bucket.name")?;
    let key = decode_key(text("/s3/object/key").ok_or("an S3 record without s3.object.key")?)?;
    let time = text("/eventTime").ok_or("an S3 record without eventTime")?;
    let time = DateTime::parse_from_rfc3339(time).map_err(|error| format!("the S3 record's eventTime `{time}` is not RFC 3339: {error}"))?;
    let size = record.pointer("/s3/object/size").and_then(Value::as_u64).unwrap_or(0);
    // S3 gives a record no id; the sequencer orders the events of one key, so with the key it
    // names this event.
    let sequencer = text("/s3/object/sequencer").unwrap_or_default();
    let id = format!("s3:{bucket}/{key}#{sequencer}");
    Ok(Some(TriggerEvent::Event(BusEvent::object_created(id, time.with_timezone(&Utc), bucket, &key, size))))
}

/// S3 notifications URL-encode keys, with `+` for a space.
fn decode_key(key: &str) -> Result<String, String> {
    let bytes = key.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let hex = key.get(index + 1..index + 3).ok_or_else(|| format!("the S3 key `{key}` has a broken %-escape"))?;
                decoded.push(u8::from_str_radix(hex, 16).map_err(|_| format!("the S3 key `{key}` has a broken %-escape"))?);
                index += 2;
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }
    String::from_utf8(decoded).map_err(|_| format!("the S3 key `{key}` is not UTF-8 once decoded"))
}

fn describe(event: &TriggerEvent) -> String {
    match event {
        TriggerEvent::Event(event) => format!("{} {}", event.body["source"], event.id),
        TriggerEvent::Scheduled { trigger, time } => format!("schedule of {trigger} at {time}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_s3_notification_gives_one_event_per_created_object_with_the_key_decoded() {
        let body = json!({"Records": [
            {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "eventTime": "2026-11-25T02:00:00.123Z",
             "s3": {"bucket": {"name": "landing"}, "object": {"key": "in/my+file%C3%A9.csv", "size": 7, "sequencer": "0A1"}}},
            {"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete", "eventTime": "2026-11-25T02:00:00Z",
             "s3": {"bucket": {"name": "landing"}, "object": {"key": "gone.csv"}}}
        ]});
        let events = trigger_events(&body.to_string()).unwrap();
        assert_eq!(events.len(), 1);
        let TriggerEvent::Event(event) = &events[0] else { panic!("{events:?}") };
        assert_eq!(event.created_object(), Some(("landing", "in/my fileé.csv", Some(7))));
        assert_eq!(event.id, "s3:landing/in/my fileé.csv#0A1");
    }

    #[test]
    fn eventbridge_events_schedules_and_test_events_are_recognised() {
        let bus = json!({"id": "e1", "time": "2026-11-25T02:00:00Z", "source": "aws.s3", "detail-type": "Object Created", "detail": {}});
        assert!(matches!(&trigger_events(&bus.to_string()).unwrap()[..], [TriggerEvent::Event(e)] if e.id == "e1"));
        let schedule = json!({"trigger": "nightly", "time": "2026-11-25T02:00:00Z"});
        assert!(matches!(&trigger_events(&schedule.to_string()).unwrap()[..], [TriggerEvent::Scheduled { trigger, .. }] if trigger == "nightly"));
        assert!(trigger_events(r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#).unwrap().is_empty());
    }

    #[test]
    fn an_emr_job_run_that_ended_names_its_job_and_one_still_running_does_not() {
        let job = JobId::new();
        let event = |state: &str, name: &str| {
            json!({"version": "0", "id": "e2", "source": "aws.emr-containers", "detail-type": "EMR Job Run State Change",
                   "time": "2026-12-08T02:00:00Z", "region": "us-east-1",
                   "detail": {"severity": "INFO", "name": name, "id": "0000000abc", "virtualClusterId": "vc1", "state": state}})
            .to_string()
        };
        let name = heimdall_plugins_aws::spark::run_name(job);
        assert_eq!(emr_run_end(&event("COMPLETED", &name)), Some(job));
        assert_eq!(emr_run_end(&event("FAILED", &name)), Some(job));
        assert_eq!(emr_run_end(&event("RUNNING", &name)), None, "not an end");
        assert_eq!(emr_run_end(&event("COMPLETED", "someone-elses-run")), None, "not a job's run");
    }

    /// The `EventPattern` of the template's rule `EmrJobRunEndRule`, as JSON.
    fn emr_rule_pattern() -> Value {
        let template = include_str!("../../../infra/template.yaml");
        let rule = &template[template.find("\n  EmrJobRunEndRule:").expect("the rule")..];
        let pattern = &rule[rule.find("EventPattern:").unwrap() + "EventPattern:".len()..rule.find("Targets:").unwrap()];
        serde_saphyr::from_str(pattern).expect("the rule's pattern is YAML without CloudFormation tags")
    }

    #[test]
    fn the_templates_rule_sends_exactly_the_emr_events_this_function_wakes_jobs_for() {
        let pattern = emr_rule_pattern();
        heimdall_domain::event_pattern::validate(&pattern).unwrap();
        let job = JobId::new();
        for (state, name, wakes) in [
            ("COMPLETED", heimdall_plugins_aws::spark::run_name(job), true),
            ("FAILED", heimdall_plugins_aws::spark::run_name(job), true),
            ("CANCELLED", heimdall_plugins_aws::spark::run_name(job), true),
            ("RUNNING", heimdall_plugins_aws::spark::run_name(job), false),
            ("COMPLETED", "nightly-etl".to_owned(), false),
        ] {
            let event = json!({"source": "aws.emr-containers", "detail-type": "EMR Job Run State Change", "detail": {"name": name, "state": state, "id": "r1"}});
            assert_eq!(heimdall_domain::event_pattern::matches(&pattern, &event), wakes, "rule, {state} {name}");
            assert_eq!(emr_run_end(&event.to_string()).is_some(), wakes, "function, {state} {name}");
        }
    }

    #[test]
    fn a_step_functions_status_change_names_the_job_and_how_its_execution_ended() {
        let job = JobId::new();
        let event = |status: &str| {
            json!({"id": "e", "source": "aws.states", "detail-type": "Step Functions Execution Status Change", "time": "2026-12-07T10:00:00Z",
                   "detail": {"name": job.to_string(), "status": status, "executionArn": "arn:aws:states:us-east-1:1:execution:m:x"}})
            .to_string()
        };
        assert_eq!(execution_end(&event("TIMED_OUT")), Some((job, WorkflowEnd::TimedOut)));
        assert_eq!(execution_end(&event("RUNNING")), None);
        let glue = json!({"source": "aws.glue", "detail-type": "Glue Job State Change", "detail": {"name": job.to_string(), "status": "FAILED"}});
        assert_eq!(execution_end(&glue.to_string()), None);
    }

    #[test]
    fn anything_else_is_an_error_that_says_what_was_expected() {
        assert!(trigger_events("not json").unwrap_err().contains("not JSON"));
        assert!(trigger_events(r#"{"hello": 1}"#).unwrap_err().contains("neither an EventBridge event"));
        let bad_key = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "eventTime": "2026-11-25T02:00:00Z",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "bad%zz"}}}]});
        assert!(trigger_events(&bad_key.to_string()).unwrap_err().contains("broken %-escape"));
    }
}
