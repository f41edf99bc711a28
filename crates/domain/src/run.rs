//! Runs, partitions, checkpoints and the run log.
//!
//! Rows of a run are numbered 1..=totalRows in source order (files in lexical
//! key order, header lines excluded). A partition owns a contiguous row range
//! starting at a known position in the source, and a checkpoint: the last row
//! whose outcome is durably committed and where the next record starts.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{PipelineId, RunId};
use crate::pipeline::LoadStrategy;
use crate::status::{PartitionStatus, RunStatus};
use crate::time::Timestamp;

/// A place in a run's source: a file (by index in the run's sorted file list)
/// and a byte offset in its (decompressed) content.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct SourcePosition {
    /// Index in the run's file list.
    pub file_index: u32,
    /// Byte offset where a record starts.
    pub byte_offset: u64,
}

/// The rows a partition owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionRange {
    /// Partition index, from 0.
    pub index: u32,
    /// First row (1-based).
    pub first_row: u64,
    /// Number of rows (at least 1).
    pub row_count: u64,
    /// Where the first row starts.
    pub start: SourcePosition,
}

impl PartitionRange {
    /// Last row of the range.
    pub fn last_row(&self) -> u64 {
        self.first_row + self.row_count - 1
    }
}

/// The last row of a partition whose outcome is committed, and where reading
/// resumes. Committed in the same transaction as the rows it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// Last committed row; `first_row - 1` when nothing is committed yet.
    pub row: u64,
    /// Where the record after `row` starts.
    pub next: SourcePosition,
}

impl Checkpoint {
    /// The checkpoint of a partition that has committed nothing.
    pub fn initial(range: &PartitionRange) -> Self {
        Self {
            row: range.first_row - 1,
            next: range.start,
        }
    }

    /// Rows of `range` whose outcome is committed.
    pub fn committed_rows(&self, range: &PartitionRange) -> u64 {
        self.row
            .saturating_sub(range.first_row - 1)
            .min(range.row_count)
    }

    /// True once every row of the range is committed.
    pub fn is_complete(&self, range: &PartitionRange) -> bool {
        self.row >= range.last_row()
    }

    /// Integer percent of the range committed (the `progress` of a partition).
    pub fn percent(&self, range: &PartitionRange) -> u8 {
        if range.row_count == 0 {
            return 100;
        }
        let pct = self.committed_rows(range) * 100 / range.row_count;
        u8::try_from(pct.min(100)).unwrap_or(100)
    }

    /// Moves the checkpoint forward to `row`; it may never go backwards or past
    /// the range.
    pub fn advance(
        &self,
        range: &PartitionRange,
        row: u64,
        next: SourcePosition,
    ) -> Result<Checkpoint, DomainError> {
        if row < self.row || row > range.last_row() {
            return Err(DomainError::CheckpointOutOfRange {
                checkpoint: row,
                first: range.first_row,
                last: range.last_row(),
            });
        }
        Ok(Checkpoint { row, next })
    }
}

/// Row outcomes of a partition or a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Rows written to the destination.
    pub loaded: u64,
    /// Valid rows not written (duplicate key, or a newer version won).
    pub skipped: u64,
    /// Rows that failed validation.
    pub failed: u64,
}

impl Counters {
    /// Rows whose outcome is committed: loaded + skipped + failed.
    pub fn processed(&self) -> u64 {
        self.loaded + self.skipped + self.failed
    }

    /// Sum of two counters.
    pub fn plus(self, other: Counters) -> Counters {
        Counters {
            loaded: self.loaded + other.loaded,
            skipped: self.skipped + other.skipped,
            failed: self.failed + other.failed,
        }
    }
}

/// One partition of a run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// Its run.
    pub run_id: RunId,
    /// Its rows.
    pub range: PartitionRange,
    /// Status.
    pub status: PartitionStatus,
    /// Committed progress.
    pub checkpoint: Checkpoint,
    /// Row outcomes committed so far.
    pub counters: Counters,
    /// Smoothed throughput of its recent batches, rows per second.
    pub rate: Option<f64>,
}

