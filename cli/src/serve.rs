//! `heimdall serve`: the REST API, sync and async jobs, and a durable store, in one process.
//!
//! Data dir layout: `heimdall.db` (jobs, SQLite), `jobs/<id>/{stdout,stderr,result.json}`,
//! `work/<id>/` (scratch folders of running jobs), `heimdall.lock` (one server per data dir),
//! `buckets/<bucket>/` (the folders `s3` triggers watch, unless `--watch-dir` says otherwise).

use std::fs::File;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use heimdall_adapters_local::{FsArtifactStore, InProcessJobQueue, LocalTriggerSettings, LocalTriggers, LocalWorkers, SqliteJobStore};
use heimdall_api::identity::host_check::hosts_naming;
use heimdall_api::identity::{JwtSettings, JwtVerifier};
use heimdall_api::{AppState, Identity, router};
use heimdall_plugins::builtin_plugins;
use heimdall_service::{Catalog, JobService, PluginRegistry, ServiceSettings};
use tokio::net::TcpListener;

use crate::args::{AuthMode, ServeArgs};
use crate::janitor::JanitorSettings;
use crate::{health_checks, janitor};

/// The example config, built into the binary: `heimdall serve` works with no file at all.
pub const BUNDLED_CONFIG: &str = include_str!("../../config/example.yml");

/// A sync job's result is answered inline up to this size.
const INLINE_RESULT_LIMIT: u64 = 8 * 1024 * 1024;

/// How often `heimdall serve` scans the folders of `s3` triggers.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// How often `heimdall serve` reads the catalog store's version.
const CATALOG_REFRESH: Duration = Duration::from_secs(5);

/// How often `heimdall serve`'s janitor sweeps.
pub const DEFAULT_JANITOR_INTERVAL: Duration = Duration::from_secs(60);

/// How `heimdall serve` identifies callers (see `heimdall_api::identity`).
#[derive(Debug, Clone)]
pub enum ServeAuth {
    /// `X-Heimdall-User`; refused at start unless the server listens on loopback.
    /// `default_user` (local development) stands in for requests without the header.
    Header { default_user: Option<String> },
    /// Bearer JWTs; `jwks` is a file path or an http(s) URL.
    Jwt { issuer: String, audience: String, jwks: String },
    /// `X-Heimdall-User` beside `X-Heimdall-Proxy-Secret: <secret>`.
    TrustedProxy { secret: String },
}

/// Everything `run` needs besides the listener.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub data_dir: PathBuf,
    /// `None`: the bundled example config.
    pub config: Option<PathBuf>,
    /// How callers are identified.
    pub auth: ServeAuth,
    /// Sync jobs running at once.
    pub max_sync_jobs: usize,
    pub shutdown_grace: Duration,
    /// The folder standing in for S3 buckets (`s3` triggers); `None`: `<data_dir>/buckets`.
    pub watch_dir: Option<PathBuf>,
    /// How often the watched folders are scanned.
    pub watch_interval: Duration,
    /// Jobs that ended longer ago are deleted with their files; `None`: kept forever.
    pub retention: Option<Duration>,
    /// How often the janitor looks for them.
    pub janitor_interval: Duration,
    /// The AWS configuration of the data plugins (dynamodb, glue); `None`: the standard chain
    /// (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials), loaded at start without network calls.
    pub aws: Option<aws_config::SdkConfig>,
}

impl TryFrom<ServeArgs> for ServeSettings {
    type Error = anyhow::Error;

