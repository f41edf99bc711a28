//! [`BulkLoader`] in memory: destination tables as vectors with a key index,
//! and the primary key an operator may have given a table before Sluice
//! loaded into it.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use sluice_domain::ids::RunId;
use sluice_domain::pipeline::LoadStrategy;
use sluice_domain::run::Counters;
use sluice_domain::status::{PartitionStatus, RunStatus};
use sluice_domain::validation::RowError;

use super::{InMemoryStore, State, StoredRow, Table};
use crate::ports::{BatchCommit, BulkLoader, CommitError, CommitOutcome, LoadTarget, StoreError};

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

/// A row to write: its number and its values as text.
type RowValues = (u64, Vec<Option<String>>);

/// The values of `key_idx` in `values`.
fn key_of(key_idx: &[usize], values: &[Option<String>]) -> Vec<Option<String>> {
    key_idx
        .iter()
        .map(|&i| values.get(i).cloned().flatten())
        .collect()
}

/// The rows of a batch with in-batch duplicates resolved: the first
/// occurrence of a key wins for append, the last for upsert and replace.
/// Also returns how many valid rows the batch had.
fn batch_winners(c: &BatchCommit<'_>, key_idx: &[usize]) -> (Vec<RowValues>, u64) {
    let mut winners: Vec<RowValues> = Vec::new();
    let mut by_key: HashMap<Vec<Option<String>>, usize> = HashMap::new();
    let mut valid = 0u64;
    for (row, values) in c.rows.rows() {
        valid += 1;
        let values: Vec<Option<String>> = values.iter().map(|v| v.map(str::to_owned)).collect();
        if key_idx.is_empty() {
            winners.push((row, values));
            continue;
        }
        let key = key_of(key_idx, &values);
        match by_key.get(&key) {
            Some(&w) if c.target.strategy != LoadStrategy::Append => {
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
    (winners, valid)
}

/// Writes `winners` into `table` by the target's strategy; returns the
/// numbers of the rows that count as loaded.
fn write_rows(
    table: &mut Table,
    target: &LoadTarget,
    run_id: RunId,
    key_idx: &[usize],
    winners: Vec<RowValues>,
) -> Vec<u64> {
    let mut loaded = Vec::new();
    for (row, values) in winners {
        let stored = StoredRow {
            values,
            run_id,
            row,
        };
        if key_idx.is_empty() {
            table.rows.push(stored);
            loaded.push(row);
            continue;
        }
        let key = key_of(key_idx, &stored.values);
        match table.index.get(&key).copied() {
            None => {
                table.index.insert(key, table.rows.len());
                table.rows.push(stored);
                loaded.push(row);
            }
            Some(at) => {
                let Some(existing) = table.rows.get_mut(at) else {
                    continue;
                };
                if incoming_wins(target.strategy, &target.lineage, existing, row) {
                    *existing = stored;
                    if target.strategy == LoadStrategy::Upsert {
                        loaded.push(row);
                    }
                }
            }
        }
    }
    loaded
}

/// The refusal of a table whose primary key a write would repeat, worded as
/// `sluice-postgres` words PostgreSQL's.
fn primary_key_refusal(name: &str, table: &Table, target: &LoadTarget) -> Option<CommitError> {
    let pk = table.primary_key.as_ref()?;
    let at = target
        .schema
        .columns
        .iter()
        .position(|c| c.name.as_str() == pk.column)?;
    let mut seen = HashSet::new();
    let repeated = table
        .rows
        .iter()
        .filter_map(|r| r.values.get(at).cloned().flatten())
        .find(|v| !seen.insert(v.clone()))?;
    Some(CommitError::Destination(format!(
        "unique constraint \"{}\" of table \"{name}\" refused a row: Key ({})=({repeated}) already exists.",
        pk.constraint, pk.column
    )))
}

/// The fence of a commit: the run is running and the claim's token holds
/// the partition.
fn check_fence(s: &State, c: &BatchCommit<'_>) -> Result<(), CommitError> {
    let run_id = c.claim.run_id;
    if s.runs
        .get(&run_id)
        .is_none_or(|r| r.run.status != RunStatus::Running)
    {
        return Err(CommitError::Fenced("run is no longer running".into()));
    }
    let held = s
        .partitions
        .get(&run_id)
        .and_then(|ps| {
            ps.iter()
                .find(|p| p.partition.range.index == c.claim.range.index)
        })
        .is_some_and(|p| {
            p.partition.status == PartitionStatus::Running
                && p.lease.map(|(t, _)| t) == Some(c.claim.token)
        });
    if held {
        Ok(())
    } else {
        Err(CommitError::Fenced("partition lease lost".into()))
    }
}

/// Writes the batch's valid rows into the destination (or shadow) table, all
/// or nothing; returns how many rows were valid and the numbers of those
/// loaded.
fn load_rows(s: &mut State, c: &BatchCommit<'_>) -> Result<(u64, Vec<u64>), CommitError> {
    let t = c.target;
    let key_idx: Vec<usize> = t
        .key_columns
        .iter()
        .filter_map(|k| t.schema.columns.iter().position(|col| col.name == *k))
        .collect();
    let (winners, valid) = batch_winners(c, &key_idx);
    let run_id = c.claim.run_id;
    let name = t.table.as_str();
    let table = if t.strategy == LoadStrategy::Replace {
        s.shadows.entry(run_id).or_default()
    } else {
        s.tables.entry(name.to_owned()).or_default()
    };
    if table.primary_key.is_none() {
        return Ok((valid, write_rows(table, t, run_id, &key_idx, winners)));
    }
    // Written on a copy first when the table has a primary key of its own,
    // so a refused batch leaves nothing behind.
    let mut copy = table.clone();
    let loaded = write_rows(&mut copy, t, run_id, &key_idx, winners);
    if let Some(refusal) = primary_key_refusal(name, &copy, t) {
        return Err(refusal);
    }
    *table = copy;
    Ok((valid, loaded))
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

    async fn commit_batch(&self, c: BatchCommit<'_>) -> Result<CommitOutcome, CommitError> {
        let mut s = self.lock()?;
        check_fence(&s, &c)?;
        let (valid, loaded_rows) = load_rows(&mut s, &c)?;
        let loaded = loaded_rows.len() as u64;
        let (run_id, index) = (c.claim.run_id, c.claim.range.index);
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
        let p = s
            .partition_mut(run_id, index)
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
        let cursor = p.revisit_cursor;
        let done = c.checkpoint.is_complete(&c.claim.range)
            && s.pending_revisits(run_id, index, cursor) == 0;
        if done {
            if let Some(p) = s.partition_mut(run_id, index) {
                p.partition.status = p
                    .partition
                    .status
                    .transition(PartitionStatus::Completed)
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
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
