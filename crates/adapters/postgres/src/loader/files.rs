//! Per-file accounting inside the batch commit: which of the run's files a
//! batch's rows belong to, and their loaded, skipped and failed counts.

use std::collections::BTreeMap;

use sluice_application::ports::BatchCommit;
use tokio_postgres::Transaction;

use crate::error::DbResult;
use crate::rows::{int8, uint8};

/// The files (index, first row, rows) that the rows of one batch fall in.
pub(super) struct BatchFiles {
    files: Vec<(i32, u64, u64)>,
}

impl BatchFiles {
    /// Reads the run's files covering the batch's rows (found by row number).
    pub(super) async fn load(
        tx: &Transaction<'_>,
        run: &str,
        c: &BatchCommit<'_>,
    ) -> DbResult<Self> {
        let rows = c
            .rows
            .rows()
            .map(|(row, _)| row)
            .chain(c.errors.iter().map(|e| e.row));
        let (lo, hi) = rows.fold((u64::MAX, 0), |(lo, hi), r| (lo.min(r), hi.max(r)));
        if lo > hi {
            return Ok(Self { files: Vec::new() });
        }
        let found = tx
            .query(
                "SELECT idx, first_row, row_count FROM sluice.run_files \
                 WHERE run_id = $1 AND row_count > 0 AND first_row <= $3 \
                   AND first_row + row_count > $2 \
                 ORDER BY first_row",
                &[&run, &int8(lo), &int8(hi)],
            )
            .await?;
        let mut files = Vec::with_capacity(found.len());
        for r in found {
            let idx: i32 = r.try_get(0)?;
            let first: i64 = r.try_get(1)?;
            let count: i64 = r.try_get(2)?;
            files.push((idx, uint8(first), uint8(count)));
        }
        Ok(Self { files })
    }

    /// The first row of each file, ascending: the thresholds of
    /// `width_bucket`, whose bucket `i` (from 1) is `self.files[i - 1]`.
    pub(super) fn bounds(&self) -> Vec<i64> {
        self.files.iter().map(|f| int8(f.1)).collect()
    }

    /// Position in `self.files` of the file holding `row`.
    fn position(&self, row: u64) -> Option<usize> {
        let at = self.files.partition_point(|f| f.1 <= row);
        let i = at.checked_sub(1)?;
        let f = self.files.get(i)?;
        (row < f.1 + f.2).then_some(i)
    }

    /// Adds the batch's outcomes to its files' counters. `loaded` holds the
    /// rows written per position in `self.files` (`None`: every valid row was
    /// written, as without key columns); valid rows not written are skipped.
    pub(super) async fn record(
        &self,
        tx: &Transaction<'_>,
        run: &str,
        c: &BatchCommit<'_>,
        loaded: Option<&BTreeMap<usize, u64>>,
        failed_rows: &[u64],
    ) -> DbResult<()> {
        // (valid, failed) per position.
        let mut tally: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
        for (row, _) in c.rows.rows() {
            if let Some(i) = self.position(row) {
                tally.entry(i).or_default().0 += 1;
            }
        }
        for row in failed_rows {
            if let Some(i) = self.position(*row) {
                tally.entry(i).or_default().1 += 1;
            }
        }
        if tally.is_empty() {
            return Ok(());
        }
        let (mut idx, mut l, mut s, mut f) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, (valid, failed)) in tally {
            let Some(file) = self.files.get(i) else {
                continue;
            };
            let written = loaded.map_or(valid, |m| m.get(&i).copied().unwrap_or(0).min(valid));
            idx.push(file.0);
            l.push(int8(written));
            s.push(int8(valid - written));
            f.push(int8(failed));
        }
        tx.execute(
            "UPDATE sluice.run_files f SET loaded = COALESCE(f.loaded, 0) + d.l, \
                 skipped = COALESCE(f.skipped, 0) + d.s, failed = f.failed + d.f \
             FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::bigint[]) AS d(idx, l, s, f) \
             WHERE f.run_id = $1 AND f.idx = d.idx",
            &[&run, &idx, &l, &s, &f],
        )
        .await?;
        Ok(())
    }
}
