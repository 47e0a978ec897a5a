//! Submitting a job: match it to a command and cluster, hold it to the caller's limits and
//! idempotency key, record it, then run it now (sync) or queue it (async).

use std::sync::Arc;

use heimdall_domain::clock::now_epoch_seconds;
use heimdall_domain::idempotency::IdempotencyClaim;
use heimdall_domain::selection::{RoutePlan, SelectionError, first_matching, pick, route};
use heimdall_domain::{Caller, Job, JobId, JobRequest, JobStatus, names};
use heimdall_ports::{StatusChange, StoreError};
use rand::Rng;

use crate::job_service::{JobService, SubmittedJob};
use crate::service_error::ServiceError;

impl JobService {
    /// Submits a job for `caller`: matches it, records it, and either runs it now (sync, answered
    /// finished) or queues it (async, answered ACCEPTED).
    pub async fn submit(self: &Arc<Self>, caller: &Caller, request: JobRequest) -> Result<SubmittedJob, ServiceError> {
        self.submit_answered(caller, request, None).await
    }

    /// `submit` under the caller's `Idempotency-Key`: within a day, the same key with the same
    /// request answers the job the first one created (`replayed`), never a second job; the
    /// same key with another request is `IdempotencyKeyReused`.
    pub async fn submit_keyed(self: &Arc<Self>, caller: &Caller, request: JobRequest, key: &str) -> Result<SubmittedJob, ServiceError> {
        self.submit_answered(caller, request, Some(key)).await
    }

    /// A new job for a client: submitted, then answered with its attributes.
    async fn submit_answered(self: &Arc<Self>, caller: &Caller, request: JobRequest, key: Option<&str>) -> Result<SubmittedJob, ServiceError> {
        let submitted = self.submit_with_id(caller, request, JobId::new(), key).await?;
        Ok(SubmittedJob { job: self.with_attributes(&*self.catalog().await, submitted.job), ..submitted })
    }

