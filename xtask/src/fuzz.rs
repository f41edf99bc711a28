//! `cargo xtask fuzz`: the coverage-guided fuzz targets of `fuzz/` (the
//! record decoders and row validation), with cargo-fuzz and libFuzzer.
//!
//! Each target runs for `--seconds` (default 60) from its committed corpus
//! (`fuzz/corpus/<target>`, only read) plus a working corpus under
//! `target/fuzz/corpus/<target>` that keeps what the run found.
//! `--update-corpus` merges that into the committed corpus afterwards,
//! keeping only inputs that add coverage (`cargo fuzz cmin`). The report
//! gives, per target, the executions, their rate, the coverage reached and
//! any crash, whose input libFuzzer leaves in `fuzz/artifacts/<target>/`.
//!
//! cargo-fuzz is installed when missing. It needs a nightly compiler: the
//! `nightly` toolchain when rustup has one, else the installed one with
//! `RUSTC_BOOTSTRAP=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use crate::infra::{Res, cargo, root, run_quiet};

const TARGETS: [&str; 3] = ["csv_decoder", "jsonl_decoder", "row_validation"];

const HELP: &str = "usage: cargo xtask fuzz [--seconds N] [--update-corpus] [TARGET ...]\n\n\
    Runs each fuzz target of fuzz/ (default: all of csv_decoder, jsonl_decoder,\n\
    row_validation) for N seconds (default 60) and reports executions,\n\
    coverage and crashes. --update-corpus merges what the run found into\n\
    fuzz/corpus/<target>, minimised.";

struct Options {
    seconds: u64,
    update_corpus: bool,
    targets: Vec<String>,
}

fn parse(args: &[String]) -> Res<Option<Options>> {
    let mut options = Options {
        seconds: 60,
        update_corpus: false,
        targets: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--seconds" => {
                let value = args.next().ok_or("--seconds needs a number")?;
                options.seconds = value
                    .parse()
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or_else(|| format!("--seconds: `{value}` is not a positive number"))?;
            }
            "--update-corpus" => options.update_corpus = true,
            target if TARGETS.contains(&target) => options.targets.push(target.to_owned()),
            other => {
                return Err(format!(
                    "unknown argument `{other}` (targets: {})",
                    TARGETS.join(", ")
                ));
            }
        }
    }
    if options.targets.is_empty() {
        options.targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    Ok(Some(options))
}

/// `cargo fuzz` with a compiler that accepts its nightly flags.
fn cargo_fuzz() -> Res<Command> {
    let installed = Command::new(cargo())
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        eprintln!("xtask: installing cargo-fuzz ...");
        run_quiet(
            Command::new(cargo()).args(["install", "--locked", "cargo-fuzz"]),
            "cargo install cargo-fuzz",
        )?;
    }
    let nightly = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.starts_with("nightly"))
        });
    let mut command = if nightly {
        // The rustup proxy, which takes a toolchain argument (the `cargo`
        // that runs xtask may be a toolchain's own binary, which does not).
        let mut c = Command::new("cargo");
        c.arg("+nightly")
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("RUSTC");
        c
    } else {
        let mut c = Command::new(cargo());
        c.env("RUSTC_BOOTSTRAP", "1");
        c
    };
    command.arg("fuzz");
    Ok(command)
}

/// What one target's run printed at its end.
#[derive(Default)]
struct Outcome {
    runs: Option<u64>,
    coverage: Option<u64>,
    corpus: Option<String>,
    crashed: bool,
    artifacts: Vec<PathBuf>,
    seconds: f64,
}

fn fuzz_dir() -> PathBuf {
    root().join("fuzz")
}

fn work_dir() -> PathBuf {
    root().join("target").join("fuzz")
}

fn artifacts(target: &str) -> Vec<PathBuf> {
    std::fs::read_dir(fuzz_dir().join("artifacts").join(target))
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// The number after `key` in a libFuzzer status line (`cov: 545`).
fn after(line: &str, key: &str) -> Option<String> {
    let rest = line.split(key).nth(1)?;
    rest.split_whitespace().next().map(str::to_owned)
}

fn run_target(target: &str, seconds: u64) -> Res<Outcome> {
    let corpus = work_dir().join("corpus").join(target);
    std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let seeds = fuzz_dir().join("corpus").join(target);
    let before = artifacts(target);
    let started = Instant::now();
    let output = cargo_fuzz()?
        .current_dir(fuzz_dir())
        .args(["run", "--fuzz-dir", "."])
        .arg("--target-dir")
        .arg(work_dir())
        .arg(target)
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cargo fuzz: {e}"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    let mut outcome = Outcome {
        seconds: started.elapsed().as_secs_f64(),
        crashed: !output.status.success(),
        ..Outcome::default()
    };
    for line in log.lines() {
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            outcome.runs = n.trim().parse().ok();
        }
        if line.contains(" cov: ") {
            outcome.coverage = after(line, " cov: ").and_then(|n| n.parse().ok());
            outcome.corpus = after(line, " corp: ");
        }
    }
    outcome.artifacts = artifacts(target)
        .into_iter()
        .filter(|a| !before.contains(a))
        .collect();
    if outcome.crashed {
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    Ok(outcome)
}

/// Merges the working corpus into the committed one, keeping only inputs
/// that add coverage.
fn update_corpus(target: &str) -> Res<()> {
    let seeds = fuzz_dir().join("corpus").join(target);
    let merged = work_dir().join("merged").join(target);
    let _ = std::fs::remove_dir_all(&merged);
    std::fs::create_dir_all(&merged).map_err(|e| format!("{}: {e}", merged.display()))?;
    let status = cargo_fuzz()?
        .current_dir(fuzz_dir())
        .args(["run", "--fuzz-dir", "."])
        .arg("--target-dir")
        .arg(work_dir())
        .arg(target)
        .arg(&merged)
        .arg(&seeds)
        .arg(work_dir().join("corpus").join(target))
        .args(["--", "-merge=1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cargo fuzz: {e}"))?;
    if !status.success() {
        return Err(format!("merging the corpus of {target} failed"));
    }
    replace_dir(&merged, &seeds)
}

fn replace_dir(from: &Path, to: &Path) -> Res<()> {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, to.join(name)).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

pub fn run(args: &[String]) -> Res<ExitCode> {
    let Some(options) = parse(args)? else {
        eprintln!("{HELP}");
        return Ok(ExitCode::SUCCESS);
    };
    let mut rows = Vec::new();
    let mut failed = false;
    for target in &options.targets {
        eprintln!("xtask: fuzzing {target} for {} s ...", options.seconds);
        let outcome = run_target(target, options.seconds)?;
        failed |= outcome.crashed;
        if options.update_corpus && !outcome.crashed {
            update_corpus(target)?;
        }
        rows.push((target.clone(), outcome));
    }
    println!("\n| target | seconds | executions | exec/s | coverage | corpus | crashes |");
    println!("|---|---:|---:|---:|---:|---|---|");
    for (target, o) in &rows {
        let runs = o.runs.map_or("?".into(), |n| n.to_string());
        let rate = o.runs.map_or("?".into(), |n| {
            format!("{:.0}", n as f64 / o.seconds.max(1.0))
        });
        let crashes = if o.crashed {
            format!(
                "yes: {}",
                o.artifacts
                    .iter()
                    .map(|a| a.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            "none".into()
        };
        println!(
            "| {target} | {:.0} | {runs} | {rate} | {} | {} | {crashes} |",
            o.seconds,
            o.coverage.map_or("?".into(), |c| c.to_string()),
            o.corpus.as_deref().unwrap_or("?"),
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