/// How a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// `POST /pipelines/{id}/runs`.
    Api,
    /// A touch file found by polling.
    Poll,
    /// `POST …/retry`.
    Retry,
}

/// Extra facts about a run; for a retry, the fields `docs/api.md` documents
/// for `POST …/retry` (`retryOf`, `resumeFromRow`, `resumable`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RunMetadata {
    /// The run this one retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<RunId>,
    /// Rows already committed by the original run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_from_row: Option<u64>,
    /// Whether the retry resumes (append, upsert) or starts over (replace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumable: Option<bool>,
    /// The touch file that started this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub touch_file: Option<String>,
    /// The ETag of that touch file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub touch_file_etag: Option<String>,
    /// Keys the run was asked to read again although the file ledger holds
    /// them (`POST …/runs` with `{"reload": [...]}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reload: Vec<String>,
}

/// A run as stored (counters are summed from its partitions).
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Id.
    pub id: RunId,
    /// Its pipeline.
    pub pipeline_id: PipelineId,
    /// Status.
    pub status: RunStatus,
    /// Strategy, frozen at start.
    pub load_strategy: LoadStrategy,
    /// How it started.
    pub trigger: Trigger,
    /// Rows in the source; known once extracted.
    pub total_rows: Option<u64>,
    /// Number of partitions; known once extracted.
    pub partition_count: u32,
    /// Row outcomes, summed over partitions.
    pub counters: Counters,
    /// Retry and trigger facts.
    pub metadata: RunMetadata,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// When loading started (extraction done).
    pub started_at: Option<Timestamp>,
    /// When it reached a terminal status.
    pub finished_at: Option<Timestamp>,
}

impl Run {
    /// Elapsed time from creation to `now`, or to the end once terminal.
    pub fn duration_ms(&self, now: Timestamp) -> u64 {
        self.finished_at
            .unwrap_or(now)
            .millis_since(self.created_at)
    }
}

/// The stage a log entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LogStage {
    /// Listing and counting the source.
    Extract,
    /// Loading partitions.
    Load,
    /// Setting the terminal status.
    Finalize,
    /// Creating a retry.
    Retry,
    /// A user cancelled.
    Cancel,
    /// Started by a touch file.
    Poll,
    /// A file's header differs from the schema (`schemaDrift`).
    Drift,
}

/// One entry of a run's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogEntry {
    /// Stage.
    pub stage: LogStage,
    /// What happened, in plain words.
    pub message: String,
    /// When.
    pub timestamp: Timestamp,
}

/// The message logged (stage `finalize`) when a run reaches a terminal status
/// after loading: the outcome in numbers.
pub fn finalize_message(status: RunStatus, counters: &Counters, total_rows: u64) -> String {
    format!(
        "Run {status}: {} of {total_rows} rows processed ({} loaded, {} skipped, {} failed)",
        counters.processed(),
        counters.loaded,
        counters.skipped,
        counters.failed
    )
}

/// Cuts `total_rows` into at most `partitions` contiguous ranges of nearly
/// equal size. Returns `(first_row, row_count)` pairs; fewer ranges than asked
/// when there are fewer rows, none for an empty source.
pub fn cut_rows(total_rows: u64, partitions: u32) -> Vec<(u64, u64)> {
    let n = u64::from(partitions.max(1)).min(total_rows);
    if n == 0 {
        return Vec::new();
    }
    let base = total_rows / n;
    let extra = total_rows % n;
    let mut first = 1;
    (0..n)
        .map(|i| {
            let count = base + u64::from(i < extra);
            let range = (first, count);
            first += count;
            range
        })
        .collect()
}

/// A sparse index of record positions, filled while a source is counted, from
/// which partition ranges are cut. It keeps at most `capacity` entries by
/// doubling its sampling step, so its memory is bounded whatever the source size.
#[derive(Debug, Clone)]
pub struct RowIndex {
    step: u64,
    capacity: usize,
    entries: Vec<(u64, SourcePosition)>,
}

