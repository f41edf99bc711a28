//! The in-memory store: every storage port over one mutex-guarded state. It is
//! the executable specification of the ports' contracts (the contract suites
//! run against it and against PostgreSQL).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use sluice_domain::connector::{Connector, Credentials};
use sluice_domain::ids::{ApiKeyId, ConnectorId, PipelineId, RunId};
use sluice_domain::pipeline::{LoadStrategy, Pipeline, PipelineSpec, PipelineStatus};
use sluice_domain::run::{
    Checkpoint, Counters, LogEntry, LogStage, Partition, Run, finalize_message,
};
use sluice_domain::status::{PartitionStatus, RunStatus};
use sluice_domain::time::Timestamp;
use sluice_domain::validation::RowError;

use super::{DestinationProbe, ProbedRow};
use crate::ports::{
    ApiKey, ApiKeyStore, BatchCommit, BulkLoader, CommitOutcome, ConnectorStore, ExtractionClaim,
    ExtractionResult, FinalizedRun, LeaseToken, LoadTarget, MAX_PAGE_SIZE, NewApiKey, NewRun, Page,
    PageRequest, PartitionClaim, PipelineStore, PollState, PollTarget, PollingStore, RejectedRow,
    RunStore, SourceFile, StoreError, WorkQueue, WorkerId,
};

#[derive(Debug, Clone)]
struct RunRec {
    run: Run,
    spec: PipelineSpec,
    lineage: Vec<RunId>,
    resume: bool,
    extraction: Option<(LeaseToken, Timestamp)>,
}

#[derive(Debug, Clone)]
struct PartRec {
    partition: Partition,
    lease: Option<(LeaseToken, Timestamp)>,
    revisit_cursor: u64,
}

#[derive(Debug, Clone)]
struct StoredRow {
    values: Vec<Option<String>>,
    run_id: RunId,
    row: u64,
}

#[derive(Debug, Clone, Default)]
struct Table {
    rows: Vec<StoredRow>,
    /// Key values → index in `rows` (tables with key columns only).
    index: HashMap<Vec<Option<String>>, usize>,
}

#[derive(Debug, Default)]
struct State {
    api_keys: BTreeMap<ApiKeyId, (ApiKey, String)>,
    connectors: BTreeMap<ConnectorId, (Connector, Credentials)>,
    pipelines: BTreeMap<PipelineId, Pipeline>,
    runs: BTreeMap<RunId, RunRec>,
    files: HashMap<RunId, Vec<SourceFile>>,
    partitions: HashMap<RunId, Vec<PartRec>>,
    errors: HashMap<RunId, Vec<RowError>>,
    rejected: HashMap<RunId, BTreeMap<u64, (u32, RejectedRow)>>,
    revisits: HashMap<RunId, BTreeMap<u64, (u32, RejectedRow)>>,
    logs: HashMap<RunId, Vec<LogEntry>>,
    poll: HashMap<PipelineId, PollState>,
    tables: HashMap<String, Table>,
    shadows: HashMap<RunId, Table>,
    next_token: i64,
}

/// Every storage port in memory. Cheap to clone (shared state).
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore {
    state: Arc<Mutex<State>>,
}

fn page_of<K: Ord + Clone + ToString + std::str::FromStr, T: Clone>(
    items: &BTreeMap<K, T>,
    page: &PageRequest,
    keep: impl Fn(&T) -> bool,
) -> Page<T> {
    let limit = page.limit.clamp(1, MAX_PAGE_SIZE) as usize;
    let cursor: Option<K> = page.cursor.as_deref().and_then(|c| c.parse().ok());
    let mut out: Vec<(K, T)> = items
        .iter()
        .rev()
        .filter(|(k, _)| cursor.as_ref().is_none_or(|c| *k < c))
        .filter(|(_, v)| keep(v))
        .take(limit + 1)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let more = out.len() > limit;
    out.truncate(limit);
    Page {
        next_cursor: if more {
            out.last().map(|(k, _)| k.to_string())
        } else {
            None
        },
        items: out.into_iter().map(|(_, v)| v).collect(),
    }
}

impl State {
    fn counters(&self, run_id: RunId) -> Counters {
        self.partitions
            .get(&run_id)
            .map(|ps| {
                ps.iter()
                    .fold(Counters::default(), |c, p| c.plus(p.partition.counters))
            })
            .unwrap_or_default()
    }

    fn run_view(&self, rec: &RunRec) -> Run {
        let mut run = rec.run.clone();
        if self.partitions.contains_key(&run.id) {
            run.counters = self.counters(run.id);
        }
        run
    }

    fn has_active_run(&self, pipeline: PipelineId) -> bool {
        self.runs
            .values()
            .any(|r| r.run.pipeline_id == pipeline && r.run.status.is_active())
    }

