//! The bulk loader: destination tables and the atomic batch commit that makes
//! loads exactly-once.

use async_trait::async_trait;
use sluice_domain::identifier::Identifier;
use sluice_domain::ids::RunId;
use sluice_domain::pipeline::{LoadStrategy, PipelineSpec};
use sluice_domain::run::Checkpoint;
use sluice_domain::schema::Schema;
use sluice_domain::time::Timestamp;
use sluice_domain::validation::{RowError, ValidBatch};

use super::{CommitError, PartitionClaim, StoreError};

/// Where and how a run loads.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadTarget {
    /// The run (its id goes into `_sluice_run_id`).
    pub run_id: RunId,
    /// Destination table in the warehouse schema.
    pub table: Identifier,
    /// Columns and types.
    pub schema: Schema,
    /// Key columns (may be empty for append and replace).
    pub key_columns: Vec<Identifier>,
    /// Strategy.
    pub strategy: LoadStrategy,
    /// The run and the runs it retries (its retry chain, newest first): rows
    /// written by these runs are "this load" when deciding which occurrence of
    /// a key wins.
    pub lineage: Vec<RunId>,
}

impl LoadTarget {
    /// The target of run `run_id` executing `spec`, with its `lineage` (the
    /// run first).
    pub fn new(run_id: RunId, spec: &PipelineSpec, lineage: Vec<RunId>) -> Self {
        Self {
            run_id,
            table: spec.destination.table.clone(),
            schema: spec.load_schema(),
            key_columns: spec.destination.key_columns.clone(),
            strategy: spec.load_strategy,
            lineage,
        }
    }
}

/// A record that failed validation, kept raw so a retry can validate it again
/// against a changed schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// Row number.
    pub row: u64,
    /// Index of its file in the run's file list (to map CSV columns by header).
    pub file_index: u32,
    /// The record: canonical CSV (comma, double quotes, one line) or the JSON line.
    pub raw: Vec<u8>,
}

/// One batch of a partition, to commit atomically.
#[derive(Debug)]
pub struct BatchCommit<'a> {
    /// The claim (its token fences the commit).
    pub claim: &'a PartitionClaim,
    /// Destination.
    pub target: &'a LoadTarget,
    /// Valid rows to load.
    pub rows: &'a ValidBatch,
    /// Validation errors of the batch.
    pub errors: &'a [RowError],
    /// Raw records of the rows that failed.
    pub rejected: &'a [RejectedRow],
    /// Checkpoint after the batch: every row up to `checkpoint.row` has an
    /// outcome once this commits. For a revisit batch, the checkpoint is unchanged.
    pub checkpoint: Checkpoint,
    /// For a revisit batch: the last revisited row (rows of the original run
    /// up to it are done).
    pub revisit_cursor: Option<u64>,
    /// Smoothed rate to store, rows per second.
    pub rate: f64,
    /// Commit time.
    pub at: Timestamp,
}

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitOutcome {
    /// Rows of this batch written.
    pub loaded: u64,
    /// Valid rows of this batch not written (duplicate key or newer version won).
    pub skipped: u64,
    /// Rows of this batch that failed validation.
    pub failed: u64,
    /// The run's failed rows after this commit (for the error threshold).
    pub run_failed_rows: u64,
    /// True when this batch completed the partition (status `completed`).
    pub partition_completed: bool,
}

/// Loads batches into the warehouse.
#[async_trait]
pub trait BulkLoader: Send + Sync {
    /// Makes the destination ready, idempotently: creates the table from the
    /// schema if missing (typed columns, lineage columns `_sluice_run_id`,
    /// `_sluice_row`, `_sluice_loaded_at`, a unique index on the key columns),
    /// and for `replace` the run's shadow table. `Unprocessable` when an
    /// existing table cannot receive the rows (missing column, incompatible
    /// type, duplicate keys preventing the unique index), with a message that
    /// says what to fix.
    async fn prepare_destination(&self, target: &LoadTarget) -> Result<(), StoreError>;

    /// Commits one batch in ONE transaction: the valid rows into the destination
    /// (or shadow) table by the target's strategy, the validation errors and
    /// rejected records, the partition's counters, rate and checkpoint (and
    /// `completed` status when the checkpoint reaches the end of its range),
    /// and the counters of the run's files the batch's rows belong to (by
    /// row number), so per-file loaded, skipped and failed rows are exact.
    /// Fenced: [`CommitError::Fenced`] when the claim's token no longer holds
    /// the partition or the run is no longer `running`;
    /// [`CommitError::Destination`] when the destination table refuses a row
    /// (e.g. a unique index of an existing table that an `append` without
    /// key columns repeats). Nothing is written in either case.
    ///
    /// Strategy rules:
    /// * `append`: without keys every row is inserted. With keys, a row whose
    ///   key was stored by an earlier load is skipped; within this load (the
    ///   lineage) the first occurrence in row order is kept, whatever order the
    ///   partitions commit in. `loaded` = rows that inserted a new key.
    /// * `replace`: rows go to the run's shadow table; with keys the last
    ///   occurrence in row order is kept. `loaded` = rows that inserted a new key.
    /// * `upsert`: a row is written when its key is new, stored by an earlier
    ///   load, or stored by this load from an earlier row; the last occurrence
    ///   in row order wins. `loaded` = rows written.
    ///
    /// In every case `skipped = valid rows - loaded`, so `processed = loaded +
    /// skipped + failed` holds whatever the batch timing, and for `append` and
    /// `replace` `skippedRows` is exact (valid rows minus distinct new keys).
    async fn commit_batch(&self, commit: BatchCommit<'_>) -> Result<CommitOutcome, CommitError>;

    /// The statements [`BulkLoader::prepare_destination`] would execute to
    /// create `table`, missing, for `schema` and `keys` (shown by schema
    /// inference; nothing is executed). By default the domain's text in a
    /// warehouse schema named `public`; a loader with another warehouse
    /// names its own.
    fn create_table_sql(
        &self,
        table: &Identifier,
        schema: &Schema,
        keys: &[Identifier],
    ) -> Vec<String> {
        let public = Identifier::parse("public")
            .unwrap_or_else(|_| unreachable!("`public` is a valid identifier"));
        sluice_domain::ddl::create_table_statements(&public, table, schema, keys)
    }
}
