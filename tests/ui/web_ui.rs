use std::time::Duration;

use heimdall_tests::{TestApp, offline_aws_config, spawn_app_with};
use serde_json::{Value, json};

use crate::browser::Browser;

const CONFIG: &str = r#"
commands:
  - name: ping
    version: "1"
    plugin: ping
    is_sync: true
    tags: [type:ping]
    job_attributes:
      trace: {kind: link, value: "https://traces.example.com/{command.id}/{job.id}"}
      note: {kind: text, value: "run by {job.user}"}
  - {name: ping-canary, version: "2", plugin: ping, is_sync: true, weight: 1, tags: [type:ping]}
  - name: slow
    version: "1"
    plugin: shell
    tags: [shell:slow]
    context:
      command: [/bin/sh, -c, 'for i in 1 2 3 4 5; do echo "line $i"; sleep 0.3; done; printf "{\"columns\":[{\"name\":\"city\",\"type\":\"string\"},{\"name\":\"n\",\"type\":\"int\"}],\"data\":[[\"Oslo, NO\",1],[\"Lima\",2]]}" > result.json']
  - name: big
    version: "1"
    plugin: shell
    is_sync: true
    tags: [shell:big]
    context: {command: [/usr/bin/seq, "1", "60000"]}
  - name: sleep
    version: "1"
    plugin: shell
    tags: [shell:sleep]
    context: {command: [/bin/sleep, "60"]}
clusters:
  - {name: local, version: "1", tags: [type:local]}
  - name: warehouse
    version: "1"
    tags: [type:warehouse]
    context: {account: myorg-acct, user: HEIMDALL_SVC, private_key: ssm:/heimdall/snowflake/key, options: {api_token: abc123}}
access:
  admins: [operator]
"#;

/// The WebDriver key for Tab: leaving a field fires its `change`.
const TAB: &str = "\u{E004}";

async fn app() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(CONFIG, dir.path().join("data"), Duration::from_secs(2), offline_aws_config()).await;
    (app, dir)
}

/// Opens the UI and sets who the browser asks as.
async fn open_as(browser: &Browser, app: &TestApp, user: &str, route: &str) {
    browser.goto(&app.url("/ui/")).await;
    browser.fill("#user", &format!("{user}{TAB}")).await;
    browser.goto(&app.url(&format!("/ui/{route}"))).await;
}

