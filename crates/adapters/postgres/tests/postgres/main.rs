//! Integration tests of the PostgreSQL store against a real server (the one
//! `DATABASE_URL` names; `cargo xtask test` starts a private cluster). One
//! binary for link time; each test uses its own database.

mod contract;
mod destination;
mod error_stream;
mod migrations;
mod replace;
mod support;
mod tls;
