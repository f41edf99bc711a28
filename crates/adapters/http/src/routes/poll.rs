//! `/pipelines/poll`: touch-file polling status and a manual cycle.

use actix_web::{HttpResponse, web};

use crate::auth::Caller;
use crate::dto::{self, PollStatusDto, PollStatusResponse, PollTriggerResponse};
use crate::error::ApiError;
use crate::state::ApiState;

/// Get the polling status.
///
/// Check polling status for all active pipelines with file-based polling
/// enabled.
#[utoipa::path(
    get,
    path = "/api/v1/pipelines/poll",
    operation_id = "getPollStatus",
    tag = "polling",
    responses((status = 200, description = "The watched pipelines", body = PollStatusResponse))
)]
pub async fn status(
    Caller(who): Caller,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let pipelines: Vec<PollStatusDto> = state
        .use_cases()
        .poll_status(&who)
        .await?
        .into_iter()
        .map(dto::poll_status)
        .collect();
    Ok(HttpResponse::Ok().json(PollStatusResponse {
        total: pipelines.len() as u64,
        pipelines,
    }))
}

/// Trigger one polling cycle.
///
/// Checks all active pipelines with polling enabled for their touch file and
/// triggers runs when found.
#[utoipa::path(
    post,
    path = "/api/v1/pipelines/poll",
    operation_id = "triggerPoll",
    tag = "polling",
    responses((status = 200, description = "The outcome of the cycle", body = PollTriggerResponse))
)]
pub async fn trigger(
    Caller(who): Caller,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let report = state.use_cases().trigger_poll(&who).await?;
    Ok(HttpResponse::Ok().json(dto::poll_trigger(report)))
}
