//! `cargo xtask test`: the one test command.

use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::infra::browser;
use crate::infra::moto::Moto;
use crate::infra::pg::Postgres;
use crate::infra::{Res, cargo, root, state_dir};

/// Sends `signal` to every process of group `pgid`.
fn kill_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stderr(std::process::Stdio::null())
        .status();
}

fn has_nextest() -> bool {
    Command::new(cargo())
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the workspace's doctests (their libraries are already built).
fn run_doctests() -> Res<bool> {
    eprintln!("xtask: doctests");
    Command::new(cargo())
        .args(["test", "--doc", "--workspace", "--quiet"])
        .current_dir(root())
        .status()
        .map(|s| s.success())
        .map_err(|e| format!("cannot run the doctests: {e}"))
}

/// Runs the whole test suite against private servers.
pub fn run(args: &[String]) -> Res<ExitCode> {
    let extra: Vec<String> = match args.first().map(String::as_str) {
        Some("--") => args.get(1..).unwrap_or_default().to_vec(),
        _ => args.to_vec(),
    };
    std::fs::create_dir_all(state_dir()).map_err(|e| e.to_string())?;

    // Ctrl-C reaches us and the test processes; the tests run in their own
    // process group, so the handler forwards it and cleanup still happens here.
    let group = Arc::new(AtomicU32::new(0));
    {
        let group = group.clone();
        ctrlc::set_handler(move || {
            let pgid = group.load(Ordering::SeqCst);
            if pgid != 0 {
                kill_group(pgid, "-INT");
            }
        })
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    }

    let (mut pg, database_url) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            eprintln!("xtask: using DATABASE_URL from the environment");
            (None, url)
        }
        _ => {
            let pg = Postgres::start("pg")?;
            let url = pg.url("postgres");
            eprintln!("xtask: PostgreSQL on 127.0.0.1:{}", pg.port);
            (Some(pg), url)
        }
    };
    let moto = Moto::start()?;
    eprintln!("xtask: S3 server (moto) on {}", moto.endpoint());
    let browser = browser::prepare()?;
    eprintln!("xtask: Chromium at {}", browser.chromium.display());

    // End-to-end tests start the real binary.
    let status = Command::new(cargo())
        .args(["build", "--quiet", "-p", "sluice-server"])
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run cargo build: {e}"))?;
    if !status.success() {
        return Ok(ExitCode::FAILURE);
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), Into::into);
    let sluice_bin = target.join("debug").join("sluice");

    let nextest = has_nextest();
    let mut cmd = Command::new(cargo());
    if nextest {
        cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        eprintln!(
            "xtask: cargo-nextest not found, using cargo test (install: cargo install cargo-nextest)"
        );
        cmd.args(["test", "--workspace", "--no-fail-fast"]);
    }
    cmd.args(&extra)
        .current_dir(root())
        .env("DATABASE_URL", &database_url)
        .env("SLUICE_TEST_S3_ENDPOINT", moto.endpoint())
        .env("SLUICE_TEST_MOTO_BIN", crate::infra::moto::moto_server()?)
        .env("SLUICE_BIN", &sluice_bin)
        .env("SLUICE_CHROMIUM", &browser.chromium)
        .env("SLUICE_PLAYWRIGHT_DIR", &browser.playwright_dir)
        .env(
            "SLUICE_SCREENSHOT_DIR",
            target.join("dashboard-screenshots"),
        )
        .env("RUST_BACKTRACE", "1");
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run the tests: {e}"))?;
    group.store(child.id(), Ordering::SeqCst);
    let status = child.wait().map_err(|e| e.to_string())?;
    // Whatever a test left behind (a server it spawned, a crashed test's
    // children) is in the tests' process group: end it.
    let pgid = group.swap(0, Ordering::SeqCst);
    kill_group(pgid, "-KILL");

    drop(moto);
    if let Some(pg) = pg.as_mut() {
        pg.stop();
    }
    // nextest does not run doctests (`cargo test` above does): the whole
    // suite runs them here, since the examples are what an embedder of
    // sluice-domain reads first. A run narrowed by arguments skips them.
    let doctests_pass = !nextest || !extra.is_empty() || run_doctests()?;
    Ok(if status.success() && doctests_pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