async fn submit_as(app: &TestApp, user: &str, criteria: &str) -> String {
    let job: Value = app
        .submit_job_as(user, &json!({"name": format!("{criteria}-job"), "version": "1", "command_criteria": [criteria]}))
        .await
        .json()
        .await
        .unwrap();
    job["id"].as_str().unwrap_or_else(|| panic!("{job}")).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_submitted_from_the_form_runs_and_its_output_and_result_show() {
    let (app, _dir) = app().await;
    let browser = Browser::start("submit").await;
    open_as(&browser, &app, "alice", "#/submit").await;
    browser.fill("#job-name", "from-the-form").await;
    browser.fill("#job-version", "1").await;
    browser.fill("#command-criteria", "shell:slow").await;
    // A context that is not JSON is caught before it is sent.
    browser.fill("#job-context", "{not json").await;
    browser.wait_for_text("#context-error", Duration::from_secs(5), |t| t.contains("JSON")).await;
    assert!(!browser.find("#submit-job").await.is_enabled().await.unwrap(), "submit stays disabled while the context is invalid");
    browser.screenshot("invalid-context").await;
    browser.fill("#job-context", "{}").await;
    browser.click("input[name=mode][value=async]").await;
    browser.screenshot("form").await;
    browser.click("#submit-job").await;

    // The job's page follows it to the end.
    let status = browser.wait_for_text("#job-status", Duration::from_secs(30), |t| t == "SUCCEEDED").await;
    assert_eq!(status, "SUCCEEDED");
    let url = browser.client.current_url().await.unwrap();
    let id = url.fragment().unwrap().strip_prefix("/job/").unwrap().to_owned();
    let job: Value = app.get_as("alice", &format!("/api/v1/job/{id}")).await.json().await.unwrap();
    assert_eq!(job["user"], "alice");
    browser.wait_for_text("#stdout", Duration::from_secs(10), |t| t.contains("line 5")).await;
    assert_eq!(browser.text("#stdout").await.lines().collect::<Vec<_>>(), ["line 1", "line 2", "line 3", "line 4", "line 5"]);
    let table = browser.wait_for_text("#result-table", Duration::from_secs(10), |t| t.contains("Lima")).await;
    assert!(table.contains("city") && table.contains("string") && table.contains("int"), "{table}");
    assert!(table.contains("Oslo, NO"), "{table}");
    browser.find("#download-csv").await;
    browser.find("#download-json").await;
    // The CSV download opens formula-like cells as text in a spreadsheet (CSV injection).
    let csv = browser
        .client
        .execute("return toCsv([{name: 'v'}], [['=HYPERLINK(\"http://x\")'], ['+1'], ['-2'], ['@SUM(A1)'], ['plain, text']]);", vec![])
        .await
        .unwrap();
    assert_eq!(csv.as_str().unwrap(), "v\r\n\"'=HYPERLINK(\"\"http://x\"\")\"\r\n'+1\r\n'-2\r\n'@SUM(A1)\r\n\"plain, text\"\r\n");
    browser.screenshot("finished").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_list_filters_by_user_and_status() {
    let (app, _dir) = app().await;
    let bobs = [submit_as(&app, "bob", "type:ping").await, submit_as(&app, "bob", "type:ping").await];
    let carols = submit_as(&app, "carol", "type:ping").await;
    let browser = Browser::start("filter").await;
    // an admin's view: every user's jobs (a user sees only their own)
    open_as(&browser, &app, "operator", "#/jobs").await;
    browser.find(&format!("tr[data-job-id=\"{carols}\"]")).await;
    browser.screenshot("all").await;

    browser.fill("#filter-user", "bob").await;
    browser.click("#filter-apply").await;
    browser.wait_for_text("#jobs-table", Duration::from_secs(10), |t| !t.contains("carol")).await;

    let rows = browser.find_all("#jobs-table tr[data-job-id]").await;
    let mut ids = Vec::new();
    for row in rows {
        ids.push(row.attr("data-job-id").await.unwrap().unwrap());
        assert_eq!(row.find(fantoccini::Locator::Css(".status")).await.unwrap().text().await.unwrap(), "SUCCEEDED");
    }
    ids.sort();
    let mut expected = bobs.to_vec();
    expected.sort();
    assert_eq!(ids, expected);
    // The filter is in the address, so the list can be bookmarked.
    assert!(browser.client.current_url().await.unwrap().fragment().unwrap().contains("bob"));
    browser.screenshot("filtered").await;

    browser.client.find(fantoccini::Locator::Css("#filter-status")).await.unwrap().select_by_value("FAILED").await.unwrap();
    browser.click("#filter-apply").await;
    browser.wait_for_text("#jobs-table", Duration::from_secs(10), |t| !t.contains(&bobs[0])).await;
    assert!(browser.find_all("#jobs-table tr[data-job-id]").await.is_empty());
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_is_canceled_from_its_page() {
    let (app, _dir) = app().await;
    let id = submit_as(&app, "alice", "shell:sleep").await;
    let browser = Browser::start("cancel").await;
    open_as(&browser, &app, "alice", &format!("#/job/{id}")).await;
    browser.wait_for_text("#job-status", Duration::from_secs(15), |t| t == "RUNNING").await;
    browser.screenshot("running").await;

    browser.click("#cancel-job").await;
    browser.client.accept_alert().await.unwrap();

    browser.wait_for_text("#job-status", Duration::from_secs(20), |t| t == "CANCELED").await;
    let job: Value = app.get_as("alice", &format!("/api/v1/job/{id}")).await.json().await.unwrap();
    assert_eq!(job["status"], "CANCELED");
    assert!(browser.find_all("#cancel-job").await.iter().next().is_none() || !browser.find("#cancel-job").await.is_displayed().await.unwrap());
    browser.screenshot("canceled").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_log_shows_its_tail_first_and_loads_earlier_output_on_demand() {
    let (app, _dir) = app().await;
    let id = submit_as(&app, "alice", "shell:big").await;
    let browser = Browser::start("large-log").await;
    open_as(&browser, &app, "alice", &format!("#/job/{id}")).await;

    let tail = browser.wait_for_text("#stdout", Duration::from_secs(15), |t| t.trim_end().ends_with("60000")).await;
    // `seq 1 60000` writes 348,894 bytes: the page holds its tail, not all of it.
    assert!(!tail.starts_with("1\n"), "the whole log was loaded");
    assert!(tail.len() < 200_000, "{} bytes shown", tail.len());
    browser.screenshot("tail").await;

    browser.click("#load-earlier-stdout").await;
    let more = browser.wait_for_text("#stdout", Duration::from_secs(10), |t| t.len() > tail.len()).await;
    assert!(more.trim_end().ends_with("60000"));
    assert!(more.ends_with(&tail) || more.trim_end().ends_with(tail.trim_end()), "earlier output goes before the tail");
    browser.screenshot("earlier").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_and_clusters_are_listed_and_credentials_in_a_context_are_never_shown() {
    let (app, _dir) = app().await;
    let browser = Browser::start("catalog").await;
    open_as(&browser, &app, "alice", "#/commands").await;
    let commands = browser.wait_for_text("#commands-table", Duration::from_secs(10), |t| t.contains("slow")).await;
    assert!(commands.contains("ping") && commands.contains("shell:big") && commands.contains("ACTIVE"), "{commands}");
    browser.screenshot("commands").await;

    browser.goto(&app.url("/ui/#/cluster/warehouse")).await;
    let page = browser.wait_for_text("#app", Duration::from_secs(10), |t| t.contains("myorg-acct")).await;
    assert!(page.contains("HEIMDALL_SVC"), "{page}");
    assert!(!page.contains("ssm:/heimdall/snowflake/key") && !page.contains("abc123"), "a credential is shown: {page}");
    assert!(page.matches("(hidden)").count() >= 2, "{page}");
    browser.screenshot("cluster").await;
    browser.close().await;
}


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_submit_page_previews_where_a_job_would_run_and_why_others_are_left_out() {
    let (app, _dir) = app().await;
    let browser = Browser::start("route").await;
    open_as(&browser, &app, "alice", "#/submit").await;
    browser.fill("#job-name", "preview").await;
    browser.fill("#job-version", "1").await;
    browser.fill("#command-criteria", "type:ping").await;
    browser.fill("#cluster-criteria", "type:local").await;
    browser.click("#preview-route").await;

    let table = browser.wait_for_text("#route-candidates", Duration::from_secs(10), |t| t.contains("ping-canary")).await;
    assert!(table.contains("99.01%") && table.contains("0.99%"), "{table}");
    let excluded = browser.client.find(fantoccini::Locator::Css("#route-excluded")).await.unwrap().html(false).await.unwrap();
    assert!(excluded.contains("command slow: the command lacks the command_criteria tags"), "{excluded}");
    assert!(excluded.contains("command ping on cluster warehouse: the cluster lacks"), "{excluded}");
    browser.screenshot("preview").await;
    assert_eq!(app.get_as("alice", "/api/v1/jobs").await.json::<Value>().await.unwrap()["data"], json!([]), "a preview submits nothing");

    browser.fill("#command-criteria", "type:nothing").await;
    browser.click("#preview-route").await;
    browser.wait_for_text("#route-none", Duration::from_secs(10), |t| t.contains("Nothing would run")).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_attributes_show_on_its_page_as_links_and_texts() {
    let (app, _dir) = app().await;
    let id = submit_as(&app, "alice", "_id:ping").await;
    let browser = Browser::start("job-attributes").await;
    open_as(&browser, &app, "alice", &format!("#/job/{id}")).await;

    browser.wait_for_text("#job-status", Duration::from_secs(10), |t| t == "SUCCEEDED").await;
    let attributes = browser.find_all(".job-attribute").await;
    assert_eq!(attributes.len(), 2);
    let link = browser.find("a.job-attribute").await;
    assert_eq!(link.attr("href").await.unwrap().as_deref(), Some(format!("https://traces.example.com/ping/{id}").as_str()));
    assert_eq!(link.attr("rel").await.unwrap().as_deref(), Some("noopener noreferrer"));
    assert_eq!(browser.text("span.job-attribute").await, "run by alice");
    browser.screenshot("job-attributes").await;
    browser.close().await;
}