impl RowIndex {
    /// An index keeping at most `capacity` (at least 2) entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            step: 1,
            capacity: capacity.max(2),
            entries: Vec::new(),
        }
    }

    /// Records that `row` starts at `pos`. Rows must be observed in order.
    pub fn observe(&mut self, row: u64, pos: SourcePosition) {
        if (row - 1) % self.step != 0 {
            return;
        }
        self.entries.push((row, pos));
        if self.entries.len() > self.capacity {
            self.step *= 2;
            let step = self.step;
            self.entries.retain(|(r, _)| (r - 1) % step == 0);
        }
    }

    /// Appends an entry known to come after every entry so far (merging
    /// indexes built separately, e.g. one per file); when full, every second
    /// entry is dropped so the index stays within its capacity.
    pub fn push_sampled(&mut self, row: u64, pos: SourcePosition) {
        if self.entries.last().is_some_and(|(r, _)| *r >= row) {
            return;
        }
        self.entries.push((row, pos));
        if self.entries.len() > self.capacity {
            let mut keep = false;
            self.entries.retain(|_| {
                keep = !keep;
                keep
            });
        }
    }

    /// The entries kept: `(row, position)` in row order.
    pub fn entries(&self) -> &[(u64, SourcePosition)] {
        &self.entries
    }

    /// Cuts `total_rows` into at most `partitions` ranges whose boundaries
    /// fall on indexed rows, as close to equal sizes as the index allows.
    pub fn cut(&self, total_rows: u64, partitions: u32) -> Vec<PartitionRange> {
        let mut starts: Vec<(u64, SourcePosition)> = Vec::new();
        for (first, _) in cut_rows(total_rows, partitions) {
            // The indexed row at or before the ideal boundary.
            let idx = self.entries.partition_point(|(r, _)| *r <= first);
            let Some(entry) = idx.checked_sub(1).and_then(|i| self.entries.get(i)) else {
                continue;
            };
            if starts.last().is_none_or(|(r, _)| *r < entry.0) {
                starts.push(*entry);
            }
        }
        let mut out = Vec::with_capacity(starts.len());
        for (i, (first, start)) in starts.iter().enumerate() {
            let next = starts.get(i + 1).map_or(total_rows + 1, |(r, _)| *r);
            out.push(PartitionRange {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                first_row: *first,
                row_count: next - first,
                start: *start,
            });
        }
        out
    }
}

/// Longest log message or run error kept, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4_000;

