//! The worker loop: claim work, do it, repeat; idle politely when there is none.

use std::time::Duration;

use tokio::sync::watch;

use super::partition::PartitionEnd;
use crate::AppError;
use crate::ports::WorkerId;
use crate::usecases::App;

/// What one step of a worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerOutcome {
    /// Extracted a run.
    Extracted,
    /// Loaded (or gave up) a partition.
    Loaded,
    /// Finalised runs only.
    Finalized,
    /// Nothing to do.
    Idle,
}

/// One worker: claims extractions and partitions from the shared queue.
#[derive(Debug, Clone)]
pub struct Worker {
    app: App,
    id: WorkerId,
    idle: Duration,
    stop: watch::Receiver<bool>,
}

impl Worker {
    /// A worker named `id`, waiting `idle` between polls of an empty queue.
    pub fn new(app: App, id: WorkerId, idle: Duration) -> Self {
        // A channel whose sender is gone: `stop` stays false for good.
        let (_, stop) = watch::channel(false);
        Self {
            app,
            id,
            idle,
            stop,
        }
    }

    /// Stops when `stop` turns true: between steps, and inside a partition at
    /// the next batch boundary, where the partition is handed back to the queue.
    pub fn with_shutdown(mut self, stop: watch::Receiver<bool>) -> Self {
        self.stop = stop;
        self
    }

    /// Does one unit of work: finalise ready runs, else extract a pending run,
    /// else load a partition.
    pub async fn step(&self) -> Result<WorkerOutcome, AppError> {
        let ports = self.app.ports();
        let lease = self.app.settings().lease_ms;
        if let Some(claim) = ports
            .queue
            .claim_extraction(&self.id, ports.clock.now(), lease)
            .await?
        {
            tracing::info!(worker = %self.id.0, run = %claim.run.id, "extracting");
            self.app.extract(claim).await?;
            self.app.finalize_runs().await?;
            return Ok(WorkerOutcome::Extracted);
        }
        if let Some(claim) = ports
            .queue
            .claim_partition(&self.id, ports.clock.now(), lease)
            .await?
        {
            tracing::debug!(worker = %self.id.0, run = %claim.run_id, partition = claim.range.index, "loading partition");
            let end = self.app.load_partition(claim, &self.stop).await?;
            if end != PartitionEnd::Abandoned {
                self.app.finalize_runs().await?;
            }
            return Ok(WorkerOutcome::Loaded);
        }
        if self.app.finalize_runs().await? > 0 {
            return Ok(WorkerOutcome::Finalized);
        }
        Ok(WorkerOutcome::Idle)
    }

    /// Steps until there is nothing left to do (for tests and one-shot use).
    pub async fn run_until_idle(&self) -> Result<(), AppError> {
        while self.step().await? != WorkerOutcome::Idle {}
        Ok(())
    }

    /// Runs until the shutdown signal given to [`Worker::with_shutdown`] turns
    /// true. Errors are logged and retried after a pause; a store outage does
    /// not stop the worker.
    pub async fn run(self) {
        let mut shutdown = self.stop.clone();
        tracing::info!(worker = %self.id.0, "worker started");
        let wake = self.app.wake().clone();
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Registered before the step, so work created while the step
            // finds none still wakes this worker.
            let woken = wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let pause = match self.step().await {
                Ok(WorkerOutcome::Idle) => self.idle,
                Ok(_) => Duration::ZERO,
                Err(e) => {
                    tracing::warn!(worker = %self.id.0, error = %e, "worker step failed");
                    self.idle.max(Duration::from_secs(1))
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    _ = shutdown.changed() => {}
                    () = tokio::time::sleep(pause) => {}
                    () = &mut woken => {}
                }
            }
        }
        tracing::info!(worker = %self.id.0, "worker stopped");
    }
}
