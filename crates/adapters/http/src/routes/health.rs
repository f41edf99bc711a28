//! Unauthenticated operational endpoints: liveness, readiness, metrics and
//! the OpenAPI document. None of them reveals names, ids or secrets.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::dto::HealthStatus;
use crate::error::{ApiError, ErrorBody};
use crate::state::ApiState;

/// Liveness: the process serves HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "health",
    responses((status = 200, description = "Alive", body = HealthStatus))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus {
        status: "ok".into(),
    })
}

/// Readiness: the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = HealthStatus),
        (status = 503, description = "The database does not answer", body = ErrorBody)
    )
)]
pub async fn readyz(state: web::Data<ApiState>) -> HttpResponse {
    match state.use_cases().readiness().await {
        Ok(()) => HttpResponse::Ok().json(HealthStatus {
            status: "ready".into(),
        }),
        Err(e) => {
            // The cause may name hosts; it goes to the log, not to anonymous callers.
            tracing::warn!(error = %e, "readiness check failed");
            let body = ApiError::App(sluice_application::AppError::Unavailable(
                "the database does not answer".into(),
            ))
            .body();
            HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(body)
        }
    }
}

/// Prometheus metrics: runs by status, HTTP requests by route and status.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"))
)]
pub async fn metrics(state: web::Data<ApiState>) -> HttpResponse {
    let snapshot = match state.use_cases().metrics_snapshot().await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the store did not answer");
            None
        }
    };
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics().render(snapshot.as_ref()))
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "getOpenApi",
    tag = "health",
    responses((status = 200, description = "The OpenAPI 3 document", body = Object))
)]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::openapi::openapi_json())
}
