//! The body of every error answer: `{"error": {"code", "message", "field"}}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code: `bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `method_not_allowed`, `conflict`, `payload_too_large`,
    /// `unsupported_media_type`, `unprocessable_entity`, `service_unavailable`
    /// or `internal`.
    #[schema(example = "not_found")]
    pub code: String,
    /// What went wrong, in plain words.
    pub message: String,
    /// The offending field (400 only), as a JSON path such as
    /// `destination.keyColumns[0]`, or a path or query parameter name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
