//! File-arrival polling: a touch file starts a run, once per ETag.

use std::time::Duration;

use sluice_domain::connector::ConnectorType;
use sluice_domain::ids::PipelineId;
use sluice_domain::pipeline::PollingSpec;
use sluice_domain::role::Action;
use sluice_domain::run::{LogEntry, LogStage, RunMetadata, Trigger};
use sluice_domain::status::RunStatus;
use sluice_domain::time::Timestamp;

use super::{Principal, UseCases};
use crate::AppError;
use crate::ports::PollTarget;
use crate::reading::open_known;

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
    /// pipeline per interval. A failing connector is recorded on its pipeline
    /// and the cycle goes on with the others.
    pub async fn poll_cycle(&self, force: bool) -> Result<PollReport, AppError> {
        let targets = self.ports().polling.poll_targets().await?;
        let mut report = PollReport {
            checked: 0,
            triggered: 0,
        };
        for target in targets {
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
            if !claimed && !force {
                continue;
            }
            report.checked += 1;
            match self.check_touch_file(&target).await {
                Ok(started) => {
                    self.ports()
                        .polling
                        .record_poll_result(target.pipeline.id, None)
                        .await?;
                    report.triggered += u64::from(started);
                }
                Err(e) => {
                    let message = e.to_string();
                    tracing::warn!(pipeline = %target.pipeline.id, error = %message, "touch-file check failed");
                    self.ports()
                        .polling
                        .record_poll_result(target.pipeline.id, Some(&message))
                        .await?;
                }
            }
        }
        Ok(report)
    }

    async fn check_touch_file(&self, target: &PollTarget) -> Result<bool, AppError> {
        let spec = &target.pipeline.spec;
        let timeout = Duration::from_millis(self.tunables().source_timeout_ms);
        let source = open_known(self.ports(), &target.connector, Some(timeout)).await?;
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
        let now = self.ports().clock.now();
        let metadata = RunMetadata {
            touch_file: Some(key.clone()),
            touch_file_etag: Some(etag.clone()),
            ..RunMetadata::default()
        };
        let log = vec![LogEntry {
            stage: LogStage::Poll,
            message: format!("Touch file {key} found (ETag {etag})"),
            timestamp: now,
        }];
        let run = self.new_run(
            target.pipeline.id,
            spec.clone(),
            Trigger::Poll,
            metadata,
            log,
        );
        let started = self.ports().polling.start_polled_run(&run, &etag).await?;
        if started {
            tracing::info!(pipeline = %target.pipeline.id, run = %run.id, touch_file = %key, "touch file started a run");
            self.work_created();
        }
        Ok(started)
    }
}
