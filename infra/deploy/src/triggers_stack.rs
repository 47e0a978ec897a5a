//! The triggers stack (`<stack>-triggers`): the config's event and schedule triggers as
//! CloudFormation resources, made at deploy time because they come from the config, not the
//! code. An `s3` or `event_pattern` trigger becomes an EventBridge rule and a `schedule` an
//! EventBridge Scheduler schedule; all of them target the main stack's events queue, where the
//! events function checks each event against the triggers again (an `s3` trigger's suffix, for
//! one, is checked there: a rule filters a field by prefix or by suffix, not both).

use heimdall_domain::trigger::{Trigger, TriggerSource};
use serde_json::{Map, Value, json};

/// Where the triggers send their events: the main stack's outputs.
#[derive(Debug, Clone)]
pub struct TriggerTargets {
    pub events_queue_arn: String,
    pub scheduler_role_arn: String,
}

/// The stack's template, or `None` when no trigger needs a resource.
pub fn triggers_template(triggers: &[Trigger], targets: &TriggerTargets) -> Result<Option<Value>, String> {
    let mut resources = Map::new();
    for (index, trigger) in triggers.iter().enumerate() {
        let label = format!("triggers[{index}] (name `{}`)", trigger.name);
        let logical_id = logical_id(&trigger.name);
        if resources.contains_key(&logical_id) {
            return Err(format!("{label}: its name gives the resource name {logical_id} of another trigger; rename one"));
        }
        let description = format!("Heimdall trigger {}", trigger.name);
        let resource = match trigger.source().map_err(|error| format!("{label}: {error}"))? {
            TriggerSource::Schedule(expression) => json!({
                "Type": "AWS::Scheduler::Schedule",
                "Properties": {
                    "Description": description,
                    "ScheduleExpression": aws_schedule_expression(expression).map_err(|error| format!("{label}: {error}"))?,
                    "ScheduleExpressionTimezone": "UTC",
                    "FlexibleTimeWindow": {"Mode": "OFF"},
                    "State": "ENABLED",
                    "Target": {
                        "Arn": targets.events_queue_arn,
                        "RoleArn": targets.scheduler_role_arn,
                        // What the events function reads as a schedule's firing.
                        "Input": json!({"trigger": trigger.name, "time": "<aws.scheduler.scheduled-time>"}).to_string()
                    }
                }
            }),
            TriggerSource::S3(s3) => rule(&description, s3_pattern(&s3.bucket, &s3.prefix, &s3.suffix), targets),
            TriggerSource::EventPattern(pattern) => rule(&description, pattern.clone(), targets),
        };
        resources.insert(logical_id, resource);
    }
    if resources.is_empty() {
        return Ok(None);
    }
    Ok(Some(json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Heimdall's triggers: EventBridge rules and schedules sending to the events queue (made by heimdall-deploy from the config).",
        "Resources": resources
    })))
}

fn rule(description: &str, pattern: Value, targets: &TriggerTargets) -> Value {
    json!({
        "Type": "AWS::Events::Rule",
        "Properties": {
            "Description": description,
            "EventPattern": pattern,
            "State": "ENABLED",
            "Targets": [{"Id": "heimdall-events-queue", "Arn": targets.events_queue_arn}]
        }
    })
}

/// The pattern of S3's `Object Created` events (buckets with EventBridge notifications on).
fn s3_pattern(bucket: &str, prefix: &str, suffix: &str) -> Value {
    let mut detail = json!({"bucket": {"name": [bucket]}});
    if !prefix.is_empty() {
        detail["object"] = json!({"key": [{"prefix": prefix}]});
    } else if !suffix.is_empty() {
        detail["object"] = json!({"key": [{"suffix": suffix}]});
    }
    json!({"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": detail})
}

/// `Trigger` + the name's letters and digits: CloudFormation's logical ids are alphanumeric.
fn logical_id(name: &str) -> String {
    let mut id = String::from("Trigger");
    let mut upper = true;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(if upper { c.to_ascii_uppercase() } else { c });
            upper = false;
        } else {
            upper = true;
        }
    }
    id
}

/// A schedule as EventBridge Scheduler writes it: `rate(...)` as is, and a cron expression
/// (5 fields, or 6 with seconds = 0) as `cron(min hour day-of-month month day-of-week year)`,
/// with `?` in one day field and days of the week counted from 1 = Sunday.
pub fn aws_schedule_expression(expression: &str) -> Result<String, String> {
    let expression = expression.trim();
    if expression.starts_with("rate(") {
        return Ok(expression.to_owned());
    }
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let fields = match fields.as_slice() {
        [_, _, _, _, _] => fields,
        [seconds, rest @ ..] if rest.len() == 5 => {
            if *seconds != "0" {
                return Err(format!("`{expression}`: EventBridge Scheduler fires at most once a minute; set the seconds field to 0"));
            }
            rest.to_vec()
        }
        _ => return Err(format!("`{expression}`: give 5 cron fields (minute hour day-of-month month day-of-week)")),
    };
    let (minute, hour, day_of_month, month, day_of_week) = (fields[0], fields[1], fields[2], fields[3], fields[4]);
    let (day_of_month, day_of_week) = match (day_of_month, day_of_week) {
        (dom, "*") => (dom.to_owned(), "?".to_owned()),
        ("*", dow) => ("?".to_owned(), aws_days_of_week(dow)?),
        _ => {
            return Err(format!(
                "`{expression}`: EventBridge Scheduler cannot restrict both the day of the month and the day of the week; leave one `*`"
            ));
        }
    };
    Ok(format!("cron({minute} {hour} {day_of_month} {month} {day_of_week} *)"))
}

