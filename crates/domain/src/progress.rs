//! The progress view of a run, field for field as `docs/api.md` documents
//! `GET /api/v1/pipelines/{id}/runs/{runId}/progress`.

use serde::{Deserialize, Serialize};

use crate::eta;
use crate::pipeline::LoadStrategy;
use crate::run::{LogEntry, Partition, Run};
use crate::status::{PartitionStatus, RunStatus};
use crate::time::Timestamp;
use crate::validation::RowError;

/// How many validation errors the progress view carries.
pub const PROGRESS_ERROR_LIMIT: usize = 20;

/// One partition in the progress view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PartitionDetail {
    /// Partition index.
    pub index: u32,
    /// Status.
    pub status: PartitionStatus,
    /// Rows with a committed outcome.
    pub rows: u64,
    /// Integer percent, for a running partition only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<u8>,
}

/// The progress response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RunProgress {
    /// Run status.
    pub status: RunStatus,
    /// Rows to process (0 until the source is counted).
    pub total_rows: u64,
    /// Rows with a committed outcome (loaded + skipped + failed).
    pub processed_rows: u64,
    /// Rows that failed validation.
    pub failed_rows: u64,
    /// Valid rows not written (duplicates, or a newer version won).
    pub skipped_rows: u64,
    /// Partition count.
    pub partitions: u32,
    /// Partitions finished.
    pub completed_partitions: u32,
    /// Per-partition breakdown.
    pub partition_details: Vec<PartitionDetail>,
    /// The first 20 validation errors, in row order.
    pub validation_errors: Vec<RowError>,
    /// Estimated time remaining, or null.
    // Always present (null when unknown), as docs/api.md says.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub eta: Option<String>,
    /// Elapsed milliseconds.
    pub duration_ms: u64,
    /// Load strategy.
    pub load_strategy: LoadStrategy,
    /// Execution log.
    pub log: Vec<LogEntry>,
}