    fn insert_run(&mut self, new: &NewRun, lineage: Vec<RunId>) -> Result<(), StoreError> {
        if !self.pipelines.contains_key(&new.pipeline_id) {
            return Err(StoreError::not_found("pipeline", new.pipeline_id));
        }
        if self.has_active_run(new.pipeline_id) {
            return Err(StoreError::Conflict(format!(
                "pipeline {} already has a pending or running run",
                new.pipeline_id
            )));
        }
        let run = Run {
            id: new.id,
            pipeline_id: new.pipeline_id,
            status: RunStatus::Pending,
            load_strategy: new.spec.load_strategy,
            trigger: new.trigger,
            total_rows: None,
            partition_count: 0,
            counters: Counters::default(),
            metadata: new.metadata.clone(),
            error: None,
            created_at: new.created_at,
            started_at: None,
            finished_at: None,
        };
        self.runs.insert(
            new.id,
            RunRec {
                run,
                spec: new.spec.clone(),
                lineage,
                resume: false,
                extraction: None,
            },
        );
        self.logs.insert(new.id, new.log.clone());
        Ok(())
    }

    /// Ends a run early (failed or cancelled).
    fn stop_run(
        &mut self,
        run_id: RunId,
        to: RunStatus,
        at: Timestamp,
        entry: &LogEntry,
    ) -> Result<(), StoreError> {
        let rec = self
            .runs
            .get_mut(&run_id)
            .ok_or_else(|| StoreError::not_found("run", run_id))?;
        rec.run.status = rec
            .run
            .status
            .transition(to)
            .map_err(|e| StoreError::Unprocessable(e.to_string()))?;
        rec.run.finished_at = Some(at);
        if to == RunStatus::Failed {
            rec.run.error = Some(entry.message.clone());
        }
        rec.extraction = None;
        for p in self.partitions.get_mut(&run_id).into_iter().flatten() {
            if !p.partition.status.is_terminal() {
                p.partition.status = PartitionStatus::Failed;
                p.lease = None;
            }
        }
        self.shadows.remove(&run_id);
        self.logs.entry(run_id).or_default().push(entry.clone());
        Ok(())
    }

    fn pending_revisits(&self, run_id: RunId, index: u32, cursor: u64) -> u64 {
        self.revisits
            .get(&run_id)
            .map(|m| {
                m.range(cursor + 1..)
                    .filter(|(_, (p, _))| *p == index)
                    .count() as u64
            })
            .unwrap_or(0)
    }
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError::Internal("in-memory store poisoned".into()))
    }
}

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

#[async_trait]
impl ConnectorStore for InMemoryStore {
    async fn insert_connector(
        &self,
        connector: &Connector,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if s.connectors.contains_key(&connector.id) {
            return Err(StoreError::Conflict(format!(
                "connector {} already exists",
                connector.id
            )));
        }
        s.connectors
            .insert(connector.id, (connector.clone(), credentials.clone()));
        Ok(())
    }

    async fn get_connector(&self, id: ConnectorId) -> Result<Connector, StoreError> {
        let s = self.lock()?;
        s.connectors
            .get(&id)
            .map(|(c, _)| c.clone())
            .ok_or_else(|| StoreError::not_found("connector", id))
    }

    async fn connector_credentials(&self, id: ConnectorId) -> Result<Credentials, StoreError> {
        let s = self.lock()?;
        s.connectors
            .get(&id)
            .map(|(_, c)| c.clone())
            .ok_or_else(|| StoreError::not_found("connector", id))
    }

    async fn list_connectors(&self, page: &PageRequest) -> Result<Page<Connector>, StoreError> {
        let s = self.lock()?;
        let all: BTreeMap<ConnectorId, Connector> = s
            .connectors
            .iter()
            .map(|(id, (c, _))| (*id, c.clone()))
            .collect();
        Ok(page_of(&all, page, |_| true))
    }

    async fn update_connector(
        &self,
        connector: &Connector,
        credentials: Option<&Credentials>,
    ) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        let entry = s
            .connectors
            .get_mut(&connector.id)
            .ok_or_else(|| StoreError::not_found("connector", connector.id))?;
        entry.0 = connector.clone();
        if let Some(c) = credentials {
            entry.1 = c.clone();
        }
        Ok(())
    }

    async fn delete_connector(&self, id: ConnectorId) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if !s.connectors.contains_key(&id) {
            return Err(StoreError::not_found("connector", id));
        }
        if s.pipelines.values().any(|p| p.spec.connector_id == id) {
            return Err(StoreError::Conflict(format!(
                "connector {id} is used by a pipeline"
            )));
        }
        s.connectors.remove(&id);
        Ok(())
    }
}

