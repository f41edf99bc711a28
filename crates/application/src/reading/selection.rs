//! Which listed files a run reads: the listing minus the file ledger.
//!
//! The listing is checked against the ledger as it arrives, in chunks of
//! [`LEDGER_LOOKUP_CHUNK`] keys (one set-based lookup each), so memory stays
//! bounded by the chunk and the files the run will read, never the ledger
//! nor the listing.

use std::collections::{HashMap, HashSet};

use sluice_domain::ids::PipelineId;
use sluice_domain::ledger::{
    FileSelection, FileVerdict, FileVersion, KnownFile, changed_file_message, no_new_files_message,
};
use sluice_domain::pipeline::PipelineSpec;

use futures::StreamExt;

use super::FileListing;
use crate::ports::{LEDGER_LOOKUP_CHUNK, LedgerStore, SourceFile, StoreError};

/// Files named one by one in a run's log, per reason; the rest are counted.
const NAMED_PER_REASON: usize = 20;

/// What a run reads and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenFiles {
    /// The files to read, re-indexed in lexical key order.
    pub files: Vec<SourceFile>,
    /// How many files the listing held.
    pub listed: u64,
    /// Listed files left out because the ledger holds them unchanged.
    pub already_loaded: u64,
    /// Log lines: changed, forgotten and reloaded files, or "No new files".
    pub log: Vec<String>,
}

/// Why no files could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChooseError {
    /// A page of the listing could not be had: the message a run logs.
    #[error("{0}")]
    Listing(String),
    /// The ledger could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Log lines of one reason, at most [`NAMED_PER_REASON`] named.
#[derive(Default)]
struct Named {
    lines: Vec<String>,
    more: u64,
}

impl Named {
    fn push(&mut self, line: String) {
        if self.lines.len() < NAMED_PER_REASON {
            self.lines.push(line);
        } else {
            self.more += 1;
        }
    }

    fn finish(self, what: &str, out: &mut Vec<String>) {
        out.extend(self.lines);
        if self.more > 0 {
            out.push(format!("… and {} more {what}", self.more));
        }
    }
}

/// The log lines of a selection, grouped by reason.
#[derive(Default)]
struct Reasons {
    changed: Named,
    forgotten: Named,
    reloaded: Named,
}

/// Chooses among `listed` (a run's listing as it arrives, in any order)
/// the files a run of `spec` reads: with `source.files: new` those the
/// ledger of `pipeline` does not hold with the same version, plus the
/// `reload` keys; with `all`, every file. The listing is checked against the
/// ledger [`LEDGER_LOOKUP_CHUNK`] files at a time, so what this holds is a
/// chunk and the chosen files, however long the listing.
///
/// Public so that the ledger benchmark (`cargo xtask bench`, the
/// `ledger_selection` example of `sluice-server`) measures this very code.
pub async fn choose_files(
    ledger: &dyn LedgerStore,
    pipeline: PipelineId,
    spec: &PipelineSpec,
    listed: FileListing,
    reload: &[String],
) -> Result<ChosenFiles, ChooseError> {
    let selection = spec.file_selection();
    let reload: HashSet<&str> = reload.iter().map(String::as_str).collect();
    let mut files = Vec::new();
    let mut listed_count = 0;
    let mut already_loaded = 0;
    let mut reasons = Reasons::default();
    let mut reload_found = HashSet::new();
    let mut chunks = listed.chunks(LEDGER_LOOKUP_CHUNK);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk
            .into_iter()
            .collect::<Result<Vec<SourceFile>, String>>()
            .map_err(ChooseError::Listing)?;
        listed_count += chunk.len() as u64;
        let keys: Vec<String> = chunk.iter().map(|f| f.key.clone()).collect();
        let known: HashMap<String, KnownFile> = ledger
            .known_files(pipeline, &keys)
            .await?
            .into_iter()
            .map(|k| (k.key.clone(), k))
            .collect();
        for file in chunk {
            let asked = reload.contains(file.key.as_str());
            if asked {
                reload_found.insert(file.key.clone());
            }
            let version = FileVersion {
                etag: file.etag.clone(),
                size: file.size,
                last_modified: file.last_modified,
            };
            let verdict = FileVerdict::judge(&version, known.get(&file.key), selection, asked);
            match &verdict {
                FileVerdict::AlreadyLoaded => already_loaded += 1,
                FileVerdict::New => {}
                FileVerdict::Changed { loaded_by } => reasons
                    .changed
                    .push(changed_file_message(*loaded_by, &file.key)),
                FileVerdict::Forgotten(f) => reasons.forgotten.push(format!(
                    "Forgotten from the ledger by {} at {}: {}",
                    f.by, f.at, file.key
                )),
                FileVerdict::Reloaded if asked => reasons
                    .reloaded
                    .push(format!("Reloading on request: {}", file.key)),
                FileVerdict::Reloaded => {}
            }
            if verdict.is_read() {
                files.push(file);
            }
        }
    }
    files.sort_by(|a, b| a.key.cmp(&b.key));
    let mut log = Vec::new();
    reasons.changed.finish("changed files", &mut log);
    reasons.forgotten.finish("forgotten files", &mut log);
    reasons
        .reloaded
        .finish("files reloaded on request", &mut log);
    let mut missing: Vec<&&str> = reload
        .iter()
        .filter(|k| !reload_found.contains(**k))
        .collect();
    missing.sort();
    let mut absent = Named::default();
    for key in missing {
        absent.push(format!(
            "Reload requested for {key}, but no listed file of the source has that key"
        ));
    }
    absent.finish("requested keys not found", &mut log);
    if selection == FileSelection::All {
        log.push(format!(
            "Reading all {} listed files (files: all)",
            files.len()
        ));
    } else if files.is_empty() {
        log.push(no_new_files_message(already_loaded));
    } else {
        log.push(format!(
            "{} files to read ({already_loaded} already loaded)",
            files.len()
        ));
    }
    for (i, f) in files.iter_mut().enumerate() {
        f.index = u32::try_from(i).unwrap_or(u32::MAX);
    }
    Ok(ChosenFiles {
        files,
        listed: listed_count,
        already_loaded,
        log,
    })
}
