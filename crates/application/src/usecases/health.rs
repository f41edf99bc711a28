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
    /// Webhook deliveries by outcome and the outbox's queue.
    pub webhooks: WebhookMetrics,
    /// Drift events logged by runs (headers differing from their schema).
    pub drift_events: u64,
}

/// Webhook figures for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WebhookMetrics {
    /// Attempts that delivered.
    pub delivered: u64,
    /// Attempts that failed and were retried.
    pub retrying: u64,
    /// Attempts after which the event was given up.
    pub failed: u64,
    /// Events waiting to be sent.
    pub pending: u64,
    /// Age of the oldest of those, in seconds (0 when none).
    pub oldest_pending_seconds: u64,
}

impl UseCases {
    /// Ok when the store answers (for `/readyz`).
    pub async fn readiness(&self) -> Result<(), AppError> {
        Ok(self.ports().runs.ping().await?)
    }

    /// Store-derived metrics (no authentication: counts only, no names).
    pub async fn metrics_snapshot(&self) -> Result<MetricsSnapshot, AppError> {
        let runs = &self.ports().runs;
        let (counts, rows, outbox, drift_events) = futures::try_join!(
            runs.count_runs_by_status(),
            runs.count_rows_by_outcome(),
            self.ports().webhooks.outbox_stats(),
            runs.count_drift_events()
        )?;
        let now = self.ports().clock.now();
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
            drift_events,
            webhooks: WebhookMetrics {
                delivered: outbox.delivered,
                retrying: outbox.retrying,
                failed: outbox.failed,
                pending: outbox.pending,
                oldest_pending_seconds: outbox
                    .oldest_pending_at
                    .map_or(0, |t| now.millis_since(t) / 1000),
            },
        })
    }
}