#[async_trait]
impl PipelineStore for InMemoryStore {
    async fn insert_pipeline(&self, pipeline: &Pipeline) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if !s.connectors.contains_key(&pipeline.spec.connector_id) {
            return Err(StoreError::not_found(
                "connector",
                pipeline.spec.connector_id,
            ));
        }
        if s.pipelines.contains_key(&pipeline.id) {
            return Err(StoreError::Conflict(format!(
                "pipeline {} already exists",
                pipeline.id
            )));
        }
        s.pipelines.insert(pipeline.id, pipeline.clone());
        Ok(())
    }

    async fn get_pipeline(&self, id: PipelineId) -> Result<Pipeline, StoreError> {
        let s = self.lock()?;
        s.pipelines
            .get(&id)
            .cloned()
            .ok_or_else(|| StoreError::not_found("pipeline", id))
    }

    async fn list_pipelines(&self, page: &PageRequest) -> Result<Page<Pipeline>, StoreError> {
        let s = self.lock()?;
        Ok(page_of(&s.pipelines, page, |_| true))
    }

    async fn update_pipeline(&self, pipeline: &Pipeline) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if !s.pipelines.contains_key(&pipeline.id) {
            return Err(StoreError::not_found("pipeline", pipeline.id));
        }
        if !s.connectors.contains_key(&pipeline.spec.connector_id) {
            return Err(StoreError::not_found(
                "connector",
                pipeline.spec.connector_id,
            ));
        }
        s.pipelines.insert(pipeline.id, pipeline.clone());
        Ok(())
    }

    async fn delete_pipeline(&self, id: PipelineId) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if !s.pipelines.contains_key(&id) {
            return Err(StoreError::not_found("pipeline", id));
        }
        if s.has_active_run(id) {
            return Err(StoreError::Conflict(format!(
                "pipeline {id} has a pending or running run"
            )));
        }
        s.pipelines.remove(&id);
        let gone: Vec<RunId> = s
            .runs
            .values()
            .filter(|r| r.run.pipeline_id == id)
            .map(|r| r.run.id)
            .collect();
        for r in gone {
            s.runs.remove(&r);
            s.files.remove(&r);
            s.partitions.remove(&r);
            s.errors.remove(&r);
            s.rejected.remove(&r);
            s.revisits.remove(&r);
            s.logs.remove(&r);
        }
        s.poll.remove(&id);
        Ok(())
    }
}

#[async_trait]
impl RunStore for InMemoryStore {
    async fn create_run(&self, run: &NewRun) -> Result<(), StoreError> {
        self.lock()?.insert_run(run, vec![run.id])
    }

