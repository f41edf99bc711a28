//! # sluice-postgres
//!
//! The production store of Sluice on PostgreSQL: one [`PgStore`] implements
//! every storage port of `sluice-application` (API keys, connectors,
//! pipelines, runs, polling, the work queue) and the [`BulkLoader`] that
//! loads validated batches into destination tables exactly once.
//!
//! * Metadata lives in schema `sluice`, written through diesel-async on a
//!   deadpool pool; the schema is created by embedded [`migrate`]-ions run
//!   under an advisory lock.
//! * Destination tables live in the configured warehouse schema. Batches are
//!   committed on a separate pool of tokio-postgres clients, because loading
//!   uses `COPY … FROM STDIN`, which diesel-async cannot issue.
//! * Driver errors are logged and translated into [`StoreError`] with short,
//!   safe messages (see `error.rs`).
//!
//! [`BulkLoader`]: sluice_application::ports::BulkLoader
//! [`StoreError`]: sluice_application::ports::StoreError

mod config;
mod error;
mod failpoint;
mod loader;
mod migrate;
mod pool;
#[cfg(feature = "testing")]
mod probe;
mod queue;
mod rows;
mod schema;
mod store;
mod tls;

pub use config::PgConfig;
pub use failpoint::{CommitStage, Failpoint};
pub use migrate::{MIGRATIONS, migrate, migrate_with};
pub use store::PgStore;
