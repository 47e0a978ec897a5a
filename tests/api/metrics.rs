//! `GET /metrics`: Prometheus' text format, counting what the server did.

use std::time::Duration;

use heimdall_tests::{id_of, job, spawn_app};
use serde_json::json;

/// Checks every line of an OpenMetrics text exposition: comments (`# HELP`, `# TYPE`, `# EOF`
/// last) and samples `name{label="value",…} number`. Answers the samples.
fn parse_exposition(text: &str) -> Vec<(String, f64)> {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "an exposition ends with # EOF");
    let mut samples = Vec::new();
    for line in &lines[..lines.len() - 1] {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(comment.starts_with("HELP ") || comment.starts_with("TYPE "), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            number => number.parse().unwrap_or_else(|_| panic!("not a number: {line}")),
        };
        let name = series.split('{').next().unwrap();
        assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "bad name: {line}");
        if let Some(labels) = series.strip_prefix(name) {
            assert!(labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')), "bad labels: {line}");
        }
        samples.push((series.to_owned(), value));
    }
    samples
}

#[tokio::test]
async fn metrics_count_jobs_by_command_cluster_and_status_retries_and_plugin_errors() {
    let app = spawn_app().await;
    app.submit_ok(&job("ping", &["type:ping"], json!({}))).await;
    app.submit_ok(&job("fails", &["shell:exit-3"], json!({}))).await;
    let mut flaky = job("flaky", &["shell:flaky"], json!({}));
    flaky["cluster_criteria"] = json!(["type:pool"]);
    let flaky = id_of(&app.submit_ok(&flaky).await);
    app.wait_for_status(&flaky, Duration::from_secs(20), heimdall_tests::is_final).await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let samples = parse_exposition(&response.text().await.unwrap());

    let value = |series: &str| samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v);
    assert_eq!(value(r#"heimdall_jobs_submitted_total{command="ping-0.0.1",cluster="localhost-0.0.1"}"#), Some(1.0), "{samples:#?}");
    assert_eq!(value(r#"heimdall_jobs_finished_total{command="ping-0.0.1",cluster="localhost-0.0.1",status="SUCCEEDED"}"#), Some(1.0));
    assert_eq!(value(r#"heimdall_jobs_finished_total{command="exit-3",cluster="localhost-0.0.1",status="FAILED"}"#), Some(1.0));
    assert_eq!(value(r#"heimdall_plugin_errors_total{plugin="shell",error_type="JobFailed"}"#), Some(2.0), "exit-3 and flaky's first attempt");
    let retried: f64 = samples.iter().filter(|(s, _)| s.starts_with(r#"heimdall_job_retries_total{command="flaky""#)).map(|(_, v)| v).sum();
    assert_eq!(retried, 1.0);
    assert!(samples.iter().any(|(s, v)| s.starts_with(r#"heimdall_job_duration_seconds_count{command="flaky""#) && *v == 1.0), "{samples:#?}");
    assert_eq!(value("heimdall_jobs_running"), Some(0.0));
    assert_eq!(value("heimdall_queue_depth"), Some(0.0), "nothing waits for a worker");

    assert_eq!(app.anonymous.get(app.url("/metrics")).send().await.unwrap().status(), 401);
}
