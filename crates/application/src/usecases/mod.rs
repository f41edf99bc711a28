//! Use cases: what Sluice does, orchestrating the ports.
//!
//! [`App`] holds every port and exposes one method per use case. Every method
//! that serves a caller takes the caller's [`Principal`] and checks the role
//! table of the domain first, so authorisation does not depend on the HTTP
//! layer getting its routes right.

mod api_keys;
mod auth;
mod connectors;
mod dry_run;
mod files;
mod health;
mod json;
mod pipelines;
mod polling;
mod runs;
mod schedule;

use std::sync::Arc;

pub use api_keys::CreatedApiKey;
pub use auth::{Principal, hash_secret};
pub use connectors::ConnectorCheck;
pub use dry_run::{DEFAULT_DRY_RUN_ROWS, DRY_RUN_ERRORS, DryRunReport, MAX_DRY_RUN_ROWS};
pub use health::MetricsSnapshot;
pub use json::{check_patch_members, from_json, merge_patch};
pub use polling::{PollReport, PollStatus};
pub use runs::{ErrorExport, MAX_RELOAD_KEYS, RetryOutcome, RunRequest};

use crate::ports::{
    ApiKeyStore, BulkLoader, Clock, ConnectorStore, IdGenerator, LedgerStore, ObjectSourceFactory,
    PipelineStore, PollingStore, RunStore, WorkQueue,
};

/// Every port the use cases need.
#[derive(Clone)]
pub struct Ports {
    /// API keys.
    pub api_keys: Arc<dyn ApiKeyStore>,
    /// Connectors.
    pub connectors: Arc<dyn ConnectorStore>,
    /// Pipelines.
    pub pipelines: Arc<dyn PipelineStore>,
    /// Runs.
    pub runs: Arc<dyn RunStore>,
    /// Polling state.
    pub polling: Arc<dyn PollingStore>,
    /// The file ledger and per-run file lists.
    pub ledger: Arc<dyn LedgerStore>,
    /// Work queue.
    pub queue: Arc<dyn WorkQueue>,
    /// Bulk loader.
    pub loader: Arc<dyn BulkLoader>,
    /// Object sources.
    pub sources: Arc<dyn ObjectSourceFactory>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Ids.
    pub ids: Arc<dyn IdGenerator>,
}

impl Ports {
    /// Every storage port from one store implementing them all (the usual case).
    pub fn from_store<S>(
        store: Arc<S>,
        sources: Arc<dyn ObjectSourceFactory>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self
    where
        S: ApiKeyStore
            + ConnectorStore
            + PipelineStore
            + RunStore
            + PollingStore
            + LedgerStore
            + WorkQueue
            + BulkLoader
            + 'static,
    {
        Self {
            api_keys: store.clone(),
            connectors: store.clone(),
            pipelines: store.clone(),
            runs: store.clone(),
            polling: store.clone(),
            ledger: store.clone(),
            queue: store.clone(),
            loader: store,
            sources,
            clock,
            ids,
        }
    }
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

/// Tunables of the use cases and the engine.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Lease length of extraction and partition claims, in ms.
    pub lease_ms: i64,
    /// Most rows per committed batch.
    pub batch_rows: usize,
    /// Most bytes of values per committed batch (bounds memory).
    pub batch_bytes: usize,
    /// Timeout of connector checks and touch-file checks, in ms.
    pub source_timeout_ms: u64,
    /// First pause before re-reading after a source error, in ms (grows linearly).
    pub source_retry_ms: u64,
    /// How long an authenticated key is remembered without asking the store,
    /// in ms (0: ask every time). A key revoked through this process stops
    /// working at once; one revoked through another process within this time.
    pub auth_cache_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lease_ms: 30_000,
            batch_rows: 20_000,
            batch_bytes: 8 * 1024 * 1024,
            source_timeout_ms: 10_000,
            source_retry_ms: 500,
            auth_cache_ms: 2_000,
        }
    }
}

/// The application: ports plus settings, cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    ports: Ports,
    settings: Settings,
    auth_cache: Arc<auth::AuthCache>,
    wake: Arc<tokio::sync::Notify>,
}

impl App {
    /// Builds the application.
    pub fn new(ports: Ports, settings: Settings) -> Self {
        let auth_cache = Arc::new(auth::AuthCache::new(settings.auth_cache_ms));
        Self {
            ports,
            settings,
            auth_cache,
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Shares `wake` with other [`App`]s of the same process (the API's and
    /// the engine's in `sluice serve`): whenever one of them creates work (a
    /// run started, retried or polled, partitions extracted), the idle
    /// workers of all of them look for it at once instead of at their next
    /// poll.
    #[must_use]
    pub fn with_wake(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        self.wake = wake;
        self
    }

    /// The signal idle workers wait on (see [`App::with_wake`]).
    pub fn wake(&self) -> &Arc<tokio::sync::Notify> {
        &self.wake
    }

    /// Tells idle workers there is work.
    pub(crate) fn work_created(&self) {
        self.wake.notify_waiters();
    }

    /// The ports.
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}
