//! [`BulkLoader`] in memory: destination tables as vectors with a key index.

use std::collections::HashMap;

use async_trait::async_trait;
use sluice_domain::ids::RunId;
use sluice_domain::pipeline::LoadStrategy;
use sluice_domain::run::Counters;
use sluice_domain::status::{PartitionStatus, RunStatus};
use sluice_domain::validation::RowError;

use super::{InMemoryStore, State, StoredRow};
use crate::ports::{BatchCommit, BulkLoader, CommitOutcome, LoadTarget, StoreError};

/// Which stored row wins for a key, by strategy (see [`BulkLoader::commit_batch`]).
fn incoming_wins(
    strategy: LoadStrategy,
    lineage: &[RunId],
    stored: &StoredRow,
    incoming_row: u64,
) -> bool {
    let same_load = lineage.contains(&stored.run_id);
    match strategy {
        LoadStrategy::Append => same_load && incoming_row < stored.row,
        LoadStrategy::Replace => incoming_row > stored.row,
        LoadStrategy::Upsert => !same_load || incoming_row > stored.row,
    }
}

/// Adds a batch's outcomes to the counters of the files its rows belong to:
/// valid rows are loaded when in `loaded_rows`, skipped otherwise.
fn count_files(
    s: &mut State,
    run_id: RunId,
    c: &BatchCommit<'_>,
    loaded_rows: &[u64],
    failed_rows: &[u64],
) {
    let loaded: std::collections::HashSet<u64> = loaded_rows.iter().copied().collect();
    let mut deltas: std::collections::BTreeMap<usize, Counters> = std::collections::BTreeMap::new();
    for (row, _) in c.rows.rows() {
        if let Some(i) = s.file_of_row(run_id, row) {
            let d = deltas.entry(i).or_default();
            if loaded.contains(&row) {
                d.loaded += 1;
            } else {
                d.skipped += 1;
            }
        }
    }
    for row in failed_rows {
        if let Some(i) = s.file_of_row(run_id, *row) {
            deltas.entry(i).or_default().failed += 1;
        }
    }
    for (i, d) in deltas {
        s.count_file(run_id, i, d);
    }
}

#[async_trait]
impl BulkLoader for InMemoryStore {
    async fn prepare_destination(&self, target: &LoadTarget) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        s.tables
            .entry(target.table.as_str().to_owned())
            .or_default();
        if target.strategy == LoadStrategy::Replace {
            s.shadows.entry(target.run_id).or_default();
        }
        Ok(())
    }

    async fn commit_batch(&self, c: BatchCommit<'_>) -> Result<CommitOutcome, StoreError> {
        let mut s = self.lock()?;
        let run_id = c.claim.run_id;
        let index = c.claim.range.index;
        if s.runs
            .get(&run_id)
            .is_none_or(|r| r.run.status != RunStatus::Running)
        {
            return Err(StoreError::Conflict("run is no longer running".into()));
        }
        let held = s
            .partitions
            .get(&run_id)
            .and_then(|ps| ps.iter().find(|p| p.partition.range.index == index))
            .is_some_and(|p| {
                p.partition.status == PartitionStatus::Running
                    && p.lease.map(|(t, _)| t) == Some(c.claim.token)
            });
        if !held {
            return Err(StoreError::Conflict("partition lease lost".into()));
        }
        let t = c.target;
        let key_idx: Vec<usize> = t
            .key_columns
            .iter()
            .filter_map(|k| t.schema.columns.iter().position(|col| col.name == *k))
            .collect();
        // Rows of the batch, with in-batch duplicates resolved first: the first
        // occurrence wins for append, the last for upsert and replace.
        let mut winners: Vec<(u64, Vec<Option<String>>)> = Vec::new();
        let mut by_key: HashMap<Vec<Option<String>>, usize> = HashMap::new();
        let mut valid = 0u64;
        for (row, values) in c.rows.rows() {
            valid += 1;
            let values: Vec<Option<String>> = values.iter().map(|v| v.map(str::to_owned)).collect();
            if key_idx.is_empty() {
                winners.push((row, values));
                continue;
            }
            let key: Vec<Option<String>> = key_idx
                .iter()
                .map(|&i| values.get(i).cloned().flatten())
                .collect();
            match by_key.get(&key) {
                Some(&w) if t.strategy != LoadStrategy::Append => {
                    if let Some(slot) = winners.get_mut(w) {
                        *slot = (row, values);
                    }
                }
                Some(_) => {}
                None => {
                    by_key.insert(key, winners.len());
                    winners.push((row, values));
                }
            }
        }
        let table = if t.strategy == LoadStrategy::Replace {
            s.shadows.entry(run_id).or_default()
        } else {
            s.tables.entry(t.table.as_str().to_owned()).or_default()
        };
        let mut loaded_rows: Vec<u64> = Vec::new();
        for (row, values) in winners {
            let stored = StoredRow {
                values,
                run_id,
                row,
            };
            if key_idx.is_empty() {
                table.rows.push(stored);
                loaded_rows.push(row);
                continue;
            }
            let key: Vec<Option<String>> = key_idx
                .iter()
                .map(|&i| stored.values.get(i).cloned().flatten())
                .collect();
            match table.index.get(&key).copied() {
                None => {
                    table.index.insert(key, table.rows.len());
                    table.rows.push(stored);
                    loaded_rows.push(row);
                }
                Some(at) => {
                    let Some(existing) = table.rows.get_mut(at) else {
                        continue;
                    };
                    if incoming_wins(t.strategy, &t.lineage, existing, row) {
                        *existing = stored;
                        if t.strategy == LoadStrategy::Upsert {
                            loaded_rows.push(row);
                        }
                    }
                }
            }
        }
        let loaded = loaded_rows.len() as u64;
        let mut failed_rows: Vec<u64> = c.errors.iter().map(|e| e.row).collect();
        failed_rows.dedup();
        let failed = failed_rows.len() as u64;
        count_files(&mut s, run_id, &c, &loaded_rows, &failed_rows);
        // Stored text cannot hold NUL (PostgreSQL refuses it): it becomes U+FFFD.
        s.errors
            .entry(run_id)
            .or_default()
            .extend(c.errors.iter().map(|e| RowError {
                value: e.value.replace('\0', "\u{FFFD}"),
                ..e.clone()
            }));
        let rejected = s.rejected.entry(run_id).or_default();
        for r in c.rejected {
            rejected.insert(r.row, (index, r.clone()));
        }
        let skipped = valid - loaded;
        let cursor = {
            let p = s
                .partitions
                .get_mut(&run_id)
                .and_then(|ps| ps.iter_mut().find(|p| p.partition.range.index == index))
                .ok_or_else(|| StoreError::Internal("partition vanished".into()))?;
            p.partition.counters = p.partition.counters.plus(Counters {
                loaded,
                skipped,
                failed,
            });
            p.partition.checkpoint = c.checkpoint;
            p.partition.rate = Some(c.rate);
            if let Some(cur) = c.revisit_cursor {
                p.revisit_cursor = cur;
            }
            p.revisit_cursor
        };
        let done = c.checkpoint.is_complete(&c.claim.range)
            && s.pending_revisits(run_id, index, cursor) == 0;
        if done {
            if let Some(p) = s
                .partitions
                .get_mut(&run_id)
                .and_then(|ps| ps.iter_mut().find(|p| p.partition.range.index == index))
            {
                p.partition.status = PartitionStatus::Completed;
                p.lease = None;
            }
        }
        Ok(CommitOutcome {
            loaded,
            skipped,
            failed,
            run_failed_rows: s.counters(run_id).failed,
            partition_completed: done,
        })
    }
}
