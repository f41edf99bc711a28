//! [`PipelineStore`] in memory.

use async_trait::async_trait;
use sluice_domain::ids::{PipelineId, RunId};
use sluice_domain::pipeline::Pipeline;

use super::{InMemoryStore, page_of};
use crate::ports::{Page, PageRequest, PipelineStore, StoreError};

#[async_trait]
impl PipelineStore for InMemoryStore {
    async fn insert_pipeline(&self, pipeline: &Pipeline) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if !s.connectors.contains_key(&pipeline.spec.connector_id) {
            return Err(StoreError::not_found(
                "connector",
                pipeline.spec.connector_id,
            ));
        }
        if s.pipelines.contains_key(&pipeline.id) {
            return Err(StoreError::Conflict(format!(
                "pipeline {} already exists",
                pipeline.id
            )));
        }
        s.pipelines.insert(pipeline.id, pipeline.clone());
        Ok(())
    }

    async fn get_pipeline(&self, id: PipelineId) -> Result<Pipeline, StoreError> {
        let s = self.lock()?;
        s.pipelines
            .get(&id)
            .cloned()
            .ok_or_else(|| StoreError::not_found("pipeline", id))
    }

    async fn list_pipelines(&self, page: &PageRequest) -> Result<Page<Pipeline>, StoreError> {
        let s = self.lock()?;
        Ok(page_of(&s.pipelines, page, |_| true))
    }

    async fn update_pipeline(&self, pipeline: &Pipeline) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if !s.pipelines.contains_key(&pipeline.id) {
            return Err(StoreError::not_found("pipeline", pipeline.id));
        }
        if !s.connectors.contains_key(&pipeline.spec.connector_id) {
            return Err(StoreError::not_found(
                "connector",
                pipeline.spec.connector_id,
            ));
        }
        s.pipelines.insert(pipeline.id, pipeline.clone());
        Ok(())
    }

    async fn delete_pipeline(&self, id: PipelineId) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if !s.pipelines.contains_key(&id) {
            return Err(StoreError::not_found("pipeline", id));
        }
        if s.has_active_run(id) {
            return Err(StoreError::Conflict(format!(
                "pipeline {id} has a pending or running run"
            )));
        }
        s.pipelines.remove(&id);
        let gone: Vec<RunId> = s
            .runs
            .values()
            .filter(|r| r.run.pipeline_id == id)
            .map(|r| r.run.id)
            .collect();
        for r in gone {
            s.runs.remove(&r);
            s.files.remove(&r);
            s.file_counts.remove(&r);
            s.partitions.remove(&r);
            s.errors.remove(&r);
            s.rejected.remove(&r);
            s.revisits.remove(&r);
            s.logs.remove(&r);
        }
        s.poll.remove(&id);
        s.ledger.remove(&id);
        Ok(())
    }
}
