//! Runs: start, read, cancel, progress, errors, retry.

use futures::stream::BoxStream;
use sluice_domain::ids::{PipelineId, RunId};
use sluice_domain::pipeline::{PipelineSpec, PipelineStatus};
use sluice_domain::progress::{PROGRESS_ERROR_LIMIT, RunProgress};
use sluice_domain::retry::{plan_retry, retry_log_message};
use sluice_domain::role::Action;
use sluice_domain::run::{LogEntry, LogStage, Run, RunMetadata, Trigger};
use sluice_domain::validation::RowError;

use super::{App, Principal};
use crate::AppError;
use crate::ports::{NewRun, Page, PageRequest, StoreError};

/// Every validation error of a run, streamed in row order.
pub struct ErrorExport {
    /// The run.
    pub run_id: RunId,
    /// Number of errors.
    pub total: u64,
    /// The errors; memory stays bounded however many there are.
    pub errors: BoxStream<'static, Result<RowError, StoreError>>,
}

impl std::fmt::Debug for ErrorExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrorExport")
            .field("run_id", &self.run_id)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// A retry run just created, with its first log entries.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryOutcome {
    /// The new run (`pending`).
    pub run: Run,
    /// Its log (the `retry` entry).
    pub log: Vec<LogEntry>,
}

fn paused(id: PipelineId) -> AppError {
    AppError::Unprocessable(format!(
        "pipeline {id} is paused; set its status to active to run it"
    ))
}

fn active_conflict(e: StoreError, pipeline: PipelineId) -> AppError {
    match e {
        StoreError::Conflict(_) => AppError::Conflict(format!(
            "pipeline {pipeline} already has a pending or running run; wait for it or cancel it"
        )),
        other => other.into(),
    }
}

impl App {
    /// Builds a new run of a pipeline definition.
    pub(crate) fn new_run(
        &self,
        pipeline_id: PipelineId,
        spec: PipelineSpec,
        trigger: Trigger,
        metadata: RunMetadata,
        log: Vec<LogEntry>,
    ) -> NewRun {
        NewRun {
            id: RunId::from_ulid(self.ports().ids.ulid()),
            pipeline_id,
            spec,
            trigger,
            metadata,
            created_at: self.ports().clock.now(),
            log,
        }
    }

    /// Starts a run of an active pipeline (admin, editor). `Conflict` when the
    /// pipeline already has a pending or running run.
    pub async fn start_run(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
    ) -> Result<Run, AppError> {
        who.require(Action::StartRun)?;
        let pipeline = self.ports().pipelines.get_pipeline(pipeline_id).await?;
        if pipeline.spec.status == PipelineStatus::Paused {
            return Err(paused(pipeline_id));
        }
        let run = self.new_run(
            pipeline_id,
            pipeline.spec,
            Trigger::Api,
            RunMetadata::default(),
            Vec::new(),
        );
        self.ports()
            .runs
            .create_run(&run)
            .await
            .map_err(|e| active_conflict(e, pipeline_id))?;
        self.work_created();
        Ok(self.ports().runs.get_run(pipeline_id, run.id).await?)
    }

    /// A pipeline's runs, newest first (any role).
    pub async fn list_runs(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
        page: &PageRequest,
    ) -> Result<Page<Run>, AppError> {
        who.require(Action::ReadRuns)?;
        Ok(self.ports().runs.list_runs(pipeline_id, page).await?)
    }

    /// One run (any role).
    pub async fn get_run(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
        run_id: RunId,
    ) -> Result<Run, AppError> {
        who.require(Action::ReadRuns)?;
        Ok(self.ports().runs.get_run(pipeline_id, run_id).await?)
    }

    /// One run, found by its id alone (any role). `NotFound` if absent.
    pub async fn find_run(&self, who: &Principal, run_id: RunId) -> Result<Run, AppError> {
        who.require(Action::ReadRuns)?;
        let pipeline_id = self.ports().runs.run_pipeline(run_id).await?;
        Ok(self.ports().runs.get_run(pipeline_id, run_id).await?)
    }

