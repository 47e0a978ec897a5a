//! What each client command does, and the exit code it ends with.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use heimdall_domain::JobStatus;
use serde_json::{Map, Value, json};

use crate::args::{CliCommand, ClientCommand, JobsArgs, LogsArgs, OutputFormat, ResultArgs, ResultFormat, SubmitArgs};
use crate::client::api_client::{ApiClient, ClientError};
use crate::client::render;

/// Exit codes (also in `heimdall --help`).
pub const EXIT_OK: i32 = 0;
pub const EXIT_REQUEST_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_JOB_FAILED: i32 = 3;
pub const EXIT_JOB_CANCELED: i32 = 4;

/// How often `--wait` and `logs --follow` ask again.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// A command's failure: a line for stderr and an exit code.
#[derive(Debug)]
struct Failure {
    message: String,
    code: i32,
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Failure { message: error.to_string(), code: EXIT_REQUEST_FAILED }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure { message: message.into(), code: EXIT_USAGE }
}

/// Runs a client command; answers the process's exit code (errors printed on one line).
pub async fn run(command: CliCommand) -> i32 {
    let outcome = match command {
        CliCommand::Serve(_) => Err(usage("internal: serve is not a client command")),
        CliCommand::Submit(c) => with_client(&c, |api, out| submit(api, out, &c.args)).await,
        CliCommand::Route(c) => with_client(&c, |api, out| route(api, out, &c.args)).await,
        CliCommand::Status(c) => with_client(&c, |api, out| status(api, out, &c.args.id)).await,
        CliCommand::Get(c) => with_client(&c, |api, _| get(api, &c.args.id)).await,
        CliCommand::Logs(c) => with_client(&c, |api, _| logs(api, &c.args)).await,
        CliCommand::Result(c) => with_client(&c, |api, _| result(api, &c.args)).await,
        CliCommand::Cancel(c) => with_client(&c, |api, out| cancel(api, out, &c.args.id)).await,
        CliCommand::Jobs(c) => with_client(&c, |api, out| jobs(api, out, &c.args)).await,
        CliCommand::Commands(c) => with_client(&c, |api, out| catalog(api, out, "commands")).await,
        CliCommand::Clusters(c) => with_client(&c, |api, out| catalog(api, out, "clusters")).await,
    };
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("heimdall: {}", failure.message);
            failure.code
        }
    }
}

async fn with_client<T: clap::Args, F, Fut>(command: &ClientCommand<T>, body: F) -> Result<i32, Failure>
where
    F: FnOnce(ApiClient, OutputFormat) -> Fut,
    Fut: Future<Output = Result<i32, Failure>>,
{
    let api = ApiClient::new(&command.connection).await.map_err(|error| Failure { message: format!("{error:#}"), code: EXIT_REQUEST_FAILED })?;
    body(api, command.connection.output).await
}

fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// A path segment with everything but unreserved characters percent-encoded.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// The status in an API answer (a job or `/status`); `None` when absent or unknown.
fn status_of(answer: &Value) -> Option<JobStatus> {
    answer["status"].as_str()?.parse().ok()
}

fn has_ended(answer: &Value) -> bool {
    status_of(answer).is_some_and(JobStatus::is_terminal)
}

/// The exit code of a job as answered: how it ended, or 0 while it has not.
fn exit_code_of(answer: &Value) -> i32 {
    match status_of(answer) {
        Some(JobStatus::Failed) => EXIT_JOB_FAILED,
        Some(JobStatus::Canceled) => EXIT_JOB_CANCELED,
        _ => EXIT_OK,
    }
}

/// JSON or YAML text (`-`: stdin) as a JSON value.
fn read_document(path: &Path, what: &str) -> Result<Value, Failure> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|error| usage(format!("cannot read the {what} from stdin: {error}")))?;
        text
    } else {
        std::fs::read_to_string(path).map_err(|error| usage(format!("cannot read the {what} {}: {error}", path.display())))?
    };
    if let Ok(value) = serde_json::from_str(&text) {
        return Ok(value);
    }
    serde_saphyr::from_str::<Value>(&text).map_err(|error| usage(format!("the {what} {} is neither JSON nor YAML: {error}", path.display())))
}

