//! A Sluice API over the in-memory fakes, called in-process, plus builders
//! of connectors, pipelines and runs in any state.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::http::header::HeaderMap;
use actix_web::http::{Method, StatusCode};
use actix_web::test::{self, TestRequest};
use bytes::Bytes;
use serde_json::{Value, json};
use sluice_application::Tunables;
use sluice_application::ports::{
    BatchCommit, BulkLoader, Clock, ExtractionResult, LoadTarget, Ports, RunStore, SourceFile,
    WorkQueue, WorkerId,
};
use sluice_application::testing::{
    InMemorySource, InMemorySourceFactory, InMemoryStore, ManualClock, SequentialIds,
};
use sluice_application::usecases::UseCases;
use sluice_domain::ids::RunId;
use sluice_domain::role::Role;
use sluice_domain::run::{Checkpoint, LogEntry, LogStage, PartitionRange, SourcePosition};
use sluice_domain::time::Timestamp;
use sluice_domain::validation::{RowError, ValidBatch};
use sluice_http::{ApiState, api};

/// The secret values of the test connector, which no response may contain.
pub const SECRET_VALUES: [&str; 2] = ["test-access-key-0042", "s3cr3t-very-private-value"];

/// A key that was never issued.
pub const UNKNOWN_KEY: &str = "sk_0000000000000000000000000000000000000000000000000000000000000000";

/// One in-memory Sluice behind the HTTP API, with a key per role.
pub struct TestApi {
    pub store: Arc<InMemoryStore>,
    pub source: InMemorySource,
    pub clock: Arc<ManualClock>,
    pub state: ApiState,
    pub admin: String,
    pub editor: String,
    pub viewer: String,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// True if the body was streamed (no length known up front).
    pub streamed: bool,
}

impl Reply {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The `field` of a 400, asserting the error shape.
    pub fn error_field(&self) -> String {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{}", self.text());
        let v = self.json();
        assert_eq!(v["error"]["code"], "bad_request", "{v}");
        v["error"]["field"]
            .as_str()
            .unwrap_or_else(|| panic!("no field: {v}"))
            .to_owned()
    }
}

/// The start of every test world: 2026-03-30T10:00:00Z.
pub fn t0() -> Timestamp {
    Timestamp::parse_rfc3339("2026-03-30T10:00:00Z").expect("time")
}

impl TestApi {
    /// A fresh, empty Sluice with an admin, an editor and a viewer key.
    pub async fn new() -> Self {
        Self::with_ports(|_| {}).await
    }

    /// Like [`TestApi::new`], with the ports changed by `adjust` once the
    /// keys are issued (to put a failing port in).
    pub async fn with_ports(adjust: impl FnOnce(&mut Ports)) -> Self {
        let store = Arc::new(InMemoryStore::new());
        let source = InMemorySource::new(64);
        let clock = Arc::new(ManualClock::new(t0()));
        let mut ports = Ports::from_store(
            store.clone(),
            Arc::new(InMemorySourceFactory(source.clone())),
            clock.clone(),
            Arc::new(SequentialIds::default()),
        );
        let keys_app = UseCases::new(ports.clone(), Tunables::default());
        let key = |role: Role| {
            let app = keys_app.clone();
            async move {
                app.issue_api_key(&format!("{role} key"), role)
                    .await
                    .expect("issue key")
                    .secret
            }
        };
        let (admin, editor, viewer) = (
            key(Role::Admin).await,
            key(Role::Editor).await,
            key(Role::Viewer).await,
        );
        adjust(&mut ports);
        let app = UseCases::new(ports, Tunables::default());
        Self {
            store,
            source,
            clock,
            state: ApiState::new(app),
            admin,
            editor,
            viewer,
        }
    }

    /// The key of `role`.
    pub fn key(&self, role: Role) -> &str {
        match role {
            Role::Admin => &self.admin,
            Role::Editor => &self.editor,
            Role::Viewer => &self.viewer,
        }
    }

    /// Sends a prepared request.
    pub async fn call(&self, req: TestRequest) -> Reply {
        let service = test::init_service(api(self.state.clone())).await;
        let res = test::call_service(&service, req.to_request()).await;
        let status = res.status();
        let headers = res.headers().clone();
        let streamed = matches!(
            res.response().body().size(),
            actix_web::body::BodySize::Stream
        );
        let body = test::read_body(res).await;
        Reply {
            status,
            headers,
            body,
            streamed,
        }
    }

