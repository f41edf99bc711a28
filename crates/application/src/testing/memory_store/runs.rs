//! [`RunStore`] in memory.

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use sluice_domain::ids::{PipelineId, RunId};
use sluice_domain::pipeline::PipelineSpec;
use sluice_domain::run::{Counters, LogEntry, Partition, Run};
use sluice_domain::status::{PartitionStatus, RunStatus};
use sluice_domain::time::Timestamp;
use sluice_domain::validation::RowError;

use super::{InMemoryStore, PartRec, page_of};
use crate::ports::{MAX_PAGE_SIZE, NewRun, Page, PageRequest, RejectedRow, RunStore, StoreError};

#[async_trait]
impl RunStore for InMemoryStore {
    async fn create_run(&self, run: &NewRun) -> Result<(), StoreError> {
        self.lock()?.insert_run(run, vec![run.id])
    }

    async fn create_retry_run(
        &self,
        run: &NewRun,
        original: RunId,
        resumable: bool,
    ) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        let orig = s
            .runs
            .get(&original)
            .cloned()
            .ok_or_else(|| StoreError::not_found("run", original))?;
        let mut lineage = vec![run.id];
        if resumable {
            lineage.extend(orig.lineage.iter().copied());
        }
        s.insert_run(run, lineage)?;
        if !resumable {
            return Ok(());
        }
        let files = s.files.get(&original).cloned().unwrap_or_default();
        let old_parts = s.partitions.get(&original).cloned().unwrap_or_default();
        // Rows to revisit: the original's rejected rows, and its own revisits it had not reached.
        let mut revisits: BTreeMap<u64, (u32, RejectedRow)> =
            s.rejected.get(&original).cloned().unwrap_or_default();
        if let Some(pending) = s.revisits.get(&original) {
            for (row, (p, rr)) in pending {
                let cursor = old_parts
                    .iter()
                    .find(|x| x.partition.range.index == *p)
                    .map_or(0, |x| x.revisit_cursor);
                if *row > cursor {
                    revisits.insert(*row, (*p, rr.clone()));
                }
            }
        }
        let parts: Vec<PartRec> = old_parts
            .iter()
            .map(|old| {
                let index = old.partition.range.index;
                let has_revisits = revisits.values().any(|(p, _)| *p == index);
                let complete =
                    old.partition.checkpoint.is_complete(&old.partition.range) && !has_revisits;
                PartRec {
                    partition: Partition {
                        run_id: run.id,
                        range: old.partition.range,
                        status: if complete {
                            PartitionStatus::Completed
                        } else {
                            PartitionStatus::Pending
                        },
                        checkpoint: old.partition.checkpoint,
                        counters: Counters {
                            failed: 0,
                            ..old.partition.counters
                        },
                        rate: None,
                    },
                    lease: None,
                    revisit_cursor: 0,
                }
            })
            .collect();
        let rec = s
            .runs
            .get_mut(&run.id)
            .ok_or_else(|| StoreError::Internal("retry vanished".into()))?;
        rec.resume = true;
        rec.run.total_rows = orig.run.total_rows;
        rec.run.partition_count = orig.run.partition_count;
        let counts: Vec<Counters> = s
            .file_counts
            .get(&original)
            .into_iter()
            .flatten()
            .map(|c| Counters { failed: 0, ..*c })
            .collect();
        s.files.insert(run.id, files);
        s.file_counts.insert(run.id, counts);
        s.partitions.insert(run.id, parts);
        s.revisits.insert(run.id, revisits);
        Ok(())
    }

    async fn get_run(&self, pipeline_id: PipelineId, run_id: RunId) -> Result<Run, StoreError> {
        let s = self.lock()?;
        s.runs
            .get(&run_id)
            .filter(|r| r.run.pipeline_id == pipeline_id)
            .map(|r| s.run_view(r))
            .ok_or_else(|| StoreError::not_found("run", run_id))
    }

    async fn run_pipeline(&self, run_id: RunId) -> Result<PipelineId, StoreError> {
        let s = self.lock()?;
        s.runs
            .get(&run_id)
            .map(|r| r.run.pipeline_id)
            .ok_or_else(|| StoreError::not_found("run", run_id))
    }

    async fn run_spec(&self, run_id: RunId) -> Result<PipelineSpec, StoreError> {
        let s = self.lock()?;
        s.runs
            .get(&run_id)
            .map(|r| r.spec.clone())
            .ok_or_else(|| StoreError::not_found("run", run_id))
    }

    async fn list_runs(
        &self,
        pipeline_id: PipelineId,
        page: &PageRequest,
    ) -> Result<Page<Run>, StoreError> {
        let s = self.lock()?;
        if !s.pipelines.contains_key(&pipeline_id) {
            return Err(StoreError::not_found("pipeline", pipeline_id));
        }
        let runs: BTreeMap<RunId, Run> = s
            .runs
            .values()
            .filter(|r| r.run.pipeline_id == pipeline_id)
            .map(|r| (r.run.id, s.run_view(r)))
            .collect();
        Ok(page_of(&runs, page, |_| true))
    }

    async fn list_partitions(&self, run_id: RunId) -> Result<Vec<Partition>, StoreError> {
        let s = self.lock()?;
        Ok(s.partitions
            .get(&run_id)
            .map(|ps| ps.iter().map(|p| p.partition.clone()).collect())
            .unwrap_or_default())
    }

    async fn first_errors(&self, run_id: RunId, limit: usize) -> Result<Vec<RowError>, StoreError> {
        let s = self.lock()?;
        let mut errors = s.errors.get(&run_id).cloned().unwrap_or_default();
        errors.sort_by_key(|e| e.row);
        errors.truncate(limit);
        Ok(errors)
    }

    async fn count_errors(&self, run_id: RunId) -> Result<u64, StoreError> {
        let s = self.lock()?;
        Ok(s.errors.get(&run_id).map_or(0, |e| e.len() as u64))
    }

    fn stream_errors(&self, run_id: RunId) -> BoxStream<'static, Result<RowError, StoreError>> {
        let errors = match self.lock() {
            Ok(s) => {
                let mut e = s.errors.get(&run_id).cloned().unwrap_or_default();
                e.sort_by_key(|e| e.row);
                e.into_iter().map(Ok).collect()
            }
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(errors).boxed()
    }

    /// The cursor is the number of errors before the page.
    async fn list_errors(
        &self,
        run_id: RunId,
        page: &PageRequest,
    ) -> Result<Page<RowError>, StoreError> {
        let s = self.lock()?;
        let mut errors = s.errors.get(&run_id).cloned().unwrap_or_default();
        errors.sort_by_key(|e| e.row);
        let limit = page.limit.clamp(1, MAX_PAGE_SIZE) as usize;
        let skip: usize = page
            .cursor
            .as_deref()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let items: Vec<RowError> = errors.into_iter().skip(skip).take(limit + 1).collect();
        let more = items.len() > limit;
        Ok(Page {
            next_cursor: more.then(|| (skip + limit).to_string()),
            items: items.into_iter().take(limit).collect(),
        })
    }

    async fn run_log(&self, run_id: RunId) -> Result<Vec<LogEntry>, StoreError> {
        let s = self.lock()?;
        Ok(s.logs.get(&run_id).cloned().unwrap_or_default())
    }

    async fn append_log(&self, run_id: RunId, entry: &LogEntry) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if !s.runs.contains_key(&run_id) {
            return Err(StoreError::not_found("run", run_id));
        }
        s.logs.entry(run_id).or_default().push(entry.clone());
        Ok(())
    }

    async fn cancel_run(
        &self,
        run_id: RunId,
        at: Timestamp,
        entry: &LogEntry,
    ) -> Result<(), StoreError> {
        self.lock()?
            .stop_run(run_id, RunStatus::Cancelled, at, entry)
    }

    async fn count_runs_by_status(&self) -> Result<Vec<(RunStatus, u64)>, StoreError> {
        let s = self.lock()?;
        Ok(RunStatus::ALL
            .into_iter()
            .map(|st| {
                (
                    st,
                    s.runs.values().filter(|r| r.run.status == st).count() as u64,
                )
            })
            .collect())
    }

    async fn count_drift_events(&self) -> Result<u64, StoreError> {
        let s = self.lock()?;
        Ok(s.logs
            .values()
            .flatten()
            .filter(|e| e.stage == sluice_domain::run::LogStage::Drift)
            .count() as u64)
    }

    async fn count_rows_by_outcome(&self) -> Result<Counters, StoreError> {
        let s = self.lock()?;
        // A run in another run's lineage was continued by it (a resumable retry).
        let taken_over: Vec<RunId> = s
            .runs
            .values()
            .flat_map(|r| r.lineage.iter().copied().filter(move |id| *id != r.run.id))
            .collect();
        Ok(s.runs
            .keys()
            .filter(|id| !taken_over.contains(id))
            .fold(Counters::default(), |c, id| c.plus(s.counters(*id))))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.lock().map(|_| ())
    }
}
