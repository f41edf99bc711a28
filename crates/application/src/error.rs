//! Errors of the application layer: what a use case can fail with. Each maps
//! to exactly one HTTP status in `sluice-http`.

use sluice_domain::DomainError;

use crate::ports::{CommitError, SourceError, StoreError};

/// Why a use case failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// Bad input; `field` names the offending field as a JSON path (400).
    #[error("{field}: {message}")]
    Invalid {
        /// JSON path of the offending field (`body` for the whole body).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No or unknown credentials (401).
    #[error("missing or invalid API key")]
    Unauthorized,
    /// The caller's role may not do this (403).
    #[error("role {role} may not {action}")]
    Forbidden {
        /// The caller's role.
        role: String,
        /// What was attempted, in words.
        action: String,
    },
    /// The entity does not exist (404).
    #[error("{entity} {id} not found")]
    NotFound {
        /// Entity kind ("pipeline", "run", ...).
        entity: &'static str,
        /// The id that was looked up.
        id: String,
    },
    /// The request conflicts with the current state of another entity (409),
    /// e.g. starting a run while one is active.
    #[error("{0}")]
    Conflict(String),
    /// The entity's own state does not allow the operation (422), e.g. retrying
    /// a completed run.
    #[error("{0}")]
    Unprocessable(String),
    /// A dependency (database, object store) is unavailable (503).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupt state (500). Never used for bad input.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// Shorthand for [`AppError::Invalid`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<DomainError> for AppError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::InvalidField { field, message } => Self::Invalid { field, message },
            DomainError::InvalidId { prefix, .. } => Self::invalid(id_field(prefix), e.to_string()),
            DomainError::InvalidIdentifier { .. } => Self::invalid("identifier", e.to_string()),
            DomainError::IllegalRunTransition { .. }
            | DomainError::IllegalPartitionTransition { .. }
            | DomainError::RetryNotAllowed { .. } => Self::Unprocessable(e.to_string()),
            DomainError::CheckpointOutOfRange { .. } => Self::Internal(e.to_string()),
            _ => Self::Internal(e.to_string()),
        }
    }
}

/// The JSON name of the field holding an id of the kind with `prefix`.
fn id_field(prefix: &str) -> &'static str {
    match prefix {
        "pipe_" => "pipelineId",
        "run_" => "runId",
        "conn_" => "connectorId",
        "key_" => "apiKeyId",
        _ => "id",
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { entity, id } => Self::NotFound { entity, id },
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::Unprocessable(m) => Self::Unprocessable(m),
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Internal(m) => Self::Internal(m),
        }
    }
}

impl From<CommitError> for AppError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Fenced(m) => Self::Conflict(m),
            CommitError::Destination(m) => Self::Unprocessable(m),
            CommitError::Store(e) => e.into(),
        }
    }
}

impl From<SourceError> for AppError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::InvalidConfig(m) => Self::invalid("config", m),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_domain::ids::{ApiKeyId, ConnectorId};

    #[test]
    fn invalid_ids_name_their_field() {
        let field = |e: DomainError| match AppError::from(e) {
            AppError::Invalid { field, .. } => field,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            field(ApiKeyId::parse("nope").expect_err("invalid")),
            "apiKeyId"
        );
        assert_eq!(
            field(ConnectorId::parse("nope").expect_err("invalid")),
            "connectorId"
        );
    }
}
