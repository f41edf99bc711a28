//! Runs: start, read, cancel, progress, errors, retry.

use futures::stream::BoxStream;
use serde::Deserialize;
use sluice_domain::ids::{PipelineId, RunId};
use sluice_domain::ledger::{FileSelection, blocked_by_unfinished_run};
use sluice_domain::pipeline::{PipelineSpec, PipelineStatus};
use sluice_domain::progress::{PROGRESS_ERROR_LIMIT, RunProgress};
use sluice_domain::retry::{plan_retry, retry_log_message};
use sluice_domain::role::Action;
use sluice_domain::run::{LogEntry, LogStage, Run, RunMetadata, Trigger};
use sluice_domain::time::Timestamp;
use sluice_domain::validation::RowError;

use super::{Principal, UseCases};
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

/// A run as a use case read it, and when: while the run is not finished,
/// its duration runs to that moment. Derefs to the run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    /// The run.
    pub run: Run,
    /// When it was read.
    pub read_at: Timestamp,
}

impl RunView {
    /// Milliseconds from the run's start to its end, or to when it was read.
    pub fn duration_ms(&self) -> u64 {
        self.run.duration_ms(self.read_at)
    }
}

impl std::ops::Deref for RunView {
    type Target = Run;

    fn deref(&self) -> &Run {
        &self.run
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

/// Most keys one `{"reload": [...]}` may name.
pub const MAX_RELOAD_KEYS: usize = 1_000;

/// The optional body of `POST /pipelines/{id}/runs`: which files to read
/// besides those the file ledger does not hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunRequest {
    /// `all` reads every listed file, whatever the ledger says; `new` is the
    /// usual choice of the strategy made explicit.
    #[serde(default)]
    pub files: Option<FileSelection>,
    /// Keys to read again although the ledger holds them unchanged.
    #[serde(default)]
    pub reload: Vec<String>,
}

impl RunRequest {
    /// Checks the keys: at most [`MAX_RELOAD_KEYS`], each 1 to 1024
    /// characters without control characters.
    pub fn validate(&self) -> Result<(), AppError> {
        if self.reload.len() > MAX_RELOAD_KEYS {
            return Err(AppError::invalid(
                "reload",
                format!("must name at most {MAX_RELOAD_KEYS} keys"),
            ));
        }
        for (i, key) in self.reload.iter().enumerate() {
            if key.is_empty() || key.len() > 1024 || key.chars().any(char::is_control) {
                return Err(AppError::invalid(
                    format!("reload[{i}]"),
                    "must be a key of 1 to 1024 characters without control characters",
                ));
            }
        }
        Ok(())
    }

    /// True if the run reads files the ledger holds: then it may start even
    /// though the newest run stopped after committing rows.
    pub fn forces_reload(&self) -> bool {
        self.files == Some(FileSelection::All) || !self.reload.is_empty()
    }

    /// The run's first log lines, saying what was asked.
    fn log_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.files == Some(FileSelection::All) {
            lines.push("Reload of every listed file requested (files: all)".to_owned());
        }
        if !self.reload.is_empty() {
            let mut named: Vec<&str> = self.reload.iter().take(20).map(String::as_str).collect();
            if self.reload.len() > named.len() {
                named.push("…");
            }
            lines.push(format!(
                "Reload requested for {} files: {}",
                self.reload.len(),
                named.join(", ")
            ));
        }
        lines
    }
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

impl UseCases {
    /// `run`, read now.
    fn view(&self, run: Run) -> RunView {
        RunView {
            run,
            read_at: self.ports().clock.now(),
        }
    }

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

    /// `Unprocessable` when the newest run of the pipeline stopped after
    /// committing rows of files the ledger does not hold (see
    /// [`blocked_by_unfinished_run`]): a new run would load them again.
    pub(crate) async fn check_no_unfinished_run(
        &self,
        pipeline_id: PipelineId,
    ) -> Result<(), AppError> {
        let newest = PageRequest {
            limit: 1,
            cursor: None,
        };
        let page = self.ports().runs.list_runs(pipeline_id, &newest).await?;
        match page.items.first().and_then(blocked_by_unfinished_run) {
            Some(message) => Err(AppError::Unprocessable(message)),
            None => Ok(()),
        }
    }

