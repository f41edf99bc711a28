use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sluice_domain::ids::Ulid;
use sluice_domain::time::Timestamp;

use crate::ports::{Clock, IdGenerator};

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    /// A clock at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Mutex::new(start))
    }

    /// Moves the clock forward.
    pub fn advance_ms(&self, ms: i64) {
        if let Ok(mut t) = self.0.lock() {
            *t = t.plus_millis(ms);
        }
    }

    /// Sets the time.
    pub fn set(&self, at: Timestamp) {
        if let Ok(mut t) = self.0.lock() {
            *t = at;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.0.lock().map(|t| *t).unwrap_or_default()
    }
}

/// Deterministic, increasing ULIDs.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn ulid(&self) -> Ulid {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ulid::from_parts(1_700_000_000_000 + n, u128::from(n))
    }
}