    /// Sends `method path` with an optional bearer key and JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = TestRequest::default().method(method).uri(path);
        if let Some(k) = key {
            req = req.insert_header(("Authorization", format!("Bearer {k}")));
        }
        if let Some(b) = body {
            req = req.set_json(b);
        }
        self.call(req).await
    }

    /// `GET path` as `role`.
    pub async fn get(&self, path: &str, role: Role) -> Reply {
        self.send(Method::GET, path, Some(self.key(role)), None)
            .await
    }

    /// `POST path` as admin, asserting `expect`; returns the JSON body.
    pub async fn admin_post(&self, path: &str, body: Option<Value>, expect: StatusCode) -> Value {
        let reply = self.send(Method::POST, path, Some(&self.admin), body).await;
        assert_eq!(reply.status, expect, "POST {path}: {}", reply.text());
        reply.json()
    }

    /// Creates an s3 connector holding [`SECRET_VALUES`]; returns its id.
    pub async fn connector(&self, name: &str) -> String {
        let body = json!({
            "name": name,
            "type": "s3",
            "config": {"bucket": "data", "region": "eu-west-1"},
            "credentials": {"accessKeyId": SECRET_VALUES[0], "secretAccessKey": SECRET_VALUES[1]}
        });
        id_of(
            &self
                .admin_post("/api/v1/connectors", Some(body), StatusCode::CREATED)
                .await,
        )
    }

    /// Creates a pipeline over `connector`, `patch` merged into a valid
    /// upsert definition with polling; returns its id.
    pub async fn pipeline(&self, connector: &str, patch: Value) -> String {
        let mut body = pipeline_spec(connector);
        sluice_application::usecases::merge_patch(&mut body, &patch);
        id_of(
            &self
                .admin_post("/api/v1/pipelines", Some(body), StatusCode::CREATED)
                .await,
        )
    }

    /// Starts a run of `pipeline` through the API; returns its id.
    pub async fn start_run(&self, pipeline: &str) -> String {
        id_of(
            &self
                .admin_post(
                    &format!("/api/v1/pipelines/{pipeline}/runs"),
                    None,
                    StatusCode::CREATED,
                )
                .await,
        )
    }

    /// Starts a run of `pipeline` and drives it through the work queue as
    /// `plan` says; returns its id.
    pub async fn run(&self, pipeline: &str, plan: RunPlan) -> String {
        let run_id = self.start_run(pipeline).await;
        let id = RunId::parse(&run_id).expect("run id");
        RunDriver {
            api: self,
            run_id: id,
        }
        .drive(plan)
        .await;
        run_id
    }
}

/// The `id` member of a JSON body.
pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

/// A valid pipeline definition (`id integer`, `email email`, upsert by id,
/// 4 partitions, polling on).
pub fn pipeline_spec(connector: &str) -> Value {
    json!({
        "name": "Daily Customer Import",
        "connectorId": connector,
        "source": {"prefix": "data/customers/", "pattern": "*.csv"},
        "schema": {"columns": [
            {"name": "id", "type": "integer", "required": true},
            {"name": "email", "type": "email"}
        ]},
        "destination": {"table": "customers", "keyColumns": ["id"]},
        "loadStrategy": "upsert",
        "partitions": 4,
        "polling": {
            "enabled": true,
            "intervalMinutes": 15,
            "touchFile": "_READY.dat",
            "prefix": "data/customers/",
            "deleteAfterProcess": true
        }
    })
}

/// What happens to one partition of a driven run.
#[derive(Debug, Clone)]
pub enum PartitionPlan {
    /// Nobody claims it (it stays `pending`).
    Untouched,
    /// Claimed, and its first `rows` rows committed with `bad` failing validation.
    Commit { rows: u64, bad: Vec<RowError> },
}

/// How a driven run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Left as it is (`running`).
    Running,
    /// Finalised (every partition must be complete).
    Finalize,
    /// Failed by the engine.
    Fail,
}

/// A run to drive: partitions of `rows_each` rows.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub rows_each: u64,
    pub partitions: Vec<PartitionPlan>,
    pub end: RunEnd,
}

impl RunPlan {
    /// One partition of `rows` rows, all committed, `bad` failing validation.
    pub fn single(rows: u64, bad: Vec<RowError>, end: RunEnd) -> Self {
        Self {
            rows_each: rows,
            partitions: vec![PartitionPlan::Commit { rows, bad }],
            end,
        }
    }

