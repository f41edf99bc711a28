//! Metadata storage ports: API keys, connectors, pipelines, runs, polling state.
//!
//! Common contract for every method:
//! * a missing entity is [`StoreError::NotFound`] (never `Ok` with a default);
//! * a uniqueness or reference violation is [`StoreError::Conflict`];
//! * a state that does not allow the operation is [`StoreError::Unprocessable`];
//! * a database that cannot be reached is [`StoreError::Unavailable`];
//! * driver errors never reach callers as text: adapters log them and return a
//!   short, safe message.

use async_trait::async_trait;
use futures::stream::BoxStream;
use sluice_domain::connector::{Connector, Credentials};
use sluice_domain::ids::{ApiKeyId, ConnectorId, PipelineId, RunId};
use sluice_domain::pipeline::{Pipeline, PipelineSpec};
use sluice_domain::role::Role;
use sluice_domain::run::{Counters, LogEntry, Partition, Run, RunMetadata, Trigger};
use sluice_domain::status::RunStatus;
use sluice_domain::time::Timestamp;
use sluice_domain::validation::RowError;

/// Why a storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The entity does not exist.
    #[error("{entity} {id} not found")]
    NotFound {
        /// Entity kind.
        entity: &'static str,
        /// Looked-up id.
        id: String,
    },
    /// A uniqueness or reference rule would be broken.
    #[error("{0}")]
    Conflict(String),
    /// The entity's state does not allow the operation.
    #[error("{0}")]
    Unprocessable(String),
    /// The store cannot be reached (retry later).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else; the message is safe to show.
    #[error("{0}")]
    Internal(String),
}

impl StoreError {
    /// Shorthand for [`StoreError::NotFound`].
    pub fn not_found(entity: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            entity,
            id: id.to_string(),
        }
    }
}

/// Default and largest page sizes of list endpoints.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page a list returns.
pub const MAX_PAGE_SIZE: u32 = 200;

/// A page request: at most `limit` items strictly after `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// 1..=200.
    pub limit: u32,
    /// The `nextCursor` of the previous page (opaque to callers).
    pub cursor: Option<String>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_PAGE_SIZE,
            cursor: None,
        }
    }
}

/// One page of a list, newest first. `next_cursor` is `None` on the last page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// An API key as stored (only the SHA-256 of the secret is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Id.
    pub id: ApiKeyId,
    /// Label.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The first characters of the secret, to recognise it (`sk_ab12…`).
    pub prefix: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// When it was revoked; revoked keys no longer authenticate.
    pub revoked_at: Option<Timestamp>,
}

/// A key to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// The key's public fields.
    pub key: ApiKey,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
}

/// API keys.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a key. `Conflict` if the id or hash exists.
    async fn insert_api_key(&self, key: &NewApiKey) -> Result<(), StoreError>;

    /// Stores `key` unless a key with the same hash exists; returns true if it
    /// was inserted. Idempotent, safe under concurrent calls.
    async fn ensure_api_key(&self, key: &NewApiKey) -> Result<bool, StoreError>;

    /// The non-revoked key whose secret hashes to `secret_hash`, if any.
    async fn find_api_key_by_hash(&self, secret_hash: &str) -> Result<Option<ApiKey>, StoreError>;

    /// Keys, newest first, revoked ones included.
    async fn list_api_keys(&self, page: &PageRequest) -> Result<Page<ApiKey>, StoreError>;

    /// Revokes a key from `at` on. `NotFound` if absent; revoking twice keeps
    /// the first time.
    async fn revoke_api_key(&self, id: ApiKeyId, at: Timestamp) -> Result<(), StoreError>;
}

/// Connectors. Credentials are stored apart and returned only by
/// [`ConnectorStore::connector_credentials`], which no HTTP read path calls.
#[async_trait]
pub trait ConnectorStore: Send + Sync {
    /// Stores a new connector. `Conflict` if the id exists.
    async fn insert_connector(
        &self,
        connector: &Connector,
        credentials: &Credentials,
    ) -> Result<(), StoreError>;

    /// One connector (without secrets). `NotFound` if absent.
    async fn get_connector(&self, id: ConnectorId) -> Result<Connector, StoreError>;

    /// The connector's secrets. `NotFound` if absent.
    async fn connector_credentials(&self, id: ConnectorId) -> Result<Credentials, StoreError>;

    /// Connectors, newest first.
    async fn list_connectors(&self, page: &PageRequest) -> Result<Page<Connector>, StoreError>;

    /// Replaces a connector's fields; its credentials too when `credentials`
    /// is given. `NotFound` if absent.
    async fn update_connector(
        &self,
        connector: &Connector,
        credentials: Option<&Credentials>,
    ) -> Result<(), StoreError>;

