//! The ports: every trait through which a use case reaches the outside world.
//!
//! | port | implemented by |
//! |---|---|
//! | [`ApiKeyStore`], [`ConnectorStore`], [`PipelineStore`], [`RunStore`], [`PollingStore`] | `sluice-postgres`, in-memory fakes |
//! | [`LedgerStore`] (the file ledger, per-run file lists) | `sluice-postgres`, in-memory fake |
//! | [`WorkQueue`] (extraction and partition claims with leases, finalisation) | `sluice-postgres`, in-memory fake |
//! | [`BulkLoader`] (destination tables, atomic batch commits) | `sluice-postgres`, in-memory fake |
//! | [`ObjectSourceFactory`] / [`ObjectSource`] | `sluice-object-store`, in-memory fake |
//! | [`Clock`], [`IdGenerator`] | [`system`], fakes |
//!
//! Storage ports are `#[async_trait]` traits held as `Arc<dyn Port>`.

mod clock;
mod ledger;
mod loader;
mod queue;
mod source;
mod store;
pub mod system;

pub use clock::{Clock, IdGenerator};
pub use ledger::{ForgetFiles, LEDGER_LOOKUP_CHUNK, LedgerStore};
pub use loader::{BatchCommit, BulkLoader, CommitOutcome, LoadTarget, RejectedRow};
pub use queue::{
    ExtractionClaim, ExtractionResult, FinalizedRun, LeaseToken, PartitionClaim, SourceFile,
    WorkQueue, WorkerId,
};
pub use source::{ByteStream, ObjectInfo, ObjectSource, ObjectSourceFactory, SourceError};
pub use store::{
    ApiKey, ApiKeyStore, ConnectorStore, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, NewApiKey, NewRun, Page,
    PageRequest, PipelineStore, PollState, PollTarget, PollingStore, RunSnapshot, RunStore,
    StoreError,
};

#[cfg(any(test, feature = "mock"))]
pub use clock::{MockClock, MockIdGenerator};
#[cfg(any(test, feature = "mock"))]
pub use source::MockObjectSourceFactory;
