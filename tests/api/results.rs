//! Where a result is kept: a small one in the job's record, written with the job's end (no
//! file, no second read); a large one as the job's `result.json` artifact. Both answer alike.

use heimdall_tests::{id_of, job, spawn_app_tuned, test_config};
use serde_json::{Value, json};

const COMMANDS: &str = r#"
  - name: wide-result
    version: 0.0.1
    plugin: shell
    is_sync: true
    tags: [shell:wide-result]
    cluster_tags: [type:localhost]
    context: {command: [/bin/sh, -c, 'awk ''BEGIN { printf "{\"columns\":[{\"name\":\"n\",\"type\":\"string\"}],\"data\":["; for (i = 0; i < 2000; i++) printf "%s[\"%030d\"]", (i ? "," : ""), i; print "]}" }'' > result.json']}
"#;

#[tokio::test]
async fn a_small_result_is_kept_with_the_job_and_a_large_one_as_its_file() {
    let config = test_config().replacen("commands:\n", &format!("commands:{COMMANDS}"), 1);
    let app = spawn_app_tuned(&config, |_| {}).await;

    let ping = app.submit_ok(&job("hello", &["type:ping"], json!({}))).await;
    let ping_id = id_of(&ping);
    assert_eq!(ping["status"], "SUCCEEDED");
    let fetched: Value = app.get_json(&format!("/api/v1/job/{ping_id}/result")).await;
    assert_eq!(fetched, ping["result"], "read back as answered");
    assert_eq!(fetched["data"][0][0], "Hello, test_user!");
    assert!(!app.data_dir.join("jobs").join(&ping_id).exists(), "a ping job leaves no folder: its result is in its record");
    assert!(ping.get("cost_usd").is_none(), "nothing runs on AWS under heimdall serve: {ping}");

    let wide = app.submit_ok(&job("wide", &["shell:wide-result"], json!({}))).await;
    let wide_id = id_of(&wide);
    assert_eq!(wide["status"], "SUCCEEDED", "{wide}");
    let file = app.data_dir.join("jobs").join(&wide_id).join("result.json");
    assert!(std::fs::metadata(&file).unwrap().len() > 32 * 1024, "past the record's limit, the result is a file");
    let fetched: Value = app.get_json(&format!("/api/v1/job/{wide_id}/result")).await;
    assert_eq!(fetched["data"].as_array().unwrap().len(), 2000);
    assert_eq!(fetched, wide["result"]);
}
