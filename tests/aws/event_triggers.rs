//! Event-triggered jobs on the emulator, end to end: an object put in an S3 bucket with
//! EventBridge notifications on goes through the rule of the triggers stack (deployed by
//! `heimdall-deploy`'s code to the emulator's CloudFormation) to the events queue; the events
//! function submits the trigger's job, once however often the event is delivered; the job runs
//! through the state machine with the bucket, key and size filled in.

use std::time::Duration;

use aws_sdk_s3::types::{EventBridgeConfiguration, NotificationConfiguration};
use heimdall_deploy::deploy_triggers;
use heimdall_deploy::triggers_stack::TriggerTargets;
use heimdall_domain::{JobId, JobStatus};
use heimdall_emulator::stack::create_events_queue;
use heimdall_ports::JobQuery;
use heimdall_tests::emulator::emulator;
use serde_json::json;

use crate::serverless_stack::ServerlessStack;
use crate::support::unique;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_put_in_s3_submits_the_triggered_job_once_and_it_runs() {
    let landing = unique("landing");
    let stack = ServerlessStack::create_counted_with(&[("{{LANDING_BUCKET}}", &landing)]).await;
    let sdk = emulator().sdk_config().await;
    let prefix = unique("hd");
    let events_queue = create_events_queue(&sdk, &prefix).await.unwrap();
    let targets = TriggerTargets {
        events_queue_arn: events_queue.arn.clone(),
        scheduler_role_arn: "arn:aws:iam::123456789012:role/heimdall-scheduler".into(),
    };
    deploy_triggers(&sdk, &prefix, stack.service.catalog_held().triggers(), &targets).await.unwrap();
    // The landing bucket's owner turns EventBridge notifications on.
    let s3 = heimdall_adapters_aws::s3_client(&sdk);
    s3.create_bucket().bucket(&landing).send().await.unwrap();
    let notifications = NotificationConfiguration::builder().event_bridge_configuration(EventBridgeConfiguration::builder().build()).build();
    s3.put_bucket_notification_configuration().bucket(&landing).notification_configuration(notifications).send().await.unwrap();

    s3.put_object().bucket(&landing).key("in/orders 2026.csv").body(b"id\n1\n".to_vec().into()).send().await.unwrap();
    s3.put_object().bucket(&landing).key("out/not-for-the-trigger.csv").body(b"x".to_vec().into()).send().await.unwrap();

    // Only the object under in/ passed the rule.
    let delivered = stack.receive_from(&events_queue.url).await;
    assert_eq!(delivered.records.len(), 1, "{delivered:?}");
    let before = stack.counted_calls().len();
    let response = heimdall_function_events::handle_batch(&stack.service, delivered.clone()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let first_calls = stack.counted_calls()[before..].to_vec();
    // SQS delivers at least once: the same event again submits nothing.
    let before = stack.counted_calls().len();
    let again = heimdall_function_events::handle_batch(&stack.service, delivered).await;
    assert!(again.batch_item_failures.is_empty(), "{again:?}");
    let again_calls = stack.counted_calls()[before..].to_vec();
    // What an event costs the events function (docs/BENCHMARKS.md): the user's active jobs
    // counted (limits), one conditional put and the job's queue message; a redelivery, the count
    // and the refused put.
    eprintln!("triggered job: {} AWS calls {first_calls:?}; redelivered: {} {again_calls:?}", first_calls.len(), again_calls.len());
    assert!(first_calls.len() <= 3, "{first_calls:?}");
    assert!(again_calls.len() <= 2, "{again_calls:?}");
    let query = JobQuery { user: Some("loader".into()), limit: 10, ..JobQuery::default() };
    let jobs = stack.service.list(&query).await.unwrap().jobs;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let id: JobId = jobs[0].id;
    assert_eq!(jobs[0].context["arguments"], json!([format!("s3://{landing}/in/orders 2026.csv"), "5"]));

    // The job runs like any async job: dispatcher, state machine, the shell plugin's function.
    let queued = stack.receive_as_sqs_event().await;
    assert_eq!(queued.records.len(), 1);
    assert!(heimdall_function_dispatcher::handle_batch(&stack.service, queued).await.batch_item_failures.is_empty());
    let done = stack.wait_for(id, Duration::from_secs(60), |s| s.is_terminal()).await;
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    let (status, stdout) = stack.api_call("loader", "GET", &format!("/api/v1/job/{id}/stdout"), None).await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(stdout).unwrap(), format!("s3://{landing}/in/orders 2026.csv 5\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_no_event_is_left_for_retry_and_the_dead_letter_queue() {
    let stack = ServerlessStack::create().await;
    let sdk = emulator().sdk_config().await;
    let events_queue = create_events_queue(&sdk, &unique("hd")).await.unwrap();
    stack.sqs.send_message().queue_url(&events_queue.url).message_body(r#"{"hello": "world"}"#).send().await.unwrap();
    // An S3 notification for a bucket no trigger watches: acknowledged, nothing submitted.
    let elsewhere = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "eventTime": "2026-11-25T02:00:00Z",
        "s3": {"bucket": {"name": "elsewhere"}, "object": {"key": "in/a.csv", "size": 1, "sequencer": "01"}}}]});
    stack.sqs.send_message().queue_url(&events_queue.url).message_body(elsewhere.to_string()).send().await.unwrap();

    let mut delivered = stack.receive_from(&events_queue.url).await;
    if delivered.records.len() < 2 {
        delivered.records.extend(stack.receive_from(&events_queue.url).await.records);
    }
    assert_eq!(delivered.records.len(), 2);
    let response = heimdall_function_events::handle_batch(&stack.service, delivered.clone()).await;

    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    let not_an_event = delivered.records.iter().find(|r| r.body.as_deref() == Some(r#"{"hello": "world"}"#)).unwrap();
    assert_eq!(failed, [not_an_event.message_id.as_deref().unwrap()]);
    assert!(stack.service.list(&JobQuery { limit: 10, ..JobQuery::default() }).await.unwrap().jobs.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_firing_submits_one_job_per_scheduled_time() {
    let stack = ServerlessStack::create().await;
    let sdk = emulator().sdk_config().await;
    let events_queue = create_events_queue(&sdk, &unique("hd")).await.unwrap();
    // What the triggers stack's schedule sends (Scheduler fills in the time), twice for 02:00
    // (Scheduler, like SQS, delivers at least once) and once for 03:00.
    for time in ["2026-11-25T02:00:00Z", "2026-11-25T02:00:00Z", "2026-11-25T03:00:00Z"] {
        let body = json!({"trigger": "hourly-ping", "time": time}).to_string();
        stack.sqs.send_message().queue_url(&events_queue.url).message_body(body).send().await.unwrap();
    }

    let mut handled = 0;
    while handled < 3 {
        let delivered = stack.receive_from(&events_queue.url).await;
        handled += delivered.records.len();
        assert!(!delivered.records.is_empty(), "the firings did not arrive");
        assert!(heimdall_function_events::handle_batch(&stack.service, delivered).await.batch_item_failures.is_empty());
    }

    let query = JobQuery { user: Some("scheduler".into()), limit: 10, ..JobQuery::default() };
    let mut jobs = stack.service.list(&query).await.unwrap().jobs;
    jobs.sort_by_key(|job| job.tags.clone());
    let fired: Vec<(&str, JobStatus)> = jobs.iter().map(|job| (job.tags[0].as_str(), job.status)).collect();
    assert_eq!(fired, [("at:2026-11-25T02:00:00Z", JobStatus::Succeeded), ("at:2026-11-25T03:00:00Z", JobStatus::Succeeded)]);
}
