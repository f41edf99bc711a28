//! Builders for contract tests.

use std::sync::atomic::{AtomicU64, Ordering};

use sluice_domain::connector::{
    Connector, ConnectorConfig, ConnectorType, CredentialSource, Credentials,
};
use sluice_domain::identifier::Identifier;
use sluice_domain::ids::{ConnectorId, PipelineId, RunId, Ulid};
use sluice_domain::pipeline::{
    Destination, LoadStrategy, Pipeline, PipelineSpec, PollingSpec, SourceSpec,
};
use sluice_domain::run::{
    LogEntry, LogStage, PartitionRange, Run, RunMetadata, SourcePosition, Trigger,
};
use sluice_domain::schema::{Column, ColumnType, Schema};
use sluice_domain::time::Timestamp;

use super::ContractStore;
use crate::ports::{ExtractionResult, LoadTarget, NewRun, PageRequest, SourceFile, WorkerId};

/// Ids and entities for one contract test.
#[derive(Debug, Default)]
pub struct Fixture {
    next: AtomicU64,
}

/// The fixed start time of contract tests.
pub const T0: Timestamp = Timestamp(1_750_000_000_000);

impl Fixture {
    /// A new fixture.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh ULID, increasing.
    pub fn ulid(&self) -> Ulid {
        let n = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        Ulid::from_parts(1_750_000_000_000 + n, u128::from(n) << 8)
    }

    /// A worker name.
    pub fn worker(&self, n: u32) -> WorkerId {
        WorkerId(format!("contract-worker-{n}"))
    }

    /// An `s3` connector with one secret.
    pub fn connector(&self) -> (Connector, Credentials) {
        let connector = Connector {
            id: ConnectorId::from_ulid(self.ulid()),
            name: "Production S3".into(),
            connector_type: ConnectorType::S3,
            config: ConnectorConfig {
                bucket: Some("data".into()),
                ..ConnectorConfig::default()
            },
            credential_source: CredentialSource::Stored,
            credential_keys: vec!["secretAccessKey".into()],
            created_at: T0,
            updated_at: T0,
        };
        let creds = Credentials::new(
            [("secretAccessKey".to_owned(), "s3cr3t-value".to_owned())]
                .into_iter()
                .collect(),
        );
        (connector, creds)
    }

    /// A pipeline spec over `table` with columns `id integer` (key) and `name string`.
    pub fn spec(
        &self,
        connector: ConnectorId,
        table: &str,
        strategy: LoadStrategy,
        keyed: bool,
    ) -> PipelineSpec {
        let col = |n: &str, t| Column {
            name: Identifier::parse(n).unwrap_or_else(|_| unreachable!()),
            source: None,
            column_type: t,
            required: false,
            max_length: None,
            pattern: None,
            allowed_values: None,
        };
        PipelineSpec {
            name: "Daily Customer Import".into(),
            status: Default::default(),
            connector_id: connector,
            source: SourceSpec {
                prefix: "data/customers/".into(),
                pattern: Some("*.csv".into()),
                format: Default::default(),
                csv: Default::default(),
                compression: Default::default(),
                files: None,
            },
            schema: Schema {
                columns: vec![
                    col("id", ColumnType::Integer),
                    col("name", ColumnType::String),
                ],
            },
            destination: Destination {
                table: Identifier::parse(table).unwrap_or_else(|_| unreachable!()),
                key_columns: if keyed {
                    vec![Identifier::parse("id").unwrap_or_else(|_| unreachable!())]
                } else {
                    vec![]
                },
            },
            load_strategy: strategy,
            schema_drift: Default::default(),
            partitions: 4,
            max_errors: None,
            polling: PollingSpec::default(),
            schedule: None,
        }
    }