/// `text` as it can be stored and logged whatever file it came from: NUL
/// (which PostgreSQL's text refuses) and other control characters but tab
/// and newline become U+FFFD, and it is cut to [`MAX_MESSAGE_CHARS`] characters with
/// an ellipsis.
///
/// ```
/// use sluice_domain::run::storable_text;
/// assert_eq!(storable_text("a\0b\x07c\td"), "a\u{FFFD}b\u{FFFD}c\td");
/// assert_eq!(storable_text(&"x".repeat(5_000)).chars().count(), 4_001);
/// ```
pub fn storable_text(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .map(|c| {
            if c.is_control() && c != '\t' && c != '\n' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect();
    if text.chars().nth(MAX_MESSAGE_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(f: u32, o: u64) -> SourcePosition {
        SourcePosition {
            file_index: f,
            byte_offset: o,
        }
    }

    #[test]
    fn cut_rows_is_contiguous_and_nearly_equal() {
        assert_eq!(cut_rows(10, 4), vec![(1, 3), (4, 3), (7, 2), (9, 2)]);
        assert_eq!(cut_rows(2, 4), vec![(1, 1), (2, 1)]);
        assert_eq!(cut_rows(0, 4), vec![]);
        assert_eq!(cut_rows(5, 1), vec![(1, 5)]);
        for total in [1, 7, 100, 99_999] {
            for n in [1, 3, 8, 64] {
                let ranges = cut_rows(total, n);
                let sum: u64 = ranges.iter().map(|r| r.1).sum();
                assert_eq!(sum, total);
                let mut expect = 1;
                for (first, count) in &ranges {
                    assert_eq!(*first, expect);
                    expect += count;
                }
            }
        }
    }

    #[test]
    fn row_index_cuts_exactly_when_it_holds_every_row() {
        let mut idx = RowIndex::new(1000);
        for row in 1..=100u64 {
            idx.observe(row, pos(u32::from(row > 50), row * 10));
        }
        let ranges = idx.cut(100, 4);
        assert_eq!(ranges.len(), 4);
        assert_eq!(
            ranges
                .iter()
                .map(|r| (r.first_row, r.row_count))
                .collect::<Vec<_>>(),
            vec![(1, 25), (26, 25), (51, 25), (76, 25)]
        );
        assert_eq!(ranges[2].start, pos(1, 510));
        assert_eq!(ranges[3].index, 3);
    }

    #[test]
    fn row_index_stays_bounded_and_still_covers_every_row() {
        let mut idx = RowIndex::new(16);
        for row in 1..=10_000u64 {
            idx.observe(row, pos(0, row));
        }
        assert!(idx.entries.len() <= 16);
        let ranges = idx.cut(10_000, 8);
        let total: u64 = ranges.iter().map(|r| r.row_count).sum();
        assert_eq!(total, 10_000);
        assert_eq!(ranges[0].first_row, 1);
        for w in ranges.windows(2) {
            assert_eq!(w[0].last_row() + 1, w[1].first_row);
            assert_eq!(w[1].start.byte_offset, w[1].first_row);
        }
    }

    #[test]
    fn merged_indexes_stay_bounded_and_ordered() {
        let mut idx = RowIndex::new(8);
        for row in (1..=1_000u64).step_by(3) {
            idx.push_sampled(row, pos(0, row));
        }
        idx.push_sampled(5, pos(9, 9)); // out of order: ignored
        assert!(idx.entries().len() <= 8);
        assert!(idx.entries().windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(idx.entries()[0].0, 1, "the first row is always kept");
        let ranges = idx.cut(1_000, 4);
        assert_eq!(ranges.iter().map(|r| r.row_count).sum::<u64>(), 1_000);
    }

    #[test]
    fn checkpoints_only_move_forward_inside_the_range() {
        let range = PartitionRange {
            index: 0,
            first_row: 11,
            row_count: 10,
            start: pos(0, 100),
        };
        let cp = Checkpoint::initial(&range);
        assert_eq!(cp.row, 10);
        assert_eq!(cp.committed_rows(&range), 0);
        assert_eq!(cp.percent(&range), 0);
        let cp = cp.advance(&range, 15, pos(0, 150)).expect("advance");
        assert_eq!(cp.committed_rows(&range), 5);
        assert_eq!(cp.percent(&range), 50);
        assert!(cp.advance(&range, 14, pos(0, 140)).is_err());
        assert!(cp.advance(&range, 21, pos(0, 210)).is_err());
        let done = cp.advance(&range, 20, pos(1, 0)).expect("advance");
        assert!(done.is_complete(&range));
        assert_eq!(done.percent(&range), 100);
    }

    #[test]
    fn counters_sum_to_processed() {
        let c = Counters {
            loaded: 5,
            skipped: 2,
            failed: 1,
        };
        assert_eq!(c.processed(), 8);
        assert_eq!(c.plus(c).processed(), 16);
    }

    #[test]
    fn retry_metadata_has_exactly_the_reference_fields() {
        let m = RunMetadata {
            retry_of: Some(RunId::parse("run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM").expect("id")),
            resume_from_row: Some(32000),
            resumable: Some(true),
            ..RunMetadata::default()
        };
        let v = serde_json::to_value(&m).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"retryOf": "run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM", "resumeFromRow": 32000, "resumable": true})
        );
    }
}
