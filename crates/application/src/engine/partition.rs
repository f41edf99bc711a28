//! Loading one claimed partition ([`PartitionLoad`]): revisit the rows a
//! retry must read again, then stream the range from its checkpoint through
//! one open reader, validating and committing batch by batch (rows, errors,
//! counters and checkpoint in one transaction).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_domain::eta::smooth_rate;
use sluice_domain::run::{Checkpoint, LogEntry, LogStage};
use sluice_domain::validation::{RowError, ValidBatch};
use tokio::sync::watch;

use super::Engine;
use super::context::RunContext;
use super::lease::{Claimed, LeaseKeeper};
use super::rejected::{check_record, raw_of, with_raw};
use crate::AppError;
use crate::ports::{
    BatchCommit, CommitError, CommitOutcome, PartitionClaim, RejectedRow, StoreError,
};
use crate::reading::{ReadItem, RecordMeta, RecordReader};

/// How often a batch is read again after a source read error before the run fails.
const SOURCE_ATTEMPTS: u32 = 3;
/// How often a commit is tried while the store is unavailable.
const COMMIT_ATTEMPTS: u32 = 3;

/// How a partition's work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartitionEnd {
    /// Every row of the range has a committed outcome.
    Completed,
    /// The claim no longer holds: the lease was lost (another worker goes on)
    /// or the run stopped (cancelled, or failed by another worker).
    Fenced,
    /// Handed back to the queue on shutdown, at a batch boundary, for another
    /// worker to resume after the checkpoint.
    Released,
    /// This worker failed the run (the source is unreadable, the destination
    /// refused a row, the error threshold was crossed).
    FailedRun,
}

/// What committing a batch did.
enum Commit {
    /// The batch is committed.
    Committed(CommitOutcome),
    /// The claim no longer holds; nothing was written.
    Fenced,
    /// The destination refused the batch and this worker failed the run.
    RunFailed,
}

/// Why reading a batch stopped.
enum ReadFailure {
    /// The source could not be read (maybe transient).
    Source(String),
    /// The source no longer matches what extraction counted.
    Fatal(String),
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

/// The smoothed load rate of a partition, from its commits.
struct Rate {
    rows_per_s: Option<f64>,
    last_commit: Instant,
}

impl Rate {
    fn new() -> Self {
        Self {
            rows_per_s: None,
            last_commit: Instant::now(),
        }
    }

    /// The rate after committing `rows` now.
    fn after(&self, rows: u64) -> f64 {
        let elapsed = u64::try_from(self.last_commit.elapsed().as_millis()).unwrap_or(u64::MAX);
        smooth_rate(self.rows_per_s, rows, elapsed)
    }

    fn committed(&mut self, rate: f64) {
        self.rows_per_s = Some(rate);
        self.last_commit = Instant::now();
    }
}

/// One claimed partition being loaded: its run's context, the claim and the
/// lease keeper renewing it, the reader open on its range, the batch being
/// assembled and the partition's rate.
pub(crate) struct PartitionLoad<'a> {
    engine: &'a Engine,
    ctx: Arc<RunContext>,
    claim: PartitionClaim,
    keeper: LeaseKeeper,
    /// The open stream of the range, positioned after the last batch read.
    /// Opened once per claim (a gzip file is decompressed once, not once
    /// per batch); dropped after a read error, then opened again at the
    /// committed checkpoint.
    reader: Option<RecordReader>,
    batch: Batch,
    rate: Rate,
}

impl<'a> PartitionLoad<'a> {
    /// Starts loading `claim` of the run described by `ctx`: the lease is
    /// renewed from now until the load is dropped.
    pub(crate) fn start(engine: &'a Engine, ctx: Arc<RunContext>, claim: PartitionClaim) -> Self {
        let keeper = LeaseKeeper::start(
            engine.ports.queue.clone(),
            engine.ports.clock.clone(),
            Claimed::Partition(claim.clone()),
            engine.tunables.lease_ms,
        );
        Self {
            batch: Batch::new(ctx.schema.width()),
            engine,
            ctx,
            claim,
            keeper,
            reader: None,
            rate: Rate::new(),
        }
    }

    /// Loads the partition to its end, until its claim no longer holds, or
    /// until `stop` turns true (then it is handed back at a batch boundary).
    pub(crate) async fn run(
        mut self,
        stop: &watch::Receiver<bool>,
    ) -> Result<PartitionEnd, AppError> {
        if let Some(end) = self.revisit().await? {
            return Ok(end);
        }
        if let Some(end) = self.load_range(stop).await? {
            return Ok(end);
        }
        // Nothing was left to read (e.g. a retry partition whose revisits all
        // committed earlier): an empty fenced commit lets the store mark it completed.
        self.batch.clear();
        Ok(match self.commit(self.claim.checkpoint, None).await? {
            Commit::Committed(_) => PartitionEnd::Completed,
            Commit::Fenced => PartitionEnd::Fenced,
            Commit::RunFailed => PartitionEnd::FailedRun,
        })
    }