    async fn create_retry_run(
        &self,
        run: &NewRun,
        original: RunId,
        resumable: bool,
    ) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        let orig = s
            .runs
            .get(&original)
            .cloned()
            .ok_or_else(|| StoreError::not_found("run", original))?;
        let mut lineage = vec![run.id];
        if resumable {
            lineage.extend(orig.lineage.iter().copied());
        }
        s.insert_run(run, lineage)?;
        if !resumable {
            return Ok(());
        }
        let files = s.files.get(&original).cloned().unwrap_or_default();
        let old_parts = s.partitions.get(&original).cloned().unwrap_or_default();
        // Rows to revisit: the original's rejected rows, and its own revisits it had not reached.
        let mut revisits: BTreeMap<u64, (u32, RejectedRow)> =
            s.rejected.get(&original).cloned().unwrap_or_default();
        if let Some(pending) = s.revisits.get(&original) {
            for (row, (p, rr)) in pending {
                let cursor = old_parts
                    .iter()
                    .find(|x| x.partition.range.index == *p)
                    .map_or(0, |x| x.revisit_cursor);
                if *row > cursor {
                    revisits.insert(*row, (*p, rr.clone()));
                }
            }
        }
        let parts: Vec<PartRec> = old_parts
            .iter()
            .map(|old| {
                let index = old.partition.range.index;
                let has_revisits = revisits.values().any(|(p, _)| *p == index);
                let complete =
                    old.partition.checkpoint.is_complete(&old.partition.range) && !has_revisits;
                PartRec {
                    partition: Partition {
                        run_id: run.id,
                        range: old.partition.range,
                        status: if complete {
                            PartitionStatus::Completed
                        } else {
                            PartitionStatus::Pending
                        },
                        checkpoint: old.partition.checkpoint,
                        counters: Counters {
                            failed: 0,
                            ..old.partition.counters
                        },
                        rate: None,
                    },
                    lease: None,
                    revisit_cursor: 0,
                }
            })
            .collect();
        let rec = s
            .runs
            .get_mut(&run.id)
            .ok_or_else(|| StoreError::Internal("retry vanished".into()))?;
        rec.resume = true;
        rec.run.total_rows = orig.run.total_rows;
        rec.run.partition_count = orig.run.partition_count;
        s.files.insert(run.id, files);
        s.partitions.insert(run.id, parts);
        s.revisits.insert(run.id, revisits);
        Ok(())
    }

    async fn get_run(&self, pipeline_id: PipelineId, run_id: RunId) -> Result<Run, StoreError> {
        let s = self.lock()?;
        s.runs
            .get(&run_id)
            .filter(|r| r.run.pipeline_id == pipeline_id)
            .map(|r| s.run_view(r))
            .ok_or_else(|| StoreError::not_found("run", run_id))
    }

    async fn run_spec(&self, run_id: RunId) -> Result<PipelineSpec, StoreError> {
        let s = self.lock()?;
        s.runs
            .get(&run_id)
            .map(|r| r.spec.clone())
            .ok_or_else(|| StoreError::not_found("run", run_id))
    }

    async fn list_runs(
        &self,
        pipeline_id: PipelineId,
        page: &PageRequest,
    ) -> Result<Page<Run>, StoreError> {
        let s = self.lock()?;
        if !s.pipelines.contains_key(&pipeline_id) {
            return Err(StoreError::not_found("pipeline", pipeline_id));
        }
        let runs: BTreeMap<RunId, Run> = s
            .runs
            .values()
            .filter(|r| r.run.pipeline_id == pipeline_id)
            .map(|r| (r.run.id, s.run_view(r)))
            .collect();
        Ok(page_of(&runs, page, |_| true))
    }

    async fn latest_run(&self, pipeline_id: PipelineId) -> Result<Option<Run>, StoreError> {
        let s = self.lock()?;
        Ok(s.runs
            .values()
            .rev()
            .find(|r| r.run.pipeline_id == pipeline_id)
            .map(|r| s.run_view(r)))
    }

    async fn list_partitions(&self, run_id: RunId) -> Result<Vec<Partition>, StoreError> {
        let s = self.lock()?;
        Ok(s.partitions
            .get(&run_id)
            .map(|ps| ps.iter().map(|p| p.partition.clone()).collect())
            .unwrap_or_default())
    }

    async fn first_errors(&self, run_id: RunId, limit: usize) -> Result<Vec<RowError>, StoreError> {
        let s = self.lock()?;
        let mut errors = s.errors.get(&run_id).cloned().unwrap_or_default();
        errors.sort_by_key(|e| e.row);
        errors.truncate(limit);
        Ok(errors)
    }

    async fn count_errors(&self, run_id: RunId) -> Result<u64, StoreError> {
        let s = self.lock()?;
        Ok(s.errors.get(&run_id).map_or(0, |e| e.len() as u64))
    }

    fn stream_errors(&self, run_id: RunId) -> BoxStream<'static, Result<RowError, StoreError>> {
        let errors = match self.lock() {
            Ok(s) => {
                let mut e = s.errors.get(&run_id).cloned().unwrap_or_default();
                e.sort_by_key(|e| e.row);
                e.into_iter().map(Ok).collect()
            }
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(errors).boxed()
    }

    /// The cursor is the number of errors before the page.
    async fn list_errors(
        &self,
        run_id: RunId,
        page: &PageRequest,
    ) -> Result<Page<RowError>, StoreError> {
        let s = self.lock()?;
        let mut errors = s.errors.get(&run_id).cloned().unwrap_or_default();
        errors.sort_by_key(|e| e.row);
        let limit = page.limit.clamp(1, MAX_PAGE_SIZE) as usize;
        let skip: usize = page
            .cursor
            .as_deref()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let items: Vec<RowError> = errors.into_iter().skip(skip).take(limit + 1).collect();
        let more = items.len() > limit;
        Ok(Page {
            next_cursor: more.then(|| (skip + limit).to_string()),
            items: items.into_iter().take(limit).collect(),
        })
    }

    async fn run_log(&self, run_id: RunId) -> Result<Vec<LogEntry>, StoreError> {
        let s = self.lock()?;
        Ok(s.logs.get(&run_id).cloned().unwrap_or_default())
    }

    async fn append_log(&self, run_id: RunId, entry: &LogEntry) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if !s.runs.contains_key(&run_id) {
            return Err(StoreError::not_found("run", run_id));
        }
        s.logs.entry(run_id).or_default().push(entry.clone());
        Ok(())
    }

    async fn cancel_run(
        &self,
        run_id: RunId,
        at: Timestamp,
        entry: &LogEntry,
    ) -> Result<(), StoreError> {
        self.lock()?
            .stop_run(run_id, RunStatus::Cancelled, at, entry)
    }

    async fn count_runs_by_status(&self) -> Result<Vec<(RunStatus, u64)>, StoreError> {
        let s = self.lock()?;
        Ok(RunStatus::ALL
            .into_iter()
            .map(|st| {
                (
                    st,
                    s.runs.values().filter(|r| r.run.status == st).count() as u64,
                )
            })
            .collect())
    }

    async fn count_rows_by_outcome(&self) -> Result<Counters, StoreError> {
        let s = self.lock()?;
        // A run in another run's lineage was continued by it (a resumable retry).
        let taken_over: Vec<RunId> = s
            .runs
            .values()
            .flat_map(|r| r.lineage.iter().copied().filter(move |id| *id != r.run.id))
            .collect();
        Ok(s.runs
            .keys()
            .filter(|id| !taken_over.contains(id))
            .fold(Counters::default(), |c, id| c.plus(s.counters(*id))))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.lock().map(|_| ())
    }
}

