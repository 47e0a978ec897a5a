//! The async figures of `scripts/bench`: async `echo` jobs through a running `heimdall serve`,
//! from submit to SUCCEEDED, one after another (latency) and all at once (burst).
//!
//! `cargo run --release -p heimdall-cli --example async_load -- http://127.0.0.1:9090 200`
//! prints two markdown rows. A job is seen ended by polling its status every 250 µs (the
//! latency includes up to that much); one job is polled at a time.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

const USER: &str = "bench";
const POLL: Duration = Duration::from_micros(250);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "http://127.0.0.1:9090".into());
    let count: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(200);
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;

    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let id = submit(&client, &base).await?;
        let status = wait(&client, &base, &id).await?;
        anyhow::ensure!(status == "SUCCEEDED", "job {id} ended {status}");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let at = |share: f64| latencies[((latencies.len() - 1) as f64 * share) as usize];
    println!(
        "| async echo, submit to SUCCEEDED, {count} one after another | median {:.2} ms | p90 {:.2} ms |",
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3
    );

    let started = Instant::now();
    let submits = (0..count).map(|_| submit(&client, &base));
    let ids: Vec<String> = futures::future::join_all(submits).await.into_iter().collect::<Result<_, _>>()?;
    // One poller, not one per job (200 pollers would load the server more than the jobs do):
    // the pool runs jobs in submit order, so the last one ends about last; then each is read.
    wait(&client, &base, ids.last().map(String::as_str).unwrap_or_default()).await?;
    let mut ends = Vec::with_capacity(ids.len());
    for id in &ids {
        ends.push(wait(&client, &base, id).await);
    }
    let elapsed = started.elapsed();
    let failed = ends.iter().filter(|end| !matches!(end, Ok(status) if status == "SUCCEEDED")).count();
    println!(
        "| burst of {count} async echo jobs, submit to all SUCCEEDED | {:.0} jobs/s | {failed} not SUCCEEDED |",
        count as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

async fn submit(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let body = json!({
        "name": "bench", "version": "1", "is_sync": false,
        "command_criteria": ["shell:echo"], "cluster_criteria": ["type:localhost"],
        "context": {"arguments": ["hi"]}
    });
    let answer: Value = client
        .post(format!("{base}/api/v1/job"))
        .header("X-Heimdall-User", USER)
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(answer["id"].as_str().unwrap_or_default().to_owned())
}

/// The job's final status, polled.
async fn wait(client: &reqwest::Client, base: &str, id: &str) -> anyhow::Result<String> {
    loop {
        let job: Value = client
            .get(format!("{base}/api/v1/job/{id}/status"))
            .header("X-Heimdall-User", USER)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let status = job["status"].as_str().unwrap_or_default();
        if matches!(status, "SUCCEEDED" | "FAILED" | "CANCELED") {
            return Ok(status.to_owned());
        }
        tokio::time::sleep(POLL).await;
    }
}
