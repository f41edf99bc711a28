//! # sluice-domain
//!
//! The pure core of Sluice: every business rule that can be stated without I/O.
//! Another Rust service can embed this crate alone to get the run state machine,
//! the checkpoint and retry rules, the ETA math, row validation and the record
//! decoders for CSV and JSON Lines.
//!
//! Nothing here performs I/O, spawns tasks or depends on an async runtime; the
//! dependency list is limited to pure crates (serde, thiserror, regex, csv-core).

pub mod connector;
pub mod error;
pub mod eta;
pub mod format;
pub mod identifier;
pub mod ids;
pub mod ledger;
pub mod pipeline;
pub mod progress;
pub mod retry;
pub mod role;
pub mod run;
pub mod schema;
pub mod status;
pub mod time;
pub mod validation;

pub use error::DomainError;