/// cron's 0-7 (0 and 7 = Sunday) as AWS's 1-7 (1 = Sunday); names and steps kept.
fn aws_days_of_week(field: &str) -> Result<String, String> {
    let convert = |number: &str| -> Result<String, String> {
        match number.parse::<u8>() {
            Ok(day @ 0..=7) => Ok(((day % 7) + 1).to_string()),
            Ok(_) => Err(format!("day of the week `{number}` is not 0-7")),
            Err(_) => Ok(number.to_owned()),
        }
    };
    field
        .split(',')
        .map(|part| {
            let (range, step) = match part.split_once('/') {
                Some((range, step)) => (range, Some(step)),
                None => (part, None),
            };
            let range = range.split('-').map(convert).collect::<Result<Vec<_>, _>>()?.join("-");
            Ok(match step {
                Some(step) => format!("{range}/{step}"),
                None => range,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map(|parts| parts.join(","))
}

#[cfg(test)]
mod tests {
    use heimdall_domain::trigger::S3Source;

    use super::*;

    fn targets() -> TriggerTargets {
        TriggerTargets {
            events_queue_arn: "arn:aws:sqs:us-east-1:123456789012:hd-events".into(),
            scheduler_role_arn: "arn:aws:iam::123456789012:role/hd-scheduler".into(),
        }
    }

    fn trigger(name: &str) -> Trigger {
        Trigger {
            name: name.into(),
            schedule: None,
            s3: None,
            event_pattern: None,
            user: "u".into(),
            job: json!({"name": "x", "version": "1", "command_criteria": ["t:x"]}),
        }
    }

    #[test]
    fn cron_expressions_become_eventbridge_scheduler_expressions() {
        assert_eq!(aws_schedule_expression("0 2 * * *").unwrap(), "cron(0 2 * * ? *)");
        assert_eq!(aws_schedule_expression("0 0 2 1 * *").unwrap(), "cron(0 2 1 * ? *)");
        assert_eq!(aws_schedule_expression("*/15 8-18 * * 1-5").unwrap(), "cron(*/15 8-18 ? * 2-6 *)");
        assert_eq!(aws_schedule_expression("0 9 * * 0,7,SAT").unwrap(), "cron(0 9 ? * 1,1,SAT *)");
        assert_eq!(aws_schedule_expression("rate(5 minutes)").unwrap(), "rate(5 minutes)");
        assert!(aws_schedule_expression("30 0 2 * * *").unwrap_err().contains("seconds field to 0"));
        assert!(aws_schedule_expression("0 2 1 * 1").unwrap_err().contains("leave one `*`"));
    }

    #[test]
    fn each_trigger_becomes_a_rule_or_a_schedule_targeting_the_events_queue() {
        let mut nightly = trigger("nightly-report");
        nightly.schedule = Some("0 2 * * *".into());
        let mut landed = trigger("landed_csv");
        landed.s3 = Some(S3Source { bucket: "landing".into(), prefix: "in/".into(), suffix: ".csv".into() });
        let mut glue = trigger("glue failed");
        glue.event_pattern = Some(json!({"source": ["aws.glue"]}));

        let template = triggers_template(&[nightly, landed, glue], &targets()).unwrap().unwrap();

        let resources = &template["Resources"];
        let schedule = &resources["TriggerNightlyReport"]["Properties"];
        assert_eq!(resources["TriggerNightlyReport"]["Type"], "AWS::Scheduler::Schedule");
        assert_eq!(schedule["ScheduleExpression"], "cron(0 2 * * ? *)");
        assert_eq!(schedule["Target"]["RoleArn"], targets().scheduler_role_arn);
        let input: Value = serde_json::from_str(schedule["Target"]["Input"].as_str().unwrap()).unwrap();
        assert_eq!(input, json!({"trigger": "nightly-report", "time": "<aws.scheduler.scheduled-time>"}));
        let s3_rule = &resources["TriggerLandedCsv"]["Properties"];
        assert_eq!(s3_rule["EventPattern"]["detail"], json!({"bucket": {"name": ["landing"]}, "object": {"key": [{"prefix": "in/"}]}}));
        assert_eq!(s3_rule["Targets"][0]["Arn"], targets().events_queue_arn);
        assert_eq!(resources["TriggerGlueFailed"]["Properties"]["EventPattern"], json!({"source": ["aws.glue"]}));
    }

    #[test]
    fn no_triggers_no_stack_and_clashing_names_are_refused() {
        assert!(triggers_template(&[], &targets()).unwrap().is_none());
        let mut first = trigger("a-b");
        first.schedule = Some("rate(1 hour)".into());
        let mut second = trigger("a_b");
        second.schedule = Some("rate(1 hour)".into());
        assert!(triggers_template(&[first, second], &targets()).unwrap_err().contains("rename one"));
    }
}
