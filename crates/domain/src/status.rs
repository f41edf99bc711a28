//! The run and partition state machines.
//!
//! ```text
//!             ┌──────────► cancelled ◄─────────┐
//!             │                                │
//!  pending ───┴──► running ──► completed       │
//!     │              │    ──► completed_with_errors
//!     │              └────►  failed ◄──────────┘ (pending → failed too)
//!     └───────────────────►  failed
//! ```
//! Terminal states never change again. Every illegal transition is a typed
//! error ([`DomainError::IllegalRunTransition`]), never a panic.
//!
//! A run's whole life, as the engine drives it:
//!
//! ```
//! use sluice_domain::status::RunStatus;
//!
//! let run = RunStatus::Pending;
//! assert!(run.is_active() && !run.allows_retry());
//! let run = run.start()?; // extraction done: pending → running
//! let run = run.finish(12)?; // 12 rows failed validation
//! assert_eq!(run, RunStatus::CompletedWithErrors);
//! assert!(run.is_terminal() && run.allows_retry());
//! assert_eq!(run.to_string(), "completed_with_errors");
//! # Ok::<(), sluice_domain::DomainError>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// The status of a run, spelled on the wire as the API documents it
/// (`docs/api.md`): `pending`, `running`, `completed`,
/// `completed_with_errors`, `failed`, `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created, waiting for a worker to extract it.
    Pending,
    /// Extracted; partitions are being loaded.
    Running,
    /// Finished with every row loaded or skipped.
    Completed,
    /// Finished, and at least one row failed validation.
    CompletedWithErrors,
    /// Stopped early (source unreadable, destination error, error threshold, ...).
    Failed,
    /// Stopped by a user.
    Cancelled,
}

impl RunStatus {
    /// Every status, for exhaustive tests and documentation.
    pub const ALL: [RunStatus; 6] = [
        Self::Pending,
        Self::Running,
        Self::Completed,
        Self::CompletedWithErrors,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The wire name (`completed_with_errors`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::CompletedWithErrors => "completed_with_errors",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// True once the run can never change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::CompletedWithErrors | Self::Failed | Self::Cancelled
        )
    }

    /// True while the run occupies its pipeline (pending or running).
    pub fn is_active(self) -> bool {
        !self.is_terminal()
    }

    /// True if `POST …/retry` is allowed on a run in this status: `failed`
    /// and `completed_with_errors` only (the API answers 422 otherwise).
    pub fn allows_retry(self) -> bool {
        matches!(self, Self::Failed | Self::CompletedWithErrors)
    }

    /// True if `self → to` is a legal transition.
    pub fn can_become(self, to: RunStatus) -> bool {
        use RunStatus::*;
        matches!(
            (self, to),
            (Pending, Running)
                | (Pending, Failed)
                | (Pending, Cancelled)
                | (Running, Completed)
                | (Running, CompletedWithErrors)
                | (Running, Failed)
                | (Running, Cancelled)
        )
    }

    /// Moves to `to`, or returns [`DomainError::IllegalRunTransition`].
    ///
    /// ```
    /// use sluice_domain::DomainError;
    /// use sluice_domain::status::RunStatus;
    ///
    /// assert_eq!(
    ///     RunStatus::Running.transition(RunStatus::Cancelled),
    ///     Ok(RunStatus::Cancelled)
    /// );
    /// // A cancelled run stays cancelled.
    /// assert_eq!(
    ///     RunStatus::Cancelled.transition(RunStatus::Running),
    ///     Err(DomainError::IllegalRunTransition {
    ///         from: RunStatus::Cancelled,
    ///         to: RunStatus::Running,
    ///     })
    /// );
    /// ```
    pub fn transition(self, to: RunStatus) -> Result<RunStatus, DomainError> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(DomainError::IllegalRunTransition { from: self, to })
        }
    }

    /// Extraction done: `pending → running`.
    pub fn start(self) -> Result<RunStatus, DomainError> {
        self.transition(Self::Running)
    }

    /// Every partition finished: `running → completed | completed_with_errors`,
    /// depending on whether any row failed validation.
    pub fn finish(self, failed_rows: u64) -> Result<RunStatus, DomainError> {
        self.transition(if failed_rows > 0 {
            Self::CompletedWithErrors
        } else {
            Self::Completed
        })
    }

    /// The run stopped early: `pending | running → failed`.
    pub fn fail(self) -> Result<RunStatus, DomainError> {
        self.transition(Self::Failed)
    }

    /// A user cancelled: `pending | running → cancelled`.
    pub fn cancel(self) -> Result<RunStatus, DomainError> {
        self.transition(Self::Cancelled)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of one partition of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PartitionStatus {
    /// Waiting for a worker.
    Pending,
    /// Claimed by a worker holding a lease.
    Running,
    /// Every row of its range has a committed outcome.
    Completed,
    /// Will not finish (its run failed or was cancelled, or its rows cannot be loaded).
    Failed,
}

impl PartitionStatus {
    /// Every status, for exhaustive tests.
    pub const ALL: [PartitionStatus; 4] =
        [Self::Pending, Self::Running, Self::Completed, Self::Failed];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// True once the partition can never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }

    /// True if `self → to` is legal. `running → pending` is a worker handing a
    /// partition back (shutdown); a lease that expires keeps the partition
    /// `running` and lets another worker claim it, which is not a transition.
    pub fn can_become(self, to: PartitionStatus) -> bool {
        use PartitionStatus::*;
        matches!(
            (self, to),
            (Pending, Running)
                | (Pending, Failed)
                | (Running, Pending)
                | (Running, Completed)
                | (Running, Failed)
        )
    }

    /// Moves to `to`, or returns [`DomainError::IllegalPartitionTransition`].
    ///
    /// ```
    /// use sluice_domain::status::PartitionStatus;
    ///
    /// // A worker claims a partition, then hands it back on shutdown.
    /// let claimed = PartitionStatus::Pending.transition(PartitionStatus::Running)?;
    /// assert_eq!(claimed.transition(PartitionStatus::Pending)?, PartitionStatus::Pending);
    /// assert!(PartitionStatus::Completed.transition(PartitionStatus::Running).is_err());
    /// # Ok::<(), sluice_domain::DomainError>(())
    /// ```
    pub fn transition(self, to: PartitionStatus) -> Result<PartitionStatus, DomainError> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(DomainError::IllegalPartitionTransition { from: self, to })
        }
    }
}