    /// Rows of the original run that failed validation: read again (from
    /// their stored raw form) against the current schema, batch by batch.
    /// `Some` when the partition's work ended there.
    async fn revisit(&mut self) -> Result<Option<PartitionEnd>, AppError> {
        let limit = self.engine.tunables.batch_rows;
        let mut cursor = self.claim.revisit_cursor;
        while self.claim.pending_revisits > 0 {
            let rows = self
                .engine
                .ports
                .queue
                .revisit_rows(self.claim.run_id, self.claim.range.index, cursor, limit)
                .await?;
            let Some(last) = rows.last().map(|r| r.row) else {
                break;
            };
            self.validate_revisits(&rows);
            let outcome = self.commit(self.claim.checkpoint, Some(last)).await?;
            if let Some(end) = self.after_commit(outcome).await? {
                return Ok(Some(end));
            }
            cursor = last;
            self.claim.pending_revisits = self
                .claim
                .pending_revisits
                .saturating_sub(rows.len() as u64);
            if rows.len() < limit {
                break;
            }
        }
        Ok(None)
    }

    /// Validates stored rejected rows into the (cleared) batch.
    fn validate_revisits(&mut self, rows: &[RejectedRow]) {
        let (ctx, batch) = (&self.ctx, &mut self.batch);
        batch.clear();
        for r in rows {
            let ok = with_raw(ctx.spec.record_format(), r, |body, head| {
                let mapping = ctx.mapping(r.file_index);
                let (rows, errors) = (&mut batch.rows, &mut batch.errors);
                check_record(&ctx.schema, r.row, body, head, mapping, rows, errors)
            });
            if !ok {
                batch.rejected.push(r.clone());
            }
        }
    }

    /// The rows of the range after the checkpoint, batch by batch. `Some`
    /// when the partition's work ended before the range did.
    async fn load_range(
        &mut self,
        stop: &watch::Receiver<bool>,
    ) -> Result<Option<PartitionEnd>, AppError> {
        let last_row = self.claim.range.last_row();
        let mut attempts = 0;
        while self.claim.checkpoint.row < last_row {
            if self.keeper.is_lost() {
                return Ok(Some(PartitionEnd::Fenced));
            }
            if *stop.borrow() {
                return self.release().await.map(Some);
            }
            let last = match self.read_batch(last_row).await {
                Ok(last) => last,
                Err(ReadFailure::Source(message)) => {
                    attempts += 1;
                    if attempts >= SOURCE_ATTEMPTS {
                        return self.fail(message).await.map(Some);
                    }
                    self.pause_after_read_error(&message, attempts).await;
                    continue;
                }
                Err(ReadFailure::Fatal(message)) => return self.fail(message).await.map(Some),
            };
            attempts = 0;
            let checkpoint = self
                .claim
                .checkpoint
                .advance(&self.claim.range, last.row, last.next_position())
                .map_err(|e| AppError::Internal(e.to_string()))?;
            let outcome = self.commit(checkpoint, None).await?;
            if matches!(outcome, Commit::Committed(_)) {
                self.claim.checkpoint = checkpoint;
            }
            if let Some(end) = self.after_commit(outcome).await? {
                return Ok(Some(end));
            }
        }
        Ok(None)
    }

    /// Shutting down: hands the partition back so another worker resumes
    /// after the checkpoint now instead of after the lease.
    async fn release(&mut self) -> Result<PartitionEnd, AppError> {
        self.engine
            .ports
            .queue
            .release_partition(&self.claim)
            .await?;
        tracing::info!(run = %self.claim.run_id, partition = self.claim.range.index, "partition released on shutdown");
        Ok(PartitionEnd::Released)
    }

    /// After a read error: forget the reader (the next batch reopens the
    /// source at the checkpoint) and wait a little longer each time.
    async fn pause_after_read_error(&mut self, message: &str, attempts: u32) {
        self.reader = None;
        tracing::warn!(run = %self.claim.run_id, partition = self.claim.range.index, error = %message, "source read failed, retrying");
        let pause = self.engine.tunables.source_retry_ms * u64::from(attempts);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }

