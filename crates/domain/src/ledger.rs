//! The file ledger: which files of a pipeline have been loaded, and the rules
//! that decide what a new run reads.
//!
//! Per pipeline the ledger holds every file a run has loaded (key, version,
//! rows), written in the transaction that makes the file's rows final and
//! never expiring. A run reads the files of its prefix and pattern minus the
//! ledger (`source.files: new`) or all of them (`all`); a file whose key is
//! in the ledger with another version has changed and is read again.

use serde::{Deserialize, Serialize};

use crate::ids::RunId;
use crate::pipeline::LoadStrategy;
use crate::run::{Counters, Run};
use crate::status::RunStatus;
use crate::time::Timestamp;

/// Which listed files a run reads (`source.files`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FileSelection {
    /// Files whose key and version are not in the ledger.
    New,
    /// Every listed file.
    All,
}

impl FileSelection {
    /// The default of a strategy: `all` for `replace` (the table becomes what
    /// the files say), `new` for `append` and `upsert`.
    pub fn default_for(strategy: LoadStrategy) -> Self {
        match strategy {
            LoadStrategy::Replace => Self::All,
            LoadStrategy::Append | LoadStrategy::Upsert => Self::New,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::All => "all",
        }
    }
}

/// What identifies one version of a file: its ETag when the store has one,
/// otherwise its size and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVersion {
    /// Entity tag.
    pub etag: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Last modification.
    pub last_modified: Option<Timestamp>,
}

impl FileVersion {
    /// True if `self` and `other` are the same content as far as the store
    /// can tell: equal ETags when both have one, else equal size and
    /// modification time.
    pub fn same_as(&self, other: &FileVersion) -> bool {
        match (&self.etag, &other.etag) {
            (Some(a), Some(b)) => a == b,
            _ => self.size == other.size && self.last_modified == other.last_modified,
        }
    }
}

/// A file the ledger holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// Object key.
    pub key: String,
    /// ETag of the version loaded; null when the store gives none.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub etag: Option<String>,
    /// Size in bytes of the version loaded.
    pub size: u64,
    /// Modification time of the version loaded, when the store gives one.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_modified: Option<Timestamp>,
    /// Rows of the file (header lines excluded).
    pub total_rows: u64,
    /// Rows written to the destination; null for files recorded from runs
    /// that predate the ledger, when the split is not known.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub loaded_rows: Option<u64>,
    /// Valid rows not written (duplicate key, or a newer version won); null
    /// when not known (see `loadedRows`).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub skipped_rows: Option<u64>,
    /// Rows that failed validation.
    pub failed_rows: u64,
    /// The run that loaded it.
    pub run_id: RunId,
    /// When that run finished.
    pub loaded_at: Timestamp,
}

impl LedgerEntry {
    /// The version loaded.
    pub fn version(&self) -> FileVersion {
        FileVersion {
            etag: self.etag.clone(),
            size: self.size,
            last_modified: self.last_modified,
        }
    }
}

/// Who made the ledger forget a file, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forgotten {
    /// The API key that asked.
    pub by: String,
    /// When.
    pub at: Timestamp,
}

/// What the ledger says about a listed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownFile {
    /// Object key.
    pub key: String,
    /// Version loaded.
    pub version: FileVersion,
    /// The run that loaded it.
    pub run_id: RunId,
    /// Set when the entry was forgotten: it then counts as absent.
    pub forgotten: Option<Forgotten>,
}

/// A file of a run, with its rows' outcomes so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RunFile {
    /// Position in the run's file list (lexical key order).
    pub index: u32,
    /// Object key.
    pub key: String,
    /// ETag as listed; null when the store gives none.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub etag: Option<String>,
    /// Size in bytes as listed.
    pub size: u64,
    /// Modification time as listed.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_modified: Option<Timestamp>,
    /// Number of the file's first row in the run.
    pub first_row: u64,
    /// Rows of the file.
    pub total_rows: u64,
    /// Rows written to the destination (null: not known, for runs that predate the ledger).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub loaded_rows: Option<u64>,
    /// Valid rows not written (null: not known).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub skipped_rows: Option<u64>,
    /// Rows that failed validation.
    pub failed_rows: u64,
    /// `pending`, `running`, `completed` (every row has a committed outcome) or
    /// `failed` (the run ended first).
    pub status: RunFileStatus,
}

