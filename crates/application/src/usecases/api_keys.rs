//! API keys: random secrets shown once, stored as hashes, one role each.

use rand::Rng;
use sluice_domain::connector::validate_name;
use sluice_domain::ids::ApiKeyId;
use sluice_domain::role::{Action, Role};

use super::auth::hash_secret;
use super::{Principal, UseCases};
use crate::AppError;
use crate::ports::{ApiKey, NewApiKey, Page, PageRequest};

/// A newly created key: the only time the secret is visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedApiKey {
    /// The stored key.
    pub key: ApiKey,
    /// The secret to put in `Authorization: Bearer …`.
    pub secret: String,
}

/// Shortest secret accepted from `SLUICE_ADMIN_KEY`.
pub const MIN_SECRET_LEN: usize = 16;

fn new_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("sk_{}", hex::encode(bytes))
}

fn display_prefix(secret: &str) -> String {
    secret.chars().take(10).collect()
}

impl UseCases {
    fn new_key(&self, name: &str, role: Role, secret: &str) -> Result<NewApiKey, AppError> {
        validate_name(name, "name")?;
        Ok(NewApiKey {
            key: ApiKey {
                id: ApiKeyId::from_ulid(self.ports().ids.ulid()),
                name: name.trim().to_owned(),
                role,
                prefix: display_prefix(secret),
                created_at: self.ports().clock.now(),
                revoked_at: None,
            },
            secret_hash: hash_secret(secret),
        })
    }

    /// Creates a key with a fresh random secret (admin only).
    pub async fn create_api_key(
        &self,
        who: &Principal,
        name: &str,
        role: Role,
    ) -> Result<CreatedApiKey, AppError> {
        who.require(Action::ManageApiKeys)?;
        self.issue_api_key(name, role).await
    }

    /// Creates a key without a caller: `sluice apikey create` on the server.
    pub async fn issue_api_key(&self, name: &str, role: Role) -> Result<CreatedApiKey, AppError> {
        let secret = new_secret();
        let key = self.new_key(name, role, &secret)?;
        self.ports().api_keys.insert_api_key(&key).await?;
        Ok(CreatedApiKey {
            key: key.key,
            secret,
        })
    }

    /// Ensures a key with this exact secret exists (for `SLUICE_ADMIN_KEY`);
    /// idempotent. Returns true when it was created now.
    pub async fn ensure_api_key(
        &self,
        secret: &str,
        role: Role,
        name: &str,
    ) -> Result<bool, AppError> {
        if secret.len() < MIN_SECRET_LEN
            || secret.len() > 512
            || secret.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(AppError::invalid(
                "SLUICE_ADMIN_KEY",
                format!("must be {MIN_SECRET_LEN} to 512 characters without spaces"),
            ));
        }
        let key = self.new_key(name, role, secret)?;
        Ok(self.ports().api_keys.ensure_api_key(&key).await?)
    }

    /// Lists keys (admin only); secrets are never included.
    pub async fn list_api_keys(
        &self,
        who: &Principal,
        page: &PageRequest,
    ) -> Result<Page<ApiKey>, AppError> {
        who.require(Action::ListApiKeys)?;
        Ok(self.ports().api_keys.list_api_keys(page).await?)
    }

    /// Revokes a key (admin only); it stops working at once.
    pub async fn revoke_api_key(&self, who: &Principal, id: ApiKeyId) -> Result<(), AppError> {
        who.require(Action::ManageApiKeys)?;
        let now = self.ports().clock.now();
        self.ports().api_keys.revoke_api_key(id, now).await?;
        self.auth_cache.forget_key(id);
        Ok(())
    }
}
