//! Black-box end-to-end tests live in `e2e/`: they start the real `sluice`
//! binary (built by `cargo xtask test`, found through `SLUICE_BIN`) against
//! the PostgreSQL and S3 servers the harness started.
