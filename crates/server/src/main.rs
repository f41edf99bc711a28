//! `sluice`: the Sluice server (`serve`, `worker`, `migrate`, `apikey`,
//! `openapi`) and a command-line client of its API (`connectors`,
//! `pipelines`, `apikeys`, `run`, `runs`, `poll`). Every server setting is an
//! environment variable and a flag; the client reads `SLUICE_URL` and
//! `SLUICE_API_KEY` (see `--help`).

mod cli;
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
        let done = |r: Result<(), String>| r.map(|()| ExitCode::SUCCESS);
        match cli.command {
            Command::Serve(args) => done(runtime::serve(args).await),
            Command::Worker(args) => done(runtime::worker(args).await),
            Command::Migrate(args) => done(runtime::migrate(args).await),
            Command::Apikey(cmd) => done(runtime::apikey(cmd).await),
            Command::Openapi => done(runtime::openapi()),
            client => cli::run(client).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("sluice: {message}");
            ExitCode::FAILURE
        }
    }
}
