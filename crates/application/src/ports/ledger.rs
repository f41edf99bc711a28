//! The file ledger port: which files of a pipeline runs have loaded, and the
//! files each run read. Entries are written by [`super::WorkQueue::finalize_ready_runs`]
//! (in the finalising transaction) and their per-file counters by
//! [`super::BulkLoader::commit_batch`]; this port reads them and forgets them.

use async_trait::async_trait;
use sluice_domain::ids::{PipelineId, RunId};
use sluice_domain::ledger::{KnownFile, LedgerEntry, RunFile};
use sluice_domain::time::Timestamp;

use super::{Page, PageRequest, StoreError};

/// Most keys one [`LedgerStore::known_files`] call looks up: callers cut a
/// listing into chunks of this size, so a million-file listing is checked in
/// bounded memory.
pub const LEDGER_LOOKUP_CHUNK: usize = 5_000;

/// Which ledger entries to forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForgetFiles {
    /// The entry of exactly this key.
    Key(String),
    /// Every entry whose key starts with this prefix.
    Prefix(String),
}

/// The ledger and the per-run file lists.
#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// The ledger entries (forgotten ones included, marked) of those of
    /// `keys` the pipeline's ledger holds, in any order. At most
    /// [`LEDGER_LOOKUP_CHUNK`] keys per call; an unknown pipeline has none.
    async fn known_files(
        &self,
        pipeline_id: PipelineId,
        keys: &[String],
    ) -> Result<Vec<KnownFile>, StoreError>;

    /// A pipeline's ledger, newest first (forgotten entries left out),
    /// restricted to keys starting with `prefix` when given. `NotFound` if the
    /// pipeline is absent. The cursor is opaque (`[0-9]+`).
    async fn list_ledger(
        &self,
        pipeline_id: PipelineId,
        prefix: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<LedgerEntry>, StoreError>;

    /// Marks the selected entries forgotten by `by` at `at`, so the next run
    /// reads those files again; returns how many were forgotten (0 when none
    /// matched). `NotFound` if the pipeline is absent.
    async fn forget_files(
        &self,
        pipeline_id: PipelineId,
        which: &ForgetFiles,
        by: &str,
        at: Timestamp,
    ) -> Result<u64, StoreError>;

    /// The files a run read, in index order, with their counters; `NotFound`
    /// if the run is absent or belongs to another pipeline. The cursor is
    /// opaque (`[0-9]+`).
    async fn list_run_files(
        &self,
        pipeline_id: PipelineId,
        run_id: RunId,
        page: &PageRequest,
    ) -> Result<Page<RunFile>, StoreError>;
}
