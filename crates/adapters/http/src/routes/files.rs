//! The file ledger of a pipeline and the files of a run: list them, and make
//! the ledger forget files so the next run reads them again.

use actix_web::{HttpRequest, HttpResponse, web};
use sluice_application::ports::ForgetFiles;
use sluice_domain::ids::PipelineId;

use crate::auth::Caller;
use crate::dto::{self, ForgetResponse, LedgerPage, RunFilePage};
use crate::error::ApiError;
use crate::request::{ListParams, page_request, path_id};
use crate::routes::runs::run_path;
use crate::state::ApiState;

/// `?prefix=` of the ledger list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerParams {
    /// Only keys starting with this prefix.
    #[param(max_length = 1024)]
    prefix: Option<String>,
}

/// `?key=` or `?prefix=` of a forget.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForgetParams {
    /// Forget exactly this key.
    #[param(min_length = 1, max_length = 1024)]
    key: Option<String>,
    /// Forget every key starting with this prefix (empty: the whole ledger).
    #[param(max_length = 1024)]
    prefix: Option<String>,
}

fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    Ok(web::Query::<T>::from_query(req.query_string())
        .map_err(|_| ApiError::invalid("query", "malformed query string"))?
        .into_inner())
}

/// List the files a pipeline has loaded (its file ledger), newest first.
///
/// Every file a run loaded, with the version loaded (ETag, size,
/// modification time), its rows (total, loaded, skipped, failed), the run
/// and when. Entries never expire; forgotten ones are left out.
#[utoipa::path(
    get,
    path = "/api/v1/pipelines/{id}/files",
    operation_id = "listPipelineFiles",
    tag = "files",
    params(("id" = PipelineId, Path, description = "Pipeline id (`pipe_…`)"), LedgerParams, ListParams),
    responses((status = 200, description = "One page of the ledger", body = LedgerPage))
)]
pub async fn ledger(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: PipelineId = path_id(&req, "id")?;
    let params: LedgerParams = query(&req)?;
    let page = page_request(&req)?;
    let files = state
        .use_cases()
        .list_ledger(&who, id, params.prefix.as_deref(), &page)
        .await?;
    Ok(HttpResponse::Ok().json(dto::page(files, |f| f)))
}

/// Forget files, so the next run reads them again.
///
/// Give exactly one of `key` (one file) or `prefix` (every file under it).
/// The next run that reads a forgotten file names it in its log.
#[utoipa::path(
    delete,
    path = "/api/v1/pipelines/{id}/files",
    operation_id = "forgetPipelineFiles",
    tag = "files",
    params(("id" = PipelineId, Path, description = "Pipeline id (`pipe_…`)"), ForgetParams),
    responses((status = 200, description = "How many ledger entries were forgotten", body = ForgetResponse))
)]
pub async fn forget(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: PipelineId = path_id(&req, "id")?;
    let params: ForgetParams = query(&req)?;
    let which = match (params.key, params.prefix) {
        (Some(key), None) => ForgetFiles::Key(key),
        (None, Some(prefix)) => ForgetFiles::Prefix(prefix),
        _ => {
            return Err(ApiError::invalid(
                "query",
                "give exactly one of `key` or `prefix`",
            ));
        }
    };
    let forgotten = state.use_cases().forget_files(&who, id, which).await?;
    Ok(HttpResponse::Ok().json(ForgetResponse { forgotten }))
}

/// List the files a run read, with their rows' outcomes.
#[utoipa::path(
    get,
    path = "/api/v1/pipelines/{id}/runs/{runId}/files",
    operation_id = "listRunFiles",
    tag = "files",
    params(
        ("id" = PipelineId, Path, description = "Pipeline id (`pipe_…`)"),
        ("runId" = sluice_domain::ids::RunId, Path, description = "Run id (`run_…`)"),
        ListParams
    ),
    responses((status = 200, description = "One page of the run's files, in the order the run reads them", body = RunFilePage))
)]
pub async fn run_files(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (id, run_id) = run_path(&req)?;
    let page = page_request(&req)?;
    let files = state
        .use_cases()
        .list_run_files(&who, id, run_id, &page)
        .await?;
    Ok(HttpResponse::Ok().json(dto::page(files, |f| f)))
}
