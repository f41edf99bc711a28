//! `/api-keys`: admin only. Secrets are shown once, at creation.

use actix_web::{HttpRequest, HttpResponse, web};
use sluice_domain::ids::ApiKeyId;
use sluice_domain::role::Action;

use crate::auth::Caller;
use crate::dto::{self, ApiKeyPage, CreateApiKeyRequest, CreatedApiKeyDto};
use crate::error::ApiError;
use crate::request::{ListParams, decode_body, page_request, path_id};
use crate::state::ApiState;

/// List API keys (revoked ones included, secrets never).
#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    operation_id = "listApiKeys",
    tag = "api-keys",
    params(ListParams),
    responses((status = 200, description = "One page of keys", body = ApiKeyPage))
)]
pub async fn list(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    who.require(Action::ListApiKeys)?;
    let page = page_request(&req)?;
    let keys = state.use_cases().list_api_keys(&who, &page).await?;
    Ok(HttpResponse::Ok().json(dto::page(keys, dto::api_key)))
}

/// Create an API key.
///
/// The answer carries the secret (`key`): it is stored only as a hash and
/// never shown again.
#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    operation_id = "createApiKey",
    tag = "api-keys",
    request_body = CreateApiKeyRequest,
    responses((status = 201, description = "The key, with its secret", body = CreatedApiKeyDto))
)]
pub async fn create(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    who.require(Action::ManageApiKeys)?;
    let request: CreateApiKeyRequest = decode_body(&req, body).await?;
    let created = state
        .use_cases()
        .create_api_key(&who, &request.name, request.role)
        .await?;
    Ok(HttpResponse::Created().json(dto::created_api_key(created)))
}

/// Revoke an API key; it stops working at once.
#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{id}",
    operation_id = "revokeApiKey",
    tag = "api-keys",
    params(("id" = ApiKeyId, Path, description = "API key id (`key_…`)")),
    responses((status = 204, description = "Revoked"))
)]
pub async fn revoke(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: ApiKeyId = path_id(&req, "id")?;
    state.use_cases().revoke_api_key(&who, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
