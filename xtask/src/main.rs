//! `cargo xtask`: the commands that set up a fresh machine and run Sluice.
//!
//! * `cargo xtask test [-- <nextest args>]`: starts a private PostgreSQL (unless
//!   `DATABASE_URL` is set) and an S3-compatible server on loopback, runs every
//!   test of the workspace, and stops what it started whatever happens.
//! * `cargo xtask run`: starts (or reuses) the private PostgreSQL and runs
//!   `sluice serve` on 127.0.0.1:8080 with an admin key and demo data.
//! * `cargo xtask openapi`: writes `docs/openapi.json` from the code.
//! * `cargo xtask bench`: throughput against `COPY`, memory and API latency.
//! * `cargo xtask fuzz`: the coverage-guided fuzz targets of `fuzz/`.
//! * `cargo xtask fuzz-api`: schemathesis against the OpenAPI document.

mod bench;
mod fuzz;
mod fuzz_api;
mod infra;
mod run;
mod test;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo xtask <command>\n\n\
         commands:\n  \
         test [-- ARGS]   start PostgreSQL and an S3 server on loopback, run every test (ARGS go to cargo nextest)\n  \
         run              start PostgreSQL and `sluice serve` on 127.0.0.1:8080 with demo data\n  \
         openapi          write docs/openapi.json from the code\n  \
         bench [--rows N] throughput against COPY, memory, API latency (writes docs/benchmarks.md)\n  \
         fuzz [--seconds N]  run the fuzz targets of fuzz/ (decoders, validation), report executions and crashes\n  \
         fuzz-api         fuzz the API from its OpenAPI document with schemathesis"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        return usage();
    };
    let rest = args.get(1..).unwrap_or_default().to_vec();
    let result = match command.as_str() {
        "test" => test::run(&rest),
        "run" => run::run(&rest),
        "openapi" => run::openapi(),
        "bench" => bench::run(&rest),
        "fuzz" => fuzz::run(&rest),
        "fuzz-api" => fuzz_api::run(&rest),
        "-h" | "--help" | "help" => return usage(),
        other => {
            eprintln!("unknown command `{other}`");
            return usage();
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
