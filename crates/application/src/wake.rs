//! [`WorkSignal`]: how the creators of work wake the idle workers of their
//! process.

use std::sync::Arc;

use tokio::sync::Notify;

/// Wakes the idle workers of a process whenever work is created (a run
/// started, retried or polled, partitions extracted), so they look for it at
/// once instead of at their next poll. Cheap to clone: clones share one
/// signal. Workers of other processes find the work at their next poll.
#[derive(Debug, Clone, Default)]
pub struct WorkSignal(Arc<Notify>);

impl WorkSignal {
    /// A signal of its own.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes every worker waiting now.
    pub(crate) fn work_created(&self) {
        self.0.notify_waiters();
    }

    /// The next wake-up (register it before looking for work, so work
    /// created meanwhile still wakes the worker).
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.0.notified()
    }
}
