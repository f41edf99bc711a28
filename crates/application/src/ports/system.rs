//! The production [`Clock`] and [`IdGenerator`]: the system clock and random ULIDs.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use sluice_domain::ids::Ulid;
use sluice_domain::time::Timestamp;

use super::{Clock, IdGenerator};

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(ms)
    }
}

/// ULIDs from the system clock and a thread-local random generator, made
/// monotonic within the process (the random part is incremented when two ids
/// fall in the same millisecond), so ids sort in creation order.
#[derive(Debug, Default)]
pub struct UlidGenerator {
    last: Mutex<Option<Ulid>>,
}

impl IdGenerator for UlidGenerator {
    fn ulid(&self) -> Ulid {
        let millis = u64::try_from(SystemClock.now().millis()).unwrap_or(0);
        let random: u128 = rand::rng().random();
        let mut next = Ulid::from_parts(millis, random);
        if let Ok(mut last) = self.last.lock() {
            if let Some(prev) = *last {
                if next <= prev {
                    next = Ulid(prev.0 + 1);
                }
            }
            *last = Some(next);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulids_increase_within_a_process() {
        let ids = UlidGenerator::default();
        let mut prev = ids.ulid();
        for _ in 0..10_000 {
            let next = ids.ulid();
            assert!(next > prev);
            prev = next;
        }
    }
}
