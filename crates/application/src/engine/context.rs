//! What a worker needs to load a run's partitions, built once per run.

use std::sync::Arc;

use sluice_domain::format::{CsvDecoder, CsvDialect, Problem, RecordBody, RecordFormat, Step};
use sluice_domain::ids::{ConnectorId, RunId};
use sluice_domain::pipeline::PipelineSpec;
use sluice_domain::validation::{CompiledSchema, FieldMapping, encode_canonical_csv};

use crate::AppError;
use crate::ports::{LoadTarget, ObjectSource, RejectedRow, SourceError, SourceFile};
use crate::reading::{mappings, schema_with_required_keys};
use crate::usecases::App;

/// A run's definition, files, compiled schema and source.
pub(crate) struct RunContext {
    pub spec: PipelineSpec,
    pub files: Arc<[SourceFile]>,
    pub mappings: Vec<FieldMapping>,
    /// Used for a file index outside the list (never expected).
    pub fallback: FieldMapping,
    pub schema: CompiledSchema,
    pub target: LoadTarget,
    pub source: Arc<dyn ObjectSource>,
}

/// Marks a stored rejected record that could not be decoded at all; such a
/// record keeps its original problem when revisited.
const MALFORMED_MARK: u8 = 0;

/// The raw form kept for a rejected record.
pub(crate) fn raw_of(body: RecordBody<'_>) -> Vec<u8> {
    match body {
        RecordBody::Fields(f) => encode_canonical_csv(f.iter()),
        RecordBody::Json(line) => line.to_vec(),
        RecordBody::Malformed(p) => {
            let mut raw = vec![MALFORMED_MARK];
            raw.extend_from_slice(p.message().as_bytes());
            raw
        }
    }
}

/// Decodes a stored rejected record and passes it to `f`.
pub(crate) fn with_raw<T>(
    format: RecordFormat,
    rejected: &RejectedRow,
    f: impl FnOnce(RecordBody<'_>) -> T,
) -> T {
    if rejected.raw.first() == Some(&MALFORMED_MARK) {
        let problem = if rejected.raw.get(1..) == Some(Problem::RecordTooLong.message().as_bytes())
        {
            Problem::RecordTooLong
        } else {
            Problem::UnbalancedQuote
        };
        return f(RecordBody::Malformed(problem));
    }
    match format {
        RecordFormat::Jsonl => {
            let line = rejected.raw.strip_suffix(b"\n").unwrap_or(&rejected.raw);
            f(RecordBody::Json(line))
        }
        RecordFormat::Csv(_) => {
            let mut decoder = CsvDecoder::new(CsvDialect::default(), 1, usize::MAX);
            let mut input: &[u8] = &rejected.raw;
            match decoder.next(&mut input, true) {
                Step::Record(r) => f(r.body),
                _ => f(RecordBody::Malformed(Problem::UnbalancedQuote)),
            }
        }
    }
}

impl App {
    /// The connector's name and its object source (or why the source cannot
    /// be opened). The error is a failed lookup of the connector or its
    /// credentials.
    pub(crate) async fn connector_source(
        &self,
        id: ConnectorId,
    ) -> Result<(String, Result<Arc<dyn ObjectSource>, SourceError>), AppError> {
        let connector = self.ports().connectors.get_connector(id).await?;
        let credentials = self.ports().connectors.connector_credentials(id).await?;
        let source = self.ports().sources.open(&connector, &credentials);
        Ok((connector.name, source))
    }

    /// The run ids whose rows count as "this load": the run and, through
    /// resumable retries, the runs it continues.
    pub(crate) async fn lineage(
        &self,
        pipeline: sluice_domain::ids::PipelineId,
        run_id: RunId,
    ) -> Result<Vec<RunId>, AppError> {
        let mut lineage = vec![run_id];
        let mut current = self.ports().runs.get_run(pipeline, run_id).await?;
        while current.metadata.resumable == Some(true) {
            let Some(prev) = current.metadata.retry_of else {
                break;
            };
            if lineage.contains(&prev) {
                break;
            }
            lineage.push(prev);
            current = self.ports().runs.get_run(pipeline, prev).await?;
        }
        Ok(lineage)
    }

    pub(crate) async fn run_context(
        &self,
        run_id: RunId,
        pipeline: sluice_domain::ids::PipelineId,
    ) -> Result<RunContext, AppError> {
        let spec = self.ports().runs.run_spec(run_id).await?;
        let files: Arc<[SourceFile]> = self.ports().queue.run_files(run_id).await?.into();
        let source = self.connector_source(spec.connector_id).await?.1?;
        let schema = CompiledSchema::new(&schema_with_required_keys(&spec))?;
        let target = LoadTarget {
            run_id,
            table: spec.destination.table.clone(),
            schema: spec.schema.clone(),
            key_columns: spec.destination.key_columns.clone(),
            strategy: spec.load_strategy,
            lineage: self.lineage(pipeline, run_id).await?,
        };
        Ok(RunContext {
            mappings: mappings(&spec, &files),
            fallback: FieldMapping::positional(&spec.schema),
            spec,
            files,
            schema,
            target,
            source,
        })
    }
}

impl RunContext {
    /// The field mapping of file `index`.
    pub(crate) fn mapping(&self, index: u32) -> &FieldMapping {
        self.mappings.get(index as usize).unwrap_or(&self.fallback)
    }
}