impl RunProgress {
    /// Builds the view from a run, its partitions (in index order), its first
    /// errors and its log.
    pub fn build(
        run: &Run,
        partitions: &[Partition],
        first_errors: Vec<RowError>,
        log: Vec<LogEntry>,
        now: Timestamp,
    ) -> Self {
        let mut counters = crate::run::Counters::default();
        let mut rate = 0.0;
        let mut any_rate = false;
        let details = partitions
            .iter()
            .map(|p| {
                counters = counters.plus(p.counters);
                if p.status == PartitionStatus::Running {
                    if let Some(r) = p.rate {
                        rate += r;
                        any_rate = true;
                    }
                }
                PartitionDetail {
                    index: p.range.index,
                    status: p.status,
                    rows: p.checkpoint.committed_rows(&p.range),
                    progress: (p.status == PartitionStatus::Running)
                        .then(|| p.checkpoint.percent(&p.range)),
                }
            })
            .collect::<Vec<_>>();
        // A partition list may be empty before extraction; fall back to the run's counters.
        if partitions.is_empty() {
            counters = run.counters;
        }
        let processed = counters.processed();
        let completed = details
            .iter()
            .filter(|d| d.status == PartitionStatus::Completed)
            .count();
        Self {
            status: run.status,
            total_rows: run.total_rows.unwrap_or(0),
            processed_rows: processed,
            failed_rows: counters.failed,
            skipped_rows: counters.skipped,
            partitions: run.partition_count,
            completed_partitions: u32::try_from(completed).unwrap_or(u32::MAX),
            partition_details: details,
            validation_errors: first_errors
                .into_iter()
                .take(PROGRESS_ERROR_LIMIT)
                .collect(),
            eta: eta::eta(
                run.status,
                run.total_rows,
                processed,
                any_rate.then_some(rate),
            ),
            duration_ms: run.duration_ms(now),
            load_strategy: run.load_strategy,
            log,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{PipelineId, RunId};
    use crate::run::{
        Checkpoint, Counters, LogStage, PartitionRange, RunMetadata, SourcePosition, Trigger,
    };

    fn partition(
        run_id: RunId,
        index: u32,
        status: PartitionStatus,
        committed: u64,
        rate: Option<f64>,
    ) -> Partition {
        let range = PartitionRange {
            index,
            first_row: 1 + u64::from(index) * 12_500,
            row_count: 12_500,
            start: SourcePosition::default(),
        };
        let mut checkpoint = Checkpoint::initial(&range);
        checkpoint.row += committed;
        Partition {
            run_id,
            range,
            status,
            checkpoint,
            counters: Counters {
                loaded: committed.saturating_sub(5),
                skipped: 3.min(committed),
                failed: 2.min(committed),
            },
            rate,
        }
    }

    #[test]
    fn reproduces_the_reference_example_shape() {
        let run_id = RunId::parse("run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM").expect("id");
        let run = Run {
            id: run_id,
            pipeline_id: PipelineId::parse("pipe_01J9Z8Y7X6W5V4T3S2R1Q0P9NM").expect("id"),
            status: RunStatus::Running,
            load_strategy: LoadStrategy::Upsert,
            trigger: Trigger::Api,
            total_rows: Some(50_000),
            partition_count: 4,
            counters: Counters::default(),
            metadata: RunMetadata::default(),
            error: None,
            created_at: Timestamp(1_000),
            started_at: Some(Timestamp(2_000)),
            finished_at: None,
        };
        let parts = vec![
            partition(run_id, 0, PartitionStatus::Completed, 12_500, Some(50.0)),
            partition(run_id, 1, PartitionStatus::Completed, 12_500, Some(50.0)),
            partition(run_id, 2, PartitionStatus::Running, 7_000, Some(100.0)),
            partition(run_id, 3, PartitionStatus::Pending, 0, None),
        ];
        let log = vec![LogEntry {
            stage: LogStage::Extract,
            message: "Read 50000 rows from source".into(),
            timestamp: Timestamp(5_000),
        }];
        let errors = (1..=25)
            .map(|i| RowError::new(i, "email", "x", "Invalid email format"))
            .collect();
        let p = RunProgress::build(&run, &parts, errors, log, Timestamp(46_200));
        let v = serde_json::to_value(&p).expect("json");
        assert_eq!(v["status"], "running");
        assert_eq!(v["totalRows"], 50_000);
        assert_eq!(v["processedRows"], 32_000);
        assert_eq!(v["failedRows"], 6);
        assert_eq!(v["skippedRows"], 9);
        assert_eq!(v["partitions"], 4);
        assert_eq!(v["completedPartitions"], 2);
        assert_eq!(
            v["partitionDetails"][2],
            serde_json::json!({"index": 2, "status": "running", "rows": 7000, "progress": 56})
        );
        assert_eq!(
            v["partitionDetails"][3],
            serde_json::json!({"index": 3, "status": "pending", "rows": 0})
        );
        assert_eq!(v["validationErrors"].as_array().map(Vec::len), Some(20));
        assert_eq!(
            v["validationErrors"][0],
            serde_json::json!({"row": 1, "column": "email", "value": "x", "error": "Invalid email format"})
        );
        // Only the running partition's rate counts: 18000 rows / 100 rows/s = 180 s.
        assert_eq!(v["eta"], "3m");
        assert_eq!(v["durationMs"], 45_200);
        assert_eq!(v["loadStrategy"], "upsert");
        assert_eq!(
            v["log"][0],
            serde_json::json!({"stage": "extract", "message": "Read 50000 rows from source", "timestamp": "1970-01-01T00:00:05Z"})
        );
        let keys: Vec<&str> = v
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        let mut expected = vec![
            "status",
            "totalRows",
            "processedRows",
            "failedRows",
            "skippedRows",
            "partitions",
            "completedPartitions",
            "partitionDetails",
            "validationErrors",
            "eta",
            "durationMs",
            "loadStrategy",
            "log",
        ];
        expected.sort_unstable();
        assert_eq!(sorted, expected);
    }
}
