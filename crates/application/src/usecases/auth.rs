//! Who is calling, and may they.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sluice_domain::ids::ApiKeyId;
use sluice_domain::role::{Action, Role};

use super::UseCases;
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
        Action::ReadOwnKey => "read its own key",
        Action::UseAmbientCredentials => "give connectors the server's ambient credentials",
        Action::ManageWebhooks => "manage webhooks",
    }
}

/// Hex SHA-256 of an API key secret: the only form in which keys are stored.
/// Keys are 256-bit random values, so a fast hash is enough (no password
/// stretching needed).
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl UseCases {
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
        let hash = hash_secret(secret);
        if let Some(known) = self.auth_cache.get(&hash) {
            return Ok(known);
        }
        let key = self
            .ports()
            .api_keys
            .find_api_key_by_hash(&hash)
            .await?
            .ok_or(AppError::Unauthorized)?;
        let principal = Principal {
            key_id: key.id,
            role: key.role,
        };
        self.auth_cache.put(hash, principal.clone());
        Ok(principal)
    }
}

/// Keys recently found by hash, so that a busy client (a dashboard polling
/// progress) does not cost a database round trip per request. Only keys that
/// were found are remembered, for a bounded time, and at most
/// [`AuthCache::CAPACITY`] of them.
#[derive(Debug)]
pub(super) struct AuthCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl AuthCache {
    const CAPACITY: usize = 1024;

    pub(super) fn new(ttl_ms: u64) -> Self {
        Self {
            ttl: Duration::from_millis(ttl_ms),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Principal, Instant)>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, hash: &str) -> Option<Principal> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries();
        let (principal, at) = entries.get(hash)?;
        (at.elapsed() < self.ttl).then(|| principal.clone())
    }

    fn put(&self, hash: String, principal: Principal) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries();
        if entries.len() >= Self::CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
        }
        entries.insert(hash, (principal, Instant::now()));
    }

    /// Forgets a revoked key at once.
    pub(super) fn forget_key(&self, id: ApiKeyId) {
        self.entries().retain(|_, (p, _)| p.key_id != id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sluice_domain::ids::Ulid;
    use sluice_domain::time::Timestamp;

    use super::*;
    use crate::Tunables;
    use crate::ports::ApiKeyStore;
    use crate::ports::Ports;
    use crate::testing::{
        InMemorySource, InMemorySourceFactory, InMemoryStore, ManualClock, SequentialIds,
    };

    fn app(store: &InMemoryStore, auth_cache_ms: u64) -> UseCases {
        let ports = Ports::from_store(
            Arc::new(store.clone()),
            Arc::new(InMemorySourceFactory(InMemorySource::new(1))),
            Arc::new(ManualClock::new(Timestamp(1_750_000_000_000))),
            Arc::new(SequentialIds::default()),
        );
        UseCases::new(
            ports,
            Tunables {
                auth_cache_ms,
                ..Tunables::default()
            },
        )
    }

    fn admin() -> Principal {
        Principal {
            key_id: ApiKeyId::from_ulid(Ulid(1)),
            role: Role::Admin,
        }
    }

    #[tokio::test]
    async fn a_remembered_key_skips_the_store_until_revoked_through_the_app() {
        let store = InMemoryStore::new();
        let app = app(&store, 60_000);
        let key = app
            .create_api_key(&admin(), "dashboard", Role::Viewer)
            .await
            .expect("create");
        let who = app
            .authenticate(Some(&key.secret))
            .await
            .expect("known key");
        assert_eq!(who.role, Role::Viewer);

        // Revoked behind the application's back (another process): the
        // remembered key still answers within the cache's lifetime.
        store
            .revoke_api_key(key.key.id, Timestamp(1_750_000_000_001))
            .await
            .expect("revoke in store");
        assert_eq!(app.authenticate(Some(&key.secret)).await.ok(), Some(who));

        // Revoked through the application: refused at once.
        app.revoke_api_key(&admin(), key.key.id)
            .await
            .expect("revoke");
        assert!(matches!(
            app.authenticate(Some(&key.secret)).await,
            Err(AppError::Unauthorized)
        ));
    }

    #[tokio::test]
    async fn without_a_cache_every_request_asks_the_store() {
        let store = InMemoryStore::new();
        let app = app(&store, 0);
        let key = app
            .create_api_key(&admin(), "dashboard", Role::Editor)
            .await
            .expect("create");
        app.authenticate(Some(&key.secret))
            .await
            .expect("known key");
        store
            .revoke_api_key(key.key.id, Timestamp(1_750_000_000_001))
            .await
            .expect("revoke in store");
        assert!(matches!(
            app.authenticate(Some(&key.secret)).await,
            Err(AppError::Unauthorized)
        ));
        assert!(matches!(
            app.authenticate(Some("sk_unknown")).await,
            Err(AppError::Unauthorized)
        ));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = AuthCache::new(60_000);
        for i in 0..(AuthCache::CAPACITY as u128 * 3) {
            cache.put(
                format!("{i}"),
                Principal {
                    key_id: ApiKeyId::from_ulid(Ulid(i)),
                    role: Role::Viewer,
                },
            );
        }
        assert!(cache.entries().len() <= AuthCache::CAPACITY);
        assert!(
            cache
                .get(&format!("{}", AuthCache::CAPACITY as u128 * 3 - 1))
                .is_some()
        );
    }
}
