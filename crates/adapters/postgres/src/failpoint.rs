//! A crash-test hook: makes one process stop dead at an exact point of its
//! N-th batch commit, so a test can kill it there with SIGKILL.
//!
//! It is off unless `sluice` is started with `SLUICE_FAILPOINT` (a hidden,
//! test-only setting). When the point is reached the process writes one line
//! to stderr, `sluice failpoint <point> reached`, and the commit then waits
//! forever: the test sees the line (a signal, not a sleep) and kills it.

use std::sync::atomic::{AtomicU32, Ordering};

/// Where in a batch commit a [`Failpoint`] stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitStage {
    /// After the rows, errors and checkpoint were written, before COMMIT.
    BeforeCommit,
    /// Right after COMMIT, before the worker learns it succeeded.
    AfterCommit,
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
    /// Parses `before_commit:3` or `after_commit:1`.
    pub fn parse(s: &str) -> Option<Self> {
        let (point, nth) = s.split_once(':').unwrap_or((s, "1"));
        let at = match point.trim() {
            "before_commit" => CommitStage::BeforeCommit,
            "after_commit" => CommitStage::AfterCommit,
            _ => return None,
        };
        let nth = nth.trim().parse().ok().filter(|n| *n > 0)?;
        Some(Self { at, nth })
    }

    fn name(self) -> &'static str {
        match self.at {
            CommitStage::BeforeCommit => "before_commit",
            CommitStage::AfterCommit => "after_commit",
        }
    }
}

/// The armed fail point and the commits counted so far.
#[derive(Debug, Default)]
pub(crate) struct FailpointState {
    armed: Option<Failpoint>,
    commits: AtomicU32,
}

impl FailpointState {
    pub(crate) fn new(armed: Option<Failpoint>) -> Self {
        Self {
            armed,
            commits: AtomicU32::new(0),
        }
    }

    /// Counts a commit; the stage where this one must stop, if it must.
    pub(crate) fn arm(&self) -> Option<CommitStage> {
        let f = self.armed?;
        let n = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        (n == f.nth).then_some(f.at)
    }

    /// Stops here for good if `stage` is where the armed commit stops.
    pub(crate) async fn hit(&self, armed: Option<CommitStage>, stage: CommitStage) {
        if armed == Some(stage) {
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
    }
}
