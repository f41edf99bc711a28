//! Business errors of the domain. Every illegal input or transition is one of
//! these variants; nothing in this crate panics on bad input.

use crate::status::{PartitionStatus, RunStatus};

/// A violated business rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// An id string does not have the expected prefix or ULID body.
    #[error("invalid {kind} id `{value}`: expected `{prefix}` followed by a 26-character ULID")]
    InvalidId {
        /// Human name of the id kind ("pipeline", "run", ...).
        kind: &'static str,
        /// Expected prefix, such as `pipe_`.
        prefix: &'static str,
        /// The rejected input (cut to 100 characters).
        value: String,
    },
    /// A table or column name is not a safe SQL identifier.
    #[error("invalid identifier `{value}`: {reason}")]
    InvalidIdentifier {
        /// The rejected input (cut to 100 characters).
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A run cannot move from one status to another.
    #[error("a run cannot go from {from} to {to}")]
    IllegalRunTransition {
        /// Current status.
        from: RunStatus,
        /// Requested status.
        to: RunStatus,
    },
    /// A partition cannot move from one status to another.
    #[error("a partition cannot go from {from} to {to}")]
    IllegalPartitionTransition {
        /// Current status.
        from: PartitionStatus,
        /// Requested status.
        to: PartitionStatus,
    },
    /// Retry asked for a run whose status does not allow it.
    #[error("run status {status} does not allow retry (must be failed or completed_with_errors)")]
    RetryNotAllowed {
        /// The status of the run that was to be retried.
        status: RunStatus,
    },
    /// A definition (pipeline, schema, connector) is invalid; `field` names the
    /// offending field as a JSON path such as `schema.columns[2].type`.
    #[error("{field}: {message}")]
    InvalidField {
        /// JSON path of the offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A checkpoint would move backwards or beyond its partition's range.
    #[error("checkpoint {checkpoint} is outside the partition's rows {first}..={last}")]
    CheckpointOutOfRange {
        /// Requested checkpoint (last committed row).
        checkpoint: u64,
        /// First row of the partition.
        first: u64,
        /// Last row of the partition.
        last: u64,
    },
}

impl DomainError {
    /// Shorthand for [`DomainError::InvalidField`].
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Cuts user input echoed in an error message to a readable length.
pub(crate) fn echo(value: &str) -> String {
    const MAX: usize = 100;
    if value.chars().count() <= MAX {
        value.to_owned()
    } else {
        let mut cut: String = value.chars().take(MAX).collect();
        cut.push('…');
        cut
    }
}
