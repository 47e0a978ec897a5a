//! Logs read in byte ranges over HTTP: the tail first, then from an offset (how the web UI and
//! `heimdall logs --follow` read large and growing logs), and a range past the end refused
//! with its total.

use heimdall_tests::spawn_app;
use serde_json::json;

#[tokio::test]
async fn a_log_is_served_whole_or_in_one_byte_range() {
    let app = spawn_app().await;
    let job = app
        .submit_ok(&json!({"name": "e", "version": "1", "command_criteria": ["shell:echo"], "context": {"arguments": ["0123456789"]}}))
        .await;
    let url = app.url(&format!("/api/v1/job/{}/stdout", job["id"].as_str().unwrap()));
    let get = |range: Option<&'static str>| {
        let request = app.client.get(&url);
        let request = match range {
            Some(range) => request.header("Range", range),
            None => request,
        };
        async move { request.send().await.unwrap() }
    };

    let whole = get(None).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.text().await.unwrap(), "0123456789\n");

    for (range, content_range, body) in
        [("bytes=-4", "bytes 7-10/11", "789\n"), ("bytes=8-", "bytes 8-10/11", "89\n"), ("bytes=0-2", "bytes 0-2/11", "012")]
    {
        let part = get(Some(range)).await;
        assert_eq!(part.status(), 206, "{range}");
        assert_eq!(part.headers()["content-range"], content_range, "{range}");
        assert_eq!(part.text().await.unwrap(), body, "{range}");
    }

    let past = get(Some("bytes=11-")).await;
    assert_eq!(past.status(), 416);
    assert_eq!(past.headers()["content-range"], "bytes */11");
    let error: serde_json::Value = past.json().await.unwrap();
    assert_eq!(error["code"], "RANGE_NOT_SATISFIABLE");
    // Several ranges are not served as such: the whole log comes back, as HTTP allows.
    assert_eq!(get(Some("bytes=0-1,4-5")).await.status(), 200);
}