    /// Deletes a connector. `NotFound` if absent; `Conflict` while a pipeline uses it.
    async fn delete_connector(&self, id: ConnectorId) -> Result<(), StoreError>;
}

/// Pipelines.
#[async_trait]
pub trait PipelineStore: Send + Sync {
    /// Stores a new pipeline. `Conflict` if the id exists; `NotFound` (entity
    /// `connector`) if its connector does not exist.
    async fn insert_pipeline(&self, pipeline: &Pipeline) -> Result<(), StoreError>;

    /// One pipeline. `NotFound` if absent.
    async fn get_pipeline(&self, id: PipelineId) -> Result<Pipeline, StoreError>;

    /// Pipelines, newest first.
    async fn list_pipelines(&self, page: &PageRequest) -> Result<Page<Pipeline>, StoreError>;

    /// Replaces a pipeline's definition. `NotFound` if absent (or, entity
    /// `connector`, if the new connector does not exist).
    async fn update_pipeline(&self, pipeline: &Pipeline) -> Result<(), StoreError>;

    /// Deletes a pipeline and its run history (destination tables are left
    /// alone). `NotFound` if absent; `Conflict` while a run is pending or running.
    async fn delete_pipeline(&self, id: PipelineId) -> Result<(), StoreError>;
}

/// A run to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// Id.
    pub id: RunId,
    /// Pipeline.
    pub pipeline_id: PipelineId,
    /// The pipeline definition the run executes (a snapshot: later edits of
    /// the pipeline do not change a started run).
    pub spec: PipelineSpec,
    /// How it started.
    pub trigger: Trigger,
    /// Retry and trigger facts.
    pub metadata: RunMetadata,
    /// Creation time.
    pub created_at: Timestamp,
    /// The run's first log entries.
    pub log: Vec<LogEntry>,
}

/// Everything the progress view shows of a run, read together.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSnapshot {
    /// The run, as [`RunStore::get_run`] returns it.
    pub run: Run,
    /// Its partitions in index order.
    pub partitions: Vec<Partition>,
    /// Its first validation errors in row order.
    pub first_errors: Vec<RowError>,
    /// Its log, oldest first.
    pub log: Vec<LogEntry>,
}

