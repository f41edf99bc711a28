//! Who is calling, and may they.

use sha2::{Digest, Sha256};
use sluice_domain::ids::ApiKeyId;
use sluice_domain::role::{Action, Role};

use super::App;
use crate::AppError;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key used.
    pub key_id: ApiKeyId,
    /// Its role.
    pub role: Role,
}

impl Principal {
    /// `Forbidden` unless the role table allows `action`.
    pub fn require(&self, action: Action) -> Result<(), AppError> {
        if self.role.may(action) {
            Ok(())
        } else {
            Err(AppError::Forbidden {
                role: self.role.to_string(),
                action: describe(action).to_owned(),
            })
        }
    }
}

fn describe(action: Action) -> &'static str {
    match action {
        Action::ListApiKeys => "list API keys",
        Action::ManageApiKeys => "manage API keys",
        Action::ReadConnectors => "read connectors",
        Action::WriteConnectors => "change connectors",
        Action::TestConnector => "test connectors",
        Action::ReadPipelines => "read pipelines",
        Action::WritePipelines => "change pipelines",
        Action::ReadRuns => "read runs",
        Action::StartRun => "start runs",
        Action::CancelRun => "cancel runs",
        Action::ReadProgress => "read run progress",
        Action::ReadErrors => "read run errors",
        Action::RetryRun => "retry runs",
        Action::ReadPolling => "read polling status",
        Action::TriggerPolling => "trigger polling",
    }
}

/// Hex SHA-256 of an API key secret: the only form in which keys are stored.
/// Keys are 256-bit random values, so a fast hash is enough (no password
/// stretching needed).
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl App {
    /// Authenticates a bearer secret. `Unauthorized` when absent, unknown or revoked.
    pub async fn authenticate(&self, secret: Option<&str>) -> Result<Principal, AppError> {
        let secret = secret
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(AppError::Unauthorized)?;
        // Bound the work an attacker can cause with a huge header.
        if secret.len() > 512 {
            return Err(AppError::Unauthorized);
        }
        let key = self
            .ports()
            .api_keys
            .find_api_key_by_hash(&hash_secret(secret))
            .await?
            .ok_or(AppError::Unauthorized)?;
        Ok(Principal {
            key_id: key.id,
            role: key.role,
        })
    }
}
