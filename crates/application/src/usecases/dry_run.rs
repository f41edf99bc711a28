//! A dry run: the first rows of a pipeline's source, read and validated
//! exactly as a run would read them, with nothing written anywhere.

use std::sync::Arc;
use std::time::Duration;

use sluice_domain::ids::PipelineId;
use sluice_domain::pipeline::{PipelineSpec, SchemaDrift};
use sluice_domain::role::Action;
use sluice_domain::run::SourcePosition;
use sluice_domain::validation::{CompiledSchema, FieldMapping, RowError, ValidBatch};

use super::{Principal, UseCases};
use crate::AppError;
use crate::engine::check_record;
use crate::ports::SourceFile;
use crate::reading::{
    ConnectorSource, HeaderCheck, HeaderDrift, OpenError, ReadItem, RecordMeta, RecordReader,
    check_header, compiled_schema, list_source_files, mappings, open_connector,
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

impl UseCases {
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
        let timeout = Duration::from_millis(self.tunables().source_timeout_ms);
        let source = open_connector(self.ports(), spec.connector_id, Some(timeout))
            .await
            .map_err(|e| match e {
                OpenError::Refused { connector, error } => {
                    AppError::Unprocessable(format!("Cannot open connector {connector}: {error}"))
                }
                other => other.into(),
            })?;
        let files: Arc<[SourceFile]> = list_source_files(&source, &spec)
            .await
            .map_err(AppError::Unprocessable)?
            .into();
        DryRun::new(spec, source, files)?.read(limit).await
    }
}

/// A dry run under way: the reader on the source, the mapping of each file
/// (positional, or by name for JSON lines, until a header says otherwise)
/// and the report so far.
struct DryRun {
    spec: PipelineSpec,
    files: Arc<[SourceFile]>,
    schema: CompiledSchema,
    per_file: Vec<FieldMapping>,
    fallback: FieldMapping,
    reader: RecordReader,
    report: DryRunReport,
}

impl DryRun {
    fn new(
        spec: PipelineSpec,
        source: ConnectorSource,
        files: Arc<[SourceFile]>,
    ) -> Result<Self, AppError> {
        let reader = RecordReader::new(
            source.source,
            files.clone(),
            spec.record_format(),
            spec.has_header(),
            SourcePosition {
                file_index: 0,
                byte_offset: 0,
            },
            1,
        );
        Ok(Self {
            schema: compiled_schema(&spec)?,
            per_file: mappings(&spec, &files),
            fallback: FieldMapping::positional(&spec.schema),
            report: DryRunReport {
                files_matched: files.len() as u64,
                files_read: 0,
                rows_checked: 0,
                valid_rows: 0,
                failed_rows: 0,
                errors: Vec::new(),
                warnings: Vec::new(),
                complete: false,
            },
            reader,
            files,
            spec,
        })
    }

    /// Reads up to `limit` rows, then looks one row on to tell whether they
    /// were all the source's rows.
    async fn read(mut self, limit: u64) -> Result<DryRunReport, AppError> {
        let mut batch = ValidBatch::new(self.spec.schema.columns.len());
        let mut row_errors = Vec::new();
        while self.report.rows_checked < limit {
            let item = self.reader.advance().await.map_err(|e| {
                let key = self.key(self.reader.file_index());
                AppError::Unprocessable(format!("Cannot read {key}: {e}"))
            })?;
            match item {
                ReadItem::Header { file_index } => self.header(file_index as usize),
                ReadItem::Record(meta) => {
                    self.record(meta, &mut batch, &mut row_errors);
                    if self.report.rows_checked % 1024 == 0 {
                        // Decoding buffered data never waits: let the API's
                        // other requests run on this thread now and then.
                        tokio::task::yield_now().await;
                    }
                }
                ReadItem::End => {
                    self.report.complete = true;
                    break;
                }
            }
        }
        self.report.files_read =
            (self.reader.file_index() as u64 + 1).min(self.report.files_matched);
        // Exactly the rows asked for may be the whole source: look one row on.
        while !self.report.complete {
            match self.reader.advance().await {
                Ok(ReadItem::End) => self.report.complete = true,
                Ok(ReadItem::Header { .. }) => {}
                Ok(ReadItem::Record(_)) | Err(_) => break,
            }
        }
        Ok(self.report)
    }

    fn key(&self, file_index: usize) -> &str {
        self.files.get(file_index).map_or("?", |f| f.key.as_str())
    }

    /// A file's header: what it means for a run, and the file's mapping.
    fn header(&mut self, file_index: usize) {
        let header = self.reader.header_fields();
        let (mapping, check) = check_header(&self.spec, self.key(file_index), &header);
        let drift = HeaderDrift::of(&self.spec, &header);
        match check {
            HeaderCheck::SharesNothing(message) => self
                .report
                .warnings
                .push(format!("{message}: a run would fail")),
            _ if self.spec.schema_drift == SchemaDrift::Fail && !drift.is_empty() => {
                let message = drift.failure(self.key(file_index));
                self.report
                    .warnings
                    .push(format!("{message}: a run would fail"));
            }
            check => {
                if let HeaderCheck::Lacks(message) = check {
                    self.report.warnings.push(message);
                }
                if let Some(message) =
                    drift.added_entry(self.key(file_index), self.spec.schema_drift)
                {
                    self.report.warnings.push(message);
                }
            }
        }
        if let Some(slot) = self.per_file.get_mut(file_index) {
            *slot = mapping;
        }
    }

    /// Validates one record, keeping the first [`DRY_RUN_ERRORS`] errors.
    fn record(&mut self, meta: RecordMeta, batch: &mut ValidBatch, row_errors: &mut Vec<RowError>) {
        let mapping = self
            .per_file
            .get(meta.file_index as usize)
            .unwrap_or(&self.fallback);
        let (body, head) = (self.reader.record(), self.reader.malformed_head());
        let ok = check_record(
            &self.schema,
            meta.row,
            body,
            head,
            mapping,
            batch,
            row_errors,
        );
        batch.clear();
        let room = DRY_RUN_ERRORS.saturating_sub(self.report.errors.len());
        // Draining empties the vector whatever `take` leaves.
        self.report.errors.extend(row_errors.drain(..).take(room));
        self.report.rows_checked += 1;
        if ok {
            self.report.valid_rows += 1;
        } else {
            self.report.failed_rows += 1;
        }
    }
}
