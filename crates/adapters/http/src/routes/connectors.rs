//! `/connectors`: read by every role; written and tested by admins. No answer
//! of these routes carries a secret value: connectors expose only the names
//! of their credentials, and decoding errors on `credentials` never quote
//! the rejected value.

use actix_web::{HttpRequest, HttpResponse, web};
use sluice_application::usecases::InferRequest;
use sluice_domain::connector::{Connector, ConnectorSpec};
use sluice_domain::ids::ConnectorId;
use sluice_domain::pipeline::SourceSpec;
use sluice_domain::role::Action;

use crate::auth::Caller;
use crate::dto::{self, ConnectorCheckDto, ConnectorPage, InferRequestDto, InferenceDto};
use crate::error::ApiError;
use crate::request::{
    ListParams, decode_body, hide_secret_values, json_body, page_request, path_id,
};
use crate::state::ApiState;

/// List connectors (newest first).
#[utoipa::path(
    get,
    path = "/api/v1/connectors",
    operation_id = "listConnectors",
    tag = "connectors",
    params(ListParams),
    responses((status = 200, description = "One page of connectors", body = ConnectorPage))
)]
pub async fn list(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    who.require(Action::ReadConnectors)?;
    let page = page_request(&req)?;
    let connectors = state.use_cases().list_connectors(&who, &page).await?;
    Ok(HttpResponse::Ok().json(dto::page(connectors, |c| c)))
}

/// Create a connector.
///
/// `credentials` are write-only: answers list only their names.
#[utoipa::path(
    post,
    path = "/api/v1/connectors",
    operation_id = "createConnector",
    tag = "connectors",
    request_body = ConnectorSpec,
    responses((status = 201, description = "The connector", body = Connector))
)]
pub async fn create(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    who.require(Action::WriteConnectors)?;
    let spec: ConnectorSpec = decode_body(&req, body).await.map_err(hide_secret_values)?;
    let connector = state
        .use_cases()
        .create_connector(&who, spec)
        .await
        .map_err(|e| hide_secret_values(e.into()))?;
    Ok(HttpResponse::Created().json(connector))
}

/// Get a connector (without secret values).
#[utoipa::path(
    get,
    path = "/api/v1/connectors/{id}",
    operation_id = "getConnector",
    tag = "connectors",
    params(("id" = ConnectorId, Path, description = "Connector id (`conn_…`)")),
    responses((status = 200, description = "The connector", body = Connector))
)]
pub async fn get(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: ConnectorId = path_id(&req, "id")?;
    Ok(HttpResponse::Ok().json(state.use_cases().get_connector(&who, id).await?))
}

/// Change a connector.
///
/// The body is a JSON merge patch (RFC 7386). A `credentials` member
/// replaces every stored secret; without it the secrets are kept.
#[utoipa::path(
    patch,
    path = "/api/v1/connectors/{id}",
    operation_id = "updateConnector",
    tag = "connectors",
    params(("id" = ConnectorId, Path, description = "Connector id (`conn_…`)")),
    request_body(
        content = crate::dto::ConnectorPatch,
        content_type = "application/merge-patch+json",
        description = "Members of a connector to change (`null` removes an optional member)",
        example = json!({"config": {"region": "eu-west-1"}})
    ),
    responses((status = 200, description = "The changed connector", body = Connector))
)]
pub async fn update(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    who.require(Action::WriteConnectors)?;
    let id: ConnectorId = path_id(&req, "id")?;
    let patch = json_body(&req, body).await?;
    let connector = state
        .use_cases()
        .update_connector(&who, id, patch)
        .await
        .map_err(|e| hide_secret_values(e.into()))?;
    Ok(HttpResponse::Ok().json(connector))
}

/// Delete a connector that no pipeline uses.
#[utoipa::path(
    delete,
    path = "/api/v1/connectors/{id}",
    operation_id = "deleteConnector",
    tag = "connectors",
    params(("id" = ConnectorId, Path, description = "Connector id (`conn_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "A pipeline uses the connector", body = crate::error::ErrorBody)
    )
)]
pub async fn delete(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: ConnectorId = path_id(&req, "id")?;
    state.use_cases().delete_connector(&who, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Test a connector.
///
/// Checks its settings and credentials by listing its bucket or root. A
/// failed check is a normal answer (`ok: false`).
#[utoipa::path(
    post,
    path = "/api/v1/connectors/{id}/test",
    operation_id = "testConnector",
    tag = "connectors",
    params(("id" = ConnectorId, Path, description = "Connector id (`conn_…`)")),
    responses((status = 200, description = "The outcome of the check", body = ConnectorCheckDto))
)]
pub async fn test(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: ConnectorId = path_id(&req, "id")?;
    let check = state.use_cases().test_connector(&who, id).await?;
    Ok(HttpResponse::Ok().json(dto::connector_check(check)))
}

/// Infer a schema from a connector's files.
///
/// Samples up to `rows` rows (default 10000) spread over up to `files`
/// files (default 10; the oldest and the newest among them) under `prefix`
/// and `pattern`, read as a pipeline with this source would read them, and
/// proposes for each column the narrowest type every sampled non-empty value
/// satisfies, with the evidence. At most 64 MiB of each file and 30 s in
/// all are read; what was read by then is answered, with a warning. Nothing
/// is written anywhere.
#[utoipa::path(
    post,
    path = "/api/v1/connectors/{id}/infer",
    operation_id = "inferSchema",
    tag = "connectors",
    params(("id" = ConnectorId, Path, description = "Connector id (`conn_…`)")),
    request_body = InferRequestDto,
    responses(
        (status = 200, description = "The proposal", body = InferenceDto),
        (status = 422, description = "The source cannot be listed or read, holds no matching file or no record", body = crate::error::ErrorBody)
    )
)]
pub async fn infer(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id: ConnectorId = path_id(&req, "id")?;
    // The role before the input (decision 0013).
    who.require(Action::WritePipelines)?;
    let body: InferRequestDto = decode_body(&req, body).await?;
    let request = InferRequest {
        source: SourceSpec {
            prefix: body.prefix,
            pattern: body.pattern,
            format: body.format,
            csv: body.csv,
            compression: body.compression,
            files: None,
        },
        rows: body.rows,
        files: body.files,
    };
    let report = state.use_cases().infer_schema(&who, id, request).await?;
    Ok(HttpResponse::Ok().json(dto::inference(report)))
}
