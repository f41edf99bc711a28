//! The ledger side of choosing a run's files, at scale: the benchmark part
//! `cargo xtask bench` runs for a pipeline whose file ledger holds many
//! files (issue 13). Not a tool for operators.
//!
//! ```text
//! DATABASE_URL=postgres://… ledger_selection <pipeline id> <known files> <new files>
//! ```
//!
//! The harness creates the pipeline and seeds `sluice.file_ledger` with
//! `<known files>` entries by SQL (keys, ETags and sizes as [`key`],
//! [`etag`] and [`size`] give them). This program hands the application's
//! file selection ([`choose_files`], over the PostgreSQL ledger store) the
//! listing a source would give for those files plus `<new files>` more,
//! page by page as an object store's listing arrives, checks that exactly the new files were chosen, and
//! prints one JSON object with the times and this process's memory
//! (`VmRSS`/`VmHWM` from `/proc/self/status`; null where there is none).

use std::process::ExitCode;
use std::time::Instant;

use futures::StreamExt;
use serde_json::json;
use sluice_application::ports::{PipelineStore, SourceFile};
use sluice_application::reading::choose_files;
use sluice_domain::ids::PipelineId;
use sluice_domain::time::Timestamp;
use sluice_postgres::{PgConfig, PgStore};

/// The listed modification time of every file (2026-01-01T00:00:00Z).
const LAST_MODIFIED_MS: i64 = 1_767_225_600_000;

/// The key of file `i` (1-based): `ledger/file-0000000042.csv`. The
/// harness's SQL writes the same keys.
fn key(i: u64) -> String {
    format!("ledger/file-{i:010}.csv")
}

/// The ETag of file `i`: 32 hex digits in quotes, as S3 gives them.
fn etag(i: u64) -> String {
    format!("\"{i:032x}\"")
}

/// Keys in one page of the generated listing (S3 lists 1,000 a page).
const PAGE: u64 = 1_000;

/// File `i` as a listing gives it.
fn listed_file(i: u64) -> SourceFile {
    SourceFile {
        index: u32::try_from(i - 1).unwrap_or(u32::MAX),
        key: key(i),
        size: size(i),
        etag: Some(etag(i)),
        last_modified: Some(Timestamp(LAST_MODIFIED_MS)),
        gzip: false,
        header: None,
        first_row: 0,
        row_count: 0,
    }
}

/// The size of file `i`.
fn size(i: u64) -> u64 {
    1_000 + i
}

/// A field of `/proc/self/status`, in MiB.
fn status_mib(field: &str) -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib as f64 / 1024.0)
    })
}

fn number(args: &[String], i: usize, what: &str) -> Result<u64, String> {
    args.get(i)
        .ok_or_else(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| format!("{what} must be a whole number"))
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: ledger_selection <pipeline id> <known files> <new files>";
    let pipeline = PipelineId::parse(args.first().ok_or(usage)?).map_err(|e| e.to_string())?;
    let known = number(&args, 1, "<known files>")?;
    let new = number(&args, 2, "<new files>")?;
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_owned())?;
    let config = PgConfig {
        pool_size: 2,
        loader_pool_size: 1,
        ..PgConfig::new(url)
    };
    let store = PgStore::connect(&config).await.map_err(|e| e.to_string())?;
    let spec = store
        .get_pipeline(pipeline)
        .await
        .map_err(|e| e.to_string())?
        .spec;
    let rss_before = status_mib("VmRSS");
    let hwm_before = status_mib("VmHWM");

    // The listing, as `listed_files` hands it over: file by file as an
    // object store's pages arrive (generated here, 1,000 keys a page, so
    // the process never holds more than the page being checked).
    let started = Instant::now();
    let pages = futures::stream::iter((0..(known + new).div_ceil(PAGE)).map(move |page| {
        let first = page * PAGE + 1;
        let last = (first + PAGE - 1).min(known + new);
        (first..=last).map(listed_file).collect::<Vec<_>>()
    }));
    let listed = pages
        .flat_map(|page| futures::stream::iter(page.into_iter().map(Ok)))
        .boxed();
    let chosen = choose_files(&store, pipeline, &spec, listed, &[])
        .await
        .map_err(|e| e.to_string())?;
    let select_seconds = started.elapsed().as_secs_f64();
    let hwm_end = status_mib("VmHWM");

    let want: Vec<String> = (known + 1..=known + new).map(key).collect();
    let got: Vec<&str> = chosen.files.iter().map(|f| f.key.as_str()).collect();
    if got != want.iter().map(String::as_str).collect::<Vec<_>>() || chosen.already_loaded != known
    {
        return Err(format!(
            "chose {} files ({} already loaded), expected the {new} new ones ({known} already loaded): {:?}",
            got.len(),
            chosen.already_loaded,
            got.iter().take(20).collect::<Vec<_>>()
        ));
    }
    let out = json!({
        "knownFiles": known,
        "newFiles": new,
        "chosenFiles": got.len(),
        "alreadyLoaded": chosen.already_loaded,
        "listedFiles": chosen.listed,
        "selectSeconds": select_seconds,
        "rssBeforeMiB": rss_before,
        "peakBeforeMiB": hwm_before,
        "peakMiB": hwm_end,
    });
    println!("{out}");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ledger_selection: {e}");
            ExitCode::FAILURE
        }
    }
}
