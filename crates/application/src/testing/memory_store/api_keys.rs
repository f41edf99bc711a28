//! [`ApiKeyStore`] in memory.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sluice_domain::ids::ApiKeyId;
use sluice_domain::time::Timestamp;

use super::{InMemoryStore, page_of};
use crate::ports::{ApiKey, ApiKeyStore, NewApiKey, Page, PageRequest, StoreError};

#[async_trait]
impl ApiKeyStore for InMemoryStore {
    async fn insert_api_key(&self, key: &NewApiKey) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if s.api_keys.contains_key(&key.key.id)
            || s.api_keys.values().any(|(_, h)| *h == key.secret_hash)
        {
            return Err(StoreError::Conflict("API key already exists".into()));
        }
        s.api_keys
            .insert(key.key.id, (key.key.clone(), key.secret_hash.clone()));
        Ok(())
    }

    async fn ensure_api_key(&self, key: &NewApiKey) -> Result<bool, StoreError> {
        let mut s = self.lock()?;
        if s.api_keys.values().any(|(_, h)| *h == key.secret_hash) {
            return Ok(false);
        }
        s.api_keys
            .insert(key.key.id, (key.key.clone(), key.secret_hash.clone()));
        Ok(true)
    }

    async fn find_api_key_by_hash(&self, secret_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let s = self.lock()?;
        Ok(s.api_keys
            .values()
            .find(|(k, h)| h == secret_hash && k.revoked_at.is_none())
            .map(|(k, _)| k.clone()))
    }

    async fn list_api_keys(&self, page: &PageRequest) -> Result<Page<ApiKey>, StoreError> {
        let s = self.lock()?;
        let keys: BTreeMap<ApiKeyId, ApiKey> = s
            .api_keys
            .iter()
            .map(|(id, (k, _))| (*id, k.clone()))
            .collect();
        Ok(page_of(&keys, page, |_| true))
    }

    async fn revoke_api_key(&self, id: ApiKeyId, at: Timestamp) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        let (key, _) = s
            .api_keys
            .get_mut(&id)
            .ok_or_else(|| StoreError::not_found("API key", id))?;
        key.revoked_at.get_or_insert(at);
        Ok(())
    }
}
