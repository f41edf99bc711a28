//! Use cases: what Sluice does, orchestrating the ports.
//!
//! [`UseCases`] holds every port and exposes one method per use case: what an
//! API request (or the command line) asks of Sluice. Every method that serves
//! a caller takes the caller's [`Principal`] and checks the role table of the
//! domain first, so authorisation does not depend on the HTTP layer getting
//! its routes right. The other way in, the run engine driven by workers, is
//! [`crate::engine`].

mod api_keys;
mod auth;
mod connectors;
mod dry_run;
mod files;
mod health;
mod infer;
mod json;
mod pipelines;
mod polling;
mod runs;
mod schedule;
mod webhooks;

use std::sync::Arc;

pub use api_keys::CreatedApiKey;
pub use auth::{Principal, hash_secret};
pub use connectors::ConnectorCheck;
pub use dry_run::{DEFAULT_DRY_RUN_ROWS, DRY_RUN_ERRORS, DryRunReport, MAX_DRY_RUN_ROWS};
pub use health::{MetricsSnapshot, WebhookMetrics};
pub use infer::{
    DEFAULT_INFER_FILES, DEFAULT_INFER_ROWS, INFER_MAX_FILE_BYTES, INFER_TIMEOUT, InferReport,
    InferRequest, MAX_INFER_FILES, MAX_INFER_ROWS,
};
pub use json::{check_patch_members, from_json, merge_patch};
pub use polling::{PollReport, PollStatus};
pub use runs::{ErrorExport, MAX_RELOAD_KEYS, RetryOutcome, RunRequest, RunView};

use crate::ports::Ports;
use crate::{Tunables, WorkSignal};

/// The use cases over the ports, cheap to clone.
#[derive(Debug, Clone)]
pub struct UseCases {
    ports: Ports,
    tunables: Tunables,
    auth_cache: Arc<auth::AuthCache>,
    wake: WorkSignal,
}

impl UseCases {
    /// The use cases over `ports`.
    pub fn new(ports: Ports, tunables: Tunables) -> Self {
        let auth_cache = Arc::new(auth::AuthCache::new(tunables.auth_cache_ms));
        Self {
            ports,
            tunables,
            auth_cache,
            wake: WorkSignal::new(),
        }
    }

    /// The signal the use cases raise when they create work (a run started,
    /// retried or polled): give it to the engines of the same process
    /// ([`crate::engine::Engine::with_wake`]) so their idle workers wake.
    pub fn wake(&self) -> &WorkSignal {
        &self.wake
    }

    fn work_created(&self) {
        self.wake.work_created();
    }

    fn ports(&self) -> &Ports {
        &self.ports
    }

    fn tunables(&self) -> &Tunables {
        &self.tunables
    }
}