impl fmt::Display for PartitionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole legal table, written out independently of `can_become`.
    const LEGAL_RUN: [(RunStatus, RunStatus); 7] = [
        (RunStatus::Pending, RunStatus::Running),
        (RunStatus::Pending, RunStatus::Failed),
        (RunStatus::Pending, RunStatus::Cancelled),
        (RunStatus::Running, RunStatus::Completed),
        (RunStatus::Running, RunStatus::CompletedWithErrors),
        (RunStatus::Running, RunStatus::Failed),
        (RunStatus::Running, RunStatus::Cancelled),
    ];

    #[test]
    fn every_run_status_pair_is_legal_or_a_typed_error() {
        let mut legal_seen = 0;
        for from in RunStatus::ALL {
            for to in RunStatus::ALL {
                let expected_legal = LEGAL_RUN.contains(&(from, to));
                match from.transition(to) {
                    Ok(next) => {
                        assert!(expected_legal, "{from} -> {to} must be illegal");
                        assert_eq!(next, to);
                        legal_seen += 1;
                    }
                    Err(err) => {
                        assert!(!expected_legal, "{from} -> {to} must be legal");
                        assert_eq!(err, DomainError::IllegalRunTransition { from, to });
                    }
                }
            }
        }
        assert_eq!(legal_seen, LEGAL_RUN.len());
    }

    #[test]
    fn terminal_run_states_never_change() {
        for from in RunStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in RunStatus::ALL {
                assert!(from.transition(to).is_err(), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn named_run_transitions() {
        assert_eq!(RunStatus::Pending.start(), Ok(RunStatus::Running));
        assert_eq!(RunStatus::Running.finish(0), Ok(RunStatus::Completed));
        assert_eq!(
            RunStatus::Running.finish(3),
            Ok(RunStatus::CompletedWithErrors)
        );
        assert!(RunStatus::Pending.finish(0).is_err());
        assert_eq!(RunStatus::Pending.fail(), Ok(RunStatus::Failed));
        assert_eq!(RunStatus::Running.cancel(), Ok(RunStatus::Cancelled));
        assert!(RunStatus::Completed.cancel().is_err());
        assert!(RunStatus::Failed.start().is_err());
    }

    #[test]
    fn run_status_wire_names_match_the_reference_page() {
        let json = serde_json::to_string(&RunStatus::CompletedWithErrors).expect("json");
        assert_eq!(json, "\"completed_with_errors\"");
        for st in RunStatus::ALL {
            assert_eq!(RunStatus::parse(st.as_str()), Some(st));
            assert_eq!(
                serde_json::to_string(&st).expect("json"),
                format!("\"{st}\"")
            );
        }
        assert_eq!(RunStatus::parse("done"), None);
    }

    #[test]
    fn only_failed_and_completed_with_errors_allow_retry() {
        let allowed: Vec<_> = RunStatus::ALL
            .into_iter()
            .filter(|s| s.allows_retry())
            .collect();
        assert_eq!(
            allowed,
            vec![RunStatus::CompletedWithErrors, RunStatus::Failed]
        );
    }

    const LEGAL_PARTITION: [(PartitionStatus, PartitionStatus); 5] = [
        (PartitionStatus::Pending, PartitionStatus::Running),
        (PartitionStatus::Pending, PartitionStatus::Failed),
        (PartitionStatus::Running, PartitionStatus::Pending),
        (PartitionStatus::Running, PartitionStatus::Completed),
        (PartitionStatus::Running, PartitionStatus::Failed),
    ];

    #[test]
    fn every_partition_status_pair_is_legal_or_a_typed_error() {
        let mut legal_seen = 0;
        for from in PartitionStatus::ALL {
            for to in PartitionStatus::ALL {
                let expected_legal = LEGAL_PARTITION.contains(&(from, to));
                match from.transition(to) {
                    Ok(next) => {
                        assert!(expected_legal, "{from} -> {to} must be illegal");
                        assert_eq!(next, to);
                        legal_seen += 1;
                    }
                    Err(err) => {
                        assert!(!expected_legal, "{from} -> {to} must be legal");
                        assert_eq!(err, DomainError::IllegalPartitionTransition { from, to });
                    }
                }
            }
        }
        assert_eq!(legal_seen, LEGAL_PARTITION.len());
        for st in PartitionStatus::ALL {
            assert_eq!(PartitionStatus::parse(st.as_str()), Some(st));
        }
    }
}
