//! Loading one claimed partition: revisit the rows a retry must read again,
//! then stream the range from its checkpoint, validating and committing batch
//! by batch (rows, errors, counters and checkpoint in one transaction).

use std::time::{Duration, Instant};

use sluice_domain::eta::smooth_rate;
use sluice_domain::run::{Checkpoint, LogEntry, LogStage};
use sluice_domain::validation::{RowError, ValidBatch};

use super::context::{RunContext, raw_of, with_raw};
use super::lease::{Claimed, LeaseKeeper};
use crate::AppError;
use crate::ports::{BatchCommit, CommitOutcome, PartitionClaim, RejectedRow, StoreError};
use crate::reading::{ReadItem, RecordMeta, RecordReader};
use crate::usecases::App;

/// How often a batch is retried after a source read error before the run fails.
const SOURCE_ATTEMPTS: u32 = 3;
/// How often a commit is retried after the store was unavailable.
const COMMIT_ATTEMPTS: u32 = 3;

/// How a partition's work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartitionEnd {
    /// Every row committed.
    Completed,
    /// The lease was lost or the run stopped: another worker (or nobody) goes on.
    Abandoned,
    /// The run was failed by this worker.
    FailedRun,
}

/// A batch being assembled.
struct Batch {
    rows: ValidBatch,
    errors: Vec<RowError>,
    rejected: Vec<RejectedRow>,
}

