//! Schema inference: sample a connector's files through the same listing,
//! object source and decoders a run uses, and propose a schema, a pipeline
//! and the table a run would create.

use std::sync::Arc;
use std::time::Duration;

use sluice_domain::identifier::{Identifier, suggest_identifier};
use sluice_domain::ids::ConnectorId;
use sluice_domain::inference::{Inferred, SampleProfiler};
use sluice_domain::pipeline::{
    Destination, LoadStrategy, PipelineSpec, PipelineStatus, PollingSpec, SourceSpec,
};
use sluice_domain::role::Action;
use sluice_domain::run::SourcePosition;
use sluice_domain::schema::{Column, ColumnType, Schema};

use super::{Principal, UseCases};
use crate::AppError;
use crate::ports::SourceFile;
use crate::reading::{OpenError, ReadItem, RecordReader, list_source_files, open_connector};

/// Rows sampled when the caller does not say.
pub const DEFAULT_INFER_ROWS: u64 = 10_000;
/// Most rows one inference samples.
pub const MAX_INFER_ROWS: u64 = 1_000_000;
/// Files sampled when the caller does not say.
pub const DEFAULT_INFER_FILES: u32 = 10;
/// Most files one inference samples.
pub const MAX_INFER_FILES: u32 = 100;
/// Most (decompressed) bytes read from one file.
pub const INFER_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// How long sampling may take in all; what was read by then is answered.
pub const INFER_TIMEOUT: Duration = Duration::from_secs(30);

/// What to sample: the source part of a pipeline, and how much.
#[derive(Debug, Clone, PartialEq)]
pub struct InferRequest {
    /// Prefix, pattern, format, CSV settings and compression, as a pipeline
    /// would declare them.
    pub source: SourceSpec,
    /// Rows to sample in all (default [`DEFAULT_INFER_ROWS`]).
    pub rows: Option<u64>,
    /// Files to sample (default [`DEFAULT_INFER_FILES`]).
    pub files: Option<u32>,
}

/// What inference proposes.
#[derive(Debug, Clone, PartialEq)]
pub struct InferReport {
    /// The profiles, the proposed columns, the name mapping and warnings.
    pub inferred: Inferred,
    /// Files the prefix and pattern match.
    pub files_matched: u64,
    /// The keys of the files sampled, in the order they were read.
    pub files_sampled: Vec<String>,
    /// A pipeline body ready to `POST /pipelines`.
    pub pipeline: PipelineSpec,
    /// The statements a run would execute to create the destination table.
    pub create_table: Vec<String>,
}

impl UseCases {
    /// Samples a connector's files and proposes a schema (admin, editor:
    /// the roles that write pipelines). Nothing is written anywhere.
    pub async fn infer_schema(
        &self,
        who: &Principal,
        connector_id: ConnectorId,
        request: InferRequest,
    ) -> Result<InferReport, AppError> {
        who.require(Action::WritePipelines)?;
        let rows = request.rows.unwrap_or(DEFAULT_INFER_ROWS);
        if !(1..=MAX_INFER_ROWS).contains(&rows) {
            return Err(AppError::invalid(
                "rows",
                format!("must be an integer from 1 to {MAX_INFER_ROWS}"),
            ));
        }
        let max_files = request.files.unwrap_or(DEFAULT_INFER_FILES);
        if !(1..=MAX_INFER_FILES).contains(&max_files) {
            return Err(AppError::invalid(
                "files",
                format!("must be an integer from 1 to {MAX_INFER_FILES}"),
            ));
        }
        let mut spec = draft_pipeline(connector_id, request.source);
        spec.validate()?;
        let timeout = Duration::from_millis(self.tunables().source_timeout_ms);
        let source = open_connector(self.ports(), connector_id, Some(timeout))
            .await
            .map_err(|e| match e {
                OpenError::Refused { connector, error } => {
                    AppError::Unprocessable(format!("Cannot open connector {connector}: {error}"))
                }
                other => other.into(),
            })?;
        let listed = list_source_files(&source, &spec)
            .await
            .map_err(AppError::Unprocessable)?;
        let files_matched = listed.len() as u64;
        let chosen = spread(listed, max_files as usize);
        let mut sampler = Sampler {
            profiler: SampleProfiler::new(),
            deadline: tokio::time::Instant::now() + INFER_TIMEOUT,
            notes: Vec::new(),
        };
        let per_file = rows / chosen.len() as u64;
        let mut extra = rows % chosen.len() as u64;
        let mut files_sampled = Vec::with_capacity(chosen.len());
        for file in chosen {
            let budget = per_file + u64::from(extra > 0);
            extra = extra.saturating_sub(1);
            if budget == 0 {
                continue;
            }
            files_sampled.push(file.key.clone());
            let go_on = sampler
                .sample_file(source.source.clone(), file, &spec, budget)
                .await?;
            if !go_on {
                break;
            }
        }
        let mut inferred = sampler.profiler.finish();
        inferred.warnings.extend(sampler.notes);
        if inferred.columns.is_empty() {
            return Err(AppError::Unprocessable(format!(
                "No column found: the {} sampled files hold no record",
                files_sampled.len()
            )));
        }
        spec.schema = inferred.schema();
        spec.validate()?;
        let create_table = self.ports().loader.create_table_sql(
            &spec.destination.table,
            &spec.schema,
            &spec.destination.key_columns,
        );
        Ok(InferReport {
            inferred,
            files_matched,
            files_sampled,
            pipeline: spec,
            create_table,
        })
    }
}

