//! A dry run: the first rows of a pipeline's source, read and validated
//! exactly as a run would read them, with nothing written anywhere.

use std::sync::Arc;
use std::time::Duration;

use sluice_domain::ids::PipelineId;
use sluice_domain::role::Action;
use sluice_domain::run::SourcePosition;
use sluice_domain::validation::{CompiledSchema, FieldMapping, RowError, ValidBatch};

use super::{App, Principal};
use crate::AppError;
use crate::ports::SourceFile;
use crate::reading::{
    HeaderCheck, ReadItem, RecordReader, check_header, list_source_files, mappings,
    schema_with_required_keys,
};

/// Rows a dry run reads when the caller does not say.
pub const DEFAULT_DRY_RUN_ROWS: u64 = 1_000;
/// Most rows one dry run reads.
pub const MAX_DRY_RUN_ROWS: u64 = 100_000;
/// Most errors a dry run returns (the count covers them all).
pub const DRY_RUN_ERRORS: usize = 100;

/// What a run would make of the first rows of the source.
#[derive(Debug, Clone, PartialEq)]
pub struct DryRunReport {
    /// Files the source pattern matches (the touch file excluded).
    pub files_matched: u64,
    /// Files the dry run opened, in the order a run reads them.
    pub files_read: u64,
    /// Rows read and validated.
    pub rows_checked: u64,
    /// Rows that would be loaded (or merged).
    pub valid_rows: u64,
    /// Rows that would be rejected.
    pub failed_rows: u64,
    /// The first [`DRY_RUN_ERRORS`] errors, in row order, with the row
    /// numbers a run would give them.
    pub errors: Vec<RowError>,
    /// Header problems a run would log (or fail on).
    pub warnings: Vec<String>,
    /// True when these were all the source's rows.
    pub complete: bool,
}

impl App {
    /// Reads and validates the first `rows` rows (default
    /// [`DEFAULT_DRY_RUN_ROWS`], at most [`MAX_DRY_RUN_ROWS`]) of a
    /// pipeline's source with its current schema (admin, editor): nothing is
    /// loaded, no run is created. Source problems are `Unprocessable` with
    /// the message a run would log.
    pub async fn dry_run(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
        rows: Option<u64>,
    ) -> Result<DryRunReport, AppError> {
        who.require(Action::StartRun)?;
        let limit = rows.unwrap_or(DEFAULT_DRY_RUN_ROWS);
        if !(1..=MAX_DRY_RUN_ROWS).contains(&limit) {
            return Err(AppError::invalid(
                "rows",
                format!("must be an integer from 1 to {MAX_DRY_RUN_ROWS}"),
            ));
        }
        let spec = self.ports().pipelines.get_pipeline(pipeline_id).await?.spec;
        let (name, source) = self.connector_source(spec.connector_id).await?;
        let source = source
            .map_err(|e| AppError::Unprocessable(format!("Cannot open connector {name}: {e}")))?;
        let timeout = Duration::from_millis(self.settings().source_timeout_ms);
        let files: Arc<[SourceFile]> = list_source_files(&*source, &spec, Some(timeout))
            .await
            .map_err(AppError::Unprocessable)?
            .into();
        let schema = CompiledSchema::new(&schema_with_required_keys(&spec))?;
        // Positional (or by name for JSON lines) until a header says otherwise.
        let mut per_file = mappings(&spec, &files);
        let fallback = FieldMapping::positional(&spec.schema);
        let mut reader = RecordReader::new(
            source,
            files.clone(),
            spec.record_format(),
            spec.has_header(),
            SourcePosition {
                file_index: 0,
                byte_offset: 0,
            },
            1,
        );
        let mut report = DryRunReport {
            files_matched: files.len() as u64,
            files_read: 0,
            rows_checked: 0,
            valid_rows: 0,
            failed_rows: 0,
            errors: Vec::new(),
            warnings: Vec::new(),
            complete: false,
        };
        let mut batch = ValidBatch::new(spec.schema.columns.len());
        let mut row_errors = Vec::new();
        while report.rows_checked < limit {
            let item = reader.advance().await.map_err(|e| {
                let key = files
                    .get(reader.file_index())
                    .map_or("?", |f| f.key.as_str());
                AppError::Unprocessable(format!("Cannot read {key}: {e}"))
            })?;
            match item {
                ReadItem::Header { file_index } => {
                    let header = reader.header_fields();
                    let key = files
                        .get(file_index as usize)
                        .map_or("?", |f| f.key.as_str());
                    let (mapping, check) = check_header(&spec, key, &header);
                    match check {
                        HeaderCheck::Fits => {}
                        HeaderCheck::Lacks(message) => report.warnings.push(message),
                        HeaderCheck::SharesNothing(message) => {
                            report.warnings.push(format!("{message}: a run would fail"))
                        }
                    }
                    if let Some(slot) = per_file.get_mut(file_index as usize) {
                        *slot = mapping;
                    }
                }
                ReadItem::Record(meta) => {
                    let mapping = per_file.get(meta.file_index as usize).unwrap_or(&fallback);
                    let ok = schema.check_record(
                        meta.row,
                        reader.record(),
                        mapping,
                        &mut batch,
                        &mut row_errors,
                    );
                    batch.clear();
                    let room = DRY_RUN_ERRORS.saturating_sub(report.errors.len());
                    // Draining empties the vector whatever `take` leaves.
                    report.errors.extend(row_errors.drain(..).take(room));
                    report.rows_checked += 1;
                    if report.rows_checked % 1024 == 0 {
                        // Decoding buffered data never waits: let the API's
                        // other requests run on this thread now and then.
                        tokio::task::yield_now().await;
                    }
                    if ok {
                        report.valid_rows += 1;
                    } else {
                        report.failed_rows += 1;
                    }
                }
                ReadItem::End => {
                    report.complete = true;
                    break;
                }
            }
        }
        report.files_read = (reader.file_index() as u64 + 1).min(report.files_matched);
        // Exactly the rows asked for may be the whole source: look one row on.
        while !report.complete {
            match reader.advance().await {
                Ok(ReadItem::End) => report.complete = true,
                Ok(ReadItem::Header { .. }) => {}
                Ok(ReadItem::Record(_)) | Err(_) => break,
            }
        }
        Ok(report)
    }
}