#[async_trait]
impl PollingStore for InMemoryStore {
    async fn poll_targets(&self) -> Result<Vec<PollTarget>, StoreError> {
        let s = self.lock()?;
        let mut out = Vec::new();
        for p in s.pipelines.values() {
            if p.spec.status != PipelineStatus::Active || !p.spec.polling.enabled {
                continue;
            }
            let Some((connector, _)) = s.connectors.get(&p.spec.connector_id) else {
                continue;
            };
            out.push(PollTarget {
                pipeline: p.clone(),
                connector: connector.clone(),
                state: s.poll.get(&p.id).cloned().unwrap_or_default(),
                last_run: s
                    .runs
                    .values()
                    .rev()
                    .find(|r| r.run.pipeline_id == p.id)
                    .map(|r| s.run_view(r)),
            });
        }
        Ok(out)
    }

    async fn claim_poll_check(
        &self,
        pipeline_id: PipelineId,
        not_checked_since: Timestamp,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock()?;
        let state = s.poll.entry(pipeline_id).or_default();
        if state
            .last_checked_at
            .is_some_and(|t| t >= not_checked_since)
        {
            return Ok(false);
        }
        state.last_checked_at = Some(at);
        Ok(true)
    }

    async fn record_poll_result(
        &self,
        pipeline_id: PipelineId,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        s.poll.entry(pipeline_id).or_default().last_error = error.map(str::to_owned);
        Ok(())
    }

    async fn start_polled_run(&self, run: &NewRun, etag: &str) -> Result<bool, StoreError> {
        let mut s = self.lock()?;
        if s.poll
            .get(&run.pipeline_id)
            .and_then(|p| p.last_etag.as_deref())
            == Some(etag)
        {
            return Ok(false);
        }
        if s.has_active_run(run.pipeline_id) {
            return Ok(false);
        }
        s.insert_run(run, vec![run.id])?;
        s.poll.entry(run.pipeline_id).or_default().last_etag = Some(etag.to_owned());
        Ok(true)
    }
}