    /// The documented progress example at a small scale: 4 partitions of 10
    /// rows, two complete (row 2 failing validation), one half done, one pending.
    pub fn sample(end: RunEnd) -> Self {
        let bad = RowError::new(2, "email", "not-an-email", "Invalid email format");
        Self {
            rows_each: 10,
            partitions: vec![
                PartitionPlan::Commit {
                    rows: 10,
                    bad: vec![bad],
                },
                PartitionPlan::Commit {
                    rows: 10,
                    bad: vec![],
                },
                PartitionPlan::Commit {
                    rows: 5,
                    bad: vec![],
                },
                PartitionPlan::Untouched,
            ],
            end,
        }
    }
}

struct RunDriver<'a> {
    api: &'a TestApi,
    run_id: RunId,
}

impl RunDriver<'_> {
    async fn drive(&self, plan: RunPlan) {
        let store = &*self.api.store;
        let worker = WorkerId("test-worker".into());
        let now = self.api.clock.now();
        let claim = store
            .claim_extraction(&worker, now, 60_000)
            .await
            .expect("claim extraction")
            .expect("a pending run");
        assert_eq!(claim.run.id, self.run_id);
        let count = u32::try_from(plan.partitions.len()).expect("count");
        let total = u64::from(count) * plan.rows_each;
        let ranges: Vec<PartitionRange> = (0..count)
            .map(|i| PartitionRange {
                index: i,
                first_row: 1 + u64::from(i) * plan.rows_each,
                row_count: plan.rows_each,
                start: position(1 + u64::from(i) * plan.rows_each),
            })
            .collect();
        let result = ExtractionResult {
            files: vec![SourceFile {
                index: 0,
                key: "data/customers/a.csv".into(),
                size: total * 10,
                etag: Some("\"e1\"".into()),
                last_modified: None,
                gzip: false,
                header: Some(vec!["id".into(), "email".into()]),
                first_row: 1,
                row_count: total,
            }],
            partitions: ranges.clone(),
            total_rows: total,
            log: vec![LogEntry {
                stage: LogStage::Extract,
                message: format!("Read {total} rows from source"),
                timestamp: now,
            }],
            spec: None,
        };
        store
            .complete_extraction(&claim, Some(&result), now)
            .await
            .expect("complete extraction");
        let target = LoadTarget {
            run_id: self.run_id,
            table: claim.spec.destination.table.clone(),
            schema: claim.spec.schema.clone(),
            key_columns: claim.spec.destination.key_columns.clone(),
            strategy: claim.spec.load_strategy,
            lineage: vec![self.run_id],
        };
        store.prepare_destination(&target).await.expect("prepare");
        for (range, part) in ranges.iter().zip(&plan.partitions) {
            let PartitionPlan::Commit { rows, bad } = part else {
                continue;
            };
            let p = store
                .claim_partition(&worker, now, 600_000)
                .await
                .expect("claim partition")
                .expect("a partition");
            assert_eq!(p.range.index, range.index);
            let last = range.first_row + rows - 1;
            let mut batch = ValidBatch::new(2);
            for row in range.first_row..=last {
                if !bad.iter().any(|e| e.row == row) {
                    let id = row.to_string();
                    let email = format!("user{row}@example.com");
                    batch.push_row(row, [Some(id.as_str()), Some(email.as_str())]);
                }
            }
            store
                .commit_batch(BatchCommit {
                    claim: &p,
                    target: &target,
                    rows: &batch,
                    errors: bad,
                    rejected: &[],
                    checkpoint: Checkpoint {
                        row: last,
                        next: position(last + 1),
                    },
                    revisit_cursor: None,
                    rate: 100.0,
                    at: now,
                })
                .await
                .expect("commit");
        }
        match plan.end {
            RunEnd::Running => {}
            RunEnd::Finalize => {
                let done = store.finalize_ready_runs(now).await.expect("finalize");
                assert_eq!(done.len(), 1, "the run must be ready to finalise");
            }
            RunEnd::Fail => {
                let entry = LogEntry {
                    stage: LogStage::Finalize,
                    message: "Run failed: destination unavailable".into(),
                    timestamp: now,
                };
                assert!(
                    store
                        .fail_run(self.run_id, &entry, now)
                        .await
                        .expect("fail")
                );
            }
        }
        // Sanity: the run exists for the API.
        store.run_log(self.run_id).await.expect("log");
    }
}

fn position(row: u64) -> SourcePosition {
    SourcePosition {
        file_index: 0,
        byte_offset: row * 10,
    }
}
