//! File-arrival polling: a touch file starts a run, once per ETag.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sluice_domain::connector::ConnectorType;
use sluice_domain::ids::PipelineId;
use sluice_domain::pipeline::{PollTrigger, PollingSpec, Schedule};
use sluice_domain::role::Action;
use sluice_domain::run::{LogEntry, LogStage, RunMetadata, Trigger};
use sluice_domain::status::RunStatus;
use sluice_domain::time::Timestamp;

use super::schedule::CronSchedule;
use super::{Principal, UseCases};
use crate::AppError;
use crate::ports::PollTarget;
use crate::reading::{ChooseError, ConnectorSource, choose_files, listed_files, open_known};

/// One watched pipeline, its connector and its newest run.
#[derive(Debug, Clone, PartialEq)]
pub struct PollStatus {
    /// Pipeline id.
    pub id: PipelineId,
    /// Pipeline name.
    pub name: String,
    /// Connector name.
    pub connector: String,
    /// Connector type.
    pub connector_type: ConnectorType,
    /// Polling settings (with the effective prefix).
    pub polling: PollingSpec,
    /// Creation time of the newest run.
    pub last_run_at: Option<Timestamp>,
    /// Status of the newest run.
    pub last_run_status: Option<RunStatus>,
    /// The pipeline's cron schedule, if it has one.
    pub schedule: Option<Schedule>,
}

/// The outcome of one polling cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollReport {
    /// Pipelines whose touch file was checked.
    pub checked: u64,
    /// Runs started.
    pub triggered: u64,
}

impl PollReport {
    /// What the cycle did, in words (the message `POST /pipelines/poll` answers with).
    pub fn message(&self) -> String {
        format!(
            "Polling cycle complete: checked {} pipelines, triggered {} runs",
            self.checked, self.triggered
        )
    }
}

impl UseCases {
    /// Every active pipeline with polling enabled (any role).
    pub async fn poll_status(&self, who: &Principal) -> Result<Vec<PollStatus>, AppError> {
        who.require(Action::ReadPolling)?;
        let targets = self.ports().polling.poll_targets().await?;
        Ok(targets
            .into_iter()
            .map(|t| {
                let mut polling = t.pipeline.spec.polling.clone();
                polling.prefix = Some(t.pipeline.spec.polling_prefix().to_owned());
                PollStatus {
                    id: t.pipeline.id,
                    name: t.pipeline.spec.name.clone(),
                    connector: t.connector.name.clone(),
                    connector_type: t.connector.connector_type,
                    polling,
                    last_run_at: t.last_run.as_ref().map(|r| r.created_at),
                    last_run_status: t.last_run.as_ref().map(|r| r.status),
                    schedule: t.pipeline.spec.schedule.clone(),
                }
            })
            .collect())
    }

    /// `POST /pipelines/poll`: checks every watched pipeline now (admin, editor).
    pub async fn trigger_poll(&self, who: &Principal) -> Result<PollReport, AppError> {
        who.require(Action::TriggerPolling)?;
        self.poll_cycle(true).await
    }

    /// One polling cycle. With `force` every watched pipeline is checked;
    /// otherwise only those whose interval elapsed, and each check is claimed
    /// through the store so that of several replicas only one checks a
    /// pipeline per interval. Scheduled pipelines are checked for a due cron
    /// tick, which starts at most one run across replicas. A failing
    /// connector is recorded on its pipeline and the cycle goes on with the
    /// others.
    pub async fn poll_cycle(&self, force: bool) -> Result<PollReport, AppError> {
        let targets = self.ports().polling.poll_targets().await?;
        let mut report = PollReport {
            checked: 0,
            triggered: 0,
        };
        for target in targets {
            let mut checked = false;
            if target.pipeline.spec.polling.enabled && self.claim_check(&target, force).await? {
                checked = true;
                let outcome = match target.pipeline.spec.polling.trigger {
                    PollTrigger::TouchFile => self.check_touch_file(&target).await,
                    PollTrigger::NewFiles => self.check_new_files(&target).await,
                };
                report.triggered += u64::from(self.record(&target, outcome).await?);
            }
            if let Some(schedule) = &target.pipeline.spec.schedule {
                match self.check_schedule(&target, schedule).await {
                    Ok(None) => checked |= force,
                    Ok(Some(started)) => {
                        checked = true;
                        report.triggered += u64::from(started);
                    }
                    Err(e) => {
                        checked = true;
                        self.record(&target, Err(e)).await?;
                    }
                }
            }
            report.checked += u64::from(checked);
        }
        Ok(report)
    }

    /// Claims this interval's check of a polled pipeline (always true with `force`).
    async fn claim_check(&self, target: &PollTarget, force: bool) -> Result<bool, AppError> {
        let now = self.ports().clock.now();
        let interval_ms = i64::from(target.pipeline.spec.polling.interval_minutes) * 60_000;
        let claimed = self
            .ports()
            .polling
            .claim_poll_check(
                target.pipeline.id,
                now.plus_millis(if force { 1 } else { -interval_ms }),
                now,
            )
            .await?;
        Ok(claimed || force)
    }