    fn try_from(args: ServeArgs) -> anyhow::Result<Self> {
        let auth = match args.auth {
            AuthMode::Header => ServeAuth::Header { default_user: args.default_user },
            _ if args.default_user.is_some() => {
                return Err(anyhow!("--default-user works only with --auth header; with --auth jwt or trusted-proxy every caller must be authenticated"));
            }
            AuthMode::Jwt => {
                let (Some(issuer), Some(audience), Some(jwks)) = (args.jwt_issuer, args.jwt_audience, args.jwks) else {
                    return Err(anyhow!("--auth jwt needs --jwt-issuer, --jwt-audience and --jwks (a JWKS file or URL)"));
                };
                ServeAuth::Jwt { issuer, audience, jwks }
            }
            AuthMode::TrustedProxy => match args.proxy_secret {
                Some(secret) if secret.len() >= 16 => ServeAuth::TrustedProxy { secret },
                _ => return Err(anyhow!("--auth trusted-proxy needs HEIMDALL_PROXY_SECRET, at least 16 characters, that the proxy sends as X-Heimdall-Proxy-Secret")),
            },
        };
        Ok(Self {
            data_dir: args.data_dir,
            config: args.config,
            auth,
            max_sync_jobs: usize::from(args.max_sync_jobs),
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
            watch_dir: args.watch_dir,
            watch_interval: DEFAULT_WATCH_INTERVAL,
            retention: (args.retention_days > 0).then(|| Duration::from_secs(u64::from(args.retention_days) * 86_400)),
            janitor_interval: DEFAULT_JANITOR_INTERVAL,
            aws: None,
        })
    }
}

/// Binds the address and serves until Ctrl-C or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("Failed to listen on {}", args.listen))?;
    let settings = ServeSettings::try_from(args)?;
    run(listener, settings, shutdown_signal()).await
}

/// Serves on `listener` until `shutdown` completes, then drains: in-flight requests finish,
/// async jobs get the grace period.
pub async fn run(
    listener: TcpListener,
    settings: ServeSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Before anything runs a job: the server's environment holds credentials (AWS, tokens).
    heimdall_plugins::harden_server_process();
    let address = listener.local_addr().context("Failed to read the listening address")?;
    let identity = identity_for(&settings, address).await?;
    let (config_text, config_name) = read_config(settings.config.as_deref())?;
    let aws = match settings.aws {
        Some(aws) => aws,
        None => heimdall_adapters_aws::load_sdk_config().await,
    };
    let plugins = PluginRegistry::new(builtin_plugins().into_iter().chain(heimdall_plugins_aws::data_plugins(&aws, None)));
    let catalog = Catalog::load(&config_text, &config_name, &plugins).map_err(|error| anyhow!("{error}"))?;

    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("Failed to create the data dir {}", settings.data_dir.display()))?;
    let _lock = lock_data_dir(&settings.data_dir)?;
    let jobs = SqliteJobStore::open(&settings.data_dir.join("heimdall.db")).context("Failed to open the job database")?;
    let catalog_store = jobs.catalog_store();
    close_to_jobs(&settings.data_dir)?;
    let artifacts = FsArtifactStore::new(settings.data_dir.join("jobs"));
    let (queue, queue_receiver) = InProcessJobQueue::new();
    let pool_size = catalog.pool().size;
    let service = Arc::new(JobService::new(
        Arc::new(catalog),
        plugins,
        Arc::new(jobs),
        Arc::new(artifacts),
        Arc::new(queue),
        ServiceSettings {
            work_root: settings.data_dir.join("work"),
            inline_result_limit: INLINE_RESULT_LIMIT,
            max_job_seconds: ServiceSettings::DEFAULT_MAX_JOB_SECONDS,
            max_sync_jobs: settings.max_sync_jobs,
            max_sync_seconds: ServiceSettings::DEFAULT_MAX_SYNC_SECONDS,
        },
    )
    // One process: its own changes reload at once; the refresh only bounds a missed one.
    .with_catalog_store(Arc::new(catalog_store), CATALOG_REFRESH, true)
    .await
    .context("Failed to seed the catalog from the config")?);

    let recovery = service.recover_after_restart().await.context("Failed to recover jobs from the last run")?;
    tracing::info!(failed = recovery.failed, canceled = recovery.canceled, requeued = recovery.requeued, "recovered jobs of the last run");
    let workers = LocalWorkers::spawn(Arc::clone(&service), queue_receiver, pool_size, settings.shutdown_grace);
    let janitor = janitor::spawn(Arc::clone(&service), JanitorSettings { retention: settings.retention, interval: settings.janitor_interval });
    let health_checks = health_checks::spawn(Arc::clone(&service));
    let trigger_settings = LocalTriggerSettings {
        watch_root: settings.watch_dir.clone().unwrap_or_else(|| settings.data_dir.join("buckets")),
        scan_interval: settings.watch_interval,
    };
    let triggers = LocalTriggers::spawn(Arc::clone(&service), service.catalog_held().triggers(), &trigger_settings)
        .map_err(|error| anyhow!("{config_name}: {error}"))?;

    let app = router(AppState { service, identity: identity.clone() });
    tracing::info!(%address, config = %config_name, data_dir = %settings.data_dir.display(), auth = ?identity, "heimdall is serving");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
        .context("The HTTP server failed")?;
    tracing::info!("stopping: waiting for running async jobs");
    triggers.shutdown().await;
    janitor.shutdown().await;
    health_checks.shutdown().await;
    workers.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// How callers are identified on `address`: header identity only on loopback, where a request
