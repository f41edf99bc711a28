//! The ports: every trait through which a use case reaches the outside world.
//!
//! | port | implemented by |
//! |---|---|
//! | [`ApiKeyStore`], [`ConnectorStore`], [`PipelineStore`], [`RunStore`], [`PollingStore`] | `sluice-postgres`, in-memory fakes |
//! | [`LedgerStore`] (the file ledger, per-run file lists) | `sluice-postgres`, in-memory fake |
//! | [`WebhookStore`] (subscriptions, the outbox of events, the delivery log) | `sluice-postgres`, in-memory fake |
//! | [`WorkQueue`] (extraction and partition claims with leases, finalisation) | `sluice-postgres`, in-memory fake |
//! | [`BulkLoader`] (destination tables, atomic batch commits) | `sluice-postgres`, in-memory fake |
//! | [`ObjectSourceFactory`] / [`ObjectSource`] | `sluice-object-store`, in-memory fake |
//! | [`Clock`], [`IdGenerator`] | [`system`], fakes |
//!
//! Storage ports are `#[async_trait]` traits held as `Arc<dyn Port>`.

use std::sync::Arc;

mod clock;
mod ledger;
mod listing;
mod loader;
mod queue;
mod source;
mod store;
pub mod system;
mod webhooks;

pub use clock::{Clock, IdGenerator};
pub use ledger::{ForgetFiles, LEDGER_LOOKUP_CHUNK, LedgerStore};
pub use listing::{FileFilter, SortedSelection};
pub use loader::{BatchCommit, BulkLoader, CommitOutcome, LoadTarget, RejectedRow};
pub use queue::{
    CommitError, ExtractionClaim, ExtractionResult, FinalizedRun, LeaseToken, PartitionClaim,
    SourceFile, WorkQueue, WorkerId,
};
#[cfg(test)]
pub use source::MockObjectSourceFactory;
pub use source::{
    ByteStream, ObjectInfo, ObjectListing, ObjectSource, ObjectSourceFactory, SourceCheck,
    SourceError, listing_of,
};
pub use store::{
    ApiKey, ApiKeyStore, ConnectorStore, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, NewApiKey, NewRun, Page,
    PageRequest, PipelineStore, PollState, PollTarget, PollingStore, RunSnapshot, RunStore,
    StoreError,
};
pub use webhooks::{
    AttemptResult, ClaimedEvent, Delivery, EventState, OutboundRequest, OutboxStats, SendResult,
    WebhookSender, WebhookStore,
};

/// Every storage port in one store (`sluice-postgres`' `PgStore`, the
/// in-memory fake): what [`Ports::from_store`] takes.
pub trait Store:
    ApiKeyStore
    + ConnectorStore
    + PipelineStore
    + RunStore
    + PollingStore
    + LedgerStore
    + WebhookStore
    + WorkQueue
    + BulkLoader
    + 'static
{
}

impl<T> Store for T where
    T: ApiKeyStore
        + ConnectorStore
        + PipelineStore
        + RunStore
        + PollingStore
        + LedgerStore
        + WebhookStore
        + WorkQueue
        + BulkLoader
        + 'static
{
}

/// Every port the use cases and the engine need.
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
    /// Webhook subscriptions, outbox and delivery log.
    pub webhooks: Arc<dyn WebhookStore>,
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
        S: Store,
    {
        Self {
            api_keys: store.clone(),
            connectors: store.clone(),
            pipelines: store.clone(),
            runs: store.clone(),
            polling: store.clone(),
            ledger: store.clone(),
            webhooks: store.clone(),
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
