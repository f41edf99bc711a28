//! Integration tests of the object-store adapter against a real S3-compatible
//! server on loopback (`SLUICE_TEST_S3_ENDPOINT`) and a temporary directory.
//! Nothing here uses an in-memory store. One binary keeps link times down.

mod ambient;
mod check;
mod common;
mod contract;
mod jail;
mod listing;
mod memory;
mod reading;
mod secrets;
mod touch;
