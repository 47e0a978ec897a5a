//! Every state-changing request writes one structured audit line: who, what, which object,
//! the outcome and from where; reads write none.

use std::io::Write;
use std::sync::{Arc, Mutex};

use heimdall_tests::{id_of, job, spawn_app};
use serde_json::{Value, json};
use tracing_subscriber::util::SubscriberInitExt;

/// Log lines written while the guard lives, on this thread (a current-thread runtime runs the
/// server's tasks here too).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn audit_lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["target"] == "heimdall::audit")
            .map(|line| line["fields"].clone())
            .collect()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn state_changes_are_audited_with_who_what_object_outcome_and_source() {
    let captured = Captured::default();
    let writer = captured.clone();
    let _guard = tracing_subscriber::fmt().json().with_writer(move || writer.clone()).finish().set_default();
    let app = spawn_app().await;

    let submitted = id_of(&app.submit_job_as("alice", &job("a", &["type:ping"], json!({}))).await.json().await.unwrap());
    let unmatched: Value = app.submit_job_as("alice", &job("b", &["type:nothing"], json!({}))).await.json().await.unwrap();
    assert_eq!(app.cancel_job_as("bob", &submitted).await.status(), 404);
    let anonymous = app.anonymous.post(app.url("/api/v1/job")).json(&job("c", &["type:ping"], json!({}))).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    app.get_as("alice", &format!("/api/v1/job/{submitted}")).await;

    let lines = captured.audit_lines();
    assert_eq!(lines.len(), 4, "one line per state-changing request, none for reads: {lines:#?}");
    let expect = [
        ("alice", "POST /api/v1/job", submitted.as_str(), "ok", 200),
        ("alice", "POST /api/v1/job", unmatched["id"].as_str().unwrap(), "refused", 400),
        ("bob", "POST /api/v1/job/{id}/cancel", "-", "refused", 404),
        ("-", "POST /api/v1/job", "-", "refused", 401),
    ];
    for (line, (user, action, object, outcome, status)) in lines.iter().zip(expect) {
        assert_eq!(line["user"], user, "{line}");
        assert_eq!(line["action"], action, "{line}");
        assert_eq!(line["object"], object, "{line}");
        assert_eq!(line["outcome"], outcome, "{line}");
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["source"], "127.0.0.1", "{line}");
    }
    assert_eq!(lines[1]["code"], "NO_MATCHING_COMMAND");
    assert!(lines[2]["path"].as_str().unwrap().contains(&submitted), "the refused cancel names its path");
}
