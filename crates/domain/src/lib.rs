#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod connector;
pub mod ddl;
pub mod error;
pub mod eta;
pub mod format;
pub mod identifier;
pub mod ids;
pub mod inference;
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
pub mod webhook;

pub use error::DomainError;