impl Batch {
    fn new(width: usize) -> Self {
        Self {
            rows: ValidBatch::new(width),
            errors: Vec::new(),
            rejected: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.rows.clear();
        self.errors.clear();
        self.rejected.clear();
    }

    fn len(&self) -> usize {
        self.rows.len() + self.rejected.len()
    }
}

impl App {
    /// Loads a claimed partition to its end, until its lease is lost, or
    /// until `stop` turns true (then it is handed back at a batch boundary).
    pub(crate) async fn load_partition(
        &self,
        mut claim: PartitionClaim,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<PartitionEnd, AppError> {
        let ctx = match self.run_context(claim.run_id, claim.pipeline_id).await {
            Ok(ctx) => ctx,
            Err(e) => {
                let message = format!("Cannot load partition {}: {e}", claim.range.index);
                return self.fail(&claim, message).await;
            }
        };
        let keeper = LeaseKeeper::start(
            self.ports().queue.clone(),
            self.ports().clock.clone(),
            Claimed::Partition(claim.clone()),
            self.settings().lease_ms,
        );
        let mut batch = Batch::new(ctx.schema.width());
        let mut last_commit = Instant::now();
        let mut rate = None;

        // 1. Rows of the original run that failed validation: read them again
        //    (from their stored raw form) against the current schema.
        let mut cursor = claim.revisit_cursor;
        while claim.pending_revisits > 0 {
            let rows = self
                .ports()
                .queue
                .revisit_rows(
                    claim.run_id,
                    claim.range.index,
                    cursor,
                    self.settings().batch_rows,
                )
                .await?;
            let Some(last) = rows.last().map(|r| r.row) else {
                break;
            };
            batch.clear();
            for r in &rows {
                let mapping = ctx.mapping(r.file_index);
                let ok = with_raw(ctx.spec.record_format(), r, |body| {
                    ctx.schema.check_record(
                        r.row,
                        body,
                        mapping,
                        &mut batch.rows,
                        &mut batch.errors,
                    )
                });
                if !ok {
                    batch.rejected.push(r.clone());
                }
            }
            let checkpoint = claim.checkpoint;
            match self
                .commit(
                    &ctx,
                    &claim,
                    &batch,
                    checkpoint,
                    Some(last),
                    &mut rate,
                    &mut last_commit,
                    &keeper,
                )
                .await?
            {
                Some(outcome) => {
                    if let Some(end) = self.after_commit(&ctx, &claim, &outcome).await? {
                        return Ok(end);
                    }
                    if outcome.partition_completed {
                        return Ok(PartitionEnd::Completed);
                    }
                }
                None => return Ok(PartitionEnd::Abandoned),
            }
            cursor = last;
            claim.pending_revisits = claim.pending_revisits.saturating_sub(rows.len() as u64);
            if rows.len() < self.settings().batch_rows {
                break;
            }
        }

        // 2. The rows of the range after the checkpoint.
        let last_row = claim.range.last_row();
        let mut attempts = 0;
        while claim.checkpoint.row < last_row {
            if keeper.is_lost() {
                return Ok(PartitionEnd::Abandoned);
            }
            if *stop.borrow() {
                // Shutting down: hand the partition back so another worker
                // resumes after the checkpoint now instead of after the lease.
                self.ports().queue.release_partition(&claim).await?;
                tracing::info!(run = %claim.run_id, partition = claim.range.index, "partition released on shutdown");
                return Ok(PartitionEnd::Abandoned);
            }
            batch.clear();
            let last = match self
                .read_batch(&ctx, &claim.checkpoint, last_row, &mut batch)
                .await
            {
                Ok(last) => last,
                Err(ReadFailure::Source(message)) => {
                    attempts += 1;
                    if attempts >= SOURCE_ATTEMPTS {
                        return self.fail(&claim, message).await;
                    }
                    tracing::warn!(run = %claim.run_id, partition = claim.range.index, error = %message, "source read failed, retrying");
                    tokio::time::sleep(Duration::from_millis(
                        self.settings().source_retry_ms * u64::from(attempts),
                    ))
                    .await;
                    continue;
                }
                Err(ReadFailure::Fatal(message)) => return self.fail(&claim, message).await,
            };
            attempts = 0;
            let checkpoint = claim
                .checkpoint
                .advance(&claim.range, last.row, last.next_position())
                .map_err(|e| AppError::Internal(e.to_string()))?;
            match self
                .commit(
                    &ctx,
                    &claim,
                    &batch,
                    checkpoint,
                    None,
                    &mut rate,
                    &mut last_commit,
                    &keeper,
                )
                .await?
            {
                Some(outcome) => {
                    claim.checkpoint = checkpoint;
                    if let Some(end) = self.after_commit(&ctx, &claim, &outcome).await? {
                        return Ok(end);
                    }
                    if outcome.partition_completed {
                        return Ok(PartitionEnd::Completed);
                    }
                }
                None => return Ok(PartitionEnd::Abandoned),
            }
        }
        // Nothing was left to read (e.g. a retry partition whose revisits all
        // committed earlier): an empty fenced commit lets the store mark it completed.
        batch.clear();
        let checkpoint = claim.checkpoint;
        match self
            .commit(
                &ctx,
                &claim,
                &batch,
                checkpoint,
                None,
                &mut rate,
                &mut last_commit,
                &keeper,
            )
            .await?
        {
            Some(_) => Ok(PartitionEnd::Completed),
            None => Ok(PartitionEnd::Abandoned),
        }
    }

    /// Reads the next batch after `from`, up to `last_row`. Returns the last
    /// record read.
    async fn read_batch(
        &self,
        ctx: &RunContext,
        from: &Checkpoint,
        last_row: u64,
        batch: &mut Batch,
    ) -> Result<RecordMeta, ReadFailure> {
        let mut reader = RecordReader::new(
            ctx.source.clone(),
            ctx.files.clone(),
            ctx.spec.record_format(),
            ctx.spec.has_header(),
            from.next,
            from.row + 1,
        );
        let settings = self.settings();
        let last = loop {
            let item = reader.advance().await.map_err(|e| {
                let key = ctx
                    .files
                    .get(reader.file_index())
                    .map_or("?", |f| f.key.as_str());
                ReadFailure::Source(format!("Cannot read {key}: {e}"))
            })?;
            match item {
                ReadItem::Header { .. } => continue,
                ReadItem::End => {
                    return Err(ReadFailure::Fatal(format!(
                        "Source changed: row {} was counted at extraction but is no longer there",
                        reader.next_row()
                    )));
                }
                ReadItem::Record(meta) => {
                    let mapping = ctx.mapping(meta.file_index);
                    let body = reader.record();
                    if !ctx.schema.check_record(
                        meta.row,
                        body,
                        mapping,
                        &mut batch.rows,
                        &mut batch.errors,
                    ) {
                        batch.rejected.push(RejectedRow {
                            row: meta.row,
                            file_index: meta.file_index,
                            raw: raw_of(body),
                        });
                    }
                    if meta.row >= last_row
                        || batch.len() >= settings.batch_rows
                        || batch.rows.text_bytes() >= settings.batch_bytes
                    {
                        break meta;
                    }
                }
            }
        };
        Ok(last)
    }

    /// Commits a batch, retrying while the store is unavailable. `None` when
    /// the claim no longer holds (lease lost, run stopped).
    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        ctx: &RunContext,
        claim: &PartitionClaim,
        batch: &Batch,
        checkpoint: Checkpoint,
        revisit_cursor: Option<u64>,
        rate: &mut Option<f64>,
        last_commit: &mut Instant,
        keeper: &LeaseKeeper,
    ) -> Result<Option<CommitOutcome>, AppError> {
        let rows = batch.len() as u64;
        let elapsed = u64::try_from(last_commit.elapsed().as_millis()).unwrap_or(u64::MAX);
        let new_rate = smooth_rate(*rate, rows, elapsed);
        let mut attempt = 0;
        loop {
            if keeper.is_lost() {
                return Ok(None);
            }
            attempt += 1;
            let result = self
                .ports()
                .loader
                .commit_batch(BatchCommit {
                    claim,
                    target: &ctx.target,
                    rows: &batch.rows,
                    errors: &batch.errors,
                    rejected: &batch.rejected,
                    checkpoint,
                    revisit_cursor,
                    rate: new_rate,
                    at: self.ports().clock.now(),
                })
                .await;
            match result {
                Ok(outcome) => {
                    *rate = Some(new_rate);
                    *last_commit = Instant::now();
                    return Ok(Some(outcome));
                }
                Err(StoreError::Conflict(_)) => return Ok(None),
                Err(StoreError::Unavailable(m)) if attempt < COMMIT_ATTEMPTS => {
                    tracing::warn!(run = %claim.run_id, error = %m, "commit failed, retrying");
                    tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt))).await;
                }
                Err(StoreError::Unavailable(m)) => return Err(AppError::Unavailable(m)),
                Err(e) => {
                    let message =
                        format!("Destination error in partition {}: {e}", claim.range.index);
                    self.fail(claim, message).await?;
                    return Ok(None);
                }
            }
        }
    }

    /// Applies the error threshold after a commit.
    async fn after_commit(
        &self,
        ctx: &RunContext,
        claim: &PartitionClaim,
        outcome: &CommitOutcome,
    ) -> Result<Option<PartitionEnd>, AppError> {
        if let Some(max) = ctx.spec.max_errors {
            if outcome.run_failed_rows > max {
                let message = format!(
                    "Error threshold exceeded: {} rows failed validation, maxErrors is {max}",
                    outcome.run_failed_rows
                );
                return self.fail(claim, message).await.map(Some);
            }
        }
        Ok(None)
    }

    async fn fail(
        &self,
        claim: &PartitionClaim,
        message: String,
    ) -> Result<PartitionEnd, AppError> {
        let now = self.ports().clock.now();
        tracing::warn!(run = %claim.run_id, partition = claim.range.index, reason = %message, "failing run");
        let entry = LogEntry {
            stage: LogStage::Load,
            message,
            timestamp: now,
        };
        self.ports()
            .queue
            .fail_run(claim.run_id, &entry, now)
            .await?;
        Ok(PartitionEnd::FailedRun)
    }
}

/// Why reading a batch stopped.
enum ReadFailure {
    /// The source could not be read (maybe transient).
    Source(String),
    /// The source no longer matches what extraction counted.
    Fatal(String),
}