/// The job request the flags (and file) describe.
fn job_request(args: &SubmitArgs) -> Result<Value, Failure> {
    let mut request = match &args.file {
        Some(path) => match read_document(path, "job request")? {
            Value::Object(map) => map,
            _ => return Err(usage("the job request file must hold an object with name, version, command_criteria, …")),
        },
        None => Map::new(),
    };
    let mut set = |key: &str, value: Value| {
        request.insert(key.to_owned(), value);
    };
    if let Some(name) = &args.name {
        set("name", json!(name));
    }
    if let Some(version) = &args.version {
        set("version", json!(version));
    }
    if let Some(description) = &args.description {
        set("description", json!(description));
    }
    if !args.command_criteria.is_empty() {
        set("command_criteria", json!(args.command_criteria));
    }
    if !args.cluster_criteria.is_empty() {
        set("cluster_criteria", json!(args.cluster_criteria));
    }
    if !args.tags.is_empty() {
        set("tags", json!(args.tags));
    }
    let context = match (&args.context, &args.context_file) {
        (Some(text), _) => Some(serde_json::from_str::<Value>(text).map_err(|error| usage(format!("--context is not JSON: {error}")))?),
        (None, Some(path)) => Some(read_document(path, "context")?),
        (None, None) => None,
    };
    if let Some(context) = context {
        if !context.is_object() {
            return Err(usage("the context must be a JSON object, e.g. '{\"query\": \"select 1\"}'"));
        }
        set("context", context);
    }
    if !args.arguments.is_empty() {
        let context = request.entry("context").or_insert_with(|| json!({}));
        let Some(context) = context.as_object_mut() else { return Err(usage("the context must be a JSON object")) };
        context.insert("arguments".into(), json!(args.arguments));
    }
    if args.sync {
        request.insert("is_sync".into(), json!(true));
    } else if args.async_ {
        request.insert("is_sync".into(), json!(false));
    }
    for required in ["name", "version"] {
        if !request.contains_key(required) {
            return Err(usage(format!("give --{required} (or a --file whose request has `{required}`)")));
        }
    }
    if !request.contains_key("command_criteria") {
        return Err(usage("give --command-criteria, the tags of the command to run, e.g. -c type:ping"));
    }
    Ok(Value::Object(request))
}

async fn submit(api: ApiClient, output: OutputFormat, args: &SubmitArgs) -> Result<i32, Failure> {
    let request = job_request(args)?;
    let mut job = api.post_json("/api/v1/job", &request).await?;
    let id = job["id"].as_str().unwrap_or_default().to_owned();
    if args.wait && !has_ended(&job) {
        wait_for_end(&api, &id).await?;
        job = api.get_json(&format!("/api/v1/job/{}", segment(&id))).await?;
    }
    match output {
        OutputFormat::Json => print_json(&job),
        OutputFormat::Text => {
            println!("{id} {}", render::cell(&job["status"]));
            if let Some(error) = job["error"].as_str() {
                eprintln!("error: {error}");
            }
            if let Some(result) = job.get("result").filter(|r| r.is_object()) {
                print!("{}", result_table(result));
            }
        }
    }
    Ok(exit_code_of(&job))
}

/// Prints the routing of the job the flags describe; exits 1 when nothing would run it.
async fn route(api: ApiClient, output: OutputFormat, args: &SubmitArgs) -> Result<i32, Failure> {
    let plan = api.post_json("/api/v1/job/route", &job_request(args)?).await?;
    let candidates = plan["candidates"].as_array().cloned().unwrap_or_default();
    match output {
        OutputFormat::Json => print_json(&plan),
        OutputFormat::Text => {
            println!("candidates:");
            for candidate in &candidates {
                let chance = candidate["probability"].as_f64().unwrap_or_default() * 100.0;
                println!("  {chance:>6.2}%  {} on {}", render::cell(&candidate["command_id"]), render::cell(&candidate["cluster_id"]));
            }
            if candidates.is_empty() {
                println!("  none: nothing would run this job");
            }
            println!("left out:");
            for excluded in plan["excluded"].as_array().into_iter().flatten() {
                let what = match (excluded["command_id"].as_str(), excluded["cluster_id"].as_str()) {
                    (Some(command), Some(cluster)) => format!("{command} on {cluster}"),
                    (Some(command), None) => format!("command {command}"),
                    (None, Some(cluster)) => format!("cluster {cluster}"),
                    (None, None) => String::new(),
                };
                println!("  {what}: {}", render::cell(&excluded["reason"]));
            }
        }
    }
    Ok(if candidates.is_empty() { EXIT_REQUEST_FAILED } else { EXIT_OK })
}