    /// Reads and validates the next batch into the (cleared) batch, up to
    /// `last_row`. Returns the last record read.
    async fn read_batch(&mut self, last_row: u64) -> Result<RecordMeta, ReadFailure> {
        self.batch.clear();
        let (ctx, batch, tunables) = (&self.ctx, &mut self.batch, &self.engine.tunables);
        let from = self.claim.checkpoint;
        let reader = self.reader.get_or_insert_with(|| {
            RecordReader::new(
                ctx.source.clone(),
                ctx.files.clone(),
                ctx.spec.record_format(),
                ctx.spec.has_header(),
                from.next,
                from.row + 1,
            )
        });
        loop {
            let item = reader.advance().await.map_err(|e| {
                let key = ctx
                    .files
                    .get(reader.file_index())
                    .map_or("?", |f| f.key.as_str());
                ReadFailure::Source(format!("Cannot read {key}: {e}"))
            })?;
            let meta = match item {
                ReadItem::Header { .. } => continue,
                ReadItem::End => {
                    return Err(ReadFailure::Fatal(format!(
                        "Source changed: row {} was counted at extraction but is no longer there",
                        reader.next_row()
                    )));
                }
                ReadItem::Record(meta) => meta,
            };
            let (body, head) = (reader.record(), reader.malformed_head());
            let mapping = ctx.mapping(meta.file_index);
            let (rows, errors) = (&mut batch.rows, &mut batch.errors);
            if !check_record(&ctx.schema, meta.row, body, head, mapping, rows, errors) {
                batch.rejected.push(RejectedRow {
                    row: meta.row,
                    file_index: meta.file_index,
                    raw: raw_of(body, head),
                });
            }
            if meta.row >= last_row
                || batch.len() >= tunables.batch_rows
                || batch.rows.text_bytes() >= tunables.batch_bytes
            {
                return Ok(meta);
            }
        }
    }

    /// Commits the batch with `checkpoint`, retrying while the store is
    /// unavailable. A destination that refuses the batch fails the run.
    async fn commit(
        &mut self,
        checkpoint: Checkpoint,
        revisit_cursor: Option<u64>,
    ) -> Result<Commit, AppError> {
        let rate = self.rate.after(self.batch.len() as u64);
        let mut attempt = 0;
        loop {
            if self.keeper.is_lost() {
                return Ok(Commit::Fenced);
            }
            attempt += 1;
            let commit = BatchCommit {
                claim: &self.claim,
                target: &self.ctx.target,
                rows: &self.batch.rows,
                errors: &self.batch.errors,
                rejected: &self.batch.rejected,
                checkpoint,
                revisit_cursor,
                rate,
                at: self.engine.ports.clock.now(),
            };
            match self.engine.ports.loader.commit_batch(commit).await {
                Ok(outcome) => {
                    self.rate.committed(rate);
                    return Ok(Commit::Committed(outcome));
                }
                Err(CommitError::Fenced(_)) => return Ok(Commit::Fenced),
                Err(CommitError::Store(StoreError::Unavailable(m)))
                    if attempt < COMMIT_ATTEMPTS =>
                {
                    tracing::warn!(run = %self.claim.run_id, error = %m, "commit failed, retrying");
                    tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt))).await;
                }
                Err(CommitError::Store(StoreError::Unavailable(m))) => {
                    return Err(AppError::Unavailable(m));
                }
                Err(e) => {
                    let index = self.claim.range.index;
                    self.fail(format!("Destination error in partition {index}: {e}"))
                        .await?;
                    return Ok(Commit::RunFailed);
                }
            }
        }
    }

    /// What a commit means for the partition: `Some` when its work ended
    /// (fenced, run failed, range completed, error threshold crossed).
    async fn after_commit(&mut self, commit: Commit) -> Result<Option<PartitionEnd>, AppError> {
        let outcome = match commit {
            Commit::Committed(outcome) => outcome,
            Commit::Fenced => return Ok(Some(PartitionEnd::Fenced)),
            Commit::RunFailed => return Ok(Some(PartitionEnd::FailedRun)),
        };
        if let Some(max) = self.ctx.spec.max_errors {
            if outcome.run_failed_rows > max {
                let message = format!(
                    "Error threshold exceeded: {} rows failed validation, maxErrors is {max}",
                    outcome.run_failed_rows
                );
                return self.fail(message).await.map(Some);
            }
        }
        Ok(outcome
            .partition_completed
            .then_some(PartitionEnd::Completed))
    }

    /// Fails the run with `message` (logged at stage `load`). (`&mut`: a load
    /// holds its reader's stream, which is `Send` but not `Sync`.)
    async fn fail(&mut self, message: String) -> Result<PartitionEnd, AppError> {
        self.engine.fail_run_of(&self.claim, message).await
    }
}

impl Engine {
    /// Fails the run of `claim` with `message`, logged at stage `load`.
    pub(crate) async fn fail_run_of(
        &self,
        claim: &PartitionClaim,
        message: String,
    ) -> Result<PartitionEnd, AppError> {
        let now = self.ports.clock.now();
        tracing::warn!(run = %claim.run_id, partition = claim.range.index, reason = %message, "failing run");
        let entry = LogEntry {
            stage: LogStage::Load,
            message,
            timestamp: now,
        };
        self.ports.queue.fail_run(claim.run_id, &entry, now).await?;
        Ok(PartitionEnd::FailedRun)
    }
}
