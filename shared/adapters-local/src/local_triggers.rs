//! The triggers of `heimdall serve`, standing in for EventBridge Scheduler and S3 notifications:
//! schedules fire on this process's clock, and a file that appears under
//! `<watch root>/<bucket>/<key>` is an object created in `bucket` with that key.
//!
//! Both hand events to `JobService::submit_for_event`, the same path as the `events` function
//! on AWS. A file's event id is its path and modification time, so a file seen again (after a
//! restart, say) submits nothing new, while a file rewritten later is a new event.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use heimdall_domain::trigger::{Schedule, Trigger, TriggerSource, parse_schedule};
use heimdall_domain::trigger_event::{BusEvent, TriggerEvent};
use heimdall_service::JobService;
use tokio_util::sync::CancellationToken;

/// How the local triggers run.
#[derive(Debug, Clone)]
pub struct LocalTriggerSettings {
    /// The folder whose subfolders stand for buckets.
    pub watch_root: PathBuf,
    /// How often the watched folders are scanned.
    pub scan_interval: Duration,
}

/// The running schedule and folder-watch tasks.
pub struct LocalTriggers {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl LocalTriggers {
    /// Parses every schedule (an error names the trigger) and starts the triggers.
    pub fn spawn(service: Arc<JobService>, triggers: &[Trigger], settings: &LocalTriggerSettings) -> Result<Self, String> {
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut buckets = BTreeSet::new();
        for (index, trigger) in triggers.iter().enumerate() {
            let label = || format!("triggers[{index}] (name `{}`)", trigger.name);
            match trigger.source().map_err(|error| format!("{}: {error}", label()))? {
                TriggerSource::Schedule(expression) => {
                    let schedule = parse_schedule(expression).map_err(|error| format!("{}: {error}", label()))?;
                    tasks.push(tokio::spawn(run_schedule(Arc::clone(&service), trigger.name.clone(), schedule, stop.clone())));
                }
                TriggerSource::S3(s3) => {
                    buckets.insert(s3.bucket.clone());
                }
                // EventBridge events have no local source; they arrive on AWS only.
                TriggerSource::EventPattern(_) => {}
            }
        }
        if !buckets.is_empty() {
            for bucket in &buckets {
                let folder = settings.watch_root.join(bucket);
                std::fs::create_dir_all(&folder)
                    .map_err(|error| format!("Failed to create the watched folder {}: {error}", folder.display()))?;
            }
            tracing::info!(root = %settings.watch_root.display(), ?buckets, "watching folders for s3 triggers");
            let watch = FolderWatch { root: settings.watch_root.clone(), buckets, pending: BTreeMap::new(), done: BTreeSet::new() };
            tasks.push(tokio::spawn(watch.run(service, settings.scan_interval, stop.clone())));
        }
        Ok(Self { stop, tasks })
    }

    pub async fn shutdown(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn run_schedule(service: Arc<JobService>, trigger: String, schedule: Schedule, stop: CancellationToken) {
    let mut last = Utc::now();
    loop {
        let next = match &schedule {
            Schedule::Rate(every) => last + *every,
            Schedule::Cron(cron) => match cron.find_next_occurrence(&Utc::now(), false) {
                Ok(next) => next,
                Err(error) => {
                    tracing::warn!(%trigger, %error, "the schedule has no next time; the trigger stops");
                    return;
                }
            },
        };
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        last = next;
        let event = TriggerEvent::Scheduled { trigger: trigger.clone(), time: next };
        if let Err(error) = service.submit_for_event(&event).await {
            tracing::warn!(%trigger, error.message = %error, "a scheduled job could not be submitted");
        }
    }
}

/// A file's identity as an event: where it is and when it was last written.
type FileVersion = (PathBuf, SystemTime);

struct FolderWatch {
    root: PathBuf,
    buckets: BTreeSet<String>,
    /// Files seen once, with their size: they fire when seen again unchanged (not half-written).
    pending: BTreeMap<FileVersion, u64>,
    /// Files that fired (or were refused for good).
    done: BTreeSet<FileVersion>,
}

impl FolderWatch {
    async fn run(mut self, service: Arc<JobService>, interval: Duration, stop: CancellationToken) {
        loop {
            self.scan(&service).await;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    async fn scan(&mut self, service: &Arc<JobService>) {
        let mut seen = BTreeMap::new();
        for bucket in &self.buckets {
            let folder = self.root.join(bucket);
            let found = tokio::task::spawn_blocking(move || list_files(&folder)).await.unwrap_or_default();
            for (path, modified, size) in found {
                seen.insert((path, modified), (bucket.clone(), size));
            }
        }
        self.done.retain(|version| seen.contains_key(version));
        let mut pending = BTreeMap::new();
        for (version, (bucket, size)) in seen {
            if self.done.contains(&version) {
                continue;
            }
            if self.pending.get(&version) != Some(&size) {
                pending.insert(version, size);
                continue;
            }
            let event = file_event(&self.root.join(&bucket), &bucket, &version, size);
            match service.submit_for_event(&TriggerEvent::Event(event)).await {
                Ok(_) => {
                    self.done.insert(version);
                }
                // Kept pending: the next scan tries again.
                Err(error) => {
                    tracing::warn!(file = %version.0.display(), error.message = %error, "a file's job could not be submitted");
                    pending.insert(version, size);
                }
            }
        }
        self.pending = pending;
    }
}

/// The object-created event of a file under a bucket's folder.
fn file_event(folder: &Path, bucket: &str, (path, modified): &FileVersion, size: u64) -> BusEvent {
    let key = path.strip_prefix(folder).unwrap_or(path).components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
    let time: DateTime<Utc> = (*modified).into();
    let nanos = modified.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    BusEvent::object_created(format!("file:{bucket}/{key}@{nanos}"), time, bucket, &key, size)
}

/// Every regular file under `folder` (hidden names skipped: writers rename from those).
fn list_files(folder: &Path) -> Vec<(PathBuf, SystemTime, u64)> {
    let mut files = Vec::new();
    let mut folders = vec![folder.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(metadata) = entry.metadata() else { continue };
            if metadata.is_dir() {
                folders.push(entry.path());
            } else if metadata.is_file() {
                files.push((entry.path(), metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH), metadata.len()));
            }
        }
    }
    files
}