/// A pipeline reading `source`, with a placeholder schema until inference
/// fills it in, loading by `append` into a table named after the prefix.
fn draft_pipeline(connector_id: ConnectorId, source: SourceSpec) -> PipelineSpec {
    let last = source
        .prefix
        .split('/')
        .rfind(|s| !s.is_empty())
        .unwrap_or("");
    let table = if last.is_empty() {
        Identifier::parse("inferred").unwrap_or_else(|_| suggest_identifier("inferred", 1))
    } else {
        suggest_identifier(last, 1)
    };
    let placeholder = Identifier::parse("value").unwrap_or_else(|_| suggest_identifier("v", 1));
    PipelineSpec {
        name: format!("{table} (inferred)"),
        status: PipelineStatus::Active,
        connector_id,
        source,
        schema: Schema {
            columns: vec![Column::new(placeholder, ColumnType::String)],
        },
        destination: Destination {
            table,
            key_columns: Vec::new(),
        },
        load_strategy: LoadStrategy::Append,
        schema_drift: Default::default(),
        partitions: 4,
        max_errors: None,
        polling: PollingSpec::default(),
        schedule: None,
    }
}

/// At most `n` of the listed files, oldest and newest among them (by
/// modification time, then key), the others spread evenly between, read in
/// lexical key order as a run reads them.
fn spread(mut files: Vec<SourceFile>, n: usize) -> Vec<SourceFile> {
    if files.len() <= n {
        return files;
    }
    files.sort_by(|a, b| {
        a.last_modified
            .cmp(&b.last_modified)
            .then_with(|| a.key.cmp(&b.key))
    });
    let last = files.len() - 1;
    let mut picked: Vec<usize> = if n == 1 {
        vec![last]
    } else {
        (0..n).map(|i| i * last / (n - 1)).collect()
    };
    picked.dedup();
    let mut chosen: Vec<SourceFile> = picked
        .into_iter()
        .filter_map(|i| files.get(i).cloned())
        .collect();
    chosen.sort_by(|a, b| a.key.cmp(&b.key));
    chosen
}

struct Sampler {
    profiler: SampleProfiler,
    deadline: tokio::time::Instant,
    notes: Vec<String>,
}

impl Sampler {
    /// Samples up to `budget` records of `file`, at most
    /// [`INFER_MAX_FILE_BYTES`] of it; false once the time is up.
    async fn sample_file(
        &mut self,
        source: Arc<dyn crate::ports::ObjectSource>,
        file: SourceFile,
        spec: &PipelineSpec,
        budget: u64,
    ) -> Result<bool, AppError> {
        let key = file.key.clone();
        let one: Arc<[SourceFile]> = vec![SourceFile { index: 0, ..file }].into();
        let mut reader = RecordReader::new(
            source,
            one,
            spec.record_format(),
            spec.has_header(),
            SourcePosition::default(),
            1,
        );
        let mut taken = 0u64;
        while taken < budget {
            let step = tokio::time::timeout_at(self.deadline, reader.advance()).await;
            let item = match step {
                Err(_) => {
                    self.notes.push(format!(
                        "Sampling stopped after {} s, in {key}: the proposal rests on the rows read by then",
                        INFER_TIMEOUT.as_secs()
                    ));
                    return Ok(false);
                }
                Ok(item) => {
                    item.map_err(|e| AppError::Unprocessable(format!("Cannot read {key}: {e}")))?
                }
            };
            match item {
                ReadItem::End => break,
                ReadItem::Header { .. } => self.profiler.header(&key, &reader.header_fields()),
                ReadItem::Record(meta) => {
                    self.profiler.record(reader.record());
                    taken += 1;
                    if meta.end >= INFER_MAX_FILE_BYTES {
                        self.notes.push(format!(
                            "Sampled only the first {} MiB of {key}",
                            INFER_MAX_FILE_BYTES / (1024 * 1024)
                        ));
                        break;
                    }
                    if taken % 1024 == 0 {
                        // Decoding buffered data never waits: let the API's
                        // other requests run on this thread now and then.
                        tokio::task::yield_now().await;
                    }
                }
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(key: &str, modified_ms: i64) -> SourceFile {
        SourceFile {
            index: 0,
            key: key.to_owned(),
            size: 1,
            etag: None,
            last_modified: Some(sluice_domain::time::Timestamp(modified_ms)),
            gzip: false,
            header: None,
            first_row: 0,
            row_count: 0,
        }
    }

    #[test]
    fn spreading_keeps_the_oldest_and_the_newest_in_key_order() {
        let files: Vec<SourceFile> = (0..10)
            .map(|i| file(&format!("k{i}"), 100 - i64::from(i)))
            .collect();
        let keys = |v: Vec<SourceFile>| v.into_iter().map(|f| f.key).collect::<Vec<_>>();
        assert_eq!(keys(spread(files.clone(), 3)), ["k0", "k5", "k9"]);
        assert_eq!(keys(spread(files.clone(), 2)), ["k0", "k9"]);
        assert_eq!(keys(spread(files.clone(), 1)), ["k0"]);
        assert_eq!(spread(files.clone(), 10).len(), 10);
        assert_eq!(spread(files, 20).len(), 10);
    }

    #[test]
    fn the_draft_is_named_after_the_prefix() {
        let id = ConnectorId::parse("conn_01J9Z8Y7X6W5V4T3S2R1Q0P9NM").expect("id");
        let source = SourceSpec {
            prefix: "exports/Kunden Daten/".into(),
            pattern: None,
            format: Default::default(),
            csv: Default::default(),
            compression: Default::default(),
            files: None,
        };
        let spec = draft_pipeline(id, source);
        assert_eq!(spec.destination.table.as_str(), "kunden_daten");
        assert_eq!(spec.validate(), Ok(()));
    }
}
