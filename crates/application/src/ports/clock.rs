//! Time and identity: the two sources of non-determinism, behind ports so use
//! cases can be tested with fixed values.

use sluice_domain::ids::Ulid;
use sluice_domain::time::Timestamp;

/// The current time (tests use `testing::ManualClock`).
pub trait Clock: Send + Sync {
    /// Now. Never goes backwards within one process.
    fn now(&self) -> Timestamp;
}

/// Fresh ULIDs for new entities (tests use `testing::SequentialIds`).
pub trait IdGenerator: Send + Sync {
    /// A new ULID, unique across processes (time plus 80 random bits) and
    /// increasing within one process.
    fn ulid(&self) -> Ulid;
}
