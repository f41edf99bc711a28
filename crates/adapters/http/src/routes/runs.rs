//! Runs of a pipeline: start, list, get, cancel, progress and retry.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use sluice_application::usecases::{RunRequest, RunView};
use sluice_domain::ids::{PipelineId, RunId};
use sluice_domain::progress::RunProgress;
use sluice_domain::role::Action;

use crate::auth::Caller;
use crate::dto::{self, DryRunDto, RetryResponse, RunDto, RunPage};
use crate::error::ApiError;
use crate::request::{ListParams, optional_json_body, page_request, path_id};
use crate::state::ApiState;
use sluice_application::usecases::from_json;

/// The `{id}` and `{runId}` of a run route.
pub(crate) fn run_path(req: &HttpRequest) -> Result<(PipelineId, RunId), ApiError> {
    Ok((path_id(req, "id")?, path_id(req, "runId")?))
}

/// A run as JSON, its duration measured when the use case read it.
fn run_json(status: StatusCode, run: RunView) -> HttpResponse {
    HttpResponse::build(status).json(dto::run(run))
}

/// Start a run of an active pipeline.
///
/// The run reads the files the pipeline's `source.files` selects: by default
/// (`append`, `upsert`) those not in the file ledger or changed since
/// loaded. The optional body forces a reload: `{"files": "all"}` reads every
/// listed file, `{"reload": ["key", …]}` those keys as well.
#[utoipa::path(
    post,
    path = "/api/v1/pipelines/{id}/runs",
    operation_id = "startRun",
    tag = "runs",
    params(("id" = PipelineId, Path, description = "Pipeline id (`pipe_…`)")),
    request_body(content = Option<crate::dto::StartRunRequest>, description = "Optional: what to read besides the new files"),
    responses(
        (status = 201, description = "The new run (`pending`)", body = RunDto),
        (status = 409, description = "The pipeline already has a pending or running run", body = crate::error::ErrorBody),
        (status = 422, description = "The pipeline is paused, or its newest run stopped after committing rows of files not yet in the ledger (retry that run, or force a reload with `files` or `reload`)", body = crate::error::ErrorBody)
    )
)]
pub async fn start(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id: PipelineId = path_id(&req, "id")?;
    let request: RunRequest = match optional_json_body(&req, payload).await? {
        None | Some(serde_json::Value::Null) => RunRequest::default(),
        Some(body) => from_json(body)?,
    };
    let run = state.use_cases().start_run(&who, id, request).await?;
    Ok(run_json(StatusCode::CREATED, run))
}

/// `?rows=` of a dry run.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DryRunParams {
    /// Rows to read and validate, 1 to 100000 (default 1000).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100000)]
    rows: Option<String>,
}

/// Dry-run a pipeline.
///
/// Reads the first rows of the pipeline's source and validates them with
/// its current schema, exactly as a run would (same files, order, headers
/// and row numbers), and says how many a run would load and reject, with
/// the first 100 errors. Nothing is loaded and no run is created. Works on
/// paused pipelines too.
#[utoipa::path(
    post,
    path = "/api/v1/pipelines/{id}/dry-run",
    operation_id = "dryRunPipeline",
    tag = "pipelines",
    params(("id" = PipelineId, Path, description = "Pipeline id (`pipe_…`)"), DryRunParams),
    responses(
        (status = 200, description = "What a run would make of the first rows", body = DryRunDto),
        (status = 422, description = "The source cannot be listed or read, or holds no matching file", body = crate::error::ErrorBody)
    )
)]
pub async fn dry_run(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: PipelineId = path_id(&req, "id")?;
    who.require(Action::StartRun)?;
    let invalid = || {
        ApiError::invalid(
            "rows",
            format!(
                "must be an integer from 1 to {}",
                sluice_application::usecases::MAX_DRY_RUN_ROWS
            ),
        )
    };
    let params = web::Query::<DryRunParams>::from_query(req.query_string())
        .map_err(|_| ApiError::invalid("query", "malformed query string"))?
        .into_inner();
    let rows = match params.rows.as_deref() {
        None => None,
        Some(raw) => Some(raw.parse::<u64>().map_err(|_| invalid())?),
    };
    let report = state.use_cases().dry_run(&who, id, rows).await?;
    Ok(HttpResponse::Ok().json(dto::dry_run(report)))
}