    /// `submit` with the job's id given: a second submission with the same id records nothing
    /// and answers `AlreadySubmitted` (how a redelivered event is told apart).
    #[tracing::instrument(skip(self, caller, request, key), fields(job_name = %request.name, user = %caller.user))]
    pub(crate) async fn submit_with_id(
        self: &Arc<Self>,
        caller: &Caller,
        request: JobRequest,
        id: JobId,
        key: Option<&str>,
    ) -> Result<SubmittedJob, ServiceError> {
        let user = caller.user.as_str();
        let request = request.normalized();
        request.validate().map_err(ServiceError::BadRequest)?;
        let now = now_epoch_seconds();
        let claim = key.map(|key| IdempotencyClaim::new(user, key, &request, now)).transpose().map_err(ServiceError::BadRequest)?;
        // A request sent again is answered before anything else: limits hold new jobs only.
        if let Some(claim) = &claim
            && let Some((first, fingerprint)) = self.jobs.find_key(claim).await.map_err(|e| ServiceError::from_store(e, None))?
        {
            return self.replay(claim, first, &fingerprint).await;
        }
        let requested_is_sync = request.is_sync;
        let cluster_criteria = request.cluster_criteria.clone();
        let mut job = Job::from_request(request, user, now);
        job.id = id;
        with_system_tags(&mut job);

        // The first alternative of cluster_criteria that matches anything wins.
        let catalog = self.catalog().await;
        let pairs = match first_matching(catalog.commands(), catalog.clusters(), catalog.health(), &job.command_criteria, &cluster_criteria) {
            Ok((pairs, alternative)) => {
                job.cluster_criteria = alternative.to_vec();
                pairs
            }
            Err((error, alternative)) => {
                job.cluster_criteria = alternative.to_vec();
                return Err(self.record_unmatched(job, error).await);
            }
        };
        // Only commands the caller may run are drawn from.
        let admitted: Vec<_> = pairs.iter().copied().filter(|(command, _)| command.admits_caller(caller)).collect();
        let Some((command, cluster)) = pick(&admitted, &job.command_criteria, &job.cluster_criteria, rand::rng().random::<f64>()) else {
            let refused: Vec<&str> = pairs.iter().map(|(command, _)| command.id.as_str()).collect();
            return Err(ServiceError::Forbidden(format!(
                "user `{user}` may not run command {} (its allowed_callers do not match)",
                refused.first().map(|id| format!("`{id}`")).unwrap_or_default()
            )));
        };
        let plugin = self.plugins.get(&command.plugin).ok_or_else(|| {
            ServiceError::Internal(format!("command `{}` names plugin `{}`, which is not loaded", command.id, command.plugin))
        })?;
        let mode = command.resolve_mode(requested_is_sync).map_err(ServiceError::ModeNotAllowed)?;
        plugin
            .validate_job(&job.context, command)
            .map_err(ServiceError::InvalidJobContext)?;

        job.is_sync = mode.is_sync();
        job.command_id = Some(command.id.clone());
        job.command_name = Some(command.name.clone());
        job.cluster_id = Some(cluster.id.clone());
        job.cluster_name = Some(cluster.name.clone());
        // A sync job starts in this very request: it is recorded RUNNING (one write fewer than
        // NEW then RUNNING); an async one waits in the queue.
        if job.is_sync {
            job.status = JobStatus::Running;
            job.started_at = Some(now);
        } else {
            job.status = JobStatus::Accepted;
        }
        job.check_size().map_err(ServiceError::BadRequest)?;
        if let Err(busy) = self.check_active_jobs(user, catalog.limits().active_jobs_per_user).await {
            // An event delivered again for a user at the limit: its job exists, nothing is
            // refused (looked up only when refusing, so it costs nothing otherwise).
            if self.jobs.get(job.id).await.is_ok() {
                return Err(ServiceError::AlreadySubmitted(job.id));
            }
            return Err(busy);
        }
        let sync_slot = if job.is_sync {
            Some(Arc::clone(&self.sync_slots).try_acquire_owned().map_err(|_| {
                ServiceError::Busy(format!(
                    "{} sync jobs are running, the most this server runs at once; retry shortly, or submit with \"is_sync\": false to queue the job",
                    self.settings.max_sync_jobs
                ))
            })?)
        } else {
            None
        };
        let inserted = match &claim {
            Some(claim) => self.jobs.insert_keyed(&job, claim).await,
            None => self.jobs.insert(&job).await,
        };
        match (inserted, &claim) {
            (Ok(()), _) => {}
            // Another request with the same key got there first.
            (Err(StoreError::KeyTaken { job: first, fingerprint }), Some(claim)) => return self.replay(claim, first, &fingerprint).await,
            (Err(error), _) => return Err(ServiceError::from_store(error, Some(job.id))),
        }
        tracing::info!(job_id = %job.id, command = %command.id, cluster = %cluster.id, is_sync = job.is_sync, "job accepted");
        self.metrics.submitted(&job);

        if !job.is_sync {
            if let Err(error) = self.queue.enqueue(job.id, &command.plugin).await {
                let change = StatusChange::new(JobStatus::Accepted, JobStatus::Failed, now_epoch_seconds())?
                    .with_error(format!("the job could not be queued: {error}"));
                let _ = self.jobs.transition(job.id, &change).await;
                return Err(error.into());
            }
            return Ok(SubmittedJob { job, result: None, replayed: false });
        }

        // Run on its own task: a client that hangs up must not abandon a job half-way.
        let service = Arc::clone(self);
        // Still metered: what the job uses is the request's.
        let meter = heimdall_ports::usage::current();
        let (job, kept) = tokio::spawn(heimdall_ports::usage::within(meter, async move {
            let _slot = sync_slot;
            service.execute_keeping_result(job).await
        }))
            .await
            .map_err(|error| ServiceError::Internal(format!("a sync job's task failed: {error}")))?;
        let result = match kept {
            Some(result) if job.status == JobStatus::Succeeded => self.inline_sized(result),
            // Not a success: what the run wrote is an artifact.
            _ => self.inline_result(job.id, None).await,
        };
        Ok(SubmittedJob { job, result, replayed: false })
    }

