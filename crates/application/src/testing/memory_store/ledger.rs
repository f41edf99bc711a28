//! [`LedgerStore`] in memory, and the ledger and per-file bookkeeping the
//! other fakes call (finalisation, batch commits).

use std::collections::BTreeMap;

use async_trait::async_trait;
use sluice_domain::ids::{PipelineId, RunId};
use sluice_domain::ledger::{Forgotten, KnownFile, LedgerEntry, RunFile, RunFileStatus};
use sluice_domain::run::Counters;
use sluice_domain::time::Timestamp;

use super::{InMemoryStore, State};
use crate::ports::{
    ForgetFiles, LedgerStore, MAX_PAGE_SIZE, Page, PageRequest, SourceFile, StoreError,
};

/// One ledger entry with its ordering number and forget mark.
#[derive(Debug, Clone)]
pub(super) struct LedgerRec {
    entry: LedgerEntry,
    seq: u64,
    forgotten: Option<Forgotten>,
}

impl State {
    /// The index in the run's file list of the file holding `row`.
    pub(super) fn file_of_row(&self, run_id: RunId, row: u64) -> Option<usize> {
        let files = self.files.get(&run_id)?;
        let at = files.partition_point(|f| f.first_row <= row);
        let i = at.checked_sub(1)?;
        let f = files.get(i)?;
        (row < f.first_row + f.row_count).then_some(i)
    }

    /// Adds `delta` to the counters of file `index` of a run.
    pub(super) fn count_file(&mut self, run_id: RunId, index: usize, delta: Counters) {
        let len = self.files.get(&run_id).map_or(0, Vec::len);
        let counts = self.file_counts.entry(run_id).or_default();
        counts.resize(len, Counters::default());
        if let Some(c) = counts.get_mut(index) {
            *c = c.plus(delta);
        }
    }

    fn file_counters(&self, run_id: RunId, index: usize) -> Counters {
        self.file_counts
            .get(&run_id)
            .and_then(|c| c.get(index))
            .copied()
            .unwrap_or_default()
    }

    /// Writes every file of a finalised run into its pipeline's ledger.
    pub(super) fn ledger_run(&mut self, run_id: RunId, pipeline: PipelineId, at: Timestamp) {
        let files: Vec<SourceFile> = self.files.get(&run_id).cloned().unwrap_or_default();
        for (i, f) in files.iter().enumerate() {
            let c = self.file_counters(run_id, i);
            self.ledger_seq += 1;
            let rec = LedgerRec {
                entry: LedgerEntry {
                    key: f.key.clone(),
                    etag: f.etag.clone(),
                    size: f.size,
                    last_modified: f.last_modified,
                    total_rows: f.row_count,
                    loaded_rows: Some(c.loaded),
                    skipped_rows: Some(c.skipped),
                    failed_rows: c.failed,
                    run_id,
                    loaded_at: at,
                },
                seq: self.ledger_seq,
                forgotten: None,
            };
            self.ledger
                .entry(pipeline)
                .or_default()
                .insert(f.key.clone(), rec);
        }
    }
}

fn cursor_of(page: &PageRequest) -> Option<u64> {
    page.cursor.as_deref().and_then(|c| c.parse().ok())
}

fn limit_of(page: &PageRequest) -> usize {
    page.limit.clamp(1, MAX_PAGE_SIZE) as usize
}

/// Cuts `items` (already after the cursor, in order) to a page whose cursor
/// is `key` of its last item.
fn paged<T>(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> u64) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    Page {
        next_cursor: if more {
            items.last().map(|i| key(i).to_string())
        } else {
            None
        },
        items,
    }
}

#[async_trait]
impl LedgerStore for InMemoryStore {
    async fn known_files(
        &self,
        pipeline_id: PipelineId,
        keys: &[String],
    ) -> Result<Vec<KnownFile>, StoreError> {
        let s = self.lock()?;
        let Some(ledger) = s.ledger.get(&pipeline_id) else {
            return Ok(Vec::new());
        };
        Ok(keys
            .iter()
            .filter_map(|k| ledger.get(k))
            .map(|r| KnownFile {
                key: r.entry.key.clone(),
                version: r.entry.version(),
                run_id: r.entry.run_id,
                forgotten: r.forgotten.clone(),
            })
            .collect())
    }

    async fn list_ledger(
        &self,
        pipeline_id: PipelineId,
        prefix: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<LedgerEntry>, StoreError> {
        let s = self.lock()?;
        if !s.pipelines.contains_key(&pipeline_id) {
            return Err(StoreError::not_found("pipeline", pipeline_id));
        }
        let cursor = cursor_of(page);
        let mut recs: Vec<&LedgerRec> = s
            .ledger
            .get(&pipeline_id)
            .into_iter()
            .flat_map(BTreeMap::values)
            .filter(|r| r.forgotten.is_none())
            .filter(|r| prefix.is_none_or(|p| r.entry.key.starts_with(p)))
            .filter(|r| cursor.is_none_or(|c| r.seq < c))
            .collect();
        recs.sort_by_key(|r| std::cmp::Reverse(r.seq));
        let limit = limit_of(page);
        let page = paged(
            recs.into_iter().take(limit + 1).cloned().collect(),
            limit,
            |r: &LedgerRec| r.seq,
        );
        Ok(Page {
            items: page.items.into_iter().map(|r| r.entry).collect(),
            next_cursor: page.next_cursor,
        })
    }

    async fn forget_files(
        &self,
        pipeline_id: PipelineId,
        which: &ForgetFiles,
        by: &str,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut s = self.lock()?;
        if !s.pipelines.contains_key(&pipeline_id) {
            return Err(StoreError::not_found("pipeline", pipeline_id));
        }
        let mut n = 0;
        for rec in s.ledger.entry(pipeline_id).or_default().values_mut() {
            let hit = match which {
                ForgetFiles::Key(k) => rec.entry.key == *k,
                ForgetFiles::Prefix(p) => rec.entry.key.starts_with(p.as_str()),
            };
            if hit && rec.forgotten.is_none() {
                rec.forgotten = Some(Forgotten {
                    by: by.to_owned(),
                    at,
                });
                n += 1;
            }
        }
        Ok(n)
    }

    async fn list_run_files(
        &self,
        pipeline_id: PipelineId,
        run_id: RunId,
        page: &PageRequest,
    ) -> Result<Page<RunFile>, StoreError> {
        let s = self.lock()?;
        let rec = s
            .runs
            .get(&run_id)
            .filter(|r| r.run.pipeline_id == pipeline_id)
            .ok_or_else(|| StoreError::not_found("run", run_id))?;
        let after = cursor_of(page);
        let limit = limit_of(page);
        let items: Vec<RunFile> = s
            .files
            .get(&run_id)
            .into_iter()
            .flatten()
            .enumerate()
            .filter(|(_, f)| after.is_none_or(|c| u64::from(f.index) > c))
            .take(limit + 1)
            .map(|(i, f)| {
                let c = s.file_counters(run_id, i);
                RunFile {
                    index: f.index,
                    key: f.key.clone(),
                    etag: f.etag.clone(),
                    size: f.size,
                    last_modified: f.last_modified,
                    first_row: f.first_row,
                    total_rows: f.row_count,
                    loaded_rows: Some(c.loaded),
                    skipped_rows: Some(c.skipped),
                    failed_rows: c.failed,
                    status: RunFileStatus::of(f.row_count, &c, rec.run.status),
                }
            })
            .collect();
        Ok(paged(items, limit, |f: &RunFile| u64::from(f.index)))
    }
}
