//! A crash-test hook: makes one process stop dead at an exact point of its
//! N-th batch commit (or N-th run finalisation), so a test can kill it there
//! with SIGKILL.
//!
//! It is off unless `sluice` is started with `SLUICE_FAILPOINT` (a hidden,
//! test-only setting). When the point is reached the process writes one line
//! to stderr, `sluice failpoint <point> reached`, and the commit then waits
//! forever: the test sees the line (a signal, not a sleep) and kills it.

use std::sync::atomic::{AtomicU32, Ordering};

/// Where in a commit (a batch's, or a run's finalisation) a [`Failpoint`] stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitStage {
    /// After the rows, errors and checkpoint were written, before COMMIT.
    BeforeCommit,
    /// Right after COMMIT, before the worker learns it succeeded.
    AfterCommit,
    /// A run's last batch is committed; its finalisation has not begun.
    BeforeFinalize,
    /// Inside the finalising transaction, after the status and the file
    /// ledger were written, before COMMIT.
    FinalizeBeforeCommit,
}

impl CommitStage {
    fn is_finalize(self) -> bool {
        matches!(self, Self::BeforeFinalize | Self::FinalizeBeforeCommit)
    }
}

/// A fail point armed for the `nth` commit of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failpoint {
    /// Where in the commit it stops.
    pub at: CommitStage,
    /// Which commit (1-based) stops.
    pub nth: u32,
}

impl Failpoint {
    /// Parses `before_commit:3`, `after_commit:1`, `before_finalize:1` or
    /// `finalize_before_commit:1`.
    pub fn parse(s: &str) -> Option<Self> {
        let (point, nth) = s.split_once(':').unwrap_or((s, "1"));
        let at = match point.trim() {
            "before_commit" => CommitStage::BeforeCommit,
            "after_commit" => CommitStage::AfterCommit,
            "before_finalize" => CommitStage::BeforeFinalize,
            "finalize_before_commit" => CommitStage::FinalizeBeforeCommit,
            _ => return None,
        };
        let nth = nth.trim().parse().ok().filter(|n| *n > 0)?;
        Some(Self { at, nth })
    }

    fn name(self) -> &'static str {
        match self.at {
            CommitStage::BeforeCommit => "before_commit",
            CommitStage::AfterCommit => "after_commit",
            CommitStage::BeforeFinalize => "before_finalize",
            CommitStage::FinalizeBeforeCommit => "finalize_before_commit",
        }
    }
}

/// The armed fail point and the commits counted so far.
#[derive(Debug, Default)]
pub(crate) struct FailpointState {
    armed: Option<Failpoint>,
    commits: AtomicU32,
    finalizations: AtomicU32,
}

impl FailpointState {
    pub(crate) fn new(armed: Option<Failpoint>) -> Self {
        Self {
            armed,
            commits: AtomicU32::new(0),
            finalizations: AtomicU32::new(0),
        }
    }

    /// Counts a batch commit; the point this one must stop at, if any.
    pub(crate) fn arm(&self) -> Option<CommitStage> {
        let f = self.armed.filter(|f| !f.at.is_finalize())?;
        let n = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        (n == f.nth).then_some(f.at)
    }

    /// Counts a run finalisation; the point this one must stop at, if any.
    pub(crate) fn arm_finalize(&self) -> Option<CommitStage> {
        let f = self.armed.filter(|f| f.at.is_finalize())?;
        let n = self.finalizations.fetch_add(1, Ordering::SeqCst) + 1;
        (n == f.nth).then_some(f.at)
    }

    /// Stops here for good if `point` is the armed one.
    pub(crate) async fn hit(&self, armed: Option<CommitStage>, point: CommitStage) {
        if armed == Some(point) {
            if let Some(f) = self.armed {
                eprintln!("sluice failpoint {} reached", f.name());
            }
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_points() {
        assert_eq!(
            Failpoint::parse("before_commit:3"),
            Some(Failpoint {
                at: CommitStage::BeforeCommit,
                nth: 3
            })
        );
        assert_eq!(
            Failpoint::parse("after_commit"),
            Some(Failpoint {
                at: CommitStage::AfterCommit,
                nth: 1
            })
        );
        assert_eq!(
            Failpoint::parse("finalize_before_commit").map(|f| f.at),
            Some(CommitStage::FinalizeBeforeCommit)
        );
        assert_eq!(Failpoint::parse("after_commit:0"), None);
        assert_eq!(Failpoint::parse("elsewhere:1"), None);
    }

    #[test]
    fn only_the_nth_commit_is_armed() {
        let s = FailpointState::new(Failpoint::parse("after_commit:2"));
        assert_eq!(s.arm(), None);
        assert_eq!(s.arm(), Some(CommitStage::AfterCommit));
        assert_eq!(s.arm(), None);
        assert_eq!(FailpointState::new(None).arm(), None);
        let f = FailpointState::new(Failpoint::parse("before_finalize:1"));
        assert_eq!(f.arm(), None, "batch commits do not count for finalisation");
        assert_eq!(f.arm_finalize(), Some(CommitStage::BeforeFinalize));
        assert_eq!(f.arm_finalize(), None);
    }
}
