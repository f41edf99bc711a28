//! The worker loop: claim work, do it, repeat; idle politely when there is none.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use super::Engine;
use super::context::RunContexts;
use super::partition::{PartitionEnd, PartitionLoad};
use crate::AppError;
use crate::ports::{PartitionClaim, WorkerId};

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
pub struct Worker {
    engine: Engine,
    id: WorkerId,
    idle: Duration,
    stop: watch::Receiver<bool>,
    /// The context of the run whose partitions it loads, kept between claims.
    contexts: Mutex<RunContexts>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker of `engine` named `id`, waiting `idle` between polls of an
    /// empty queue.
    pub fn new(engine: Engine, id: WorkerId, idle: Duration) -> Self {
        // A channel whose sender is gone: `stop` stays false for good.
        let (_, stop) = watch::channel(false);
        Self {
            engine,
            id,
            idle,
            stop,
            contexts: Mutex::new(RunContexts::default()),
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
        let (ports, lease) = (&self.engine.ports, self.engine.tunables.lease_ms);
        if let Some(claim) = ports
            .queue
            .claim_extraction(&self.id, ports.clock.now(), lease)
            .await?
        {
            tracing::info!(worker = %self.id.0, run = %claim.run.id, "extracting");
            self.engine.extract(claim).await?;
            self.engine.finalize_runs().await?;
            return Ok(WorkerOutcome::Extracted);
        }
        if let Some(claim) = ports
            .queue
            .claim_partition(&self.id, ports.clock.now(), lease)
            .await?
        {
            tracing::debug!(worker = %self.id.0, run = %claim.run_id, partition = claim.range.index, "loading partition");
            let end = self.load(claim).await;
            if !matches!(end, Ok(PartitionEnd::Completed)) {
                // The run has nothing more for this worker, or it could not
                // tell: build its context afresh if it comes back to it.
                self.contexts().forget();
            }
            if matches!(end?, PartitionEnd::Completed | PartitionEnd::FailedRun) {
                self.engine.finalize_runs().await?;
            }
            return Ok(WorkerOutcome::Loaded);
        }
        self.contexts().forget();
        if self.engine.finalize_runs().await? > 0 {
            return Ok(WorkerOutcome::Finalized);
        }
        Ok(WorkerOutcome::Idle)
    }

    /// Loads a claimed partition with the context of its run (kept from the
    /// worker's previous claim of the same run, or built now).
    async fn load(&self, claim: PartitionClaim) -> Result<PartitionEnd, AppError> {
        let kept = self.contexts().current(claim.run_id);
        let ctx = match kept {
            Some(ctx) => ctx,
            None => match self
                .engine
                .run_context(claim.run_id, claim.pipeline_id)
                .await
            {
                Ok(ctx) => self.contexts().keep(ctx),
                Err(e) => {
                    let message = format!("Cannot load partition {}: {e}", claim.range.index);
                    return self.engine.fail_run_of(&claim, message).await;
                }
            },
        };
        PartitionLoad::start(&self.engine, ctx, claim)
            .run(&self.stop)
            .await
    }

    fn contexts(&self) -> std::sync::MutexGuard<'_, RunContexts> {
        // A poisoned cache only loses what it kept.
        self.contexts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let wake = self.engine.wake.clone();
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