    /// Records a check's outcome on the pipeline; returns whether it started a run.
    async fn record(
        &self,
        target: &PollTarget,
        outcome: Result<bool, AppError>,
    ) -> Result<bool, AppError> {
        let (started, error) = match outcome {
            Ok(started) => (started, None),
            Err(e) => {
                let message = e.to_string();
                tracing::warn!(pipeline = %target.pipeline.id, error = %message, "polling check failed");
                (false, Some(message))
            }
        };
        self.ports()
            .polling
            .record_poll_result(target.pipeline.id, error.as_deref())
            .await?;
        Ok(started)
    }

    /// The connector's source of a polled pipeline, with the timeout of a
    /// request's source.
    async fn polled_source(&self, target: &PollTarget) -> Result<ConnectorSource, AppError> {
        let timeout = Duration::from_millis(self.tunables().source_timeout_ms);
        Ok(open_known(self.ports(), &target.connector, Some(timeout)).await?)
    }

    async fn check_touch_file(&self, target: &PollTarget) -> Result<bool, AppError> {
        let spec = &target.pipeline.spec;
        let source = self.polled_source(target).await?;
        let key = spec.touch_file_key();
        let Some(info) = source.answer(source.source.head(&key)).await? else {
            return Ok(false);
        };
        // Stores without ETags: size and modification time identify a version.
        let etag = info.etag.clone().unwrap_or_else(|| {
            format!(
                "{}-{}",
                info.size,
                info.last_modified.map_or(0, |t| t.millis())
            )
        });
        if target.state.last_etag.as_deref() == Some(etag.as_str()) {
            return Ok(false);
        }
        self.check_no_unfinished_run(target.pipeline.id).await?;
        let metadata = RunMetadata {
            touch_file: Some(key.clone()),
            touch_file_etag: Some(etag.clone()),
            ..RunMetadata::default()
        };
        let message = format!("Touch file {key} found (ETag {etag})");
        self.start_polled(target, metadata, message, &etag).await
    }

    /// The `newFiles` trigger: a run starts when at least one matching file
    /// is not in the ledger. The batch of new files (with the newest run) is
    /// the claim, so of several replicas that saw the same batch one starts it.
    async fn check_new_files(&self, target: &PollTarget) -> Result<bool, AppError> {
        let spec = &target.pipeline.spec;
        let source = self.polled_source(target).await?;
        let listed = listed_files(&source, spec)
            .await
            .map_err(AppError::Unprocessable)?;
        let chosen = choose_files(&*self.ports().ledger, target.pipeline.id, spec, listed, &[])
            .await
            .map_err(|e| match e {
                ChooseError::Listing(message) => AppError::Unprocessable(message),
                ChooseError::Store(e) => e.into(),
            })?;
        if chosen.files.is_empty() {
            return Ok(false);
        }
        self.check_no_unfinished_run(target.pipeline.id).await?;
        let mut digest = Sha256::new();
        if let Some(run) = &target.last_run {
            digest.update(run.id.to_string());
        }
        for f in &chosen.files {
            digest.update(f.key.as_bytes());
            digest.update([0]);
            digest.update(f.etag.as_deref().unwrap_or_default());
            digest.update([0]);
        }
        let token = format!("new-files:{}", hex::encode(digest.finalize()));
        let message = format!(
            "{} new files found ({} already loaded)",
            chosen.files.len(),
            chosen.already_loaded
        );
        self.start_polled(target, RunMetadata::default(), message, &token)
            .await
    }

    /// A scheduled pipeline: `None` when no tick is due, else whether the
    /// due tick started a run here.
    async fn check_schedule(
        &self,
        target: &PollTarget,
        schedule: &Schedule,
    ) -> Result<Option<bool>, AppError> {
        let cron = CronSchedule::parse(schedule)?;
        let now = self.ports().clock.now();
        let since = target
            .state
            .last_tick
            .map_or(target.pipeline.updated_at, |t| {
                t.max(target.pipeline.updated_at)
            });
        let Some(tick) = cron.due(since, now) else {
            return Ok(None);
        };
        self.check_no_unfinished_run(target.pipeline.id).await?;
        let log = vec![LogEntry {
            stage: LogStage::Poll,
            message: format!(
                "Scheduled run for {tick} (cron `{}`, {})",
                schedule.cron, schedule.timezone
            ),
            timestamp: now,
        }];
        let run = self.new_run(
            target.pipeline.id,
            target.pipeline.spec.clone(),
            Trigger::Poll,
            RunMetadata::default(),
            log,
        );
        let started = self.ports().polling.start_scheduled_run(&run, tick).await?;
        if started {
            tracing::info!(pipeline = %target.pipeline.id, run = %run.id, %tick, "cron tick started a run");
            self.work_created();
        }
        Ok(Some(started))
    }

    /// Starts a polled run once for `claim` (a touch-file ETag or a batch of new files).
    async fn start_polled(
        &self,
        target: &PollTarget,
        metadata: RunMetadata,
        message: String,
        claim: &str,
    ) -> Result<bool, AppError> {
        let log = vec![LogEntry {
            stage: LogStage::Poll,
            message,
            timestamp: self.ports().clock.now(),
        }];
        let run = self.new_run(
            target.pipeline.id,
            target.pipeline.spec.clone(),
            Trigger::Poll,
            metadata,
            log,
        );
        let started = self.ports().polling.start_polled_run(&run, claim).await?;
        if started {
            tracing::info!(pipeline = %target.pipeline.id, run = %run.id, "polling started a run");
            self.work_created();
        }
        Ok(started)
    }
}
