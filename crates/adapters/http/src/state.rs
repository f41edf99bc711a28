//! What every handler shares: the use cases and the HTTP metrics.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, web};
use sluice_application::usecases::UseCases;

use crate::error::ApiError;
use crate::metrics::HttpMetrics;

/// The state behind the API, cheap to clone (one per actix worker).
#[derive(Debug, Clone)]
pub struct ApiState {
    use_cases: UseCases,
    metrics: Arc<HttpMetrics>,
    body_timeout: Duration,
}

/// How long a request body may take to arrive by default.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

impl ApiState {
    /// State over `use_cases` with a fresh metrics registry.
    pub fn new(use_cases: UseCases) -> Self {
        Self::with_metrics(use_cases, Arc::default())
    }

    /// State over `use_cases` recording into `metrics` (share one registry
    /// across actix workers so `/metrics` sees every request).
    pub fn with_metrics(use_cases: UseCases, metrics: Arc<HttpMetrics>) -> Self {
        Self {
            use_cases,
            metrics,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }

    /// Answers 408 to a request whose body has not arrived whole after
    /// `timeout` (default [`DEFAULT_BODY_TIMEOUT`]), so a client trickling a
    /// body holds its connection no longer than that.
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// See [`ApiState::with_body_timeout`].
    pub fn body_timeout(&self) -> Duration {
        self.body_timeout
    }

    /// The use cases.
    pub fn use_cases(&self) -> &UseCases {
        &self.use_cases
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
