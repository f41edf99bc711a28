//! The in-memory store: every storage port over one mutex-guarded state. It is
//! the executable specification of the ports' contracts (the contract suites
//! run against it and against PostgreSQL). One file per port, as in
//! `sluice-postgres`.

mod api_keys;
mod connectors;
mod ledger;
mod loader;
mod pipelines;
mod polling;
mod queue;
mod runs;
mod webhooks;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use sluice_domain::connector::{Connector, Credentials};
use sluice_domain::ids::{ApiKeyId, ConnectorId, PipelineId, RunId};
use sluice_domain::pipeline::{Pipeline, PipelineSpec};
use sluice_domain::run::{Counters, LogEntry, Partition, Run};
use sluice_domain::status::{PartitionStatus, RunStatus};
use sluice_domain::time::Timestamp;
use sluice_domain::validation::RowError;

use super::{DestinationProbe, ProbedRow};
use crate::ports::{
    ApiKey, LeaseToken, MAX_PAGE_SIZE, NewRun, Page, PageRequest, PollState, RejectedRow,
    SourceFile, StoreError,
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
    /// A primary key the table had before Sluice loaded into it.
    primary_key: Option<PrimaryKey>,
}

/// A one-column primary key of a table Sluice did not create.
#[derive(Debug, Clone)]
struct PrimaryKey {
    /// Its name, as PostgreSQL would give it (`<table>_pkey`).
    constraint: String,
    /// Its column.
    column: String,
}

#[derive(Debug, Default)]
struct State {
    api_keys: BTreeMap<ApiKeyId, (ApiKey, String)>,
    connectors: BTreeMap<ConnectorId, (Connector, Credentials)>,
    pipelines: BTreeMap<PipelineId, Pipeline>,
    runs: BTreeMap<RunId, RunRec>,
    files: HashMap<RunId, Vec<SourceFile>>,
    /// Per-file counters, parallel to `files`.
    file_counts: HashMap<RunId, Vec<Counters>>,
    ledger: HashMap<PipelineId, BTreeMap<String, ledger::LedgerRec>>,
    ledger_seq: u64,
    partitions: HashMap<RunId, Vec<PartRec>>,
    errors: HashMap<RunId, Vec<RowError>>,
    rejected: HashMap<RunId, BTreeMap<u64, (u32, RejectedRow)>>,
    revisits: HashMap<RunId, BTreeMap<u64, (u32, RejectedRow)>>,
    logs: HashMap<RunId, Vec<LogEntry>>,
    poll: HashMap<PipelineId, PollState>,
    tables: HashMap<String, Table>,
    shadows: HashMap<RunId, Table>,
    next_token: i64,
    webhooks: webhooks::WebhookState,
}

/// Every storage port in memory. Cheap to clone (shared state).
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore {
    state: Arc<Mutex<State>>,
    /// Set for a store whose database is down.
    outage: Option<Arc<str>>,
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
            if p.partition.status.can_become(PartitionStatus::Failed) {
                p.partition.status = PartitionStatus::Failed;
                p.lease = None;
            }
        }
        self.shadows.remove(&run_id);
        self.logs.entry(run_id).or_default().push(entry.clone());
        self.enqueue_webhook_events(run_id, to, at);
        Ok(())
    }

    fn partition_mut(&mut self, run_id: RunId, index: u32) -> Option<&mut PartRec> {
        self.partitions
            .get_mut(&run_id)?
            .iter_mut()
            .find(|p| p.partition.range.index == index)
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

    /// A store whose database is down: every call fails with
    /// `Unavailable(message)`, to see what its callers make of that.
    pub fn unavailable(message: &str) -> Self {
        Self {
            outage: Some(message.into()),
            ..Self::default()
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        if let Some(message) = &self.outage {
            return Err(StoreError::Unavailable(message.to_string()));
        }
        self.state
            .lock()
            .map_err(|_| StoreError::Internal("in-memory store poisoned".into()))
    }
}

#[async_trait]
impl DestinationProbe for InMemoryStore {
    async fn create_table_with_primary_key(&self, table: &str) {
        if let Ok(mut s) = self.lock() {
            s.tables.insert(
                table.to_owned(),
                Table {
                    primary_key: Some(PrimaryKey {
                        constraint: format!("{table}_pkey"),
                        column: "id".into(),
                    }),
                    ..Table::default()
                },
            );
        }
    }

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
