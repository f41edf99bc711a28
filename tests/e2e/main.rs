//! End-to-end tests: the real `sluice` binary against the PostgreSQL and S3
//! servers started by `cargo xtask test`. One test binary, one module per area.

mod support;

mod ambient;
mod api;
mod cli;
mod client;
mod crash;
mod dashboard;
mod data;
mod destination;
mod edges;
mod faults;
mod hostile;
mod ledger;
mod load;
mod polling;
mod replace;
mod retry;
mod schema;
mod strategies;
mod webhooks;