#[async_trait]
impl WorkQueue for InMemoryStore {
    async fn claim_extraction(
        &self,
        _worker: &WorkerId,
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<Option<ExtractionClaim>, StoreError> {
        let mut s = self.lock()?;
        s.next_token += 1;
        let token = LeaseToken(s.next_token);
        let Some(id) = s
            .runs
            .values()
            .find(|r| {
                r.run.status == RunStatus::Pending && r.extraction.is_none_or(|(_, exp)| exp <= now)
            })
            .map(|r| r.run.id)
        else {
            return Ok(None);
        };
        let rec = s
            .runs
            .get_mut(&id)
            .ok_or_else(|| StoreError::Internal("run vanished".into()))?;
        rec.extraction = Some((token, now.plus_millis(lease_ms)));
        let rec = rec.clone();
        // The run as every read returns it: counters summed from its
        // partitions (a resumable retry already has some).
        Ok(Some(ExtractionClaim {
            run: s.run_view(&rec),
            spec: rec.spec,
            token,
            resume: rec.resume,
        }))
    }

    async fn complete_extraction(
        &self,
        claim: &ExtractionClaim,
        result: Option<&ExtractionResult>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        let run_id = claim.run.id;
        let rec = s
            .runs
            .get_mut(&run_id)
            .ok_or_else(|| StoreError::not_found("run", run_id))?;
        if rec.run.status != RunStatus::Pending
            || rec.extraction.map(|(t, _)| t) != Some(claim.token)
        {
            return Err(StoreError::Conflict("extraction lease lost".into()));
        }
        rec.run.status = RunStatus::Running;
        rec.run.started_at = Some(now);
        rec.extraction = None;
        if let Some(result) = result {
            rec.run.total_rows = Some(result.total_rows);
            rec.run.partition_count = u32::try_from(result.partitions.len()).unwrap_or(u32::MAX);
            s.files.insert(run_id, result.files.clone());
            let parts = result
                .partitions
                .iter()
                .map(|range| PartRec {
                    partition: Partition {
                        run_id,
                        range: *range,
                        status: PartitionStatus::Pending,
                        checkpoint: Checkpoint::initial(range),
                        counters: Counters::default(),
                        rate: None,
                    },
                    lease: None,
                    revisit_cursor: 0,
                })
                .collect();
            s.partitions.insert(run_id, parts);
            s.logs
                .entry(run_id)
                .or_default()
                .extend(result.log.iter().cloned());
        }
        Ok(())
    }

    async fn run_files(&self, run_id: RunId) -> Result<Vec<SourceFile>, StoreError> {
        let s = self.lock()?;
        Ok(s.files.get(&run_id).cloned().unwrap_or_default())
    }

    async fn claim_partition(
        &self,
        _worker: &WorkerId,
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<Option<PartitionClaim>, StoreError> {
        let mut s = self.lock()?;
        s.next_token += 1;
        let token = LeaseToken(s.next_token);
        let running: Vec<RunId> = s
            .runs
            .values()
            .filter(|r| r.run.status == RunStatus::Running)
            .map(|r| r.run.id)
            .collect();
        for run_id in running {
            let found = s.partitions.get(&run_id).and_then(|ps| {
                ps.iter().position(|p| match p.partition.status {
                    PartitionStatus::Pending => true,
                    PartitionStatus::Running => p.lease.is_none_or(|(_, exp)| exp <= now),
                    _ => false,
                })
            });
            let Some(i) = found else { continue };
            let (index, cursor) = {
                let p = s
                    .partitions
                    .get(&run_id)
                    .and_then(|ps| ps.get(i))
                    .ok_or_else(|| StoreError::Internal("partition vanished".into()))?;
                (p.partition.range.index, p.revisit_cursor)
            };
            let pending_revisits = s.pending_revisits(run_id, index, cursor);
            let expires_at = now.plus_millis(lease_ms);
            let pipeline_id = s
                .runs
                .get(&run_id)
                .map(|r| r.run.pipeline_id)
                .ok_or_else(|| StoreError::Internal("run vanished".into()))?;
            let p = s
                .partitions
                .get_mut(&run_id)
                .and_then(|ps| ps.get_mut(i))
                .ok_or_else(|| StoreError::Internal("partition vanished".into()))?;
            p.partition.status = PartitionStatus::Running;
            p.lease = Some((token, expires_at));
            return Ok(Some(PartitionClaim {
                run_id,
                pipeline_id,
                range: p.partition.range,
                checkpoint: p.partition.checkpoint,
                counters: p.partition.counters,
                pending_revisits,
                revisit_cursor: p.revisit_cursor,
                token,
                expires_at,
            }));
        }
        Ok(None)
    }

    async fn renew_partition(
        &self,
        claim: &PartitionClaim,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock()?;
        if s.runs
            .get(&claim.run_id)
            .is_none_or(|r| r.run.status != RunStatus::Running)
        {
            return Ok(false);
        }
        let Some(p) = s.partitions.get_mut(&claim.run_id).and_then(|ps| {
            ps.iter_mut()
                .find(|p| p.partition.range.index == claim.range.index)
        }) else {
            return Ok(false);
        };
        match &mut p.lease {
            Some((t, exp))
                if *t == claim.token && p.partition.status == PartitionStatus::Running =>
            {
                *exp = until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn renew_extraction(
        &self,
        claim: &ExtractionClaim,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock()?;
        let Some(rec) = s.runs.get_mut(&claim.run.id) else {
            return Ok(false);
        };
        match &mut rec.extraction {
            Some((t, exp)) if *t == claim.token && rec.run.status == RunStatus::Pending => {
                *exp = until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_partition(&self, claim: &PartitionClaim) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if let Some(p) = s.partitions.get_mut(&claim.run_id).and_then(|ps| {
            ps.iter_mut()
                .find(|p| p.partition.range.index == claim.range.index)
        }) {
            if p.lease.map(|(t, _)| t) == Some(claim.token)
                && p.partition.status == PartitionStatus::Running
            {
                p.partition.status = PartitionStatus::Pending;
                p.lease = None;
            }
        }
        Ok(())
    }

    async fn revisit_rows(
        &self,
        run_id: RunId,
        partition: u32,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RejectedRow>, StoreError> {
        let s = self.lock()?;
        Ok(s.revisits
            .get(&run_id)
            .map(|m| {
                m.range(after + 1..)
                    .filter(|(_, (p, _))| *p == partition)
                    .take(limit)
                    .map(|(_, (_, r))| r.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn fail_run(
        &self,
        run_id: RunId,
        entry: &LogEntry,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock()?;
        match s.runs.get(&run_id) {
            None => Err(StoreError::not_found("run", run_id)),
            Some(r) if r.run.status.is_terminal() => Ok(false),
            Some(_) => s
                .stop_run(run_id, RunStatus::Failed, at, entry)
                .map(|()| true),
        }
    }

    async fn finalize_ready_runs(&self, now: Timestamp) -> Result<Vec<FinalizedRun>, StoreError> {
        let mut s = self.lock()?;
        let ready: Vec<RunId> = s
            .runs
            .values()
            .filter(|r| r.run.status == RunStatus::Running)
            .filter(|r| {
                s.partitions.get(&r.run.id).is_none_or(|ps| {
                    ps.iter()
                        .all(|p| p.partition.status == PartitionStatus::Completed)
                })
            })
            .map(|r| r.run.id)
            .collect();
        let mut out = Vec::new();
        for run_id in ready {
            let counters = s.counters(run_id);
            let Some(rec) = s.runs.get(&run_id).cloned() else {
                continue;
            };
            let status = rec
                .run
                .status
                .finish(counters.failed)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            if rec.run.load_strategy == LoadStrategy::Replace {
                let shadow = s.shadows.remove(&run_id).unwrap_or_default();
                s.tables
                    .insert(rec.spec.destination.table.as_str().to_owned(), shadow);
            }
            let total = rec.run.total_rows.unwrap_or(0);
            let entry = LogEntry {
                stage: LogStage::Finalize,
                message: finalize_message(status, &counters, total),
                timestamp: now,
            };
            s.logs.entry(run_id).or_default().push(entry);
            let Some(rec) = s.runs.get_mut(&run_id) else {
                continue;
            };
            rec.run.status = status;
            rec.run.finished_at = Some(now);
            let rec = rec.clone();
            out.push(FinalizedRun {
                run: s.run_view(&rec),
                spec: rec.spec.clone(),
            });
        }
        Ok(out)
    }

    async fn run_status(&self, run_id: RunId) -> Result<RunStatus, StoreError> {
        let s = self.lock()?;
        s.runs
            .get(&run_id)
            .map(|r| r.run.status)
            .ok_or_else(|| StoreError::not_found("run", run_id))
    }
}

/// Which stored row wins for a key, by strategy (see [`BulkLoader::commit_batch`]).
fn incoming_wins(
    strategy: LoadStrategy,
    lineage: &[RunId],
    stored: &StoredRow,
    incoming_row: u64,
) -> bool {
    let same_load = lineage.contains(&stored.run_id);
    match strategy {
        LoadStrategy::Append => same_load && incoming_row < stored.row,
        LoadStrategy::Replace => incoming_row > stored.row,
        LoadStrategy::Upsert => !same_load || incoming_row > stored.row,
    }
}

#[async_trait]
impl BulkLoader for InMemoryStore {
    async fn prepare_destination(&self, target: &LoadTarget) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        s.tables
            .entry(target.table.as_str().to_owned())
            .or_default();
        if target.strategy == LoadStrategy::Replace {
            s.shadows.entry(target.run_id).or_default();
        }
        Ok(())
    }

    async fn commit_batch(&self, c: BatchCommit<'_>) -> Result<CommitOutcome, StoreError> {
        let mut s = self.lock()?;
        let run_id = c.claim.run_id;
        let index = c.claim.range.index;
        if s.runs
            .get(&run_id)
            .is_none_or(|r| r.run.status != RunStatus::Running)
        {
            return Err(StoreError::Conflict("run is no longer running".into()));
        }
        let held = s
            .partitions
            .get(&run_id)
            .and_then(|ps| ps.iter().find(|p| p.partition.range.index == index))
            .is_some_and(|p| {
                p.partition.status == PartitionStatus::Running
                    && p.lease.map(|(t, _)| t) == Some(c.claim.token)
            });
        if !held {
            return Err(StoreError::Conflict("partition lease lost".into()));
        }
        let t = c.target;
        let key_idx: Vec<usize> = t
            .key_columns
            .iter()
            .filter_map(|k| t.schema.columns.iter().position(|col| col.name == *k))
            .collect();
        // Rows of the batch, with in-batch duplicates resolved first: the first
        // occurrence wins for append, the last for upsert and replace.
        let mut winners: Vec<(u64, Vec<Option<String>>)> = Vec::new();
        let mut by_key: HashMap<Vec<Option<String>>, usize> = HashMap::new();
        let mut valid = 0u64;
        for (row, values) in c.rows.rows() {
            valid += 1;
            let values: Vec<Option<String>> = values.iter().map(|v| v.map(str::to_owned)).collect();
            if key_idx.is_empty() {
                winners.push((row, values));
                continue;
            }
            let key: Vec<Option<String>> = key_idx
                .iter()
                .map(|&i| values.get(i).cloned().flatten())
                .collect();
            match by_key.get(&key) {
                Some(&w) if t.strategy != LoadStrategy::Append => {
                    if let Some(slot) = winners.get_mut(w) {
                        *slot = (row, values);
                    }
                }
                Some(_) => {}
                None => {
                    by_key.insert(key, winners.len());
                    winners.push((row, values));
                }
            }
        }
        let table = if t.strategy == LoadStrategy::Replace {
            s.shadows.entry(run_id).or_default()
        } else {
            s.tables.entry(t.table.as_str().to_owned()).or_default()
        };
        let mut loaded = 0u64;
        for (row, values) in winners {
            let stored = StoredRow {
                values,
                run_id,
                row,
            };
            if key_idx.is_empty() {
                table.rows.push(stored);
                loaded += 1;
                continue;
            }
            let key: Vec<Option<String>> = key_idx
                .iter()
                .map(|&i| stored.values.get(i).cloned().flatten())
                .collect();
            match table.index.get(&key).copied() {
                None => {
                    table.index.insert(key, table.rows.len());
                    table.rows.push(stored);
                    loaded += 1;
                }
                Some(at) => {
                    let Some(existing) = table.rows.get_mut(at) else {
                        continue;
                    };
                    if incoming_wins(t.strategy, &t.lineage, existing, row) {
                        *existing = stored;
                        if t.strategy == LoadStrategy::Upsert {
                            loaded += 1;
                        }
                    }
                }
            }
        }
        let mut failed_rows: Vec<u64> = c.errors.iter().map(|e| e.row).collect();
        failed_rows.dedup();
        let failed = failed_rows.len() as u64;
        // Stored text cannot hold NUL (PostgreSQL refuses it): it becomes U+FFFD.
        s.errors
            .entry(run_id)
            .or_default()
            .extend(c.errors.iter().map(|e| RowError {
                value: e.value.replace('\0', "\u{FFFD}"),
                ..e.clone()
            }));
        let rejected = s.rejected.entry(run_id).or_default();
        for r in c.rejected {
            rejected.insert(r.row, (index, r.clone()));
        }
        let skipped = valid - loaded;
        let cursor = {
            let p = s
                .partitions
                .get_mut(&run_id)
                .and_then(|ps| ps.iter_mut().find(|p| p.partition.range.index == index))
                .ok_or_else(|| StoreError::Internal("partition vanished".into()))?;
            p.partition.counters = p.partition.counters.plus(Counters {
                loaded,
                skipped,
                failed,
            });
            p.partition.checkpoint = c.checkpoint;
            p.partition.rate = Some(c.rate);
            if let Some(cur) = c.revisit_cursor {
                p.revisit_cursor = cur;
            }
            p.revisit_cursor
        };
        let done = c.checkpoint.is_complete(&c.claim.range)
            && s.pending_revisits(run_id, index, cursor) == 0;
        if done {
            if let Some(p) = s
                .partitions
                .get_mut(&run_id)
                .and_then(|ps| ps.iter_mut().find(|p| p.partition.range.index == index))
            {
                p.partition.status = PartitionStatus::Completed;
                p.lease = None;
            }
        }
        Ok(CommitOutcome {
            loaded,
            skipped,
            failed,
            run_failed_rows: s.counters(run_id).failed,
            partition_completed: done,
        })
    }
}

#[async_trait]
impl DestinationProbe for InMemoryStore {
    async fn table_rows(&self, table: &str) -> Option<Vec<ProbedRow>> {
        let s = self.state.lock().ok()?;
        let t = s.tables.get(table)?;
        let mut rows: Vec<ProbedRow> = t
            .rows
            .iter()
            .map(|r| ProbedRow {
                values: r.values.clone(),
                run_id: r.run_id.to_string(),
                row: r.row,
            })
            .collect();
        rows.sort();
        Some(rows)
    }
}

impl InMemoryStore {
    /// Rows committed across a run's partitions (test helper).
    pub async fn list_partitions_for_test(&self, run_id: RunId) -> u64 {
        self.state
            .lock()
            .map(|s| {
                s.partitions
                    .get(&run_id)
                    .map(|ps| {
                        ps.iter()
                            .map(|p| p.partition.checkpoint.committed_rows(&p.partition.range))
                            .sum()
                    })
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod contract_tests {
    crate::store_contract_tests!(async { super::InMemoryStore::new() });
}
