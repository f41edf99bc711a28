//! Retry rules (`POST …/runs/{runId}/retry`, see `docs/api.md`).
//!
//! Only `failed` and `completed_with_errors` runs can be retried. For `append`
//! and `upsert` a retry resumes every partition after its checkpoint, skips the
//! partitions already complete, and revisits the rows that failed validation
//! against the pipeline's current schema. `replace` starts over.

use crate::error::DomainError;
use crate::ids::RunId;
use crate::pipeline::LoadStrategy;
use crate::run::{Checkpoint, PartitionRange};
use crate::status::RunStatus;

/// What a retry will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPlan {
    /// Resume after checkpoints (true) or start over (false).
    pub resumable: bool,
    /// Rows already committed by the original run (0 when not resumable).
    pub resume_from_row: u64,
    /// Whether rows that failed validation in the original run are read again.
    pub revisit_failed_rows: bool,
    /// The partitions of the new run and the checkpoint each starts from
    /// (empty when not resumable: the retry extracts the source again).
    pub partitions: Vec<(PartitionRange, Checkpoint)>,
}

/// Plans a retry of a run in `status` loaded with `strategy`, whose partitions
/// had reached `checkpoints`. Errors with [`DomainError::RetryNotAllowed`]
/// unless the status allows retry.
///
/// A failed `append` run of 50,000 rows in four partitions, two of them
/// complete and one stopped at its 7,000th row, resumes from row 32,000:
///
/// ```
/// use sluice_domain::ids::RunId;
/// use sluice_domain::pipeline::LoadStrategy;
/// use sluice_domain::retry::{plan_retry, retry_log_message};
/// use sluice_domain::run::{Checkpoint, PartitionRange, SourcePosition};
/// use sluice_domain::status::RunStatus;
///
/// let partition = |index: u32, committed: u64| {
///     let first_row = 1 + u64::from(index) * 12_500;
///     let range = PartitionRange {
///         index,
///         first_row,
///         row_count: 12_500,
///         start: SourcePosition { file_index: 0, byte_offset: first_row * 40 },
///     };
///     let next = SourcePosition { file_index: 0, byte_offset: (first_row + committed) * 40 };
///     (range, Checkpoint { row: first_row - 1 + committed, next })
/// };
/// let checkpoints = [partition(0, 12_500), partition(1, 12_500), partition(2, 7_000), partition(3, 0)];
///
/// let plan = plan_retry(RunStatus::Failed, LoadStrategy::Append, &checkpoints)?;
/// assert!(plan.resumable && plan.revisit_failed_rows);
/// assert_eq!(plan.resume_from_row, 32_000);
/// let original = RunId::parse("run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM")?;
/// assert_eq!(
///     retry_log_message(&plan, original),
///     "Resuming from row 32000 (original run: run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM)"
/// );
///
/// // `replace` is not resumable: a retry starts over.
/// let plan = plan_retry(RunStatus::Failed, LoadStrategy::Replace, &checkpoints)?;
/// assert_eq!((plan.resumable, plan.resume_from_row), (false, 0));
/// // Only failed and completed_with_errors runs can be retried.
/// assert!(plan_retry(RunStatus::Completed, LoadStrategy::Append, &checkpoints).is_err());
/// # Ok::<(), sluice_domain::DomainError>(())
/// ```
pub fn plan_retry(
    status: RunStatus,
    strategy: LoadStrategy,
    checkpoints: &[(PartitionRange, Checkpoint)],
) -> Result<RetryPlan, DomainError> {
    if !status.allows_retry() {
        return Err(DomainError::RetryNotAllowed { status });
    }
    if !strategy.is_resumable() {
        return Ok(RetryPlan {
            resumable: false,
            resume_from_row: 0,
            revisit_failed_rows: false,
            partitions: Vec::new(),
        });
    }
    let resume_from_row = checkpoints.iter().map(|(r, c)| c.committed_rows(r)).sum();
    Ok(RetryPlan {
        resumable: true,
        resume_from_row,
        revisit_failed_rows: true,
        partitions: checkpoints.to_vec(),
    })
}

/// The message of the first log entry (stage `retry`) of a retry run.
pub fn retry_log_message(plan: &RetryPlan, original: RunId) -> String {
    if plan.resumable {
        format!(
            "Resuming from row {} (original run: {original})",
            plan.resume_from_row
        )
    } else {
        format!(
            "Full re-run from the beginning: replace is not resumable (original run: {original})"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::SourcePosition;

    fn part(index: u32, first: u64, count: u64, committed: u64) -> (PartitionRange, Checkpoint) {
        let range = PartitionRange {
            index,
            first_row: first,
            row_count: count,
            start: SourcePosition {
                file_index: 0,
                byte_offset: first * 10,
            },
        };
        let cp = Checkpoint {
            row: first - 1 + committed,
            next: SourcePosition {
                file_index: 0,
                byte_offset: (first + committed) * 10,
            },
        };
        (range, cp)
    }

    fn four_partitions() -> Vec<(PartitionRange, Checkpoint)> {
        // As in the retry example of docs/api.md: 2 of 4 complete, one at
        // 7000 of 12500.
        vec![
            part(0, 1, 12_500, 12_500),
            part(1, 12_501, 12_500, 12_500),
            part(2, 25_001, 12_500, 7_000),
            part(3, 37_501, 12_500, 0),
        ]
    }

    #[test]
    fn retry_is_allowed_only_for_failed_and_completed_with_errors() {
        for status in RunStatus::ALL {
            for strategy in LoadStrategy::ALL {
                let result = plan_retry(status, strategy, &four_partitions());
                if status.allows_retry() {
                    assert!(result.is_ok(), "{status} {strategy}");
                } else {
                    assert_eq!(
                        result,
                        Err(DomainError::RetryNotAllowed { status }),
                        "{status} {strategy}"
                    );
                }
            }
        }
    }

    #[test]
    fn append_and_upsert_resume_from_the_committed_rows() {
        for strategy in [LoadStrategy::Append, LoadStrategy::Upsert] {
            for status in [RunStatus::Failed, RunStatus::CompletedWithErrors] {
                let plan = plan_retry(status, strategy, &four_partitions()).expect("plan");
                assert!(plan.resumable);
                assert!(plan.revisit_failed_rows);
                assert_eq!(plan.resume_from_row, 32_000);
                assert_eq!(plan.partitions, four_partitions());
            }
        }
    }

    #[test]
    fn replace_starts_over() {
        for status in [RunStatus::Failed, RunStatus::CompletedWithErrors] {
            let plan = plan_retry(status, LoadStrategy::Replace, &four_partitions()).expect("plan");
            assert!(!plan.resumable);
            assert!(!plan.revisit_failed_rows);
            assert_eq!(plan.resume_from_row, 0);
            assert!(plan.partitions.is_empty());
        }
    }

    #[test]
    fn a_run_that_failed_before_extracting_resumes_from_zero() {
        let plan = plan_retry(RunStatus::Failed, LoadStrategy::Append, &[]).expect("plan");
        assert!(plan.resumable);
        assert_eq!(plan.resume_from_row, 0);
    }

    #[test]
    fn log_message_matches_the_reference_page() {
        let original = RunId::parse("run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM").expect("id");
        let plan =
            plan_retry(RunStatus::Failed, LoadStrategy::Upsert, &four_partitions()).expect("plan");
        assert_eq!(
            retry_log_message(&plan, original),
            "Resuming from row 32000 (original run: run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM)"
        );
    }
}
