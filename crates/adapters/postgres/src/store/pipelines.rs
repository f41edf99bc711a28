//! [`PipelineStore`].

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, RunQueryDsl};
use sluice_application::ports::{Page, PageRequest, PipelineStore, StoreError};
use sluice_domain::ids::PipelineId;
use sluice_domain::pipeline::Pipeline;

use super::{PgStore, page};
use crate::error::{DbError, IntoStore};
use crate::rows::PipelineRow;
use crate::schema::pipelines::dsl as p;
use crate::schema::runs::dsl as r;

/// A pipeline write failed on its connector reference: the connector is missing.
fn connector_missing(e: DieselError, pipeline: &Pipeline, what: &'static str) -> StoreError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
            StoreError::not_found("connector", pipeline.spec.connector_id)
        }
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            StoreError::Conflict(format!("pipeline {} already exists", pipeline.id))
        }
        other => DbError::from(other).into_store(what),
    }
}

#[async_trait]
impl PipelineStore for PgStore {
    async fn insert_pipeline(&self, pipeline: &Pipeline) -> Result<(), StoreError> {
        let row = PipelineRow::from_pipeline(pipeline)?;
        let mut conn = self.conn().await.store("insert pipeline")?;
        diesel::insert_into(p::pipelines)
            .values(&row)
            .execute(&mut conn)
            .await
            .map_err(|e| connector_missing(e, pipeline, "insert pipeline"))?;
        Ok(())
    }

    async fn get_pipeline(&self, id: PipelineId) -> Result<Pipeline, StoreError> {
        let mut conn = self.conn().await.store("get pipeline")?;
        p::pipelines
            .find(id.to_string())
            .select(PipelineRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .store("get pipeline")?
            .ok_or_else(|| StoreError::not_found("pipeline", id))?
            .into_pipeline()
    }

    async fn list_pipelines(&self, req: &PageRequest) -> Result<Page<Pipeline>, StoreError> {
        let mut conn = self.conn().await.store("list pipelines")?;
        let mut q = p::pipelines
            .select(PipelineRow::as_select())
            .order(p::id.desc())
            .limit(page::fetch(req))
            .into_boxed();
        if let Some(after) = page::after::<PipelineId>(req) {
            q = q.filter(p::id.lt(after));
        }
        let rows = q.load(&mut conn).await.store("list pipelines")?;
        let items = rows
            .into_iter()
            .map(PipelineRow::into_pipeline)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page::cut(items, req, |x| x.id.to_string()))
    }

    async fn update_pipeline(&self, pipeline: &Pipeline) -> Result<(), StoreError> {
        let row = PipelineRow::from_pipeline(pipeline)?;
        let mut conn = self.conn().await.store("update pipeline")?;
        let updated = diesel::update(p::pipelines.find(&row.id))
            .set(&row)
            .execute(&mut conn)
            .await
            .map_err(|e| connector_missing(e, pipeline, "update pipeline"))?;
        if updated == 0 {
            return Err(StoreError::not_found("pipeline", pipeline.id));
        }
        Ok(())
    }

    async fn delete_pipeline(&self, id: PipelineId) -> Result<(), StoreError> {
        let key = id.to_string();
        let mut conn = self.conn().await.store("delete pipeline")?;
        conn.transaction::<_, DbError, _>(async |conn| {
            // Locking the pipeline first makes a concurrent `create_run` wait
            // for this transaction (its foreign-key check needs the row), so
            // no run can appear between the check below and the delete.
            let found: Option<String> = p::pipelines
                .find(&key)
                .select(p::id)
                .for_update()
                .first(conn)
                .await
                .optional()?;
            if found.is_none() {
                return Err(StoreError::not_found("pipeline", id).into());
            }
            let active: i64 = r::runs
                .filter(r::pipeline_id.eq(&key))
                .filter(r::status.eq_any(["pending", "running"]))
                .count()
                .get_result(conn)
                .await?;
            if active > 0 {
                return Err(StoreError::Conflict(format!(
                    "pipeline {id} has a pending or running run"
                ))
                .into());
            }
            // Runs, partitions, errors, logs and polling state go by cascade.
            diesel::delete(p::pipelines.find(&key))
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
        .store("delete pipeline")
    }
}
