//! Pipelines: create, read, change (merge patch), delete.

use sluice_domain::ids::PipelineId;
use sluice_domain::pipeline::{Pipeline, PipelineSpec};
use sluice_domain::role::Action;

use super::{Principal, UseCases, check_patch_members, from_json, merge_patch};
use crate::AppError;
use crate::ports::{Page, PageRequest, StoreError};

/// Maps "connector not found" on write to a 400 on `connectorId`: the request
/// named a connector that does not exist (a 404 would say the pipeline is
/// missing), and the field lets a client point at it.
fn connector_ref(e: StoreError) -> AppError {
    match e {
        StoreError::NotFound {
            entity: "connector",
            id,
        } => AppError::invalid("connectorId", format!("no connector {id}")),
        other => other.into(),
    }
}

/// Every rule of a definition: the domain's, then the schedule's cron
/// expression and time zone (parsed here, where the cron crate lives).
fn check_spec(spec: &PipelineSpec) -> Result<(), AppError> {
    spec.validate()?;
    if let Some(schedule) = &spec.schedule {
        super::schedule::CronSchedule::parse(schedule)?;
    }
    Ok(())
}

impl UseCases {
    /// Creates a pipeline (admin, editor).
    pub async fn create_pipeline(
        &self,
        who: &Principal,
        spec: PipelineSpec,
    ) -> Result<Pipeline, AppError> {
        who.require(Action::WritePipelines)?;
        check_spec(&spec)?;
        let now = self.ports().clock.now();
        let pipeline = Pipeline {
            id: PipelineId::from_ulid(self.ports().ids.ulid()),
            spec,
            created_at: now,
            updated_at: now,
        };
        self.ports()
            .pipelines
            .insert_pipeline(&pipeline)
            .await
            .map_err(connector_ref)?;
        Ok(pipeline)
    }

    /// One pipeline (any role).
    pub async fn get_pipeline(
        &self,
        who: &Principal,
        id: PipelineId,
    ) -> Result<Pipeline, AppError> {
        who.require(Action::ReadPipelines)?;
        Ok(self.ports().pipelines.get_pipeline(id).await?)
    }

    /// Pipelines, newest first (any role).
    pub async fn list_pipelines(
        &self,
        who: &Principal,
        page: &PageRequest,
    ) -> Result<Page<Pipeline>, AppError> {
        who.require(Action::ReadPipelines)?;
        Ok(self.ports().pipelines.list_pipelines(page).await?)
    }

    /// Applies a JSON merge patch to a pipeline's definition and validates the
    /// result as a whole (admin, editor). `{"status": "paused"}` pauses it.
    /// Runs already started keep the definition they started with.
    pub async fn update_pipeline(
        &self,
        who: &Principal,
        id: PipelineId,
        patch: serde_json::Value,
    ) -> Result<Pipeline, AppError> {
        who.require(Action::WritePipelines)?;
        check_patch_members(
            &patch,
            &[
                "name",
                "status",
                "connectorId",
                "source",
                "schema",
                "destination",
                "loadStrategy",
                "schemaDrift",
                "partitions",
                "maxErrors",
                "polling",
                "schedule",
            ],
        )?;
        let current = self.ports().pipelines.get_pipeline(id).await?;
        let mut doc =
            serde_json::to_value(&current.spec).map_err(|e| AppError::Internal(e.to_string()))?;
        merge_patch(&mut doc, &patch);
        let spec: PipelineSpec = from_json(doc)?;
        check_spec(&spec)?;
        let updated = Pipeline {
            id,
            spec,
            created_at: current.created_at,
            updated_at: self.ports().clock.now(),
        };
        self.ports()
            .pipelines
            .update_pipeline(&updated)
            .await
            .map_err(connector_ref)?;
        Ok(updated)
    }

    /// Deletes a pipeline and its run history; its destination table stays
    /// (admin, editor). `Conflict` while a run is pending or running.
    pub async fn delete_pipeline(&self, who: &Principal, id: PipelineId) -> Result<(), AppError> {
        who.require(Action::WritePipelines)?;
        Ok(self.ports().pipelines.delete_pipeline(id).await?)
    }
}
