//! The ledger part: how long choosing a run's files takes, and how much
//! memory it needs, when the pipeline's file ledger holds `--ledger-files`
//! files and the source lists those plus [`NEW_FILES`] new ones (issue 13).
//!
//! The pipeline is created through the API of a `sluice serve` (which also
//! migrates the fresh database), the ledger is seeded by one SQL statement,
//! and the `ledger_selection` example of `sluice-server` (built here, in
//! release mode) runs the application's file selection over the PostgreSQL
//! ledger store in a process of its own, once per repetition, reporting its
//! own times and `VmHWM`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use super::server::Sluice;
use super::{BUCKET, Bench, baseline, schema};
use crate::infra::{Res, cargo, root};

/// New files the listing holds beyond the ledger's.
pub const NEW_FILES: u64 = 10;

/// A run id the seeded entries name (no such run exists; nothing checks).
const SEED_RUN_ID: &str = "run_01KB0000000000000000000000";

/// What the ledger part measured.
#[derive(Debug, Clone)]
pub struct LedgerResults {
    /// Files in the ledger.
    pub known: u64,
    /// Files listed that the ledger does not hold.
    pub new: u64,
    /// Seconds the seeding statement took.
    pub seed_seconds: f64,
    /// The example's output, one per repetition.
    pub samples: Vec<Value>,
}

/// Builds the example; returns its path.
fn build_example() -> Res<PathBuf> {
    let status = Command::new(cargo())
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "sluice-server",
            "--example",
            "ledger_selection",
        ])
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run cargo build: {e}"))?;
    if !status.success() {
        return Err("building the ledger_selection example failed".into());
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    Ok(target
        .join("release")
        .join("examples")
        .join("ledger_selection"))
}

/// The statement that gives the ledger of `pipeline` `known` files with the
/// keys, ETags and sizes the example lists them with.
fn seed_sql(pipeline: &str, known: u64) -> String {
    format!(
        "INSERT INTO sluice.file_ledger \
           (pipeline_id, key, etag, size, last_modified, total_rows, loaded, skipped, failed, run_id, loaded_at) \
         SELECT '{pipeline}', 'ledger/file-' || lpad(i::text, 10, '0') || '.csv', \
                '\"' || lpad(to_hex(i), 32, '0') || '\"', 1000 + i, \
                to_timestamp(1767225600), 100, 100, 0, 0, '{SEED_RUN_ID}', now() \
         FROM generate_series(1::bigint, {known}::bigint) AS i"
    )
}

impl Bench {
    /// The ledger part, with `known` files in the ledger.
    pub(super) fn ledger(&mut self, known: u64) -> Res<LedgerResults> {
        eprintln!(
            "bench: ledger: cargo build --release -p sluice-server --example ledger_selection"
        );
        let example = build_example()?;
        let db = self.next_db("ledger");
        baseline::fresh_database(&self.pg, &db)?;
        let url = self.pg.url(&db);
        let pipeline = {
            let log = self.out.join("logs").join(format!("{db}.log"));
            let server = Sluice::start(&self.bin, &url, 0, log)?;
            let mut api = server.api();
            let connector = api.s3_connector(BUCKET, &self.moto.endpoint())?;
            api.pipeline(&json!({
                "name": "bench ledger",
                "connectorId": connector,
                "source": {"prefix": "ledger/", "pattern": "*.csv", "csv": {"header": true}},
                "schema": schema(),
                "destination": {"table": "customers", "keyColumns": []},
                "loadStrategy": "append",
                "partitions": 1,
            }))?
        };
        let started = Instant::now();
        baseline::sql(&self.pg, &db, &seed_sql(&pipeline, known))?;
        baseline::sql(&self.pg, &db, "VACUUM ANALYZE sluice.file_ledger")?;
        let seed_seconds = started.elapsed().as_secs_f64();
        let held = baseline::count(&self.pg, &db, "SELECT count(*) FROM sluice.file_ledger")?;
        if held != known {
            return Err(format!("the seeded ledger holds {held} files, not {known}"));
        }
        eprintln!("bench: ledger: seeded {known} files in {seed_seconds:.1} s");
        let mut samples = Vec::new();
        for rep in 1..=self.opts.reps {
            super::check_interrupt(&self.interrupted)?;
            let out = Command::new(&example)
                .args([
                    pipeline.as_str(),
                    &known.to_string(),
                    &NEW_FILES.to_string(),
                ])
                .env("DATABASE_URL", &url)
                .output()
                .map_err(|e| format!("cannot run {}: {e}", example.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "ledger_selection failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            let sample: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
                format!(
                    "ledger_selection printed no JSON ({e}): {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            })?;
            eprintln!(
                "bench: rep {rep}/{} ledger {known} + {NEW_FILES} files: select {:.2} s, peak {:.1} MiB",
                self.opts.reps,
                sample["selectSeconds"].as_f64().unwrap_or(f64::NAN),
                sample["peakMiB"].as_f64().unwrap_or(f64::NAN),
            );
            samples.push(sample);
        }
        baseline::drop_database(&self.pg, &db)?;
        Ok(LedgerResults {
            known,
            new: NEW_FILES,
            seed_seconds,
            samples,
        })
    }
}
