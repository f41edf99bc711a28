//! `cargo xtask fuzz-api` (being written).

use std::process::ExitCode;

use crate::infra::Res;

/// Fuzzes the API.
pub fn run(_args: &[String]) -> Res<ExitCode> {
    Err("cargo xtask fuzz-api is not written yet".into())
}