/// List a pipeline's runs (newest first).
#[utoipa::path(
    get,
    path = "/api/v1/pipelines/{id}/runs",
    operation_id = "listRuns",
    tag = "runs",
    params(("id" = PipelineId, Path, description = "Pipeline id (`pipe_…`)"), ListParams),
    responses((status = 200, description = "One page of runs", body = RunPage))
)]
pub async fn list(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: PipelineId = path_id(&req, "id")?;
    who.require(Action::ReadRuns)?;
    let page = page_request(&req)?;
    let runs = state.use_cases().list_runs(&who, id, &page).await?;
    Ok(HttpResponse::Ok().json(dto::page(runs, dto::run)))
}

/// Get a run with its counters.
#[utoipa::path(
    get,
    path = "/api/v1/pipelines/{id}/runs/{runId}",
    operation_id = "getRun",
    tag = "runs",
    params(
        ("id" = PipelineId, Path, description = "Pipeline id (`pipe_…`)"),
        ("runId" = RunId, Path, description = "Run id (`run_…`)")
    ),
    responses((status = 200, description = "The run", body = RunDto))
)]
pub async fn get(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (id, run_id) = run_path(&req)?;
    let run = state.use_cases().get_run(&who, id, run_id).await?;
    Ok(run_json(StatusCode::OK, run))
}

/// Get a run by its id alone.
///
/// The same answer as `GET /pipelines/{id}/runs/{runId}`, for a caller that
/// knows only the run's id; its `pipelineId` leads to the run's other
/// endpoints.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{runId}",
    operation_id = "findRun",
    tag = "runs",
    params(("runId" = RunId, Path, description = "Run id (`run_…`)")),
    responses((status = 200, description = "The run", body = RunDto))
)]
pub async fn find(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let run_id: RunId = path_id(&req, "runId")?;
    let run = state.use_cases().find_run(&who, run_id).await?;
    Ok(run_json(StatusCode::OK, run))
}

/// Cancel a pending or running run.
#[utoipa::path(
    post,
    path = "/api/v1/pipelines/{id}/runs/{runId}/cancel",
    operation_id = "cancelRun",
    tag = "runs",
    params(
        ("id" = PipelineId, Path, description = "Pipeline id (`pipe_…`)"),
        ("runId" = RunId, Path, description = "Run id (`run_…`)")
    ),
    responses(
        (status = 200, description = "The cancelled run", body = RunDto),
        (status = 422, description = "The run already ended", body = crate::error::ErrorBody)
    )
)]
pub async fn cancel(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (id, run_id) = run_path(&req)?;
    let run = state.use_cases().cancel_run(&who, id, run_id).await?;
    Ok(run_json(StatusCode::OK, run))
}

/// Get the progress of a run.
///
/// Returns detailed progress information for a pipeline run including row
/// counts, partition details, ETA, validation errors (first 20), and log
/// entries.
#[utoipa::path(
    get,
    path = "/api/v1/pipelines/{id}/runs/{runId}/progress",
    operation_id = "getRunProgress",
    tag = "runs",
    params(
        ("id" = PipelineId, Path, description = "Pipeline ID"),
        ("runId" = RunId, Path, description = "Pipeline run ID")
    ),
    responses((status = 200, description = "The progress of the run", body = RunProgress))
)]
pub async fn progress(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (id, run_id) = run_path(&req)?;
    Ok(HttpResponse::Ok().json(state.use_cases().run_progress(&who, id, run_id).await?))
}

/// Retry a failed or partially-failed run.
///
/// Creates a new run with checkpoint support: `append` and `upsert` resume from the last processed
/// row, `replace` re-runs from the beginning. Only runs with status `failed`
/// or `completed_with_errors` can be retried.
#[utoipa::path(
    post,
    path = "/api/v1/pipelines/{id}/runs/{runId}/retry",
    operation_id = "retryRun",
    tag = "runs",
    params(
        ("id" = PipelineId, Path, description = "Pipeline ID"),
        ("runId" = RunId, Path, description = "Original run ID to retry")
    ),
    responses(
        (status = 201, description = "The retry run (`pending`)", body = RetryResponse),
        (status = 404, description = "Pipeline or run not found", body = crate::error::ErrorBody),
        (status = 409, description = "The pipeline already has a pending or running run", body = crate::error::ErrorBody),
        (status = 422, description = "Run status does not allow retry (must be failed or completed_with_errors)", body = crate::error::ErrorBody)
    )
)]
pub async fn retry(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (id, run_id) = run_path(&req)?;
    let outcome = state.use_cases().retry_run(&who, id, run_id).await?;
    Ok(HttpResponse::Created().json(RetryResponse::new(outcome.run, outcome.log, run_id)))
}