    /// Stores a connector and a pipeline; returns the pipeline.
    pub async fn pipeline<S: ContractStore>(
        &self,
        s: &S,
        table: &str,
        strategy: LoadStrategy,
        keyed: bool,
    ) -> Pipeline {
        let (c, creds) = self.connector();
        s.insert_connector(&c, &creds)
            .await
            .expect("insert connector");
        let p = Pipeline {
            id: PipelineId::from_ulid(self.ulid()),
            spec: self.spec(c.id, table, strategy, keyed),
            created_at: T0,
            updated_at: T0,
        };
        s.insert_pipeline(&p).await.expect("insert pipeline");
        p
    }

    /// A new API-triggered run of `p`.
    pub fn new_run(&self, p: &Pipeline) -> NewRun {
        NewRun {
            id: RunId::from_ulid(self.ulid()),
            pipeline_id: p.id,
            spec: p.spec.clone(),
            trigger: Trigger::Api,
            metadata: RunMetadata::default(),
            created_at: T0,
            log: vec![],
        }
    }

    /// An extraction result with one file and `partitions` equal ranges of `rows_each` rows.
    pub fn extraction(&self, partitions: u32, rows_each: u64) -> ExtractionResult {
        self.extraction_in_files(partitions, rows_each, &[u64::from(partitions) * rows_each])
    }

    /// Like [`Fixture::extraction`], the rows spread over files of `file_rows`
    /// rows each (`data/customers/f0.csv`, `f1.csv`, …; they must add up).
    pub fn extraction_in_files(
        &self,
        partitions: u32,
        rows_each: u64,
        file_rows: &[u64],
    ) -> ExtractionResult {
        let total = u64::from(partitions) * rows_each;
        let mut first = 1;
        let files = file_rows
            .iter()
            .enumerate()
            .map(|(i, rows)| {
                let f = SourceFile {
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    key: if file_rows.len() == 1 {
                        "data/customers/a.csv".into()
                    } else {
                        format!("data/customers/f{i}.csv")
                    },
                    size: rows * 10,
                    etag: Some(format!("\"e{}\"", i + 1)),
                    last_modified: Some(T0),
                    gzip: false,
                    header: Some(vec!["id".into(), "name".into()]),
                    first_row: first,
                    row_count: *rows,
                };
                first += rows;
                f
            })
            .collect();
        ExtractionResult {
            files,
            partitions: (0..partitions)
                .map(|i| PartitionRange {
                    index: i,
                    first_row: 1 + u64::from(i) * rows_each,
                    row_count: rows_each,
                    start: SourcePosition {
                        file_index: 0,
                        byte_offset: 8 + u64::from(i) * rows_each * 10,
                    },
                })
                .collect(),
            total_rows: total,
            log: vec![LogEntry {
                stage: LogStage::Extract,
                message: format!("Read {total} rows from source"),
                timestamp: T0,
            }],
            spec: None,
        }
    }

    /// Creates, extracts and starts a run of `p` with `partitions` × `rows_each` rows.
    pub async fn running_run<S: ContractStore>(
        &self,
        s: &S,
        p: &Pipeline,
        partitions: u32,
        rows_each: u64,
    ) -> RunId {
        let run = self.new_run(p);
        s.create_run(&run).await.expect("create run");
        let claim = s
            .claim_extraction(&self.worker(0), T0, 30_000)
            .await
            .expect("claim")
            .expect("a pending run");
        assert_eq!(claim.run.id, run.id);
        s.complete_extraction(&claim, Some(&self.extraction(partitions, rows_each)), T0)
            .await
            .expect("complete extraction");
        run.id
    }

    /// The load target of a run of `p`.
    pub fn target(&self, p: &Pipeline, run_id: RunId, lineage: Vec<RunId>) -> LoadTarget {
        LoadTarget::new(run_id, &p.spec, lineage)
    }
}

/// The newest run of a pipeline, if any (the first of its newest-first list).
pub async fn newest_run<S: ContractStore>(s: &S, pipeline: PipelineId) -> Option<Run> {
    s.list_runs(
        pipeline,
        &PageRequest {
            limit: 1,
            cursor: None,
        },
    )
    .await
    .expect("list runs")
    .items
    .into_iter()
    .next()
}
