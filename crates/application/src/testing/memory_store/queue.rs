//! [`WorkQueue`] in memory.

use async_trait::async_trait;
use sluice_domain::ids::RunId;
use sluice_domain::pipeline::LoadStrategy;
use sluice_domain::run::{Checkpoint, Counters, LogEntry, LogStage, Partition, finalize_message};
use sluice_domain::status::{PartitionStatus, RunStatus};
use sluice_domain::time::Timestamp;

use super::{InMemoryStore, PartRec};
use crate::ports::{
    CommitError, ExtractionClaim, ExtractionResult, FinalizedRun, LeaseToken, PartitionClaim,
    RejectedRow, SourceFile, StoreError, WorkQueue, WorkerId,
};

#[async_trait]
impl WorkQueue for InMemoryStore {
    async fn claim_extraction(
        &self,
        _worker: &WorkerId,
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<Option<ExtractionClaim>, StoreError> {
        let mut s = self.lock()?;
        s.next_token += 1;
        let token = LeaseToken(s.next_token);
        let Some(id) = s
            .runs
            .values()
            .find(|r| {
                r.run.status == RunStatus::Pending && r.extraction.is_none_or(|(_, exp)| exp <= now)
            })
            .map(|r| r.run.id)
        else {
            return Ok(None);
        };
        let rec = s
            .runs
            .get_mut(&id)
            .ok_or_else(|| StoreError::Internal("run vanished".into()))?;
        rec.extraction = Some((token, now.plus_millis(lease_ms)));
        let rec = rec.clone();
        // The run as every read returns it: counters summed from its
        // partitions (a resumable retry already has some).
        Ok(Some(ExtractionClaim {
            run: s.run_view(&rec),
            spec: rec.spec,
            token,
            resume: rec.resume,
        }))
    }

    async fn complete_extraction(
        &self,
        claim: &ExtractionClaim,
        result: Option<&ExtractionResult>,
        now: Timestamp,
    ) -> Result<(), CommitError> {
        let mut s = self.lock()?;
        let run_id = claim.run.id;
        let rec = s
            .runs
            .get_mut(&run_id)
            .ok_or_else(|| StoreError::not_found("run", run_id))?;
        if rec.run.status != RunStatus::Pending
            || rec.extraction.map(|(t, _)| t) != Some(claim.token)
        {
            return Err(CommitError::Fenced("extraction lease lost".into()));
        }
        rec.run.status = rec
            .run
            .status
            .start()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        rec.run.started_at = Some(now);
        rec.extraction = None;
        if let Some(result) = result {
            rec.run.total_rows = Some(result.total_rows);
            if let Some(spec) = &result.spec {
                rec.spec = spec.clone();
            }
            rec.run.partition_count = u32::try_from(result.partitions.len()).unwrap_or(u32::MAX);
            s.files.insert(run_id, result.files.clone());
            let parts = result
                .partitions
                .iter()
                .map(|range| PartRec {
                    partition: Partition {
                        run_id,
                        range: *range,
                        status: PartitionStatus::Pending,
                        checkpoint: Checkpoint::initial(range),
                        counters: Counters::default(),
                        rate: None,
                    },
                    lease: None,
                    revisit_cursor: 0,
                })
                .collect();
            s.partitions.insert(run_id, parts);
            s.logs
                .entry(run_id)
                .or_default()
                .extend(result.log.iter().cloned());
        }
        s.enqueue_webhook_events(run_id, RunStatus::Running, now);
        Ok(())
    }

    async fn run_files(&self, run_id: RunId) -> Result<Vec<SourceFile>, StoreError> {
        let s = self.lock()?;
        Ok(s.files.get(&run_id).cloned().unwrap_or_default())
    }

    async fn claim_partition(
        &self,
        _worker: &WorkerId,
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<Option<PartitionClaim>, StoreError> {
        let mut s = self.lock()?;
        s.next_token += 1;
        let token = LeaseToken(s.next_token);
        let running: Vec<RunId> = s
            .runs
            .values()
            .filter(|r| r.run.status == RunStatus::Running)
            .map(|r| r.run.id)
            .collect();
        for run_id in running {
            let found = s.partitions.get(&run_id).and_then(|ps| {
                ps.iter().position(|p| match p.partition.status {
                    PartitionStatus::Pending => true,
                    PartitionStatus::Running => p.lease.is_none_or(|(_, exp)| exp <= now),
                    _ => false,
                })
            });
            let Some(i) = found else { continue };
            let (index, cursor) = {
                let p = s
                    .partitions
                    .get(&run_id)
                    .and_then(|ps| ps.get(i))
                    .ok_or_else(|| StoreError::Internal("partition vanished".into()))?;
                (p.partition.range.index, p.revisit_cursor)
            };
            let pending_revisits = s.pending_revisits(run_id, index, cursor);
            let expires_at = now.plus_millis(lease_ms);
            let pipeline_id = s
                .runs
                .get(&run_id)
                .map(|r| r.run.pipeline_id)
                .ok_or_else(|| StoreError::Internal("run vanished".into()))?;
            let p = s
                .partitions
                .get_mut(&run_id)
                .and_then(|ps| ps.get_mut(i))
                .ok_or_else(|| StoreError::Internal("partition vanished".into()))?;
            // A running partition whose lease expired is claimed as it is:
            // taking it over is not a transition.
            if p.partition.status != PartitionStatus::Running {
                p.partition.status = p
                    .partition
                    .status
                    .transition(PartitionStatus::Running)
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
            }
            p.lease = Some((token, expires_at));
            return Ok(Some(PartitionClaim {
                run_id,
                pipeline_id,
                range: p.partition.range,
                checkpoint: p.partition.checkpoint,
                counters: p.partition.counters,
                pending_revisits,
                revisit_cursor: p.revisit_cursor,
                token,
                expires_at,
            }));
        }
        Ok(None)
    }

    async fn renew_partition(
        &self,
        claim: &PartitionClaim,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock()?;
        if s.runs
            .get(&claim.run_id)
            .is_none_or(|r| r.run.status != RunStatus::Running)
        {
            return Ok(false);
        }
        let Some(p) = s.partitions.get_mut(&claim.run_id).and_then(|ps| {
            ps.iter_mut()
                .find(|p| p.partition.range.index == claim.range.index)
        }) else {
            return Ok(false);
        };
        match &mut p.lease {
            Some((t, exp))
                if *t == claim.token && p.partition.status == PartitionStatus::Running =>
            {
                *exp = until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn renew_extraction(
        &self,
        claim: &ExtractionClaim,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock()?;
        let Some(rec) = s.runs.get_mut(&claim.run.id) else {
            return Ok(false);
        };
        match &mut rec.extraction {
            Some((t, exp)) if *t == claim.token && rec.run.status == RunStatus::Pending => {
                *exp = until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_partition(&self, claim: &PartitionClaim) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if let Some(p) = s.partitions.get_mut(&claim.run_id).and_then(|ps| {
            ps.iter_mut()
                .find(|p| p.partition.range.index == claim.range.index)
        }) {
            if p.lease.map(|(t, _)| t) == Some(claim.token)
                && p.partition.status == PartitionStatus::Running
            {
                p.partition.status = p
                    .partition
                    .status
                    .transition(PartitionStatus::Pending)
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
                p.lease = None;
            }
        }
        Ok(())
    }

    async fn revisit_rows(
        &self,
        run_id: RunId,
        partition: u32,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RejectedRow>, StoreError> {
        let s = self.lock()?;
        Ok(s.revisits
            .get(&run_id)
            .map(|m| {
                m.range(after + 1..)
                    .filter(|(_, (p, _))| *p == partition)
                    .take(limit)
                    .map(|(_, (_, r))| r.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn fail_run(
        &self,
        run_id: RunId,
        entry: &LogEntry,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock()?;
        match s.runs.get(&run_id) {
            None => Err(StoreError::not_found("run", run_id)),
            Some(r) if r.run.status.is_terminal() => Ok(false),
            Some(_) => s
                .stop_run(run_id, RunStatus::Failed, at, entry)
                .map(|()| true),
        }
    }

    async fn finalize_ready_runs(&self, now: Timestamp) -> Result<Vec<FinalizedRun>, StoreError> {
        let mut s = self.lock()?;
        let ready: Vec<RunId> = s
            .runs
            .values()
            .filter(|r| r.run.status == RunStatus::Running)
            .filter(|r| {
                s.partitions.get(&r.run.id).is_none_or(|ps| {
                    ps.iter()
                        .all(|p| p.partition.status == PartitionStatus::Completed)
                })
            })
            .map(|r| r.run.id)
            .collect();
        let mut out = Vec::new();
        for run_id in ready {
            let counters = s.counters(run_id);
            let Some(rec) = s.runs.get(&run_id).cloned() else {
                continue;
            };
            let status = rec
                .run
                .status
                .finish(counters.failed)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            // A run that read no file (nothing new) leaves the table alone.
            let read_files = s.files.get(&run_id).is_some_and(|f| !f.is_empty());
            if rec.run.load_strategy == LoadStrategy::Replace && read_files {
                let shadow = s.shadows.remove(&run_id).unwrap_or_default();
                s.tables
                    .insert(rec.spec.destination.table.as_str().to_owned(), shadow);
            }
            let total = rec.run.total_rows.unwrap_or(0);
            let entry = LogEntry {
                stage: LogStage::Finalize,
                message: finalize_message(status, &counters, total),
                timestamp: now,
            };
            s.logs.entry(run_id).or_default().push(entry);
            let Some(rec) = s.runs.get_mut(&run_id) else {
                continue;
            };
            rec.run.status = status;
            rec.run.finished_at = Some(now);
            let rec = rec.clone();
            s.ledger_run(run_id, rec.run.pipeline_id, now);
            s.enqueue_webhook_events(run_id, status, now);
            out.push(FinalizedRun {
                run: s.run_view(&rec),
                spec: rec.spec.clone(),
            });
        }
        Ok(out)
    }
}
