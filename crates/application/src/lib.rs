//! # sluice-application
//!
//! The ports Sluice's adapters implement and the use cases that orchestrate
//! them. This crate knows no database, object store or HTTP framework: it
//! speaks to them only through the traits in [`ports`], each of which states
//! its contract (what it guarantees, which error it returns when).
//!
//! With the `testing` feature it also provides in-memory fakes of the storage
//! ports (module `testing`) and the contract-test suites every implementation of a
//! port must pass, so the fakes cannot drift from the real adapters.

pub mod delivery;
pub mod engine;
pub mod error;
pub mod ports;
pub mod reading;
mod tunables;
pub mod usecases;
mod wake;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::AppError;
pub use tunables::Tunables;
pub use wake::WorkSignal;