/// Why a listed file is read (or not) by a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileVerdict {
    /// Not in the ledger: read.
    New,
    /// In the ledger with another version: read again.
    Changed {
        /// The run that loaded the previous version.
        loaded_by: RunId,
    },
    /// In the ledger with this version, but the run asked to read it again
    /// (`{"files": "all"}` or `{"reload": [...]}`).
    Reloaded,
    /// Its entry was forgotten (`DELETE /pipelines/{id}/files`): read again.
    Forgotten(Forgotten),
    /// In the ledger with this version: not read.
    AlreadyLoaded,
}

impl FileVerdict {
    /// Judges a listed file against its ledger entry, for a run reading
    /// `selection` that was asked to `reload` this key.
    pub fn judge(
        listed: &FileVersion,
        known: Option<&KnownFile>,
        selection: FileSelection,
        reload: bool,
    ) -> Self {
        match known {
            None => Self::New,
            Some(KnownFile {
                forgotten: Some(f), ..
            }) => Self::Forgotten(f.clone()),
            Some(k) if !k.version.same_as(listed) => Self::Changed {
                loaded_by: k.run_id,
            },
            Some(_) if reload || selection == FileSelection::All => Self::Reloaded,
            Some(_) => Self::AlreadyLoaded,
        }
    }

    /// True if the run reads the file.
    pub fn is_read(&self) -> bool {
        !matches!(self, Self::AlreadyLoaded)
    }
}

/// The log line of a run that found nothing to read.
pub fn no_new_files_message(already_loaded: u64) -> String {
    format!("No new files ({already_loaded} already loaded)")
}

/// The log line naming a file loaded again because it changed.
pub fn changed_file_message(loaded_by: RunId, key: &str) -> String {
    format!("Changed since {loaded_by}: {key}")
}

/// How far a file of a run got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunFileStatus {
    /// No row committed yet.
    Pending,
    /// Some rows committed, the run still going.
    Running,
    /// Every row has a committed outcome.
    Completed,
    /// The run ended before every row was committed.
    Failed,
}

impl RunFileStatus {
    /// The status of a file of `total_rows` rows of which `counters` are
    /// committed, in a run that is `run`.
    pub fn of(total_rows: u64, counters: &Counters, run: RunStatus) -> Self {
        let processed = counters.processed();
        if processed >= total_rows {
            Self::Completed
        } else if run.is_terminal() {
            Self::Failed
        } else if processed == 0 {
            Self::Pending
        } else {
            Self::Running
        }
    }
}