/// Polls the job's status until it ends; shows it on stderr (a spinner on a terminal, a line
/// per change otherwise).
async fn wait_for_end(api: &ApiClient, id: &str) -> Result<(), Failure> {
    let started = Instant::now();
    let on_terminal = std::io::stderr().is_terminal();
    let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let mut last_status = String::new();
    let mut tick = 0;
    loop {
        let answer = api.get_json(&format!("/api/v1/job/{}/status", segment(id))).await?;
        let status = render::cell(&answer["status"]);
        if on_terminal {
            eprint!("\r{} {id} {status} {}s   ", frames[tick % frames.len()], started.elapsed().as_secs());
            let _ = std::io::stderr().flush();
        } else if status != last_status {
            eprintln!("{id} {status}");
        }
        if has_ended(&answer) {
            if on_terminal {
                eprintln!();
            }
            return Ok(());
        }
        last_status = status;
        tick += 1;
        tokio::time::sleep(POLL_EVERY).await;
    }
}

async fn status(api: ApiClient, output: OutputFormat, id: &str) -> Result<i32, Failure> {
    let answer = api.get_json(&format!("/api/v1/job/{}/status", segment(id))).await?;
    match output {
        OutputFormat::Json => print_json(&answer),
        OutputFormat::Text => {
            println!("{}", render::cell(&answer["status"]));
            if let Some(error) = answer["error"].as_str() {
                println!("error: {error}");
            }
        }
    }
    Ok(EXIT_OK)
}

async fn get(api: ApiClient, id: &str) -> Result<i32, Failure> {
    print_json(&api.get_json(&format!("/api/v1/job/{}", segment(id))).await?);
    Ok(EXIT_OK)
}