/// Runs and everything attached to them (partitions, errors, log).
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Creates a `pending` run. `NotFound` if the pipeline is absent;
    /// `Conflict` if the pipeline already has a pending or running run (at most
    /// one active run per pipeline, enforced atomically).
    async fn create_run(&self, run: &NewRun) -> Result<(), StoreError>;

    /// Creates a `pending` retry of `original` atomically (same `Conflict` rule
    /// as [`RunStore::create_run`]). When `resumable`, the new run takes over
    /// the original's file list, partitions, checkpoints and loaded/skipped
    /// counters, and every row that failed in the original (or was still
    /// waiting to be revisited by it) becomes a row to revisit. When not
    /// resumable, the new run starts empty and will be extracted afresh.
    async fn create_retry_run(
        &self,
        run: &NewRun,
        original: RunId,
        resumable: bool,
    ) -> Result<(), StoreError>;

    /// One run of a pipeline, counters summed from its partitions. `NotFound`
    /// if absent or if it belongs to another pipeline.
    async fn get_run(&self, pipeline_id: PipelineId, run_id: RunId) -> Result<Run, StoreError>;

    /// The pipeline a run belongs to (for callers that know only the
    /// run). `NotFound` if absent.
    async fn run_pipeline(&self, run_id: RunId) -> Result<PipelineId, StoreError>;

    /// The pipeline definition a run executes.
    async fn run_spec(&self, run_id: RunId) -> Result<PipelineSpec, StoreError>;

    /// A pipeline's runs, newest first. `NotFound` if the pipeline is absent.
    async fn list_runs(
        &self,
        pipeline_id: PipelineId,
        page: &PageRequest,
    ) -> Result<Page<Run>, StoreError>;

    /// A run's partitions in index order (empty before extraction).
    async fn list_partitions(&self, run_id: RunId) -> Result<Vec<Partition>, StoreError>;

    /// The first `limit` validation errors of a run, in row order.
    async fn first_errors(&self, run_id: RunId, limit: usize) -> Result<Vec<RowError>, StoreError>;

    /// [`RunStore::get_run`], [`RunStore::list_partitions`],
    /// [`RunStore::first_errors`] (`error_limit` of them) and
    /// [`RunStore::run_log`] at once, for the progress view that clients
    /// poll: a store should answer it in one round trip. Same `NotFound` rule
    /// as `get_run`.
    async fn run_snapshot(
        &self,
        pipeline_id: PipelineId,
        run_id: RunId,
        error_limit: usize,
    ) -> Result<RunSnapshot, StoreError> {
        let run = self.get_run(pipeline_id, run_id).await?;
        let (partitions, first_errors, log) = futures::try_join!(
            self.list_partitions(run_id),
            self.first_errors(run_id, error_limit),
            self.run_log(run_id),
        )?;
        Ok(RunSnapshot {
            run,
            partitions,
            first_errors,
            log,
        })
    }

    /// How many validation errors a run has.
    async fn count_errors(&self, run_id: RunId) -> Result<u64, StoreError>;

    /// Every validation error of a run in row order, streamed: memory stays
    /// bounded whatever the number of errors.
    fn stream_errors(&self, run_id: RunId) -> BoxStream<'static, Result<RowError, StoreError>>;

    /// One page of a run's validation errors in row order (oldest row
    /// first, unlike the other lists), after `page.cursor`: the
    /// `next_cursor` of the previous page, opaque to callers. A cursor this
    /// store did not hand out gives the first page. Each page costs the same
    /// however deep into the list it starts.
    async fn list_errors(
        &self,
        run_id: RunId,
        page: &PageRequest,
    ) -> Result<Page<RowError>, StoreError>;

    /// A run's log, oldest first.
    async fn run_log(&self, run_id: RunId) -> Result<Vec<LogEntry>, StoreError>;

    /// Appends to a run's log.
    async fn append_log(&self, run_id: RunId, entry: &LogEntry) -> Result<(), StoreError>;

    /// Cancels a pending or running run: status `cancelled`, unfinished
    /// partitions `failed`, a `replace` shadow table dropped, `entry` logged,
    /// all in one transaction. `Unprocessable` when the run is terminal.
    async fn cancel_run(
        &self,
        run_id: RunId,
        at: Timestamp,
        entry: &LogEntry,
    ) -> Result<(), StoreError>;

    /// Counts runs by status, for metrics.
    async fn count_runs_by_status(&self) -> Result<Vec<(RunStatus, u64)>, StoreError>;

    /// Log entries of stage `drift` over all runs: every header a run found
    /// differing from its schema (for `/metrics`).
    async fn count_drift_events(&self) -> Result<u64, StoreError>;

    /// Rows by outcome over all runs, each row counted once: a run whose
    /// counters a resumable retry took over is left out (the retry carries them).
    async fn count_rows_by_outcome(&self) -> Result<Counters, StoreError>;

    /// Checks that the store answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// A pipeline watched by polling, with its polling state and newest run.
#[derive(Debug, Clone, PartialEq)]
pub struct PollTarget {
    /// The pipeline.
    pub pipeline: Pipeline,
    /// Its connector's name and type.
    pub connector: Connector,
    /// Polling state.
    pub state: PollState,
    /// Its newest run.
    pub last_run: Option<Run>,
}

/// What polling remembers about a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PollState {
    /// ETag of the touch file that last started a run.
    pub last_etag: Option<String>,
    /// When the touch file was last checked.
    pub last_checked_at: Option<Timestamp>,
    /// The error of the last check, if it failed.
    pub last_error: Option<String>,
    /// The cron tick that last started a scheduled run.
    pub last_tick: Option<Timestamp>,
}

/// Polling state, coordinated through the store so several `sluice serve`
/// replicas never start two runs for one touch file.
#[async_trait]
pub trait PollingStore: Send + Sync {
    /// Every active pipeline with polling enabled or a schedule, oldest first.
    async fn poll_targets(&self) -> Result<Vec<PollTarget>, StoreError>;

    /// Claims the check of a pipeline: succeeds (true) for exactly one caller
    /// per interval, i.e. when the last check is older than
    /// `not_checked_since` (or never happened), recording `at` as the check time.
    async fn claim_poll_check(
        &self,
        pipeline_id: PipelineId,
        not_checked_since: Timestamp,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Records the outcome of a check (the error, or `None` on success).
    async fn record_poll_result(
        &self,
        pipeline_id: PipelineId,
        error: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Starts `run` for a touch file with `etag`, atomically and at most once:
    /// returns false (and creates nothing) when `etag` is the one that last
    /// started a run of this pipeline, or when the pipeline has an active run.
    async fn start_polled_run(&self, run: &NewRun, etag: &str) -> Result<bool, StoreError>;

    /// Starts `run` for the cron tick `tick`, atomically and at most once per
    /// tick: returns false (and creates nothing) when a run was already
    /// started for `tick` or a later tick, or when the pipeline has an active
    /// run (the tick then stays due).
    async fn start_scheduled_run(&self, run: &NewRun, tick: Timestamp) -> Result<bool, StoreError>;
}