    /// Cancels a pending or running run (admin, editor): workers stop claiming
    /// its partitions and in-flight batches fail their fenced commit. `Unprocessable`
    /// when the run already ended.
    pub async fn cancel_run(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
        run_id: RunId,
    ) -> Result<Run, AppError> {
        who.require(Action::CancelRun)?;
        let run = self.ports().runs.get_run(pipeline_id, run_id).await?;
        run.status.cancel()?;
        let now = self.ports().clock.now();
        let entry = LogEntry {
            stage: LogStage::Cancel,
            message: format!("Cancelled by {}", who.key_id),
            timestamp: now,
        };
        self.ports().runs.cancel_run(run_id, now, &entry).await?;
        Ok(self.ports().runs.get_run(pipeline_id, run_id).await?)
    }

    /// The progress view of the reference page (any role).
    pub async fn run_progress(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
        run_id: RunId,
    ) -> Result<RunProgress, AppError> {
        who.require(Action::ReadProgress)?;
        let snapshot = self
            .ports()
            .runs
            .run_snapshot(pipeline_id, run_id, PROGRESS_ERROR_LIMIT)
            .await?;
        Ok(RunProgress::build(
            &snapshot.run,
            &snapshot.partitions,
            snapshot.first_errors,
            snapshot.log,
            self.ports().clock.now(),
        ))
    }

    /// Every validation error of a run, streamed (any role).
    pub async fn run_errors(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
        run_id: RunId,
    ) -> Result<ErrorExport, AppError> {
        who.require(Action::ReadErrors)?;
        let runs = &self.ports().runs;
        runs.get_run(pipeline_id, run_id).await?;
        let total = runs.count_errors(run_id).await?;
        Ok(ErrorExport {
            run_id,
            total,
            errors: runs.stream_errors(run_id),
        })
    }

    /// One page of a run's validation errors in row order, with the run's
    /// error count (any role).
    pub async fn run_errors_page(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
        run_id: RunId,
        page: &PageRequest,
    ) -> Result<(u64, Page<RowError>), AppError> {
        who.require(Action::ReadErrors)?;
        let runs = &self.ports().runs;
        runs.get_run(pipeline_id, run_id).await?;
        let (total, page) =
            futures::try_join!(runs.count_errors(run_id), runs.list_errors(run_id, page))?;
        Ok((total, page))
    }

    /// Retries a `failed` or `completed_with_errors` run (admin, editor):
    /// `Unprocessable` for any other status. `append` and `upsert` resume after
    /// every checkpoint, with the pipeline's *current* schema and error
    /// threshold (the source, destination and strategy stay those of the
    /// original run, since the checkpoints refer to them); `replace` starts
    /// over with the current definition.
    pub async fn retry_run(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
        run_id: RunId,
    ) -> Result<RetryOutcome, AppError> {
        who.require(Action::RetryRun)?;
        let runs = &self.ports().runs;
        let original = runs.get_run(pipeline_id, run_id).await?;
        let partitions = runs.list_partitions(run_id).await?;
        let checkpoints: Vec<_> = partitions.iter().map(|p| (p.range, p.checkpoint)).collect();
        let plan = plan_retry(original.status, original.load_strategy, &checkpoints)?;
        let pipeline = self.ports().pipelines.get_pipeline(pipeline_id).await?;
        if pipeline.spec.status == PipelineStatus::Paused {
            return Err(paused(pipeline_id));
        }
        let spec = if plan.resumable {
            let mut spec = runs.run_spec(run_id).await?;
            spec.schema = pipeline.spec.schema.clone();
            spec.max_errors = pipeline.spec.max_errors;
            spec.validate().map_err(|e| {
                AppError::Unprocessable(format!(
                    "the pipeline's current schema cannot resume this run: {e}"
                ))
            })?;
            spec
        } else {
            pipeline.spec
        };
        let metadata = RunMetadata {
            retry_of: Some(run_id),
            resume_from_row: Some(plan.resume_from_row),
            resumable: Some(plan.resumable),
            touch_file: original.metadata.touch_file.clone(),
            touch_file_etag: original.metadata.touch_file_etag.clone(),
        };
        let log = vec![LogEntry {
            stage: LogStage::Retry,
            message: retry_log_message(&plan, run_id),
            timestamp: self.ports().clock.now(),
        }];
        let new = self.new_run(pipeline_id, spec, Trigger::Retry, metadata, log.clone());
        runs.create_retry_run(&new, run_id, plan.resumable)
            .await
            .map_err(|e| active_conflict(e, pipeline_id))?;
        self.work_created();
        let run = runs.get_run(pipeline_id, new.id).await?;
        Ok(RetryOutcome { run, log })
    }
}
