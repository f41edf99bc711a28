//! [`ApiKeyStore`]: keys are stored as the hash of their secret only.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sluice_application::ports::{ApiKey, ApiKeyStore, NewApiKey, Page, PageRequest, StoreError};
use sluice_domain::ids::ApiKeyId;
use sluice_domain::time::Timestamp;

use super::{PgStore, page};
use crate::error::{DbError, IntoStore};
use crate::rows::{ApiKeyRow, ts};
use crate::schema::api_keys::dsl as k;

fn row(key: &NewApiKey) -> ApiKeyRow {
    ApiKeyRow {
        id: key.key.id.to_string(),
        name: key.key.name.clone(),
        role: key.key.role.as_str().to_owned(),
        prefix: key.key.prefix.clone(),
        secret_hash: key.secret_hash.clone(),
        created_at: ts(key.key.created_at),
        revoked_at: key.key.revoked_at.map(ts),
    }
}

#[async_trait]
impl ApiKeyStore for PgStore {
    async fn insert_api_key(&self, key: &NewApiKey) -> Result<(), StoreError> {
        let mut conn = self.conn().await.store("insert API key")?;
        diesel::insert_into(k::api_keys)
            .values(row(key))
            .execute(&mut conn)
            .await
            .map_err(|e| match DbError::from(e).into_store("insert API key") {
                StoreError::Conflict(_) => StoreError::Conflict("API key already exists".into()),
                other => other,
            })?;
        Ok(())
    }

    async fn ensure_api_key(&self, key: &NewApiKey) -> Result<bool, StoreError> {
        let mut conn = self.conn().await.store("ensure API key")?;
        let inserted = diesel::insert_into(k::api_keys)
            .values(row(key))
            .on_conflict(k::secret_hash)
            .do_nothing()
            .execute(&mut conn)
            .await
            .store("ensure API key")?;
        Ok(inserted == 1)
    }

    async fn find_api_key_by_hash(&self, secret_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let mut conn = self.conn().await.store("find API key")?;
        k::api_keys
            .filter(k::secret_hash.eq(secret_hash))
            .filter(k::revoked_at.is_null())
            .select(ApiKeyRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .store("find API key")?
            .map(ApiKeyRow::into_key)
            .transpose()
    }

    async fn list_api_keys(&self, req: &PageRequest) -> Result<Page<ApiKey>, StoreError> {
        let mut conn = self.conn().await.store("list API keys")?;
        let mut q = k::api_keys
            .select(ApiKeyRow::as_select())
            .order(k::id.desc())
            .limit(page::fetch(req))
            .into_boxed();
        if let Some(after) = page::after::<ApiKeyId>(req) {
            q = q.filter(k::id.lt(after));
        }
        let rows = q.load(&mut conn).await.store("list API keys")?;
        let keys = rows
            .into_iter()
            .map(ApiKeyRow::into_key)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page::cut(keys, req, |key| key.id.to_string()))
    }

    async fn revoke_api_key(&self, id: ApiKeyId, at: Timestamp) -> Result<(), StoreError> {
        let mut conn = self.conn().await.store("revoke API key")?;
        // Revoking twice keeps the first time.
        let updated = diesel::update(k::api_keys.find(id.to_string()))
            .filter(k::revoked_at.is_null())
            .set(k::revoked_at.eq(Some(ts(at))))
            .execute(&mut conn)
            .await
            .store("revoke API key")?;
        if updated == 0 {
            let exists: i64 = k::api_keys
                .find(id.to_string())
                .count()
                .get_result(&mut conn)
                .await
                .store("revoke API key")?;
            if exists == 0 {
                return Err(StoreError::not_found("API key", id));
            }
        }
        Ok(())
    }
}
