//! Extraction: list the source, count its rows with the real decoder, cut the
//! row space into partitions, prepare the destination.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;

use sluice_domain::pipeline::{PipelineSpec, SchemaDrift};
use sluice_domain::run::{LogEntry, LogStage, RowIndex, SourcePosition, storable_text};
use sluice_domain::schema::Column;

use super::Engine;
use super::lease::{Claimed, LeaseKeeper};
use crate::AppError;
use crate::ports::{
    CommitError, ExtractionClaim, ExtractionResult, LoadTarget, ObjectSource, SourceFile,
};
use crate::reading::{
    ChooseError, ChosenFiles, ConnectorSource, DRIFT_FAILURE_PREFIX, FileListing, HeaderCheck,
    HeaderDrift, OpenError, ReadItem, RecordReader, check_header, choose_files, listed_files,
    no_files_message, open_connector,
};

/// Entries kept by the row index while counting: bounds its memory while
/// still cutting partitions within 1/32768 of the ideal size.
const ROW_INDEX_CAPACITY: usize = 32_768;

/// What the headers of a run's files say.
#[derive(Default)]
struct CheckedHeaders {
    /// Log entries (stage `drift`).
    log: Vec<LogEntry>,
    /// Header fields no schema column reads, across the files.
    added: Vec<String>,
}

/// Why an extraction stopped: the run must fail with this message.
struct ExtractFailure(String);

impl From<AppError> for ExtractFailure {
    fn from(e: AppError) -> Self {
        Self(e.to_string())
    }
}

impl Engine {
    /// Extracts a claimed run and moves it to `running`, or fails it with a
    /// log entry saying why.
    pub(crate) async fn extract(&self, claim: ExtractionClaim) -> Result<(), AppError> {
        let extraction = Extraction::start(self, claim);
        match extraction.result().await {
            Ok(result) => extraction.complete(result.as_ref()).await,
            Err(ExtractFailure(message)) => extraction.fail(message).await,
        }
    }
}

/// A pending run being extracted: the claim and the keeper renewing its
/// lease while the source is listed and counted.
struct Extraction<'a> {
    engine: &'a Engine,
    claim: ExtractionClaim,
    keeper: LeaseKeeper,
}

impl<'a> Extraction<'a> {
    fn start(engine: &'a Engine, claim: ExtractionClaim) -> Self {
        let keeper = LeaseKeeper::start(
            engine.ports.queue.clone(),
            engine.ports.clock.clone(),
            Claimed::Extraction(Box::new(claim.clone())),
            engine.tunables.lease_ms,
        );
        Self {
            engine,
            claim,
            keeper,
        }
    }

