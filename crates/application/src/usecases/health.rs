//! Readiness and metrics.

use sluice_domain::run::Counters;
use sluice_domain::status::RunStatus;

use super::UseCases;
use crate::AppError;

/// Numbers for `/metrics` that come from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Runs per status (every status present, zero included).
    pub runs_by_status: Vec<(RunStatus, u64)>,
    /// Rows by outcome, each row counted once.
    pub rows: Counters,
}

impl UseCases {
    /// Ok when the store answers (for `/readyz`).
    pub async fn readiness(&self) -> Result<(), AppError> {
        Ok(self.ports().runs.ping().await?)
    }

    /// Store-derived metrics (no authentication: counts only, no names).
    pub async fn metrics_snapshot(&self) -> Result<MetricsSnapshot, AppError> {
        let runs = &self.ports().runs;
        let (counts, rows) =
            futures::try_join!(runs.count_runs_by_status(), runs.count_rows_by_outcome())?;
        let runs_by_status = RunStatus::ALL
            .into_iter()
            .map(|st| {
                (
                    st,
                    counts.iter().find(|(s, _)| *s == st).map_or(0, |(_, n)| *n),
                )
            })
            .collect();
        Ok(MetricsSnapshot {
            runs_by_status,
            rows,
        })
    }
}
