//! The work queue: how workers in any number of processes share runs.
//!
//! Two kinds of work are claimed with a lease: extracting a `pending` run
//! (listing and counting its source, cutting partitions) and loading a
//! partition. A lease is a token plus an expiry; the holder renews it while it
//! works. When a worker dies its lease expires and another worker claims the
//! same work again, resuming from the last committed checkpoint. Every write a
//! holder makes is fenced by its token, so a worker that lost its lease (paused,
//! partitioned, killed mid-commit) can never overwrite the new holder's work.

use async_trait::async_trait;
use sluice_domain::ids::{PipelineId, RunId};
use sluice_domain::pipeline::PipelineSpec;
use sluice_domain::run::{Checkpoint, Counters, LogEntry, PartitionRange, Run};
use sluice_domain::time::Timestamp;

use super::StoreError;

/// Why a fenced write did not happen. The fenced writes are the two a lease
/// holder makes to hand over its work: [`WorkQueue::complete_extraction`] and
/// [`super::BulkLoader::commit_batch`]. Whatever the variant, nothing was
/// written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The claim's token no longer holds the work (its lease expired and
    /// another worker claimed it), or the run is no longer in the state the
    /// write needs (it was cancelled, failed or finished). The holder must
    /// let go of the work and change nothing.
    #[error("fenced out: {0}")]
    Fenced(String),
    /// The destination table refused the rows: one of its constraints (a
    /// unique index or primary key, NOT NULL, a check, a foreign key) or a
    /// column that cannot hold a value. The message names the constraint or
    /// column. Retrying the same rows cannot help. Only
    /// [`super::BulkLoader::commit_batch`] returns it.
    #[error("{0}")]
    Destination(String),
    /// The store failed otherwise; [`StoreError::Unavailable`] may be retried.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Names a worker (host, process, random suffix), for lease ownership and logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkerId(pub String);

/// The fencing token of one claim. A new claim of the same work gets a new token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken(pub i64);

/// A file of a run's source, in the run's sorted file list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Position in the run's file list (lexical key order).
    pub index: u32,
    /// Object key.
    pub key: String,
    /// Size in bytes as listed.
    pub size: u64,
    /// ETag as listed, to detect a file changed between a run and its retry.
    pub etag: Option<String>,
    /// Modification time as listed.
    pub last_modified: Option<Timestamp>,
    /// Whether the file is gunzipped while read.
    pub gzip: bool,
    /// Header fields (CSV with a header), used to map columns by name.
    pub header: Option<Vec<String>>,
    /// First row number of the file.
    pub first_row: u64,
    /// Rows in the file.
    pub row_count: u64,
}

/// A `pending` run claimed for extraction.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractionClaim {
    /// The run.
    pub run: Run,
    /// The definition it executes.
    pub spec: PipelineSpec,
    /// Fencing token.
    pub token: LeaseToken,
    /// True for a resumable retry: files and partitions were copied from the
    /// original run; extraction only checks the files are unchanged.
    pub resume: bool,
}

/// What extraction found.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractionResult {
    /// Files in lexical key order.
    pub files: Vec<SourceFile>,
    /// Partition ranges (contiguous, covering every row).
    pub partitions: Vec<PartitionRange>,
    /// Rows in the source.
    pub total_rows: u64,
    /// Log entries to append (e.g. `Read N rows from source`).
    pub log: Vec<LogEntry>,
    /// The definition the run executes from now on, when extraction changed
    /// it (`schemaDrift: evolve` added columns); `None` keeps the claim's.
    pub spec: Option<PipelineSpec>,
}

/// A partition claimed for loading.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionClaim {
    /// Its run.
    pub run_id: RunId,
    /// The run's pipeline.
    pub pipeline_id: PipelineId,
    /// Its rows.
    pub range: PartitionRange,
    /// The committed checkpoint to resume after.
    pub checkpoint: Checkpoint,
    /// Counters committed so far.
    pub counters: Counters,
    /// Rows of the original run (of a retry) still to revisit in this
    /// partition, after `revisit_cursor`.
    pub pending_revisits: u64,
    /// Last revisited row.
    pub revisit_cursor: u64,
    /// Fencing token.
    pub token: LeaseToken,
    /// Lease expiry.
    pub expires_at: Timestamp,
}

/// A run that reached a terminal status.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalizedRun {
    /// The run after finalisation.
    pub run: Run,
    /// The definition it executed.
    pub spec: PipelineSpec,
}

/// Claims, leases and run transitions of the engine.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Claims the oldest `pending` run whose extraction is unclaimed or whose
    /// extraction lease expired, leasing it until `now + lease_ms`. `None`
    /// when there is nothing to extract.
    async fn claim_extraction(
        &self,
        worker: &WorkerId,
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<Option<ExtractionClaim>, StoreError>;

    /// Stores what extraction found and moves the run to `running`, in one
    /// transaction fenced by the claim's token ([`CommitError::Fenced`] if
    /// the lease was lost or the run is no longer pending). For a resumable
    /// retry `result` is `None`: the copied files and partitions are kept.
    async fn complete_extraction(
        &self,
        claim: &ExtractionClaim,
        result: Option<&ExtractionResult>,
        now: Timestamp,
    ) -> Result<(), CommitError>;

    /// The file list of a run, in index order.
    async fn run_files(&self, run_id: RunId) -> Result<Vec<SourceFile>, StoreError>;

    /// Claims the next partition to load: `pending`, or `running` with an
    /// expired lease, of a `running` run (oldest run first, lowest index),
    /// using `FOR UPDATE SKIP LOCKED` semantics so concurrent callers never get
    /// the same partition. Sets it `running` with a new token and lease.
    async fn claim_partition(
        &self,
        worker: &WorkerId,
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<Option<PartitionClaim>, StoreError>;

    /// Extends a partition lease to `until`. Returns false (and changes
    /// nothing) when the token no longer holds the lease or the run stopped.
    async fn renew_partition(
        &self,
        claim: &PartitionClaim,
        until: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Extends an extraction lease; false when lost.
    async fn renew_extraction(
        &self,
        claim: &ExtractionClaim,
        until: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Hands a partition back (`running → pending`) so another worker can
    /// take it at once, e.g. on shutdown. No-op when the lease is lost.
    async fn release_partition(&self, claim: &PartitionClaim) -> Result<(), StoreError>;

    /// The rejected records of the original run that a retry partition must
    /// revisit, after row `after`, in row order, at most `limit`.
    async fn revisit_rows(
        &self,
        run_id: RunId,
        partition: u32,
        after: u64,
        limit: usize,
    ) -> Result<Vec<super::RejectedRow>, StoreError>;

    /// Fails a run that is `pending` or `running`: status `failed`, unfinished
    /// partitions `failed`, a `replace` shadow table dropped, `entry` logged.
    /// Returns false when the run was already terminal.
    async fn fail_run(
        &self,
        run_id: RunId,
        entry: &LogEntry,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Finalises every `running` run whose partitions are all completed: sets
    /// `completed` or `completed_with_errors`, swaps a `replace` shadow table
    /// into place, writes every file of the run into its pipeline's file
    /// ledger (key, version, rows and per-file counters, this run, `now`;
    /// replacing an older entry of the key, forgotten or not), logs the
    /// outcome, all in one transaction per run; at most one caller finalises
    /// a given run. Returns the runs it finalised.
    async fn finalize_ready_runs(&self, now: Timestamp) -> Result<Vec<FinalizedRun>, StoreError>;
}
