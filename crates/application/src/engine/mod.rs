//! The run engine: extraction, partition loading, finalisation and the worker
//! loop. Everything here talks to the outside only through the ports, so the
//! same engine runs in `sluice serve` (in-process workers), in `sluice worker`
//! processes, and in tests over the in-memory fakes.
//!
//! ```text
//!  pending run ──claim_extraction──► list + count files ──► partitions ──► running
//!  running partition ──claim_partition──► [revisit rejected rows] ──► read from checkpoint
//!        └─ per batch: validate ─► commit_batch (rows + errors + counters + checkpoint, one txn)
//!  all partitions completed ──finalize_ready_runs──► completed | completed_with_errors
//! ```

mod context;
mod extract;
mod finalize;
mod lease;
mod partition;
mod worker;

pub use worker::{Worker, WorkerOutcome};

#[cfg(test)]
mod tests;
