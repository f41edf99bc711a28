//! The one place where failures become HTTP responses.
//!
//! Every error body is `{"error": {"code", "message"}}`, with a `field` member
//! for 400s naming the offending field as a JSON path (or the path or query
//! parameter). Internal errors are logged with their detail and answered with
//! a fixed message, so driver text never reaches a caller.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
pub use sluice_api_types::{ErrorBody, ErrorDetail};
use sluice_application::AppError;

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// A use case failed (each variant has one status).
    App(AppError),
    /// No route matches the path.
    RouteNotFound,
    /// An id in the path is malformed, so it names nothing (a 404).
    MalformedId {
        /// What is wrong with it.
        message: String,
    },
    /// The path exists, the method does not; `allow` lists the methods it has.
    MethodNotAllowed {
        /// Value of the `Allow` header.
        allow: &'static str,
    },
    /// The body is larger than the limit.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not JSON by its `Content-Type`.
    UnsupportedMediaType,
    /// The body did not arrive whole within the limit (a client trickling
    /// it, or gone silent).
    RequestTimeout {
        /// The limit in seconds.
        seconds: u64,
    },
}

impl ApiError {
    /// A 400 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::App(AppError::invalid(field, message))
    }

    /// A 500 for a wiring mistake, with a fixed message for the caller.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::App(AppError::Internal(detail.into()))
    }

    /// The error body (what the caller sees).
    pub fn body(&self) -> ErrorBody {
        let (code, message, field) = match self {
            Self::App(e) => app_detail(e),
            Self::RouteNotFound => ("not_found", "no such route".to_owned(), None),
            Self::MalformedId { message } => ("not_found", message.clone(), None),
            Self::MethodNotAllowed { allow } => (
                "method_not_allowed",
                format!("method not allowed here; allowed: {allow}"),
                None,
            ),
            Self::PayloadTooLarge { limit } => (
                "payload_too_large",
                format!("the body is larger than {limit} bytes"),
                None,
            ),
            Self::UnsupportedMediaType => (
                "unsupported_media_type",
                "the body must be JSON: send Content-Type: application/json".to_owned(),
                None,
            ),
            Self::RequestTimeout { seconds } => (
                "request_timeout",
                format!("the body did not arrive within {seconds} s"),
                None,
            ),
        };
        ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
                field,
            },
        }
    }
}

fn app_detail(e: &AppError) -> (&'static str, String, Option<String>) {
    match e {
        AppError::Invalid { field, message } => {
            ("bad_request", message.clone(), Some(field.clone()))
        }
        AppError::Unauthorized => ("unauthorized", e.to_string(), None),
        AppError::Forbidden { .. } => ("forbidden", e.to_string(), None),
        AppError::NotFound { .. } => ("not_found", e.to_string(), None),
        AppError::Conflict(m) => ("conflict", m.clone(), None),
        AppError::Unprocessable(m) => ("unprocessable_entity", m.clone(), None),
        AppError::Unavailable(_) => ("service_unavailable", e.to_string(), None),
        // `Internal` and any variant added later: the detail is logged, never shown.
        _ => ("internal", "internal error".to_owned(), None),
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::App(e) => e.fmt(f),
            other => f.write_str(&other.body().error.message),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::App(e) => match e {
                AppError::Invalid { .. } => StatusCode::BAD_REQUEST,
                AppError::Unauthorized => StatusCode::UNAUTHORIZED,
                AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
                AppError::NotFound { .. } => StatusCode::NOT_FOUND,
                AppError::Conflict(_) => StatusCode::CONFLICT,
                AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
                AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::RouteNotFound | Self::MalformedId { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            // The detail is for operators only; the request span carries the request id.
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        }
        let mut res = HttpResponse::build(status);
        match self {
            Self::App(AppError::Unauthorized) => {
                res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            Self::MethodNotAllowed { allow } => {
                res.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
            }
            _ => {}
        }
        res.json(self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_app_error_has_its_status_and_code() {
        let cases = [
            (
                AppError::invalid("partitions", "too many"),
                400,
                "bad_request",
            ),
            (AppError::Unauthorized, 401, "unauthorized"),
            (
                AppError::Forbidden {
                    role: "viewer".into(),
                    action: "retry runs".into(),
                },
                403,
                "forbidden",
            ),
            (
                AppError::NotFound {
                    entity: "run",
                    id: "run_x".into(),
                },
                404,
                "not_found",
            ),
            (AppError::Conflict("busy".into()), 409, "conflict"),
            (
                AppError::Unprocessable("no".into()),
                422,
                "unprocessable_entity",
            ),
            (
                AppError::Unavailable("db down".into()),
                503,
                "service_unavailable",
            ),
            (AppError::Internal("x".into()), 500, "internal"),
        ];
        for (e, status, code) in cases {
            let api = ApiError::from(e);
            assert_eq!(api.status_code().as_u16(), status);
            assert_eq!(api.body().error.code, code);
        }
    }

    #[test]
    fn only_400_names_a_field_and_500_hides_the_detail() {
        let body = ApiError::invalid("destination.table", "bad").body();
        assert_eq!(body.error.field.as_deref(), Some("destination.table"));
        let body = ApiError::internal("driver: connection reset by peer").body();
        assert_eq!(body.error.message, "internal error");
        assert_eq!(body.error.field, None);
        let json = serde_json::to_value(ApiError::RouteNotFound.body()).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"error": {"code": "not_found", "message": "no such route"}})
        );
    }
}
