//! What every handler shares: the use cases and the HTTP metrics.

use std::sync::Arc;

use actix_web::{HttpRequest, web};
use sluice_application::usecases::App;

use crate::error::ApiError;
use crate::metrics::HttpMetrics;

/// The state behind the API, cheap to clone (one per actix worker).
#[derive(Debug, Clone)]
pub struct ApiState {
    app: App,
    metrics: Arc<HttpMetrics>,
}

impl ApiState {
    /// State over `app` with a fresh metrics registry.
    pub fn new(app: App) -> Self {
        Self::with_metrics(app, Arc::default())
    }

    /// State over `app` recording into `metrics` (share one registry across
    /// actix workers so `/metrics` sees every request).
    pub fn with_metrics(app: App, metrics: Arc<HttpMetrics>) -> Self {
        Self { app, metrics }
    }

    /// The use cases.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The HTTP metrics registry.
    pub fn metrics(&self) -> &Arc<HttpMetrics> {
        &self.metrics
    }

    /// The state registered on the actix app; a 500 if the app was built
    /// without it (a wiring bug, not bad input).
    pub(crate) fn of(req: &HttpRequest) -> Result<web::Data<ApiState>, ApiError> {
        req.app_data::<web::Data<ApiState>>()
            .cloned()
            .ok_or_else(|| ApiError::internal("ApiState is not registered on the actix app"))
    }
}
