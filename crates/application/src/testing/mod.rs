//! In-memory fakes of the ports, and the contract suites every implementation
//! of the storage ports must pass (run against these fakes here and against
//! PostgreSQL in `sluice-postgres`), so the fakes cannot drift from the real
//! store.

mod clock;
pub mod contract;
mod memory_source;
mod memory_store;

pub use clock::{ManualClock, SequentialIds};
pub use memory_source::{InMemorySource, InMemorySourceFactory};
pub use memory_store::InMemoryStore;

use async_trait::async_trait;

/// The warehouse as contract tests see it: a destination table read back
/// (every row's values in column order, as text, `None` for NULL, sorted by
/// the first column's text, plus its lineage `(_sluice_run_id, _sluice_row)`),
/// and a table made the way an operator may have made it before pointing a
/// pipeline at it.
#[async_trait]
pub trait DestinationProbe: Send + Sync {
    /// Creates `table` in the warehouse with the contract fixtures' columns,
    /// `id bigint` as its primary key (constraint `<table>_pkey`) and `name
    /// text`, as an operator would, outside Sluice.
    async fn create_table_with_primary_key(&self, table: &str);

    /// The rows of `table` in the warehouse, or `None` if the table does not exist.
    async fn table_rows(&self, table: &str) -> Option<Vec<ProbedRow>>;
}

/// A destination row read by a [`DestinationProbe`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProbedRow {
    /// Column values as text.
    pub values: Vec<Option<String>>,
    /// `_sluice_run_id`.
    pub run_id: String,
    /// `_sluice_row`.
    pub row: u64,
}
