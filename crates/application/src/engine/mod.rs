//! The run engine: a process driven by workers, the other way into the
//! application beside the use cases of requests ([`crate::usecases`]). It
//! extracts runs, loads their partitions, finalises them and cleans up after
//! them. Everything here talks to the outside only through the ports, so the
//! same engine runs in `sluice serve` (in-process workers), in `sluice
//! worker` processes, and in tests over the in-memory fakes.
//!
//! ```text
//!  pending run ──claim_extraction──► list + count files ──► partitions ──► running
//!  running partition ──claim_partition──► [revisit rejected rows] ──► read from checkpoint
//!        └─ per batch: validate ─► commit_batch (rows + errors + counters + checkpoint, one txn)
//!  all partitions completed ──finalize_ready_runs──► completed | completed_with_errors
//! ```
//!
//! | file | what |
//! |---|---|
//! | `worker.rs` | the loop: claim work, do it, idle until woken |
//! | `extract.rs` | `Extraction`: a pending run being listed, counted and cut |
//! | `context.rs` | what loading a run needs, built once per run per worker |
//! | `partition.rs` | `PartitionLoad`: one claimed partition being loaded, batch by batch |
//! | `rejected.rs` | the raw form rejected records are kept in |
//! | `finalize.rs` | finished runs, their touch files |
//! | `lease.rs` | keeping a lease alive while the work runs |
//!
//! The engine is the part of Sluice most often changed, so its functions are
//! kept short enough to read at once: clippy refuses a function of more than
//! 80 lines here (`too_many_lines`, threshold in `clippy.toml`) and any
//! function taking more than seven arguments; both lints are forbidden, so
//! no `#[allow]` can switch them off inside this module. Give a long step a
//! type of its own (as `PartitionLoad` and `Extraction` are) instead.

#![forbid(clippy::too_many_lines, clippy::too_many_arguments)]

mod context;
mod extract;
mod finalize;
mod lease;
mod partition;
mod rejected;
pub(crate) use rejected::check_record;
mod worker;

#[cfg(test)]
mod tests;

pub use worker::{Worker, WorkerOutcome};

use crate::ports::Ports;
use crate::{Tunables, WorkSignal};

/// The engine over the ports, cheap to clone; [`Worker`]s drive it.
#[derive(Debug, Clone)]
pub struct Engine {
    ports: Ports,
    tunables: Tunables,
    wake: WorkSignal,
}

impl Engine {
    /// The engine over `ports`.
    pub fn new(ports: Ports, tunables: Tunables) -> Self {
        Self {
            ports,
            tunables,
            wake: WorkSignal::new(),
        }
    }

    /// Wakes its idle workers on `wake`: the signal of the use cases of the
    /// same process ([`crate::usecases::UseCases::wake`]), so a run started
    /// through the API is picked up at once. The engine raises it too when
    /// an extraction creates partitions.
    #[must_use]
    pub fn with_wake(mut self, wake: WorkSignal) -> Self {
        self.wake = wake;
        self
    }
}