    /// Stores what extraction found and moves the run to `running`.
    async fn complete(&self, result: Option<&ExtractionResult>) -> Result<(), AppError> {
        let now = self.engine.ports.clock.now();
        match self
            .engine
            .ports
            .queue
            .complete_extraction(&self.claim, result, now)
            .await
        {
            Ok(()) => {
                self.engine.wake.work_created();
                Ok(())
            }
            // Another worker took over after our lease expired: its result wins.
            Err(CommitError::Fenced(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Fails the run with `message`, unless the lease was lost (then the run
    /// is another worker's to extract).
    async fn fail(&self, message: String) -> Result<(), AppError> {
        if self.keeper.is_lost() {
            return Ok(());
        }
        let stage = if message.starts_with(DRIFT_FAILURE_PREFIX) {
            LogStage::Drift
        } else {
            LogStage::Extract
        };
        let entry = LogEntry {
            stage,
            ..self.log(message)
        };
        tracing::warn!(run = %self.claim.run.id, reason = %entry.message, "run failed during extraction");
        self.engine
            .ports
            .queue
            .fail_run(self.claim.run.id, &entry, entry.timestamp)
            .await?;
        Ok(())
    }

    /// A log entry of stage `extract`, now.
    fn log(&self, message: String) -> LogEntry {
        LogEntry {
            stage: LogStage::Extract,
            message,
            timestamp: self.engine.ports.clock.now(),
        }
    }

    /// What extraction finds: for a resumable retry nothing (the original
    /// run's files and partitions are kept, once checked unchanged), else
    /// the files, their rows and the partitions.
    async fn result(&self) -> Result<Option<ExtractionResult>, ExtractFailure> {
        let spec = &self.claim.spec;
        let source = self.open_source().await?;
        if self.claim.resume {
            let target = LoadTarget::new(self.claim.run.id, spec, vec![self.claim.run.id]);
            let files = self
                .engine
                .ports
                .queue
                .run_files(self.claim.run.id)
                .await
                .map_err(AppError::from)?;
            check_unchanged(&*source.source, &files).await?;
            self.prepare(&target).await?;
            return Ok(None);
        }
        let listed = listed_files(&source, spec).await.map_err(ExtractFailure)?;
        let chosen = self.files_to_read(listed).await?;
        if chosen.listed == 0 {
            return Err(ExtractFailure(no_files_message(spec)));
        }
        let mut log: Vec<LogEntry> = chosen.log.into_iter().map(|m| self.log(m)).collect();
        let mut files = chosen.files;
        if files.is_empty() {
            // Nothing to read: the run completes at once, and a `replace`
            // leaves the table as it is (no shadow table is made).
            return Ok(Some(ExtractionResult {
                files,
                partitions: Vec::new(),
                total_rows: 0,
                log,
                spec: None,
            }));
        }
        let (total, index) = self.count_rows(&source.source, &mut files).await?;
        log.push(self.log(format!(
            "Read {total} rows from source ({} files)",
            files.len()
        )));
        let headers = self.check_headers(&files)?;
        log.extend(headers.log);
        let evolved = self.evolve(&headers.added, &mut log).await?;
        let run_spec = evolved.as_ref().unwrap_or(spec);
        let target = LoadTarget::new(self.claim.run.id, run_spec, vec![self.claim.run.id]);
        self.prepare(&target).await?;
        Ok(Some(ExtractionResult {
            partitions: index.cut(total, spec.partitions),
            files,
            total_rows: total,
            log,
            spec: evolved,
        }))
    }

    /// Under `schemaDrift: evolve`, the run's definition with a nullable
    /// `string` column for each of `added` (header fields no column reads,
    /// across the run's files), recorded in the pipeline's definition too so
    /// later runs and retries read them; `None` when nothing changes.
    async fn evolve(
        &self,
        added: &[String],
        log: &mut Vec<LogEntry>,
    ) -> Result<Option<PipelineSpec>, ExtractFailure> {
        let spec = &self.claim.spec;
        if spec.schema_drift != SchemaDrift::Evolve || added.is_empty() {
            return Ok(None);
        }
        let mut evolved = spec.clone();
        let evolution = evolved.schema.evolve(added);
        let drift_entry = |message| LogEntry {
            stage: LogStage::Drift,
            ..self.log(message)
        };
        if !evolution.left_out.is_empty() {
            let names: Vec<String> = evolution
                .left_out
                .iter()
                .map(|h| storable_text(h).chars().take(200).collect())
                .collect();
            log.push(drift_entry(format!(
                "Columns not added to the schema (a name with control characters or over {} \
                 characters, or no room for more columns), not loaded: {}",
                sluice_domain::schema::MAX_SOURCE_CHARS,
                names.join(", ")
            )));
        }
        if evolution.added.is_empty() {
            return Ok(None);
        }
        evolved
            .validate()
            .map_err(|e| ExtractFailure(format!("{DRIFT_FAILURE_PREFIX}the run's files: the schema cannot take their added columns ({e})")))?;
        self.record_evolution(&evolution.added).await?;
        let names: Vec<String> = evolution
            .added
            .iter()
            .map(|c| match &c.source {
                Some(source) => format!("{} (from \"{source}\")", c.name),
                None => c.name.to_string(),
            })
            .collect();
        log.push(drift_entry(format!(
            "Schema evolved (schemaDrift: evolve): added nullable string column{} {} to the \
             pipeline's schema and to table {}",
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            spec.destination.table
        )));
        Ok(Some(evolved))
    }

    /// Adds `columns` to the pipeline's stored schema, except those it has
    /// by now (a retry of this extraction, or an edit since the run began).
    async fn record_evolution(&self, columns: &[Column]) -> Result<(), ExtractFailure> {
        let pipelines = &self.engine.ports.pipelines;
        let mut pipeline = pipelines
            .get_pipeline(self.claim.run.pipeline_id)
            .await
            .map_err(AppError::from)?;
        let before = pipeline.spec.schema.columns.len();
        for column in columns {
            let known = pipeline
                .spec
                .schema
                .columns
                .iter()
                .any(|c| c.name == column.name || c.source_name() == column.source_name());
            if !known {
                pipeline.spec.schema.columns.push(column.clone());
            }
        }
        if pipeline.spec.schema.columns.len() == before {
            return Ok(());
        }
        pipeline.spec.validate().map_err(|e| {
            ExtractFailure(format!(
                "{DRIFT_FAILURE_PREFIX}the run's files: the pipeline's schema cannot take their \
                 added columns ({e})"
            ))
        })?;
        pipeline.updated_at = self.engine.ports.clock.now();
        pipelines
            .update_pipeline(&pipeline)
            .await
            .map_err(AppError::from)?;
        Ok(())
    }

    /// The run's source, or the message the run fails with.
    async fn open_source(&self) -> Result<ConnectorSource, ExtractFailure> {
        let id = self.claim.spec.connector_id;
        open_connector(&self.engine.ports, id, None)
            .await
            .map_err(|e| match e {
                OpenError::Connector(e) => {
                    ExtractFailure(format!("Connector {id} is unavailable: {e}"))
                }
                OpenError::Credentials(e) => AppError::from(e).into(),
                OpenError::Refused { connector, error } => {
                    ExtractFailure(format!("Cannot open connector {connector}: {error}"))
                }
            })
    }

    /// The log entries of headers lacking schema columns or adding others,
    /// and the added header fields (first seen first); a header sharing none
    /// fails the run, and so does any difference under `schemaDrift: fail`
    /// (before anything is loaded).
    fn check_headers(&self, files: &[SourceFile]) -> Result<CheckedHeaders, ExtractFailure> {
        let spec = &self.claim.spec;
        let mut checked = CheckedHeaders::default();
        if !spec.has_header() {
            return Ok(checked);
        }
        let log = &mut checked.log;
        for f in files {
            // An empty (0-byte) file has no header line and no rows: there
            // is nothing to check, and it completes with 0 rows as a
            // header-only file does (the dry run treats it alike).
            let Some(header) = &f.header else { continue };
            let (mapping, check) = check_header(spec, &f.key, header);
            if let HeaderCheck::SharesNothing(message) = check {
                return Err(ExtractFailure(message));
            }
            let drift = HeaderDrift::of(spec, header);
            if spec.schema_drift == SchemaDrift::Fail && !drift.is_empty() {
                return Err(ExtractFailure(drift.failure(&f.key)));
            }
            let drift_entry = |message| LogEntry {
                stage: LogStage::Drift,
                ..self.log(message)
            };
            if let HeaderCheck::Lacks(message) = check {
                log.push(drift_entry(message));
            }
            if let Some(message) = drift.added_entry(&f.key, spec.schema_drift) {
                log.push(drift_entry(message));
            }
            for field in mapping.unmatched_fields() {
                if let Some(name) = header.get(field) {
                    if !checked.added.contains(name) {
                        checked.added.push(name.clone());
                    }
                }
            }
        }
        Ok(checked)
    }

    /// The files a fresh run reads: the listing minus the ledger (see
    /// [`choose_files`]); a retry that starts over reads exactly the files of
    /// its original run, never files that arrived since.
    async fn files_to_read(&self, listed: FileListing) -> Result<ChosenFiles, ExtractFailure> {
        let claim = &self.claim;
        let run = &claim.run;
        let choose = |listed| async {
            choose_files(
                &*self.engine.ports.ledger,
                run.pipeline_id,
                &claim.spec,
                listed,
                &run.metadata.reload,
            )
            .await
            .map_err(|e| match e {
                ChooseError::Listing(message) => ExtractFailure(message),
                ChooseError::Store(e) => AppError::from(e).into(),
            })
        };
        let Some(original) = run.metadata.retry_of else {
            return choose(listed).await;
        };
        let theirs = self
            .engine
            .ports
            .queue
            .run_files(original)
            .await
            .map_err(AppError::from)?;
        if theirs.is_empty() {
            // The original run failed before its extraction completed (a
            // listing error, a header that did not fit): it read no file,
            // so its retry chooses them as a fresh run would.
            return choose(listed).await;
        }
        let wanted: HashMap<&str, usize> = theirs
            .iter()
            .enumerate()
            .map(|(i, f)| (f.key.as_str(), i))
            .collect();
        let mut found: Vec<Option<SourceFile>> = vec![None; theirs.len()];
        let mut listed_count = 0;
        let mut listed = listed;
        while let Some(now) = listed.next().await {
            let now = now.map_err(ExtractFailure)?;
            listed_count += 1;
            if let Some(&i) = wanted.get(now.key.as_str()) {
                found[i] = Some(SourceFile {
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    ..now
                });
            }
        }
        if listed_count == 0 {
            return Err(ExtractFailure(no_files_message(&claim.spec)));
        }
        let mut files = Vec::with_capacity(theirs.len());
        for (old, now) in theirs.iter().zip(found) {
            let Some(now) = now else {
                return Err(ExtractFailure(format!(
                    "Source file {} disappeared since the original run; start a new run instead",
                    old.key
                )));
            };
            files.push(now);
        }
        Ok(ChosenFiles {
            log: vec![format!(
                "Reading the {} files of the original run {original}",
                files.len()
            )],
            files,
            listed: listed_count,
            already_loaded: 0,
        })
    }

    async fn prepare(&self, target: &LoadTarget) -> Result<(), ExtractFailure> {
        self.engine
            .ports
            .loader
            .prepare_destination(target)
            .await
            .map_err(|e| {
                ExtractFailure(format!(
                    "Destination table {} cannot be used: {e}",
                    target.table
                ))
            })
    }

    /// Counts every file's rows with the real decoder, remembering headers and
    /// a sparse index of record positions. Files are counted concurrently
    /// (each in its own task, so the cores share the work): this pass runs
    /// before any partition can load, so its length is pure latency.
    async fn count_rows(
        &self,
        source: &Arc<dyn ObjectSource>,
        files: &mut [SourceFile],
    ) -> Result<(u64, RowIndex), ExtractFailure> {
        let spec = &self.claim.spec;
        let parallel = std::thread::available_parallelism()
            .map_or(2, std::num::NonZeroUsize::get)
            .max(1);
        // Each file keeps a share of the index, so its memory stays bounded.
        let per_file = (ROW_INDEX_CAPACITY / files.len().max(1)).max(64);
        let counts: Vec<Result<FileCount, ExtractFailure>> =
            futures::stream::iter(files.iter().cloned())
                .map(|file| {
                    let source = source.clone();
                    let format = spec.record_format();
                    let header = spec.has_header();
                    let task =
                        tokio::spawn(count_file(source, file.clone(), format, header, per_file));
                    async move {
                        task.await.unwrap_or_else(|e| {
                            Err(ExtractFailure(format!("Cannot read {}: {e}", file.key)))
                        })
                    }
                })
                .buffered(parallel)
                .collect()
                .await;
        if self.keeper.is_lost() {
            return Err(ExtractFailure("extraction lease lost".into()));
        }
        let mut index = RowIndex::new(ROW_INDEX_CAPACITY);
        let mut next = 1u64;
        for (file, count) in files.iter_mut().zip(counts) {
            let count = count?;
            file.header = count.header;
            file.first_row = next;
            file.row_count = count.rows;
            for (local_row, offset) in count.positions {
                index.push_sampled(
                    next + local_row - 1,
                    SourcePosition {
                        file_index: file.index,
                        byte_offset: offset,
                    },
                );
            }
            next += count.rows;
        }
        Ok((next - 1, index))
    }
}

/// What counting one file found.
struct FileCount {
    header: Option<Vec<String>>,
    rows: u64,
    /// Sampled `(row within the file, byte offset)` of record starts.
    positions: Vec<(u64, u64)>,
}

async fn count_file(
    source: Arc<dyn ObjectSource>,
    file: SourceFile,
    format: sluice_domain::format::RecordFormat,
    header: bool,
    capacity: usize,
) -> Result<FileCount, ExtractFailure> {
    let key = file.key.clone();
    let one: Arc<[SourceFile]> = vec![SourceFile { index: 0, ..file }].into();
    let mut reader = RecordReader::new(source, one, format, header, SourcePosition::default(), 1);
    let mut index = RowIndex::new(capacity);
    let mut found = FileCount {
        header: None,
        rows: 0,
        positions: Vec::new(),
    };
    loop {
        match reader
            .advance()
            .await
            .map_err(|e| ExtractFailure(format!("Cannot read {key}: {e}")))?
        {
            ReadItem::End => break,
            ReadItem::Header { .. } => found.header = Some(reader.header_fields()),
            ReadItem::Record(meta) => {
                found.rows += 1;
                index.observe(
                    meta.row,
                    SourcePosition {
                        file_index: 0,
                        byte_offset: meta.start,
                    },
                );
            }
        }
    }
    found.positions = index
        .entries()
        .iter()
        .map(|(row, pos)| (*row, pos.byte_offset))
        .collect();
    Ok(found)
}

/// A resumable retry reads the same files at the same offsets: refuse to go on
/// if any of them changed since the original run.
async fn check_unchanged(
    source: &dyn ObjectSource,
    files: &[SourceFile],
) -> Result<(), ExtractFailure> {
    for f in files {
        let now = source
            .head(&f.key)
            .await
            .map_err(|e| ExtractFailure(format!("Cannot read {}: {e}", f.key)))?
            .ok_or_else(|| {
                ExtractFailure(format!(
                    "Source file {} disappeared since the original run; start a new run instead",
                    f.key
                ))
            })?;
        let changed = match (&f.etag, &now.etag) {
            (Some(a), Some(b)) => a != b,
            _ => now.size != f.size,
        };
        if changed {
            return Err(ExtractFailure(format!(
                "Source file {} changed since the original run; a resumable retry needs the same files, start a new run instead",
                f.key
            )));
        }
    }
    Ok(())
}
