//! What a worker needs to load a run's partitions: the run's definition,
//! files, compiled schema, destination and open source. All of it is fixed
//! once the run is `running`, so a worker builds it when it first loads a
//! partition of the run and reuses it for the run's other partitions
//! ([`RunContexts`]).

use std::sync::Arc;

use sluice_domain::ids::{PipelineId, RunId};
use sluice_domain::pipeline::PipelineSpec;
use sluice_domain::validation::{CompiledSchema, FieldMapping};

use super::Engine;
use crate::AppError;
use crate::ports::{LoadTarget, ObjectSource, SourceFile};
use crate::reading::{compiled_schema, mappings, open_connector};

/// A run's definition, files, compiled schema, destination and source.
pub(crate) struct RunContext {
    /// The run.
    pub run_id: RunId,
    /// The definition it executes.
    pub spec: PipelineSpec,
    /// Its files, in index order.
    pub files: Arc<[SourceFile]>,
    /// The field mapping of each file.
    mappings: Vec<FieldMapping>,
    /// Used for a file index outside the list (never expected).
    fallback: FieldMapping,
    /// The schema, key columns required.
    pub schema: CompiledSchema,
    /// Where and how the rows go.
    pub target: LoadTarget,
    /// The connector's source.
    pub source: Arc<dyn ObjectSource>,
}

impl RunContext {
    /// The field mapping of file `index`.
    pub(crate) fn mapping(&self, index: u32) -> &FieldMapping {
        self.mappings.get(index as usize).unwrap_or(&self.fallback)
    }
}

/// The context of the run a worker loads, kept from one partition claim to
/// the next. It holds one run at a time: a claim of another run replaces it,
/// and the worker forgets it as soon as the run has nothing left for it (the
/// worker failed the run, lost its lease, or found no partition to claim),
/// so a run that ended or was retried (a retry is a new run) is never served
/// from here.
#[derive(Default)]
pub(crate) struct RunContexts {
    current: Option<Arc<RunContext>>,
}

impl RunContexts {
    /// The kept context, if it is `run`'s.
    pub(crate) fn current(&self, run: RunId) -> Option<Arc<RunContext>> {
        self.current.clone().filter(|c| c.run_id == run)
    }

    /// Keeps `ctx` (in place of any other) and returns it shared.
    pub(crate) fn keep(&mut self, ctx: RunContext) -> Arc<RunContext> {
        let ctx = Arc::new(ctx);
        self.current = Some(ctx.clone());
        ctx
    }

    /// Forgets the kept context.
    pub(crate) fn forget(&mut self) {
        self.current = None;
    }
}

impl Engine {
    /// The run ids whose rows count as "this load": the run and, through
    /// resumable retries, the runs it continues.
    async fn lineage(&self, pipeline: PipelineId, run_id: RunId) -> Result<Vec<RunId>, AppError> {
        let mut lineage = vec![run_id];
        let mut current = self.ports.runs.get_run(pipeline, run_id).await?;
        while current.metadata.resumable == Some(true) {
            let Some(prev) = current.metadata.retry_of else {
                break;
            };
            if lineage.contains(&prev) {
                break;
            }
            lineage.push(prev);
            current = self.ports.runs.get_run(pipeline, prev).await?;
        }
        Ok(lineage)
    }

    /// Builds the context of a `running` run.
    pub(crate) async fn run_context(
        &self,
        run_id: RunId,
        pipeline: PipelineId,
    ) -> Result<RunContext, AppError> {
        let spec = self.ports.runs.run_spec(run_id).await?;
        let files: Arc<[SourceFile]> = self.ports.queue.run_files(run_id).await?.into();
        let source = open_connector(&self.ports, spec.connector_id, None)
            .await?
            .source;
        let schema = compiled_schema(&spec)?;
        let target = LoadTarget::new(run_id, &spec, self.lineage(pipeline, run_id).await?);
        Ok(RunContext {
            run_id,
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
