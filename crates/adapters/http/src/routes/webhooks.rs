//! `/webhooks` (admin only): subscriptions, their delivery log, redelivery.
//! No answer carries a secret: subscriptions answer `secretSet: true`, and a
//! 400 on `secret` never quotes the value sent. The role is checked before
//! the body or query is read (decision 0013).

use actix_web::{HttpRequest, HttpResponse, web};
use sluice_domain::ids::{DeliveryId, WebhookId};
use sluice_domain::role::Action;
use sluice_domain::webhook::WebhookRequest;

use crate::auth::Caller;
use crate::dto::{self, RedeliverResponse, WebhookDto};
use crate::error::ApiError;
use crate::request::{ListParams, decode_body, json_body, page_request, path_id};
use crate::state::ApiState;

/// A 400 on `secret` (serde quotes the value it refused) with a fixed message.
fn hide_secret(e: ApiError) -> ApiError {
    match e {
        ApiError::App(sluice_application::AppError::Invalid { field, .. }) if field == "secret" => {
            ApiError::invalid(
                "secret",
                "must be a string of 16 to 256 characters without control characters",
            )
        }
        other => other,
    }
}

/// List webhook subscriptions (newest first).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    operation_id = "listWebhooks",
    tag = "webhooks",
    params(ListParams),
    responses((status = 200, description = "One page of subscriptions", body = dto::WebhookPage))
)]
pub async fn list(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    who.require(Action::ManageWebhooks)?;
    let page = page_request(&req)?;
    let hooks = state.use_cases().list_webhooks(&who, &page).await?;
    Ok(HttpResponse::Ok().json(dto::page(hooks, WebhookDto::new)))
}

/// Create a webhook subscription.
///
/// `secret` is write-only. A loopback, link-local or private `url` is a 400
/// unless the server runs with `SLUICE_WEBHOOK_ALLOW_PRIVATE=1`.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    operation_id = "createWebhook",
    tag = "webhooks",
    request_body = WebhookRequest,
    responses((status = 201, description = "The subscription", body = WebhookDto))
)]
pub async fn create(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    who.require(Action::ManageWebhooks)?;
    let request: WebhookRequest = decode_body(&req, body).await.map_err(hide_secret)?;
    let hook = state
        .use_cases()
        .create_webhook(&who, request)
        .await
        .map_err(|e| hide_secret(e.into()))?;
    Ok(HttpResponse::Created().json(WebhookDto::new(hook)))
}

/// Get a webhook subscription (without its secret).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    operation_id = "getWebhook",
    tag = "webhooks",
    params(("id" = WebhookId, Path, description = "Webhook id (`whk_…`)")),
    responses((status = 200, description = "The subscription", body = WebhookDto))
)]
pub async fn get(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    who.require(Action::ManageWebhooks)?;
    let id: WebhookId = path_id(&req, "id")?;
    Ok(HttpResponse::Ok().json(WebhookDto::new(
        state.use_cases().get_webhook(&who, id).await?,
    )))
}

/// Change a webhook subscription.
///
/// The body is a JSON merge patch (RFC 7386); without `secret` the stored
/// secret is kept.
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{id}",
    operation_id = "updateWebhook",
    tag = "webhooks",
    params(("id" = WebhookId, Path, description = "Webhook id (`whk_…`)")),
    request_body(
        content = crate::dto::WebhookPatch,
        content_type = "application/merge-patch+json",
        description = "Members of a subscription to change",
        example = json!({"enabled": false})
    ),
    responses((status = 200, description = "The changed subscription", body = WebhookDto))
)]
pub async fn update(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    who.require(Action::ManageWebhooks)?;
    let id: WebhookId = path_id(&req, "id")?;
    let patch = json_body(&req, body).await?;
    let hook = state
        .use_cases()
        .update_webhook(&who, id, patch)
        .await
        .map_err(|e| hide_secret(e.into()))?;
    Ok(HttpResponse::Ok().json(WebhookDto::new(hook)))
}

/// Delete a webhook subscription, its pending events and its delivery log.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    operation_id = "deleteWebhook",
    tag = "webhooks",
    params(("id" = WebhookId, Path, description = "Webhook id (`whk_…`)")),
    responses((status = 204, description = "Deleted"))
)]
pub async fn delete(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    who.require(Action::ManageWebhooks)?;
    let id: WebhookId = path_id(&req, "id")?;
    state.use_cases().delete_webhook(&who, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The delivery log of a subscription: every attempt, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    operation_id = "listWebhookDeliveries",
    tag = "webhooks",
    params(("id" = WebhookId, Path, description = "Webhook id (`whk_…`)"), ListParams),
    responses((status = 200, description = "One page of delivery attempts", body = dto::DeliveryPage))
)]
pub async fn deliveries(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    who.require(Action::ManageWebhooks)?;
    let id: WebhookId = path_id(&req, "id")?;
    let page = page_request(&req)?;
    let log = state.use_cases().list_deliveries(&who, id, &page).await?;
    Ok(HttpResponse::Ok().json(dto::page(log, dto::delivery)))
}

/// Send the event of a delivery again.
///
/// The event (same id, same body) becomes pending with a new 24-hour retry
/// window; a worker sends it shortly.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver",
    operation_id = "redeliverWebhookEvent",
    tag = "webhooks",
    params(
        ("id" = WebhookId, Path, description = "Webhook id (`whk_…`)"),
        ("deliveryId" = DeliveryId, Path, description = "Delivery id (`dlv_…`)")
    ),
    responses((status = 202, description = "Queued again", body = RedeliverResponse))
)]
pub async fn redeliver(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    who.require(Action::ManageWebhooks)?;
    let id: WebhookId = path_id(&req, "id")?;
    let delivery: DeliveryId = path_id(&req, "deliveryId")?;
    let event_id = state.use_cases().redeliver(&who, id, delivery).await?;
    Ok(HttpResponse::Accepted().json(RedeliverResponse {
        event_id,
        state: "pending".into(),
    }))
}