    /// Where `request` would run for `caller`, without creating a job: the candidate pairs with
    /// their chances, and each command, cluster or pair left out with the reason (inactive,
    /// a missing tag, weight 0, `allowed_callers`, the mode asked for).
    pub async fn route_preview(&self, caller: &Caller, request: JobRequest) -> Result<RoutePlan, ServiceError> {
        let request = request.normalized();
        request.validate().map_err(ServiceError::BadRequest)?;
        // As submit does: the first alternative of cluster_criteria with a candidate (when none
        // has, the first explains best what is missing).
        let catalog = self.catalog().await;
        let (commands, clusters, health) = (catalog.commands(), catalog.clusters(), catalog.health());
        let used = match first_matching(commands, clusters, health, &request.command_criteria, &request.cluster_criteria) {
            Ok((_, alternative)) => alternative,
            Err(_) => request.cluster_criteria.alternatives()[0],
        };
        let mut plan = route(commands, clusters, health, &request.command_criteria, used);
        for command in commands {
            if !command.admits_caller(caller) {
                plan.exclude_command(&command.id, format!("the command's allowed_callers do not admit user `{}`", caller.user));
            } else if let Err(mode) = command.resolve_mode(request.is_sync) {
                plan.exclude_command(&command.id, mode);
            }
        }
        Ok(plan)
    }

    /// The answer to a request whose key names job `first`, claimed with `fingerprint`: that
    /// job again if the request is the same, a conflict otherwise.
    async fn replay(&self, claim: &IdempotencyClaim, first: JobId, fingerprint: &str) -> Result<SubmittedJob, ServiceError> {
        if fingerprint != claim.fingerprint {
            return Err(ServiceError::IdempotencyKeyReused(format!(
                "Idempotency-Key `{}` was used within the last 24 hours for another request (job {first}); send a new key for a new job, or the same request to get that job",
                claim.key
            )));
        }
        let (job, recorded) = match self.jobs.get_with_result(first).await {
            Ok(found) => found,
            Err(StoreError::NotFound) => {
                return Err(ServiceError::IdempotencyKeyReused(format!(
                    "Idempotency-Key `{}` named job {first}, which has since been deleted; send a new key",
                    claim.key
                )));
            }
            Err(error) => return Err(ServiceError::from_store(error, Some(first))),
        };
        tracing::info!(job_id = %job.id, "request sent again under its idempotency key; the first job answered");
        let result = if job.status.is_terminal() { self.inline_result(job.id, recorded).await } else { None };
        Ok(SubmittedJob { job, result, replayed: true })
    }

    /// Refuses a new job when `user` already has as many not ended as `limits` allow.
    async fn check_active_jobs(&self, user: &str, limit: usize) -> Result<(), ServiceError> {
        let active = self.jobs.count_active(user, limit).await.map_err(|e| ServiceError::from_store(e, None))?;
        if active >= limit {
            return Err(ServiceError::Busy(format!(
                "user `{user}` has {active} jobs that have not ended, the most limits.active_jobs_per_user allows; wait for some to end or cancel some, then submit again"
            )));
        }
        Ok(())
    }

    /// Records a job that matched nothing as FAILED, so the client can look it up, and
    /// returns the error to answer.
    async fn record_unmatched(&self, mut job: Job, error: SelectionError) -> ServiceError {
        let code = match error {
            SelectionError::NoCommand { .. } | SelectionError::OnlyWeightZero { .. } => names::NO_MATCHING_COMMAND,
            SelectionError::NoCluster { .. } | SelectionError::OnlyUnhealthy { .. } => names::NO_MATCHING_CLUSTER,
        };
        let message = error.to_string();
        job.status = JobStatus::Failed;
        job.error = Some(heimdall_domain::job::bounded_error(message.clone()));
        job.finished_at = Some(job.created_at);
        if let Err(problem) = job.check_size() {
            return ServiceError::BadRequest(problem);
        }
        if let Err(store_error) = self.jobs.insert(&job).await {
            return ServiceError::from_store(store_error, Some(job.id));
        }
        ServiceError::NoMatch { code, message, job_id: job.id }
    }
}

/// The job's own tags, then `_id:`, `_name:` and `_version:` as commands and clusters carry
/// them (so `tags=_name:x` finds a job, as in Heimdall); system tags a client sent are replaced.
fn with_system_tags(job: &mut Job) {
    job.tags.retain(|tag| !heimdall_domain::tags::is_system_tag(tag));
    job.tags.extend(heimdall_domain::tags::system_tags(&job.id.to_string(), &job.name, &job.version));
}