    /// Starts a run of an active pipeline (admin, editor), reading the files
    /// the ledger does not hold plus what `request` asks. `Conflict` when the
    /// pipeline already has a pending or running run; `Unprocessable` when
    /// it is paused, or when its newest run stopped after committing rows and
    /// `request` does not force a reload.
    pub async fn start_run(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
        request: RunRequest,
    ) -> Result<RunView, AppError> {
        who.require(Action::StartRun)?;
        request.validate()?;
        let pipeline = self.ports().pipelines.get_pipeline(pipeline_id).await?;
        if pipeline.spec.status == PipelineStatus::Paused {
            return Err(paused(pipeline_id));
        }
        if !request.forces_reload() {
            self.check_no_unfinished_run(pipeline_id).await?;
        }
        let mut spec = pipeline.spec;
        if let Some(files) = request.files {
            spec.source.files = Some(files);
        }
        let now = self.ports().clock.now();
        let log = request
            .log_lines()
            .into_iter()
            .map(|message| LogEntry {
                stage: LogStage::Extract,
                message,
                timestamp: now,
            })
            .collect();
        let metadata = RunMetadata {
            reload: request.reload,
            ..RunMetadata::default()
        };
        let run = self.new_run(pipeline_id, spec, Trigger::Api, metadata, log);
        self.ports()
            .runs
            .create_run(&run)
            .await
            .map_err(|e| active_conflict(e, pipeline_id))?;
        self.work_created();
        let run = self.ports().runs.get_run(pipeline_id, run.id).await?;
        Ok(self.view(run))
    }

    /// A pipeline's runs, newest first (any role).
    pub async fn list_runs(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
        page: &PageRequest,
    ) -> Result<Page<RunView>, AppError> {
        who.require(Action::ReadRuns)?;
        let page = self.ports().runs.list_runs(pipeline_id, page).await?;
        let read_at = self.ports().clock.now();
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(|run| RunView { run, read_at })
                .collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// One run (any role).
    pub async fn get_run(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
        run_id: RunId,
    ) -> Result<RunView, AppError> {
        who.require(Action::ReadRuns)?;
        let run = self.ports().runs.get_run(pipeline_id, run_id).await?;
        Ok(self.view(run))
    }

    /// One run, found by its id alone (any role). `NotFound` if absent.
    pub async fn find_run(&self, who: &Principal, run_id: RunId) -> Result<RunView, AppError> {
        who.require(Action::ReadRuns)?;
        let pipeline_id = self.ports().runs.run_pipeline(run_id).await?;
        let run = self.ports().runs.get_run(pipeline_id, run_id).await?;
        Ok(self.view(run))
    }

    /// Cancels a pending or running run (admin, editor): workers stop claiming
    /// its partitions and in-flight batches fail their fenced commit. `Unprocessable`
    /// when the run already ended.
    pub async fn cancel_run(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
        run_id: RunId,
    ) -> Result<RunView, AppError> {
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
        let run = self.ports().runs.get_run(pipeline_id, run_id).await?;
        Ok(self.view(run))
    }

    /// The progress view of a run (any role).
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
    /// every checkpoint, with the pipeline's *current* schema, drift policy
    /// and error threshold (the source, destination and strategy stay those of the
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
        let mut plan = plan_retry(original.status, original.load_strategy, &checkpoints)?;
        if partitions.is_empty() {
            // Failed before its extraction completed: nothing was loaded and
            // there is no checkpoint to resume from, so the retry extracts
            // the source again with the current definition.
            plan.resumable = false;
            plan.revisit_failed_rows = false;
        }
        let pipeline = self.ports().pipelines.get_pipeline(pipeline_id).await?;
        if pipeline.spec.status == PipelineStatus::Paused {
            return Err(paused(pipeline_id));
        }
        let spec = if plan.resumable {
            let mut spec = runs.run_spec(run_id).await?;
            spec.schema = pipeline.spec.schema.clone();
            spec.schema_drift = pipeline.spec.schema_drift;
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
            reload: Vec::new(),
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
