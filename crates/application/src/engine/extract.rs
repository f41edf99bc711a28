//! Extraction: list the source, count its rows with the real decoder, cut the
//! row space into partitions, prepare the destination.

use std::sync::Arc;

use futures::StreamExt;

use sluice_domain::run::{LogEntry, LogStage, RowIndex, SourcePosition};

use super::lease::{Claimed, LeaseKeeper};
use crate::AppError;
use crate::ports::{ExtractionClaim, ExtractionResult, LoadTarget, ObjectSource, SourceFile};
use crate::reading::{
    ChosenFiles, HeaderCheck, ReadItem, RecordReader, check_header, choose_files, list_source_files,
};
use crate::usecases::App;

/// Entries kept by the row index while counting: bounds its memory while
/// still cutting partitions within 1/32768 of the ideal size.
const ROW_INDEX_CAPACITY: usize = 32_768;

/// Why an extraction stopped: the run must fail with this message.
pub(crate) struct ExtractFailure(pub String);

impl From<AppError> for ExtractFailure {
    fn from(e: AppError) -> Self {
        Self(e.to_string())
    }
}

impl App {
    /// Extracts a claimed run and moves it to `running`, or fails it with a
    /// log entry saying why.
    pub(crate) async fn extract(&self, claim: ExtractionClaim) -> Result<(), AppError> {
        let keeper = LeaseKeeper::start(
            self.ports().queue.clone(),
            self.ports().clock.clone(),
            Claimed::Extraction(Box::new(claim.clone())),
            self.settings().lease_ms,
        );
        let outcome = self.extract_inner(&claim, &keeper).await;
        match outcome {
            Ok(result) => {
                let now = self.ports().clock.now();
                match self
                    .ports()
                    .queue
                    .complete_extraction(&claim, result.as_ref(), now)
                    .await
                {
                    Ok(()) => {
                        self.work_created();
                        Ok(())
                    }
                    // Another worker took over after our lease expired: its result wins.
                    Err(crate::ports::StoreError::Conflict(_)) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(ExtractFailure(message)) => {
                if keeper.is_lost() {
                    return Ok(());
                }
                let entry = LogEntry {
                    stage: LogStage::Extract,
                    message,
                    timestamp: self.ports().clock.now(),
                };
                tracing::warn!(run = %claim.run.id, reason = %entry.message, "run failed during extraction");
                self.ports()
                    .queue
                    .fail_run(claim.run.id, &entry, entry.timestamp)
                    .await?;
                Ok(())
            }
        }
    }

    async fn extract_inner(
        &self,
        claim: &ExtractionClaim,
        keeper: &LeaseKeeper,
    ) -> Result<Option<ExtractionResult>, ExtractFailure> {
        let spec = &claim.spec;
        let connector = self
            .ports()
            .connectors
            .get_connector(spec.connector_id)
            .await
            .map_err(|e| {
                ExtractFailure(format!(
                    "Connector {} is unavailable: {e}",
                    spec.connector_id
                ))
            })?;
        let credentials = self
            .ports()
            .connectors
            .connector_credentials(spec.connector_id)
            .await
            .map_err(AppError::from)?;
        let source = self
            .ports()
            .sources
            .open(&connector, &credentials)
            .map_err(|e| {
                ExtractFailure(format!("Cannot open connector {}: {e}", connector.name))
            })?;
        let target = LoadTarget {
            run_id: claim.run.id,
            table: spec.destination.table.clone(),
            schema: spec.schema.clone(),
            key_columns: spec.destination.key_columns.clone(),
            strategy: spec.load_strategy,
            lineage: vec![claim.run.id],
        };
        if claim.resume {
            let files = self
                .ports()
                .queue
                .run_files(claim.run.id)
                .await
                .map_err(AppError::from)?;
            check_unchanged(&*source, &files).await?;
            self.prepare(&target).await?;
            return Ok(None);
        }
        let listed = list_source_files(&*source, spec, None)
            .await
            .map_err(ExtractFailure)?;
        let chosen = self.files_to_read(claim, listed).await?;
        let entry = |message: String| LogEntry {
            stage: LogStage::Extract,
            message,
            timestamp: self.ports().clock.now(),
        };
        let mut log: Vec<LogEntry> = chosen.log.into_iter().map(entry).collect();
        let mut files = chosen.files;
        if files.is_empty() {
            // Nothing to read: the run completes at once, and a `replace`
            // leaves the table as it is (no shadow table is made).
            return Ok(Some(ExtractionResult {
                files,
                partitions: Vec::new(),
                total_rows: 0,
                log,
            }));
        }
        let (total, index) = self.count_rows(&source, &mut files, spec, keeper).await?;
        log.push(entry(format!(
            "Read {total} rows from source ({} files)",
            files.len()
        )));
        if spec.has_header() {
            for f in &files {
                let header = f.header.clone().unwrap_or_default();
                match check_header(spec, &f.key, &header).1 {
                    HeaderCheck::Fits => {}
                    HeaderCheck::SharesNothing(message) => return Err(ExtractFailure(message)),
                    HeaderCheck::Lacks(message) => log.push(LogEntry {
                        stage: LogStage::Extract,
                        message,
                        timestamp: self.ports().clock.now(),
                    }),
                }
            }
        }
        self.prepare(&target).await?;
        Ok(Some(ExtractionResult {
            partitions: index.cut(total, spec.partitions),
            files,
            total_rows: total,
            log,
        }))
    }

    /// The files a fresh run reads: the listing minus the ledger (see
    /// [`choose_files`]); a retry that starts over reads exactly the files of
    /// its original run, never files that arrived since.
    async fn files_to_read(
        &self,
        claim: &ExtractionClaim,
        listed: Vec<SourceFile>,
    ) -> Result<ChosenFiles, ExtractFailure> {
        let run = &claim.run;
        let Some(original) = run.metadata.retry_of else {
            return Ok(choose_files(
                &*self.ports().ledger,
                run.pipeline_id,
                &claim.spec,
                listed,
                &run.metadata.reload,
            )
            .await
            .map_err(AppError::from)?);
        };
        let theirs = self
            .ports()
            .queue
            .run_files(original)
            .await
            .map_err(AppError::from)?;
        let mut listed = listed.into_iter().peekable();
        let mut files = Vec::with_capacity(theirs.len());
        for (i, old) in theirs.iter().enumerate() {
            // Both lists are in lexical key order.
            while listed.next_if(|f| f.key < old.key).is_some() {}
            let Some(now) = listed.next_if(|f| f.key == old.key) else {
                return Err(ExtractFailure(format!(
                    "Source file {} disappeared since the original run; start a new run instead",
                    old.key
                )));
            };
            files.push(SourceFile {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                ..now
            });
        }
        Ok(ChosenFiles {
            log: vec![format!(
                "Reading the {} files of the original run {original}",
                files.len()
            )],
            files,
            already_loaded: 0,
        })
    }

    async fn prepare(&self, target: &LoadTarget) -> Result<(), ExtractFailure> {
        self.ports()
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
        spec: &sluice_domain::pipeline::PipelineSpec,
        keeper: &LeaseKeeper,
    ) -> Result<(u64, RowIndex), ExtractFailure> {
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
        if keeper.is_lost() {
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
