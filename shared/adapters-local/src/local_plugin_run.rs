//! A plugin run laid out as `heimdall serve` lays one out under its data dir: artifacts in
//! `jobs/`, the scratch folder in `work/`. What a plugin's own tests run it with.

use std::path::Path;
use std::sync::Arc;

use heimdall_domain::config::Config;
use heimdall_domain::{Job, JobRequest};
use heimdall_ports::PluginRun;

use crate::FsArtifactStore;

/// A run of `request` (as `user`'s job) on `config`'s first command and first cluster, its files
/// under `dir`.
pub fn local_plugin_run(dir: &Path, config: &Config, request: JobRequest, user: &str) -> PluginRun {
    PluginRun::new(
        Job::from_request(request, user, 0),
        config.commands[0].clone(),
        config.clusters[0].clone(),
        Arc::new(FsArtifactStore::new(dir.join("jobs"))),
        dir.join("work"),
    )
}
