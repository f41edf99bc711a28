//! Keeps a lease alive while work runs, and tells the work when it was lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::ports::{Clock, ExtractionClaim, PartitionClaim, WorkQueue};

/// Renews a claim every third of its lease until dropped; `is_lost` turns true
/// once a renewal is refused (another worker took over, or the run stopped).
#[derive(Debug)]
pub(crate) struct LeaseKeeper {
    lost: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

/// What is being kept alive.
pub(crate) enum Claimed {
    Partition(PartitionClaim),
    Extraction(Box<ExtractionClaim>),
}

impl LeaseKeeper {
    pub(crate) fn start(
        queue: Arc<dyn WorkQueue>,
        clock: Arc<dyn Clock>,
        claimed: Claimed,
        lease_ms: i64,
    ) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        let period = Duration::from_millis(u64::try_from(lease_ms / 3).unwrap_or(1000).max(10));
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                let until = clock.now().plus_millis(lease_ms);
                let renewed = match &claimed {
                    Claimed::Partition(c) => queue.renew_partition(c, until).await,
                    Claimed::Extraction(c) => queue.renew_extraction(c, until).await,
                };
                match renewed {
                    Ok(true) => {}
                    Ok(false) => {
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                    // A failed renewal is not a lost lease: try again next tick;
                    // if the store stays away the lease expires and the fenced
                    // commit fails anyway.
                    Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
                }
            }
        });
        Self { lost, task }
    }

    /// True once the lease is known to be lost.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}