/// The failed-run rule: a new run (not a retry) of a pipeline whose newest
/// run stopped early after committing rows of `append` or `upsert` would
/// read the files of that run again (they are not in the ledger) and load
/// their committed rows a second time. Such a run is refused unless it forces
/// the reload; the message says what to do. `None` when a new run may start.
pub fn blocked_by_unfinished_run(latest: &Run) -> Option<String> {
    let stopped = matches!(latest.status, RunStatus::Failed | RunStatus::Cancelled);
    if !stopped || !latest.load_strategy.is_resumable() || latest.counters.processed() == 0 {
        return None;
    }
    let fix = if latest.status.allows_retry() {
        format!(
            "retry it (POST …/runs/{}/retry) to finish its files",
            latest.id
        )
    } else {
        "it cannot be retried".to_owned()
    };
    Some(format!(
        "run {} {} after committing {} rows of files that are not in the ledger; {fix}, \
         or start a run with {{\"files\": \"all\"}} or {{\"reload\": [...]}} to read them again",
        latest.id,
        latest.status,
        latest.counters.processed()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PipelineId;
    use crate::run::{RunMetadata, Trigger};

    fn v(etag: Option<&str>, size: u64, at: Option<i64>) -> FileVersion {
        FileVersion {
            etag: etag.map(str::to_owned),
            size,
            last_modified: at.map(Timestamp),
        }
    }

    fn run_id() -> RunId {
        RunId::parse("run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM").expect("id")
    }

    #[test]
    fn versions_compare_by_etag_else_size_and_time() {
        assert!(v(Some("a"), 1, Some(1)).same_as(&v(Some("a"), 2, Some(2))));
        assert!(!v(Some("a"), 1, Some(1)).same_as(&v(Some("b"), 1, Some(1))));
        assert!(v(None, 1, Some(5)).same_as(&v(Some("b"), 1, Some(5))));
        assert!(!v(None, 1, Some(5)).same_as(&v(None, 1, Some(6))));
        assert!(!v(None, 1, None).same_as(&v(None, 2, None)));
    }

    #[test]
    fn verdicts() {
        let known = KnownFile {
            key: "a.csv".into(),
            version: v(Some("e1"), 10, None),
            run_id: run_id(),
            forgotten: None,
        };
        let same = v(Some("e1"), 10, None);
        let other = v(Some("e2"), 10, None);
        use FileSelection::{All, New};
        assert_eq!(
            FileVerdict::judge(&same, None, New, false),
            FileVerdict::New
        );
        assert_eq!(
            FileVerdict::judge(&same, Some(&known), New, false),
            FileVerdict::AlreadyLoaded
        );
        assert_eq!(
            FileVerdict::judge(&other, Some(&known), New, false),
            FileVerdict::Changed {
                loaded_by: run_id()
            }
        );
        assert_eq!(
            FileVerdict::judge(&same, Some(&known), All, false),
            FileVerdict::Reloaded
        );
        assert_eq!(
            FileVerdict::judge(&same, Some(&known), New, true),
            FileVerdict::Reloaded
        );
        assert!(!FileVerdict::AlreadyLoaded.is_read());
        let gone = Forgotten {
            by: "key_1".into(),
            at: Timestamp(5),
        };
        let forgotten = KnownFile {
            forgotten: Some(gone.clone()),
            ..known.clone()
        };
        assert_eq!(
            FileVerdict::judge(&same, Some(&forgotten), New, false),
            FileVerdict::Forgotten(gone)
        );
        assert_eq!(
            changed_file_message(run_id(), "a.csv"),
            "Changed since run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM: a.csv"
        );
        assert_eq!(no_new_files_message(3), "No new files (3 already loaded)");
    }

    #[test]
    fn defaults_by_strategy() {
        assert_eq!(
            FileSelection::default_for(LoadStrategy::Append),
            FileSelection::New
        );
        assert_eq!(
            FileSelection::default_for(LoadStrategy::Upsert),
            FileSelection::New
        );
        assert_eq!(
            FileSelection::default_for(LoadStrategy::Replace),
            FileSelection::All
        );
    }

    #[test]
    fn file_status() {
        let c = |n| Counters {
            loaded: n,
            skipped: 0,
            failed: 0,
        };
        assert_eq!(
            RunFileStatus::of(10, &c(0), RunStatus::Running),
            RunFileStatus::Pending
        );
        assert_eq!(
            RunFileStatus::of(10, &c(4), RunStatus::Running),
            RunFileStatus::Running
        );
        assert_eq!(
            RunFileStatus::of(10, &c(10), RunStatus::Failed),
            RunFileStatus::Completed
        );
        assert_eq!(
            RunFileStatus::of(10, &c(4), RunStatus::Failed),
            RunFileStatus::Failed
        );
        assert_eq!(
            RunFileStatus::of(0, &c(0), RunStatus::Pending),
            RunFileStatus::Completed
        );
    }

    fn run(status: RunStatus, strategy: LoadStrategy, processed: u64) -> Run {
        Run {
            id: run_id(),
            pipeline_id: PipelineId::parse("pipe_01J9Z8Y7X6W5V4T3S2R1Q0P9NM").expect("id"),
            status,
            load_strategy: strategy,
            trigger: Trigger::Api,
            total_rows: Some(100),
            partition_count: 1,
            counters: Counters {
                loaded: processed,
                skipped: 0,
                failed: 0,
            },
            metadata: RunMetadata::default(),
            error: None,
            created_at: Timestamp(0),
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn a_stopped_run_with_committed_rows_blocks_new_runs_of_append_and_upsert() {
        for strategy in [LoadStrategy::Append, LoadStrategy::Upsert] {
            let m =
                blocked_by_unfinished_run(&run(RunStatus::Failed, strategy, 5)).expect("blocked");
            assert!(m.contains("retry it"), "{m}");
            assert!(m.contains("\"files\": \"all\""), "{m}");
            assert!(blocked_by_unfinished_run(&run(RunStatus::Cancelled, strategy, 5)).is_some());
            assert!(blocked_by_unfinished_run(&run(RunStatus::Failed, strategy, 0)).is_none());
            for ok in [
                RunStatus::Completed,
                RunStatus::CompletedWithErrors,
                RunStatus::Running,
            ] {
                assert!(blocked_by_unfinished_run(&run(ok, strategy, 5)).is_none());
            }
        }
        assert!(
            blocked_by_unfinished_run(&run(RunStatus::Failed, LoadStrategy::Replace, 5)).is_none()
        );
    }
}