/// must also name this server in `Host`; elsewhere an explicit mode.
async fn identity_for(settings: &ServeSettings, address: SocketAddr) -> anyhow::Result<Identity> {
    match &settings.auth {
        ServeAuth::Header { .. } if !address.ip().is_loopback() => Err(anyhow!(
            "heimdall serve listens on {address}, beyond this machine, but --auth header lets any caller name itself; \
             pass --auth jwt (tokens verified here) or --auth trusted-proxy (behind a proxy that authenticates), \
             or listen on 127.0.0.1"
        )),
        ServeAuth::Header { default_user } => Ok(Identity::LoopbackHeader {
            default_user: default_user.clone(),
            allowed_hosts: Arc::new(hosts_naming(address)),
        }),
        ServeAuth::TrustedProxy { secret } => Ok(Identity::TrustedProxy { secret: Arc::from(secret.as_str()) }),
        ServeAuth::Jwt { issuer, audience, jwks } => {
            let keys = read_jwks(jwks).await?;
            let verifier = JwtVerifier::new(JwtSettings { issuer: issuer.clone(), audience: audience.clone(), keys })
                .map_err(|problem| anyhow!("--jwks {jwks}: {problem}"))?;
            Ok(Identity::Jwt(Arc::new(verifier)))
        }
    }
}

/// A JWKS from a file or an http(s) URL.
async fn read_jwks(location: &str) -> anyhow::Result<heimdall_api::identity::jwt::JwkSet> {
    let text = if location.starts_with("https://") || location.starts_with("http://") {
        let response = reqwest::get(location).await.with_context(|| format!("Failed to fetch the JWKS {location}"))?;
        let response = response.error_for_status().with_context(|| format!("Failed to fetch the JWKS {location}"))?;
        response.text().await.with_context(|| format!("Failed to read the JWKS {location}"))?
    } else {
        std::fs::read_to_string(location).with_context(|| format!("Failed to read the JWKS file {location}"))?
    };
    serde_json::from_str(&text).with_context(|| format!("{location} is not a JWKS (a JSON object with `keys`)"))
}

fn read_config(path: Option<&Path>) -> anyhow::Result<(String, String)> {
    match path {
        None => Ok((BUNDLED_CONFIG.to_owned(), "bundled config/example.yml".to_owned())),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("Failed to read the config file {}", path.display()))?;
            Ok((text, path.display().to_string()))
        }
    }
}

/// The job store and the job artifacts readable by this server's user only, beside Landlock
/// (jobs of a root server run as another user; on kernels without Landlock this is the guard).
fn close_to_jobs(data_dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (path, mode) in [("jobs", 0o700), ("work", 0o711)] {
        let path = data_dir.join(path);
        std::fs::create_dir_all(&path).with_context(|| format!("Failed to create {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("Failed to restrict {}", path.display()))?;
    }
    for file in ["heimdall.db", "heimdall.db-wal", "heimdall.db-shm"] {
        let path = data_dir.join(file);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("Failed to restrict {}", path.display()))?;
        }
    }
    Ok(())
}

/// One server per data dir: two would both run and recover the same jobs.
fn lock_data_dir(data_dir: &Path) -> anyhow::Result<File> {
    let path = data_dir.join("heimdall.lock");
    let file = File::create(&path).with_context(|| format!("Failed to create {}", path.display()))?;
    file.try_lock().map_err(|_| {
        anyhow!("another heimdall serve is using the data dir {}; stop it or pass another --data-dir", data_dir.display())
    })?;
    Ok(file)
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}