async fn logs(api: ApiClient, args: &LogsArgs) -> Result<i32, Failure> {
    let which = if args.stderr { "stderr" } else { "stdout" };
    let path = format!("/api/v1/job/{}/{which}", segment(&args.id));
    let mut offset = 0u64;
    let mut out = std::io::stdout();
    loop {
        // Whether the job had ended before this read: then the read holds the last bytes.
        let ended = !args.follow || has_ended(&api.get_json(&format!("/api/v1/job/{}/status", segment(&args.id))).await?);
        let part = api.get_log(&path, offset).await?;
        out.write_all(&part.bytes).and_then(|()| out.flush()).map_err(|error| Failure { message: format!("cannot write: {error}"), code: EXIT_REQUEST_FAILED })?;
        offset += part.bytes.len() as u64;
        if ended {
            return Ok(EXIT_OK);
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// A result's column headers (by `header` of each column) and its rows as text cells.
fn result_cells(result: &Value, header: impl Fn(&Value) -> String) -> (Vec<String>, Vec<Vec<String>>) {
    let columns = result["columns"].as_array().map(|columns| columns.iter().map(header).collect()).unwrap_or_default();
    let rows = result["data"]
        .as_array()
        .map(|rows| rows.iter().map(|row| row.as_array().map(|cells| cells.iter().map(render::cell).collect()).unwrap_or_default()).collect())
        .unwrap_or_default();
    (columns, rows)
}

/// A result as an aligned table, each header `name (type)`.
fn result_table(result: &Value) -> String {
    let (header, rows) = result_cells(result, |c| format!("{} ({})", render::cell(&c["name"]), render::cell(&c["type"])));
    render::table(&header.iter().map(String::as_str).collect::<Vec<_>>(), &rows)
}

async fn result(api: ApiClient, args: &ResultArgs) -> Result<i32, Failure> {
    let result = api.get_json(&format!("/api/v1/job/{}/result", segment(&args.id))).await?;
    match args.format {
        ResultFormat::Json => print_json(&result),
        ResultFormat::Table => print!("{}", result_table(&result)),
        ResultFormat::Csv => {
            let (header, rows) = result_cells(&result, |c| render::cell(&c["name"]));
            print!("{}", render::csv(&header, &rows));
        }
    }
    Ok(EXIT_OK)
}

async fn cancel(api: ApiClient, output: OutputFormat, id: &str) -> Result<i32, Failure> {
    let answer = api.post_json(&format!("/api/v1/job/{}/cancel", segment(id)), &json!({})).await?;
    match output {
        OutputFormat::Json => print_json(&answer),
        OutputFormat::Text => println!("{id} {}", render::cell(&answer["status"])),
    }
    Ok(EXIT_OK)
}

async fn jobs(api: ApiClient, output: OutputFormat, args: &JobsArgs) -> Result<i32, Failure> {
    // Percent-encoded (a space as %20, never `+`), as SigV4's canonical query string has it.
    let filters = [
        ("username", &args.username),
        ("status", &args.status),
        ("name", &args.name),
        ("command", &args.command),
        ("cluster", &args.cluster),
        ("cursor", &args.cursor),
    ];
    let mut query: Vec<String> =
        filters.iter().filter_map(|(key, value)| value.as_ref().map(|value| format!("{key}={}", segment(value)))).collect();
    query.push(format!("limit={}", args.limit));
    let page = api.get_json(&format!("/api/v1/jobs?{}", query.join("&"))).await?;
    match output {
        OutputFormat::Json => print_json(&page),
        OutputFormat::Text => {
            let rows: Vec<Vec<String>> = page["data"]
                .as_array()
                .map(|jobs| {
                    jobs.iter()
                        .map(|job| {
                            vec![
                                render::cell(&job["id"]),
                                render::cell(&job["status"]),
                                render::cell(&job["name"]),
                                render::cell(&job["user"]),
                                render::cell(&job["command_name"]),
                                render::cell(&job["cluster_name"]),
                                render::time(&job["created_at"]),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            print!("{}", render::table(&["ID", "STATUS", "NAME", "USER", "COMMAND", "CLUSTER", "CREATED (UTC)"], &rows));
            if let Some(cursor) = page["next_cursor"].as_str().filter(|_| page["has_more"] == true) {
                eprintln!("more: heimdall jobs --cursor {cursor}");
            }
        }
    }
    Ok(EXIT_OK)
}

async fn catalog(api: ApiClient, output: OutputFormat, kind: &str) -> Result<i32, Failure> {
    let answer = api.get_json(&format!("/api/v1/{kind}")).await?;
    match output {
        OutputFormat::Json => print_json(&answer),
        OutputFormat::Text => {
            let tags = |value: &Value| value.as_array().map(|t| t.iter().map(render::cell).collect::<Vec<_>>().join(",")).unwrap_or_default();
            let rows: Vec<Vec<String>> = answer["data"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|item| {
                            let mut row = vec![render::cell(&item["id"]), render::cell(&item["status"])];
                            if kind == "commands" {
                                row.push(render::cell(&item["plugin"]));
                                row.push(tags(&item["cluster_tags"]));
                            }
                            row.push(tags(&item["tags"]));
                            row
                        })
                        .collect()
                })
                .unwrap_or_default();
            let header: &[&str] = if kind == "commands" { &["ID", "STATUS", "PLUGIN", "CLUSTER TAGS", "TAGS"] } else { &["ID", "STATUS", "TAGS"] };
            print!("{}", render::table(header, &rows));
        }
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::Cli;

    fn submit_args(line: &[&str]) -> SubmitArgs {
        let cli = Cli::try_parse_from([&["heimdall", "submit"], line].concat()).unwrap();
        match cli.command {
            CliCommand::Submit(command) => command.args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_build_the_job_request() {
        let request = job_request(&submit_args(&[
            "--name", "n", "--version", "1", "-c", "shell:echo,type:shell", "--arg", "a", "--arg", "b", "--context", r#"{"x": 1}"#, "--async",
        ]))
        .unwrap();
        assert_eq!(
            request,
            json!({"name": "n", "version": "1", "command_criteria": ["shell:echo", "type:shell"], "context": {"x": 1, "arguments": ["a", "b"]}, "is_sync": false})
        );
    }

    #[test]
    fn missing_or_malformed_parts_are_usage_errors_that_say_what_to_give() {
        let failure = job_request(&submit_args(&["--version", "1", "-c", "t:x"])).err().unwrap();
        assert_eq!((failure.code, failure.message.as_str()), (EXIT_USAGE, "give --name (or a --file whose request has `name`)"));
        let failure = job_request(&submit_args(&["--name", "n", "--version", "1"])).err().unwrap();
        assert!(failure.message.contains("--command-criteria"), "{}", failure.message);
        let failure = job_request(&submit_args(&["--name", "n", "--version", "1", "-c", "t:x", "--context", "[1]"])).err().unwrap();
        assert!(failure.message.contains("must be a JSON object"), "{}", failure.message);
    }

    #[test]
    fn a_path_segment_is_percent_encoded() {
        assert_eq!(segment("0b5a-x_y.z~"), "0b5a-x_y.z~");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
