//! Estimated time remaining, the `eta` of the progress view.
//!
//! `eta` is null unless the run is `running` with a known total and at least
//! one committed batch. It is `remaining / rate`, where the rate is the sum of
//! the smoothed rates of the partitions being loaded, each an exponentially
//! weighted average over its recent batches.

use crate::status::RunStatus;

/// Weight of the newest batch in a partition's smoothed rate.
pub const RATE_SMOOTHING: f64 = 0.3;

/// Folds one committed batch (`rows` in `elapsed_ms`) into a smoothed rate in
/// rows per second.
pub fn smooth_rate(previous: Option<f64>, rows: u64, elapsed_ms: u64) -> f64 {
    let instant = rows as f64 * 1000.0 / elapsed_ms.max(1) as f64;
    match previous {
        Some(p) if p.is_finite() && p > 0.0 => {
            RATE_SMOOTHING * instant + (1.0 - RATE_SMOOTHING) * p
        }
        _ => instant,
    }
}

/// Seconds remaining, or `None` when no estimate can be made.
pub fn eta_seconds(
    status: RunStatus,
    total_rows: Option<u64>,
    processed_rows: u64,
    rate: Option<f64>,
) -> Option<f64> {
    if status != RunStatus::Running {
        return None;
    }
    let total = total_rows?;
    let rate = rate.filter(|r| r.is_finite() && *r > 0.0)?;
    let remaining = total.saturating_sub(processed_rows);
    Some(remaining as f64 / rate)
}

/// Formats a duration as the API shows it: under 90 s `"45s"`, under
/// 90 min `"3m"`, under 48 h `"1.2h"` (one decimal), else `"2.5d"`.
///
/// ```
/// use sluice_domain::eta::format_eta;
///
/// assert_eq!(format_eta(45.0), "45s");
/// assert_eq!(format_eta(180.0), "3m");
/// assert_eq!(format_eta(1.6 * 3600.0), "1.6h");
/// assert_eq!(format_eta(60.0 * 3600.0), "2.5d");
/// ```
pub fn format_eta(seconds: f64) -> String {
    let s = if seconds.is_finite() {
        seconds.max(0.0)
    } else {
        f64::MAX
    };
    if s < 90.0 {
        format!("{}s", s.round() as u64)
    } else if s < 90.0 * 60.0 {
        format!("{}m", (s / 60.0).round() as u64)
    } else if s < 48.0 * 3600.0 {
        format!("{:.1}h", s / 3600.0)
    } else {
        format!("{:.1}d", s / 86_400.0)
    }
}

/// The `eta` field of the progress response.
///
/// ```
/// use sluice_domain::eta::{eta, smooth_rate};
/// use sluice_domain::status::RunStatus;
///
/// // Two committed batches of 10,000 rows, in 2 s and then 4 s.
/// let rate = smooth_rate(None, 10_000, 2_000); // 5,000 rows/s
/// let rate = smooth_rate(Some(rate), 10_000, 4_000); // 0.3 × 2,500 + 0.7 × 5,000
/// assert_eq!(rate.round(), 4_250.0);
/// // 1,020,000 rows to go at 4,250 rows/s: 240 s.
/// assert_eq!(
///     eta(RunStatus::Running, Some(1_040_000), 20_000, Some(rate)),
///     Some("4m".to_owned())
/// );
/// // No estimate before the first batch, or unless the run is running.
/// assert_eq!(eta(RunStatus::Running, Some(1_040_000), 0, None), None);
/// assert_eq!(eta(RunStatus::Completed, Some(1_040_000), 1_040_000, Some(rate)), None);
/// ```
pub fn eta(
    status: RunStatus,
    total_rows: Option<u64>,
    processed_rows: u64,
    rate: Option<f64>,
) -> Option<String> {
    eta_seconds(status, total_rows, processed_rows, rate).map(format_eta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_boundaries() {
        assert_eq!(format_eta(0.0), "0s");
        assert_eq!(format_eta(45.0), "45s");
        assert_eq!(format_eta(89.0), "89s");
        assert_eq!(format_eta(90.0), "2m");
        assert_eq!(format_eta(180.0), "3m");
        assert_eq!(format_eta(89.0 * 60.0), "89m");
        assert_eq!(format_eta(90.0 * 60.0), "1.5h");
        assert_eq!(format_eta(72.0 * 60.0), "72m");
        assert_eq!(format_eta(1.6 * 3600.0), "1.6h");
        assert_eq!(format_eta(47.9 * 3600.0), "47.9h");
        assert_eq!(format_eta(48.0 * 3600.0), "2.0d");
        assert_eq!(format_eta(2.5 * 86_400.0), "2.5d");
        assert_eq!(format_eta(-5.0), "0s");
    }

    #[test]
    fn eta_is_null_unless_running_with_a_total_and_a_rate() {
        for status in RunStatus::ALL
            .into_iter()
            .filter(|s| *s != RunStatus::Running)
        {
            assert_eq!(eta(status, Some(100), 50, Some(10.0)), None, "{status}");
        }
        assert_eq!(eta(RunStatus::Running, None, 50, Some(10.0)), None);
        assert_eq!(eta(RunStatus::Running, Some(100), 0, None), None);
        assert_eq!(eta(RunStatus::Running, Some(100), 0, Some(0.0)), None);
        assert_eq!(eta(RunStatus::Running, Some(100), 0, Some(f64::NAN)), None);
        assert_eq!(
            eta(RunStatus::Running, Some(50_000), 32_000, Some(100.0)),
            Some("3m".into())
        );
        assert_eq!(
            eta(RunStatus::Running, Some(100), 100, Some(5.0)),
            Some("0s".into())
        );
    }

    #[test]
    fn rate_smoothing() {
        assert_eq!(smooth_rate(None, 1000, 500), 2000.0);
        let r = smooth_rate(Some(2000.0), 1000, 1000);
        assert!((r - (0.3 * 1000.0 + 0.7 * 2000.0)).abs() < 1e-9);
        assert_eq!(smooth_rate(None, 10, 0), 10_000.0);
    }
}
