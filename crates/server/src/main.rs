//! `sluice`: the Sluice server, worker and admin CLI.
//!
//! ```text
//! sluice serve          API + in-process workers + polling scheduler
//! sluice worker         workers only (any number, on any machine)
//! sluice migrate        apply database migrations and exit
//! sluice apikey create  print a new API key (shown once)
//! sluice openapi        print the OpenAPI document
//! ```
//! Every setting is an environment variable and a flag (see `--help`).

mod config;
mod embedded;
mod http;
mod runtime;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

use crate::config::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_setting());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => runtime::serve(args).await,
            Command::Worker(args) => runtime::worker(args).await,
            Command::Migrate(args) => runtime::migrate(args).await,
            Command::Apikey(cmd) => runtime::apikey(cmd).await,
            Command::Openapi => runtime::openapi(),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sluice: {message}");
            ExitCode::FAILURE
        }
    }
}
