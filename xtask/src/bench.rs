//! `cargo xtask bench` (being written).

use std::process::ExitCode;

use crate::infra::Res;

/// Runs the benchmarks.
pub fn run(_args: &[String]) -> Res<ExitCode> {
    Err("cargo xtask bench is not written yet".into())
}
