//! `/pipelines`: read by every role; written by admins and editors. Pausing
//! and resuming is a patch of `status`.

use actix_web::{HttpRequest, HttpResponse, web};
use sluice_domain::ids::PipelineId;
use sluice_domain::pipeline::{Pipeline, PipelineSpec};
use sluice_domain::role::Action;

use crate::auth::Caller;
use crate::dto::{self, PipelinePage};
use crate::error::ApiError;
use crate::request::{ListParams, decode_body, json_body, page_request, path_id};
use crate::state::ApiState;

/// List pipelines (newest first).
#[utoipa::path(
    get,
    path = "/api/v1/pipelines",
    operation_id = "listPipelines",
    tag = "pipelines",
    params(ListParams),
    responses((status = 200, description = "One page of pipelines", body = PipelinePage))
)]
pub async fn list(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    who.require(Action::ReadPipelines)?;
    let page = page_request(&req)?;
    let pipelines = state.use_cases().list_pipelines(&who, &page).await?;
    Ok(HttpResponse::Ok().json(dto::page(pipelines, |p| p)))
}

/// Create a pipeline.
///
/// Every rule is checked and a 400 names the first offending field
/// (`loadStrategy`, `destination.keyColumns[0]`, `partitions`,
/// `polling.intervalMinutes`, ...).
#[utoipa::path(
    post,
    path = "/api/v1/pipelines",
    operation_id = "createPipeline",
    tag = "pipelines",
    request_body = PipelineSpec,
    responses((status = 201, description = "The pipeline", body = Pipeline))
)]
pub async fn create(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    who.require(Action::WritePipelines)?;
    let spec: PipelineSpec = decode_body(&req, body).await?;
    let pipeline = state.use_cases().create_pipeline(&who, spec).await?;
    Ok(HttpResponse::Created().json(pipeline))
}

/// Get a pipeline.
#[utoipa::path(
    get,
    path = "/api/v1/pipelines/{id}",
    operation_id = "getPipeline",
    tag = "pipelines",
    params(("id" = PipelineId, Path, description = "Pipeline id (`pipe_…`)")),
    responses((status = 200, description = "The pipeline", body = Pipeline))
)]
pub async fn get(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: PipelineId = path_id(&req, "id")?;
    Ok(HttpResponse::Ok().json(state.use_cases().get_pipeline(&who, id).await?))
}

/// Change, pause or resume a pipeline.
///
/// The body is a JSON merge patch (RFC 7386); the result is validated as a
/// whole. `{"status": "paused"}` pauses it, `{"status":
/// "active"}` resumes it. Runs already started keep their definition.
#[utoipa::path(
    patch,
    path = "/api/v1/pipelines/{id}",
    operation_id = "updatePipeline",
    tag = "pipelines",
    params(("id" = PipelineId, Path, description = "Pipeline id (`pipe_…`)")),
    request_body(
        content = crate::dto::PipelinePatch,
        content_type = "application/merge-patch+json",
        description = "Members of a pipeline to change (`null` removes an optional member)",
        example = json!({"status": "paused"})
    ),
    responses((status = 200, description = "The changed pipeline", body = Pipeline))
)]
pub async fn update(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    who.require(Action::WritePipelines)?;
    let id: PipelineId = path_id(&req, "id")?;
    let patch = json_body(&req, body).await?;
    Ok(HttpResponse::Ok().json(state.use_cases().update_pipeline(&who, id, patch).await?))
}

/// Delete a pipeline.
///
/// Its run history goes too; its destination table stays.
#[utoipa::path(
    delete,
    path = "/api/v1/pipelines/{id}",
    operation_id = "deletePipeline",
    tag = "pipelines",
    params(("id" = PipelineId, Path, description = "Pipeline id (`pipe_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "A run is pending or running", body = crate::error::ErrorBody)
    )
)]
pub async fn delete(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: PipelineId = path_id(&req, "id")?;
    state.use_cases().delete_pipeline(&who, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
