//! The engine end to end over the in-memory fakes: every strategy, errors,
//! the error threshold, retry with a schema change, cancel, polling.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sluice_domain::ids::{ApiKeyId, PipelineId, RunId, Ulid};
use sluice_domain::pipeline::Pipeline;
use sluice_domain::role::Role;
use sluice_domain::run::LogStage;
use sluice_domain::status::{PartitionStatus, RunStatus};
use sluice_domain::time::Timestamp;

use super::{Engine, Worker};
use crate::Tunables;
use crate::ports::Ports;
use crate::ports::{
    ObjectSource, ObjectSourceFactory, PageRequest, PipelineStore, RunStore, SourceError, WorkerId,
};
use crate::testing::{
    DestinationProbe, InMemorySource, InMemorySourceFactory, InMemoryStore, ManualClock,
    SequentialIds,
};
use crate::usecases::{Principal, RunRequest, UseCases, from_json};

struct Harness {
    app: UseCases,
    engine: Engine,
    store: InMemoryStore,
    source: InMemorySource,
    admin: Principal,
    clock: Arc<ManualClock>,
}

fn harness(batch_rows: usize) -> Harness {
    harness_with(batch_rows, |factory| Arc::new(factory))
}

/// A harness whose sources come through `wrap` (to watch how they are used).
fn harness_with(
    batch_rows: usize,
    wrap: impl FnOnce(InMemorySourceFactory) -> Arc<dyn ObjectSourceFactory>,
) -> Harness {
    let store = InMemoryStore::new();
    let source = InMemorySource::new(7);
    let clock = Arc::new(ManualClock::new(Timestamp(1_750_000_000_000)));
    let ports = Ports::from_store(
        Arc::new(store.clone()),
        wrap(InMemorySourceFactory(source.clone())),
        clock.clone(),
        Arc::new(SequentialIds::default()),
    );
    let tunables = Tunables {
        batch_rows,
        source_retry_ms: 1,
        ..Tunables::default()
    };
    let admin = Principal {
        key_id: ApiKeyId::from_ulid(Ulid(1)),
        role: Role::Admin,
    };
    let app = UseCases::new(ports.clone(), tunables.clone());
    // One wake-up signal, as in `sluice serve`.
    let engine = Engine::new(ports, tunables).with_wake(app.wake().clone());
    Harness {
        app,
        engine,
        store,
        source,
        admin,
        clock,
    }
}

impl Harness {
    fn worker(&self, n: u32) -> Worker {
        Worker::new(
            self.engine.clone(),
            WorkerId(format!("w{n}")),
            Duration::from_millis(1),
        )
    }

    async fn pipeline(&self, strategy: &str, extra: serde_json::Value) -> Pipeline {
        self.try_pipeline(strategy, extra).await.expect("pipeline")
    }

    /// Creates a pipeline of the test's source, its definition patched by
    /// `extra`; the use case's answer as it is.
    async fn try_pipeline(
        &self,
        strategy: &str,
        extra: serde_json::Value,
    ) -> Result<Pipeline, crate::AppError> {
        let connector = self
            .app
            .create_connector(
                &self.admin,
                from_json(json!({"name": "mem", "type": "s3", "config": {"bucket": "b"}}))
                    .expect("spec"),
            )
            .await
            .expect("connector");
        let mut spec = json!({
            "name": "customers",
            "connectorId": connector.id,
            "source": {"prefix": "in/", "pattern": "*.csv"},
            "schema": {"columns": [
                {"name": "id", "type": "integer"},
                {"name": "name", "type": "string"},
                {"name": "age", "type": "integer"}
            ]},
            "destination": {"table": "customers", "keyColumns": ["id"]},
            "loadStrategy": strategy,
            "partitions": 4
        });
        crate::usecases::merge_patch(&mut spec, &extra);
        self.app
            .create_pipeline(&self.admin, from_json(spec)?)
            .await
    }

    async fn run_to_end(&self, pipeline: PipelineId) -> RunId {
        self.run_to_end_with(pipeline, RunRequest::default()).await
    }

    async fn run_to_end_with(&self, pipeline: PipelineId, request: RunRequest) -> RunId {
        let run = self
            .app
            .start_run(&self.admin, pipeline, request)
            .await
            .expect("start");
        self.worker(1).run_until_idle().await.expect("worker");
        run.id
    }

    async fn table(&self) -> Vec<(i64, String, Option<i64>, u64)> {
        let rows = self
            .store
            .table_rows("customers")
            .await
            .expect("table exists");
        let mut out: Vec<_> = rows
            .into_iter()
            .map(|r| {
                let id = r.values[0]
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .expect("id");
                let name = r.values[1].clone().unwrap_or_default();
                let age = r.values[2].as_deref().and_then(|v| v.parse().ok());
                (id, name, age, r.row)
            })
            .collect();
        out.sort();
        out
    }
}

/// `n` rows: row r has id r, except every 50th repeats the previous id; every
/// 97th has a non-integer age. Names say which row they come from.
fn customers_csv(n: u64) -> String {
    let mut s = String::from("id,name,age\r\n");
    for r in 1..=n {
        let id = if r % 50 == 0 { r - 1 } else { r };
        let age = if r % 97 == 0 {
            "abc".to_owned()
        } else {
            (r % 90).to_string()
        };
        s.push_str(&format!("{id},\"Name, {r}\",{age}\r\n"));
    }
    s
}

fn is_invalid(r: u64) -> bool {
    r % 97 == 0
}

fn id_of(r: u64) -> u64 {
    if r % 50 == 0 { r - 1 } else { r }
}

#[tokio::test]
async fn upsert_keeps_the_last_occurrence_and_counts_add_up() {
    let h = harness(37);
    h.source.put("in/a.csv", customers_csv(600));
    h.source.put(
        "in/b.csv",
        "id,name,age\n".to_owned()
            + &customers_csv(400)
                .lines()
                .skip(1)
                .map(|l| {
                    // Shift b.csv's ids so that some collide with a.csv's.
                    let (id, rest) = l.split_once(',').expect("line");
                    format!("{},{rest}\n", id.parse::<u64>().expect("id") + 300)
                })
                .collect::<String>(),
    );
    h.source.put("in/_READY.dat", "");
    h.source.put("in/notes.txt", "ignored by the pattern");
    let p = h.pipeline("upsert", json!({})).await;
    let run_id = h.run_to_end(p.id).await;

    let progress = h
        .app
        .run_progress(&h.admin, p.id, run_id)
        .await
        .expect("progress");
    assert_eq!(progress.status, RunStatus::CompletedWithErrors);
    assert_eq!(progress.total_rows, 1000);
    assert_eq!(progress.processed_rows, 1000);
    let invalid =
        (1..=600).filter(|r| is_invalid(*r)).count() + (1..=400).filter(|r| is_invalid(*r)).count();
    assert_eq!(progress.failed_rows, invalid as u64);
    assert_eq!(progress.partitions, 4);
    assert_eq!(progress.completed_partitions, 4);
    assert_eq!(
        progress
            .partition_details
            .iter()
            .map(|d| d.rows)
            .sum::<u64>(),
        1000
    );
    assert_eq!(progress.eta, None);
    assert_eq!(progress.validation_errors.len(), invalid.min(20));
    assert_eq!(progress.validation_errors[0].row, 97);
    assert_eq!(progress.validation_errors[0].error, "Expected integer");
    assert!(
        progress
            .log
            .iter()
            .any(|e| e.stage == LogStage::Extract && e.message.starts_with("Read 1000 rows"))
    );

    // Expected: for each id, the last valid occurrence in file order.
    let mut expected: BTreeMap<i64, u64> = BTreeMap::new();
    for r in 1..=600u64 {
        if !is_invalid(r) {
            expected.insert(id_of(r) as i64, r);
        }
    }
    for r in 1..=400u64 {
        if !is_invalid(r) {
            expected.insert((id_of(r) + 300) as i64, 600 + r);
        }
    }
    let table = h.table().await;
    assert_eq!(table.len(), expected.len());
    for (id, name, _, row) in &table {
        assert_eq!(expected.get(id), Some(row), "id {id}");
        let source_row = if *row > 600 { row - 600 } else { *row };
        assert_eq!(name, &format!("Name, {source_row}"));
    }
    let run = h.app.get_run(&h.admin, p.id, run_id).await.expect("run");
    assert_eq!(run.counters.processed(), 1000);
    assert_eq!(
        run.counters.loaded + run.counters.skipped + run.counters.failed,
        1000
    );
}

#[tokio::test]
async fn append_with_keys_skips_exactly_the_duplicates() {
    let h = harness(50);
    h.source.put("in/a.csv", customers_csv(1000));
    let p = h.pipeline("append", json!({})).await;
    let run_id = h.run_to_end(p.id).await;
    let run = h.app.get_run(&h.admin, p.id, run_id).await.expect("run");
    let valid: Vec<u64> = (1..=1000).filter(|r| !is_invalid(*r)).collect();
    let distinct: std::collections::BTreeSet<u64> = valid.iter().map(|r| id_of(*r)).collect();
    assert_eq!(run.counters.loaded, distinct.len() as u64);
    assert_eq!(run.counters.skipped, (valid.len() - distinct.len()) as u64);
    // The first valid occurrence of each key is kept.
    let table = h.table().await;
    for (id, _, _, row) in table {
        let first = valid.iter().find(|r| id_of(**r) as i64 == id).copied();
        assert_eq!(Some(row), first);
    }
    // A second run reads nothing new: the file is in the ledger.
    let nothing = h.run_to_end(p.id).await;
    let run = h.app.get_run(&h.admin, p.id, nothing).await.expect("run");
    assert_eq!(
        (run.status, run.total_rows),
        (RunStatus::Completed, Some(0))
    );
    // A second run forced over the same file skips every row.
    let all = RunRequest {
        files: Some(sluice_domain::ledger::FileSelection::All),
        ..RunRequest::default()
    };
    let again = h.run_to_end_with(p.id, all).await;
    let run = h.app.get_run(&h.admin, p.id, again).await.expect("run");
    assert_eq!(run.counters.loaded, 0);
    assert_eq!(run.counters.skipped, valid.len() as u64);
}

#[tokio::test]
async fn replace_swaps_the_table_and_a_failed_run_leaves_it() {
    let h = harness(64);
    h.source.put("in/a.csv", customers_csv(300));
    let p = h
        .pipeline("replace", json!({"destination": {"keyColumns": []}}))
        .await;
    let first = h.run_to_end(p.id).await;
    assert_eq!(
        h.app
            .get_run(&h.admin, p.id, first)
            .await
            .expect("run")
            .status,
        RunStatus::CompletedWithErrors
    );
    assert_eq!(h.table().await.len(), 300 - 3);
    h.source.put("in/a.csv", customers_csv(10));
    h.source.put("in/b.csv", "id,name,age\n1,\"unterminated\n");
    let second = h.run_to_end(p.id).await;
    let run = h.app.get_run(&h.admin, p.id, second).await.expect("run");
    assert_eq!(run.status, RunStatus::CompletedWithErrors);
    assert_eq!(h.table().await.len(), 10, "replaced by the second run");
    let errors = h
        .app
        .run_progress(&h.admin, p.id, second)
        .await
        .expect("progress")
        .validation_errors;
    assert_eq!(
        errors
            .last()
            .map(|e| (e.row, e.column.as_str(), e.error.as_str())),
        Some((11, "*", "Unbalanced quote"))
    );

    // A run that fails (error threshold) keeps the previous table.
    h.app
        .update_pipeline(&h.admin, p.id, json!({"maxErrors": 0}))
        .await
        .expect("patch");
    let third = h.run_to_end(p.id).await;
    let run = h.app.get_run(&h.admin, p.id, third).await.expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(h.table().await.len(), 10);
}

#[tokio::test]
async fn error_threshold_fails_the_run_and_says_why() {
    let h = harness(100);
    h.source.put("in/a.csv", customers_csv(1000));
    let p = h
        .pipeline("upsert", json!({"maxErrors": 5, "partitions": 1}))
        .await;
    let run_id = h.run_to_end(p.id).await;
    let run = h.app.get_run(&h.admin, p.id, run_id).await.expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    let progress = h
        .app
        .run_progress(&h.admin, p.id, run_id)
        .await
        .expect("progress");
    let last = progress.log.last().expect("log");
    assert!(last.message.contains("maxErrors is 5"), "{}", last.message);
    assert!(
        progress
            .partition_details
            .iter()
            .all(|d| d.status == PartitionStatus::Failed)
    );
}

#[tokio::test]
async fn missing_files_fail_and_an_empty_source_completes_with_zero_rows() {
    let h = harness(10);
    let p = h.pipeline("append", json!({})).await;
    let run_id = h.run_to_end(p.id).await;
    let progress = h
        .app
        .run_progress(&h.admin, p.id, run_id)
        .await
        .expect("progress");
    assert_eq!(progress.status, RunStatus::Failed);
    assert!(
        progress
            .log
            .iter()
            .any(|e| e.message.starts_with("No files found")),
        "{:?}",
        progress.log
    );

    h.source.put("in/a.csv", "id,name,age\n");
    let run_id = h.run_to_end(p.id).await;
    let progress = h
        .app
        .run_progress(&h.admin, p.id, run_id)
        .await
        .expect("progress");
    assert_eq!(progress.status, RunStatus::Completed);
    assert_eq!(
        (
            progress.total_rows,
            progress.processed_rows,
            progress.partitions
        ),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn retry_resumes_after_the_checkpoints_and_loads_rows_fixed_by_a_schema_change() {
    let h = harness(25);
    h.source.put("in/a.csv", customers_csv(400));
    let p = h.pipeline("upsert", json!({"partitions": 2})).await;
    let run = h
        .app
        .start_run(&h.admin, p.id, RunRequest::default())
        .await
        .expect("start");
    let w = h.worker(1);
    // Extract, then load a few batches before the source goes away.
    for _ in 0..1 {
        w.step().await.expect("extract");
    }
    let claim_store = h.store.clone();
    let source = h.source.clone();
    // Let partition 0 finish, then break the source for partition 1.
    w.step().await.expect("partition 0");
    source.fail_with(Some(SourceError::Unreachable("connection refused".into())));
    w.run_until_idle().await.expect("worker");
    let failed = h.app.get_run(&h.admin, p.id, run.id).await.expect("run");
    assert_eq!(failed.status, RunStatus::Failed);
    let committed: u64 = claim_store.list_partitions_for_test(run.id).await;
    assert!(committed >= 200, "partition 0 committed");

    // The schema now accepts any age: rows that failed on "abc" load on retry.
    source.fail_with(None);
    h.app
        .update_pipeline(&h.admin, p.id, json!({"schema": {"columns": [
            {"name": "id", "type": "integer"}, {"name": "name", "type": "string"}, {"name": "age", "type": "string"}
        ]}}))
        .await
        .expect("patch");
    let retry = h
        .app
        .retry_run(&h.admin, p.id, run.id)
        .await
        .expect("retry");
    assert_eq!(retry.run.status, RunStatus::Pending);
    assert_eq!(retry.run.metadata.resume_from_row, Some(committed));
    assert_eq!(retry.run.metadata.resumable, Some(true));
    assert_eq!(retry.log[0].stage, LogStage::Retry);
    assert_eq!(
        retry.log[0].message,
        format!("Resuming from row {committed} (original run: {})", run.id)
    );
    w.run_until_idle().await.expect("worker");
    let done = h
        .app
        .get_run(&h.admin, p.id, retry.run.id)
        .await
        .expect("run");
    assert_eq!(
        done.status,
        RunStatus::Completed,
        "{:?}",
        h.app
            .run_progress(&h.admin, p.id, retry.run.id)
            .await
            .map(|p| p.log)
    );
    assert_eq!(done.counters.processed(), 400);
    assert_eq!(done.counters.failed, 0);
    // Every id holds its last occurrence, including rows 97, 194, ... fixed by the schema change.
    let mut expected: BTreeMap<i64, u64> = BTreeMap::new();
    for r in 1..=400u64 {
        expected.insert(id_of(r) as i64, r);
    }
    let table = h.table().await;
    assert_eq!(
        table
            .iter()
            .map(|(id, _, _, row)| (*id, *row))
            .collect::<BTreeMap<_, _>>(),
        expected
    );
    // A completed run cannot be retried.
    let again = h.app.retry_run(&h.admin, p.id, retry.run.id).await;
    assert!(
        matches!(again, Err(crate::AppError::Unprocessable(_))),
        "{again:?}"
    );
}

#[tokio::test]
async fn cancel_stops_the_run() {
    let h = harness(10);
    h.source.put("in/a.csv", customers_csv(200));
    let p = h.pipeline("append", json!({"partitions": 2})).await;
    let run = h
        .app
        .start_run(&h.admin, p.id, RunRequest::default())
        .await
        .expect("start");
    let w = h.worker(1);
    w.step().await.expect("extract");
    let cancelled = h
        .app
        .cancel_run(&h.admin, p.id, run.id)
        .await
        .expect("cancel");
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    w.run_until_idle().await.expect("worker");
    assert_eq!(
        h.app
            .get_run(&h.admin, p.id, run.id)
            .await
            .expect("run")
            .status,
        RunStatus::Cancelled
    );
    assert!(matches!(
        h.app.cancel_run(&h.admin, p.id, run.id).await,
        Err(crate::AppError::Unprocessable(_))
    ));
    // The pipeline is free again.
    h.app
        .start_run(&h.admin, p.id, RunRequest::default())
        .await
        .expect("a new run");
    assert!(matches!(
        h.app.start_run(&h.admin, p.id, RunRequest::default()).await,
        Err(crate::AppError::Conflict(_))
    ));
}

#[tokio::test]
async fn a_touch_file_starts_one_run_and_is_deleted_after_success() {
    let h = harness(100);
    h.source.put("in/a.csv", customers_csv(50));
    let p = h
        .pipeline(
            "upsert",
            json!({"polling": {"enabled": true, "intervalMinutes": 5, "deleteAfterProcess": true}}),
        )
        .await;
    let report = h.app.trigger_poll(&h.admin).await.expect("poll");
    assert_eq!(
        (report.checked, report.triggered),
        (1, 0),
        "no touch file yet"
    );
    h.source.put("in/_READY.dat", "");
    let report = h.app.trigger_poll(&h.admin).await.expect("poll");
    assert_eq!((report.checked, report.triggered), (1, 1));
    assert_eq!(
        report.message(),
        "Polling cycle complete: checked 1 pipelines, triggered 1 runs"
    );
    h.worker(1).run_until_idle().await.expect("worker");
    assert!(
        !h.source.contains("in/_READY.dat"),
        "the touch file is deleted after success"
    );
    let runs = h
        .app
        .list_runs(&h.admin, p.id, &PageRequest::default())
        .await
        .expect("runs");
    assert_eq!(runs.items.len(), 1);
    assert_eq!(runs.items[0].status, RunStatus::Completed);
    let status = h.app.poll_status(&h.admin).await.expect("status");
    assert_eq!(status[0].last_run_status, Some(RunStatus::Completed));
    assert_eq!(status[0].polling.prefix.as_deref(), Some("in/"));
    assert_eq!(
        h.app.trigger_poll(&h.admin).await.expect("poll").triggered,
        0
    );
    h.source.put("in/_READY.dat", "again");
    assert_eq!(
        h.app.trigger_poll(&h.admin).await.expect("poll").triggered,
        1
    );
}

#[tokio::test]
async fn a_failing_connector_does_not_stop_the_polling_cycle() {
    let h = harness(100);
    h.source.put("in/_READY.dat", "");
    h.source.put("in/a.csv", customers_csv(5));
    let p1 = h
        .pipeline("append", json!({"polling": {"enabled": true}}))
        .await;
    let _p2 = h
        .pipeline("append", json!({"polling": {"enabled": true}}))
        .await;
    h.source
        .fail_with(Some(SourceError::PermissionDenied("bad key".into())));
    let report = h.app.trigger_poll(&h.admin).await.expect("poll");
    assert_eq!((report.checked, report.triggered), (2, 0));
    h.source.fail_with(None);
    let report = h.app.trigger_poll(&h.admin).await.expect("poll");
    assert_eq!((report.checked, report.triggered), (2, 2));
    let _ = p1;
}

#[tokio::test]
async fn records_straddling_read_chunks_and_quoted_newlines_load_intact() {
    let h = harness(3);
    let mut csv = String::from("\u{feff}id,name,age\n");
    for r in 1..=30 {
        csv.push_str(&format!("{r},\"line one\nline \"\"two\"\" of {r}\",{r}\n"));
    }
    h.source.put("in/a.csv", csv);
    let p = h.pipeline("append", json!({"partitions": 7})).await;
    let run_id = h.run_to_end(p.id).await;
    assert_eq!(
        h.app
            .get_run(&h.admin, p.id, run_id)
            .await
            .expect("run")
            .status,
        RunStatus::Completed
    );
    let table = h.table().await;
    assert_eq!(table.len(), 30);
    for (id, name, age, row) in table {
        assert_eq!((id as u64, age), (row, Some(id)));
        assert_eq!(name, format!("line one\nline \"two\" of {id}"));
    }
    let _ = h.source.list("", None, &[]).await.expect("list");
}

#[tokio::test]
async fn a_stopping_worker_hands_its_partition_back_at_a_batch_boundary() {
    let h = harness(10);
    h.source.put("in/a.csv", customers_csv(100));
    let p = h.pipeline("append", json!({"partitions": 1})).await;
    let run = h
        .app
        .start_run(&h.admin, p.id, RunRequest::default())
        .await
        .expect("start");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = h.worker(1).with_shutdown(stop_rx);
    stopping.step().await.expect("extract");
    stop_tx.send(true).expect("signal");
    stopping.step().await.expect("claims, then hands back");
    let parts = h.store.list_partitions(run.id).await.expect("partitions");
    assert_eq!(
        parts[0].status,
        PartitionStatus::Pending,
        "released, not left to its lease"
    );
    // Another worker takes it over at once and finishes the run.
    h.worker(2).run_until_idle().await.expect("worker");
    let done = h.app.get_run(&h.admin, p.id, run.id).await.expect("run");
    assert_eq!(done.status, RunStatus::CompletedWithErrors);
    assert_eq!(done.counters.processed(), 100);
}

#[tokio::test]
async fn connector_patches_keep_replace_or_remove_credentials() {
    use crate::ports::ConnectorStore;
    let h = harness(10);
    let spec = json!({"name": "s3", "type": "s3", "config": {"bucket": "b"}, "credentials": {"secretAccessKey": "one"}});
    let c = h
        .app
        .create_connector(&h.admin, from_json(spec).expect("spec"))
        .await
        .expect("create");
    let kept = h
        .app
        .update_connector(&h.admin, c.id, json!({"name": "renamed"}))
        .await
        .expect("patch");
    assert_eq!(kept.credential_keys, vec!["secretAccessKey".to_owned()]);
    assert_eq!(
        h.store
            .connector_credentials(c.id)
            .await
            .expect("creds")
            .get("secretAccessKey"),
        Some("one")
    );
    let replaced = h
        .app
        .update_connector(&h.admin, c.id, json!({"credentials": {"token": "two"}}))
        .await
        .expect("patch");
    assert_eq!(replaced.credential_keys, vec!["token".to_owned()]);
    let removed = h
        .app
        .update_connector(&h.admin, c.id, json!({"credentials": null}))
        .await
        .expect("patch");
    assert!(removed.credential_keys.is_empty());
    assert!(
        h.store
            .connector_credentials(c.id)
            .await
            .expect("creds")
            .is_empty()
    );
    let typo = h
        .app
        .update_connector(&h.admin, c.id, json!({"credentails": {}}))
        .await;
    assert!(matches!(typo, Err(crate::AppError::Invalid { field, .. }) if field == "credentails"));
}

#[tokio::test]
async fn a_file_sharing_no_column_with_the_schema_fails_the_run() {
    let h = harness(10);
    h.source.put("in/a.csv", "colour,size\nred,1\n");
    let p = h.pipeline("append", json!({})).await;
    let run_id = h.run_to_end(p.id).await;
    let progress = h
        .app
        .run_progress(&h.admin, p.id, run_id)
        .await
        .expect("progress");
    assert_eq!(progress.status, RunStatus::Failed);
    let last = progress.log.last().expect("log");
    assert!(
        last.message
            .contains("shares no column with the schema (its header: colour, size)"),
        "{}",
        last.message
    );
}

/// A binary file named `.csv` (NUL bytes in its first line) fails the run
/// with a message that shows the header without them: PostgreSQL's text
/// cannot hold NUL, and a message it refused would leave the run pending.
#[tokio::test]
async fn a_binary_header_fails_the_run_with_a_storable_message() {
    let h = harness(10);
    let mut binary = b"\x7fELF\x00\x01\x02".to_vec();
    binary.extend(std::iter::repeat_n(b'A', 10_000));
    binary.extend(b"\n\x00\x00\n");
    h.source.put("in/a.csv", binary);
    let p = h.pipeline("append", json!({})).await;
    let run_id = h.run_to_end(p.id).await;
    let progress = h
        .app
        .run_progress(&h.admin, p.id, run_id)
        .await
        .expect("progress");
    assert_eq!(progress.status, RunStatus::Failed);
    let last = &progress.log.last().expect("log").message;
    assert!(last.contains("shares no column with the schema"), "{last}");
    assert!(last.contains("ELF\u{FFFD}"), "{last}");
    assert!(!last.contains('\0'), "{last}");
    assert!(last.chars().count() < 400, "the header is capped: {last}");
}

/// An empty (0-byte) file is a file without rows, as a header-only file
/// is: alone it completes the run with 0 rows; beside others it adds none.
#[tokio::test]
async fn an_empty_file_is_a_file_without_rows() {
    let h = harness(10);
    h.source.put("in/a.csv", "");
    let p = h.pipeline("append", json!({})).await;
    let alone = h.run_to_end(p.id).await;
    let run = h.app.get_run(&h.admin, p.id, alone).await.expect("run");
    assert_eq!(
        (run.status, run.total_rows, run.counters.processed()),
        (RunStatus::Completed, Some(0), 0),
        "{:?}",
        log_of(&h, alone).await
    );
    h.source.put("in/b.csv", customers_csv(30));
    let beside = h.run_to_end(p.id).await;
    let run = h.app.get_run(&h.admin, p.id, beside).await.expect("run");
    assert_eq!(run.total_rows, Some(30), "{:?}", log_of(&h, beside).await);
    assert_eq!(run.counters.processed(), 30);
    assert_ne!(run.status, RunStatus::Failed);
}

/// An idle worker polls rarely (an hour here), yet a started run wakes it
/// at once.
#[tokio::test(start_paused = true)]
async fn idle_workers_wake_when_work_is_created() {
    let h = harness(10);
    h.source.put("in/a.csv", customers_csv(100));
    let p = h.pipeline("append", json!({"partitions": 2})).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let hour = Duration::from_secs(3600);
    let workers: Vec<_> = (1..=2)
        .map(|n| {
            let w = Worker::new(h.engine.clone(), WorkerId(format!("idle{n}")), hour)
                .with_shutdown(stop_rx.clone());
            tokio::spawn(w.run())
        })
        .collect();
    // Let both workers find the queue empty and go idle (virtual time).
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = tokio::time::Instant::now();
    let run = h
        .app
        .start_run(&h.admin, p.id, RunRequest::default())
        .await
        .expect("start");
    let mut done = None;
    // Virtual milliseconds: without the wake-up the run would wait an hour.
    for _ in 0..10_000 {
        let r = h.app.get_run(&h.admin, p.id, run.id).await.expect("run");
        if r.status.is_terminal() {
            done = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let done = done.expect("the run finished without waiting for the idle poll");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(done.counters.processed(), 100);
    let parts = h.store.list_partitions(run.id).await.expect("partitions");
    assert_eq!(parts.len(), 2);
    stop_tx.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker task");
    }
}

/// A dry run reads and validates like a run, across files and headers,
/// and writes nothing: no run, no table.
#[tokio::test]
async fn a_dry_run_validates_the_first_rows_and_writes_nothing() {
    use crate::usecases::{DRY_RUN_ERRORS, DryRunReport};
    let h = harness(10);
    h.source.put("in/a.csv", customers_csv(100));
    // A second file whose header names no schema column, then rows.
    h.source.put("in/b.csv", "x,y\r\n1,2\r\n".to_owned());
    let p = h.pipeline("append", json!({})).await;

    let some = h
        .app
        .dry_run(&h.admin, p.id, Some(60))
        .await
        .expect("dry run");
    assert_eq!(
        (
            some.rows_checked,
            some.valid_rows,
            some.failed_rows,
            some.complete
        ),
        (60, 60, 0, false)
    );
    assert_eq!((some.files_matched, some.files_read), (2, 1));

    let all: DryRunReport = h.app.dry_run(&h.admin, p.id, None).await.expect("dry run");
    assert!(all.complete);
    assert_eq!(all.rows_checked, 101);
    assert_eq!(all.files_read, 2);
    // Row 97 has a non-integer age; row 101 (file b) maps no column, so its
    // key `id` is missing.
    let rows: Vec<(u64, &str)> = all
        .errors
        .iter()
        .map(|e| (e.row, e.column.as_str()))
        .collect();
    assert_eq!(rows, vec![(97, "age"), (101, "id")]);
    assert_eq!((all.valid_rows, all.failed_rows), (99, 2));
    assert_eq!(all.warnings.len(), 1, "{:?}", all.warnings);
    // Asking for exactly the source's rows reads it all; one fewer does not.
    let exact = h
        .app
        .dry_run(&h.admin, p.id, Some(101))
        .await
        .expect("dry run");
    assert!(exact.complete);
    let short = h
        .app
        .dry_run(&h.admin, p.id, Some(100))
        .await
        .expect("dry run");
    assert!(!short.complete);
    assert!(all.warnings[0].contains("in/b.csv") && all.warnings[0].contains("a run would fail"));

    // Nothing was written.
    let runs = h
        .app
        .list_runs(&h.admin, p.id, &PageRequest::default())
        .await
        .expect("runs");
    assert!(runs.items.is_empty());
    assert_eq!(h.store.table_rows("customers").await, None);

    // Errors are capped; the count is not.
    let mut bad = String::from("id,name,age\r\n");
    for r in 1..=300 {
        bad.push_str(&format!("{r},n,old\r\n"));
    }
    h.source.put("in/a.csv", bad);
    let capped = h
        .app
        .dry_run(&h.admin, p.id, Some(300))
        .await
        .expect("dry run");
    assert_eq!(capped.failed_rows, 300);
    assert_eq!(capped.errors.len(), DRY_RUN_ERRORS);
    assert_eq!(
        capped.errors.last().map(|e| e.row),
        Some(DRY_RUN_ERRORS as u64)
    );
}

#[tokio::test]
async fn a_dry_run_checks_its_caller_its_limit_and_its_source() {
    let h = harness(10);
    let p = h.pipeline("append", json!({})).await;
    let viewer = Principal {
        key_id: ApiKeyId::from_ulid(Ulid(2)),
        role: Role::Viewer,
    };
    assert!(matches!(
        h.app.dry_run(&viewer, p.id, None).await,
        Err(crate::AppError::Forbidden { .. })
    ));
    for rows in [0, 100_001] {
        match h.app.dry_run(&h.admin, p.id, Some(rows)).await {
            Err(crate::AppError::Invalid { field, .. }) => assert_eq!(field, "rows"),
            other => panic!("rows {rows}: {other:?}"),
        }
    }
    match h.app.dry_run(&h.admin, p.id, None).await {
        Err(crate::AppError::Unprocessable(m)) => assert!(m.starts_with("No files found"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        h.app
            .dry_run(&h.admin, PipelineId::from_ulid(Ulid(99)), None)
            .await,
        Err(crate::AppError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_pipeline_naming_a_missing_connector_is_refused_on_that_field() {
    let h = harness(10);
    let p = h.pipeline("append", json!({})).await;
    let missing = "conn_01J9Z8Y7X6W5V4T3S2R1Q0P9NM";
    let spec = json!({
        "name": "orphan", "connectorId": missing, "source": {"prefix": "in/"},
        "schema": {"columns": [{"name": "id", "type": "integer"}]},
        "destination": {"table": "orphan"}, "loadStrategy": "append"
    });
    for outcome in [
        h.app
            .create_pipeline(&h.admin, from_json(spec).expect("spec"))
            .await,
        h.app
            .update_pipeline(&h.admin, p.id, json!({"connectorId": missing}))
            .await,
    ] {
        match outcome {
            Err(crate::AppError::Invalid { field, message }) => {
                assert_eq!(field, "connectorId");
                assert!(message.contains(missing), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Counts the sources a factory opens and the reads made on them.
#[derive(Clone, Default)]
struct Counts {
    opens: Arc<std::sync::atomic::AtomicUsize>,
    reads: Arc<std::sync::atomic::AtomicUsize>,
}

impl Counts {
    fn opens(&self) -> usize {
        self.opens.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn reads(&self) -> usize {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }
}

struct CountingFactory(InMemorySourceFactory, Counts);

impl ObjectSourceFactory for CountingFactory {
    fn open(
        &self,
        connector: &sluice_domain::connector::Connector,
        credentials: &sluice_domain::connector::Credentials,
    ) -> Result<Arc<dyn ObjectSource>, SourceError> {
        self.1
            .opens
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Arc::new(CountingSource(
            self.0.open(connector, credentials)?,
            self.1.clone(),
        )))
    }
}

struct CountingSource(Arc<dyn ObjectSource>, Counts);

#[async_trait::async_trait]
impl ObjectSource for CountingSource {
    async fn list(
        &self,
        prefix: &str,
        pattern: Option<&str>,
        exclude: &[String],
    ) -> Result<Vec<crate::ports::ObjectInfo>, SourceError> {
        self.0.list(prefix, pattern, exclude).await
    }
    async fn head(&self, key: &str) -> Result<Option<crate::ports::ObjectInfo>, SourceError> {
        self.0.head(key).await
    }
    async fn read(
        &self,
        key: &str,
        offset: u64,
        gzip: bool,
    ) -> Result<crate::ports::ByteStream, SourceError> {
        self.1
            .reads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.read(key, offset, gzip).await
    }
    async fn delete(&self, key: &str) -> Result<(), SourceError> {
        self.0.delete(key).await
    }
    async fn check(&self) -> Result<crate::ports::SourceCheck, SourceError> {
        self.0.check().await
    }
}

/// One reader per partition claim, one context per run per worker: a run of
/// 4 partitions in batches of 10 rows (40 batches) opens the connector twice
/// (extraction; then the first partition's context, which the other three
/// reuse) and reads the file 5 times (counting it, then once per partition),
/// not once per batch.
#[tokio::test]
async fn a_worker_reads_each_partition_once_and_builds_the_run_context_once() {
    let counts = Counts::default();
    let watched = counts.clone();
    let h = harness_with(10, move |f| Arc::new(CountingFactory(f, watched)));
    h.source.put("in/a.csv", customers_csv(400));
    let p = h.pipeline("append", json!({})).await;
    let opened_before = counts.opens();
    let run_id = h.run_to_end(p.id).await;
    let run = h.app.get_run(&h.admin, p.id, run_id).await.expect("run");
    assert_eq!(run.status, RunStatus::CompletedWithErrors);
    assert_eq!(run.counters.processed(), 400);
    assert_eq!(run.partition_count, 4);
    assert_eq!(
        counts.opens() - opened_before,
        2,
        "extraction, then one context"
    );
    assert_eq!(
        counts.reads(),
        1 + 4,
        "one count, then one read per partition"
    );
    // Another run of the same pipeline (reading the file again, which the
    // ledger holds) is another context.
    let all = RunRequest {
        files: Some(sluice_domain::ledger::FileSelection::All),
        ..RunRequest::default()
    };
    let second = h.run_to_end_with(p.id, all).await;
    assert_ne!(second, run_id);
    assert_eq!(counts.opens() - opened_before, 4);
}

async fn log_of(h: &Harness, run: RunId) -> Vec<String> {
    h.store
        .run_log(run)
        .await
        .expect("log")
        .into_iter()
        .map(|e| e.message)
        .collect()
}

fn small_csv(first_id: u64, n: u64) -> String {
    let mut s = String::from("id,name,age\r\n");
    for id in first_id..first_id + n {
        s.push_str(&format!("{id},n{id},{}\r\n", id % 90));
    }
    s
}

#[tokio::test]
async fn each_file_loads_once_and_a_changed_file_again() {
    for strategy in ["append", "upsert"] {
        let h = harness(7);
        h.source.put("in/day1.csv", small_csv(1, 10));
        let p = h.pipeline(strategy, json!({})).await;
        let first = h.run_to_end(p.id).await;
        h.source.put("in/day2.csv", small_csv(11, 5));
        let second = h.run_to_end(p.id).await;
        let run = h.app.get_run(&h.admin, p.id, second).await.expect("run");
        assert_eq!(run.total_rows, Some(5), "{strategy}: only day 2");
        assert!(
            log_of(&h, second)
                .await
                .contains(&"1 files to read (1 already loaded)".to_owned())
        );
        assert_eq!(h.table().await.len(), 15, "{strategy}: each row once");
        // Nothing new: the run completes at once.
        let idle = h.run_to_end(p.id).await;
        let run = h.app.get_run(&h.admin, p.id, idle).await.expect("run");
        assert_eq!(
            (run.status, run.total_rows),
            (RunStatus::Completed, Some(0))
        );
        assert!(
            log_of(&h, idle)
                .await
                .contains(&"No new files (2 already loaded)".to_owned())
        );
        // A changed day 1 is read again and named.
        h.source.put("in/day1.csv", small_csv(1, 12));
        let changed = h.run_to_end(p.id).await;
        let run = h.app.get_run(&h.admin, p.id, changed).await.expect("run");
        assert_eq!(run.total_rows, Some(12));
        assert!(
            log_of(&h, changed)
                .await
                .contains(&format!("Changed since {first}: in/day1.csv")),
            "{:?}",
            log_of(&h, changed).await
        );
        let ledger = h
            .app
            .list_ledger(&h.admin, p.id, None, &PageRequest::default())
            .await
            .expect("ledger");
        assert_eq!(ledger.items.len(), 2);
        assert_eq!(ledger.items[0].key, "in/day1.csv", "newest first");
        assert_eq!(
            (ledger.items[0].run_id, ledger.items[0].total_rows),
            (changed, 12)
        );
    }
}

#[tokio::test]
async fn forced_reloads_and_forgotten_files_are_read_and_logged() {
    let h = harness(50);
    h.source.put("in/a.csv", small_csv(1, 3));
    h.source.put("in/b.csv", small_csv(4, 3));
    let p = h.pipeline("upsert", json!({})).await;
    h.run_to_end(p.id).await;
    let reload = RunRequest {
        reload: vec!["in/b.csv".into(), "in/zz.csv".into()],
        ..RunRequest::default()
    };
    let run = h.run_to_end_with(p.id, reload).await;
    let log = log_of(&h, run).await;
    assert!(
        log.contains(&"Reload requested for 2 files: in/b.csv, in/zz.csv".to_owned()),
        "{log:?}"
    );
    assert!(
        log.contains(&"Reloading on request: in/b.csv".to_owned()),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("Reload requested for in/zz.csv")),
        "{log:?}"
    );
    let files = h
        .app
        .list_run_files(&h.admin, p.id, run, &PageRequest::default())
        .await
        .expect("files");
    assert_eq!(files.items.len(), 1);
    assert_eq!(files.items[0].loaded_rows, Some(3));
    let forgotten = h
        .app
        .forget_files(
            &h.admin,
            p.id,
            crate::ports::ForgetFiles::Prefix("in/a".into()),
        )
        .await
        .expect("forget");
    assert_eq!(forgotten, 1);
    let run = h.run_to_end(p.id).await;
    let log = log_of(&h, run).await;
    assert!(
        log.iter().any(
            |l| l.starts_with("Forgotten from the ledger by key_") && l.ends_with(": in/a.csv")
        ),
        "{log:?}"
    );
    assert_eq!(
        h.app
            .get_run(&h.admin, p.id, run)
            .await
            .expect("run")
            .total_rows,
        Some(3)
    );
}

#[tokio::test]
async fn a_failed_run_with_committed_rows_must_be_retried_or_forced() {
    for strategy in ["append", "upsert"] {
        let h = harness(5);
        h.source.put("in/a.csv", small_csv(1, 20));
        let p = h
            .pipeline(strategy, json!({"partitions": 1, "maxErrors": 0}))
            .await;
        // Row 13 fails validation: the run fails after committing 10 rows.
        let mut bad = small_csv(1, 20);
        bad = bad.replace("13,n13,13", "13,n13,x");
        h.source.put("in/a.csv", bad);
        let failed = h.run_to_end(p.id).await;
        let run = h.app.get_run(&h.admin, p.id, failed).await.expect("run");
        assert_eq!(run.status, RunStatus::Failed, "{strategy}");
        assert!(run.counters.processed() > 0);
        h.source.put("in/b.csv", small_csv(21, 5));
        let refused = h.app.start_run(&h.admin, p.id, RunRequest::default()).await;
        let Err(crate::AppError::Unprocessable(message)) = refused else {
            panic!("{strategy}: expected a 422, got {refused:?}");
        };
        assert!(message.contains("retry it"), "{message}");
        // Polling does not start one either.
        let report = h.app.poll_cycle(true).await.expect("poll");
        assert_eq!(report.triggered, 0);
        // Forcing the reload is the user's call: every file is read again.
        h.source.put("in/a.csv", small_csv(1, 20));
        let forced = RunRequest {
            files: Some(sluice_domain::ledger::FileSelection::All),
            ..RunRequest::default()
        };
        let all = h.run_to_end_with(p.id, forced).await;
        let run = h.app.get_run(&h.admin, p.id, all).await.expect("run");
        assert_eq!(
            run.total_rows,
            Some(25),
            "{strategy}: a forced run reads both files"
        );
        let _ = h.table().await;
    }
}

#[tokio::test]
async fn a_retry_resumes_the_failed_files_and_new_files_wait_for_the_next_run() {
    for strategy in ["append", "upsert"] {
        let h = harness(5);
        let mut bad = small_csv(1, 20);
        bad = bad.replace("13,n13,13", "13,n13,x");
        h.source.put("in/a.csv", bad);
        let p = h
            .pipeline(strategy, json!({"partitions": 1, "maxErrors": 0}))
            .await;
        let failed = h.run_to_end(p.id).await;
        h.source.put("in/b.csv", small_csv(21, 5));
        let mut p2 = p.clone();
        p2.spec.max_errors = None;
        h.store
            .update_pipeline(&p2)
            .await
            .expect("raise the threshold");
        let retry = h
            .app
            .retry_run(&h.admin, p.id, failed)
            .await
            .expect("retry");
        h.worker(1).run_until_idle().await.expect("worker");
        let run = h
            .app
            .get_run(&h.admin, p.id, retry.run.id)
            .await
            .expect("run");
        assert_eq!(run.status, RunStatus::CompletedWithErrors, "{strategy}");
        assert_eq!(run.total_rows, Some(20), "{strategy}: b.csv waits");
        assert_eq!(h.table().await.len(), 19, "{strategy}: each valid row once");
        let next = h.run_to_end(p.id).await;
        let run = h.app.get_run(&h.admin, p.id, next).await.expect("run");
        assert_eq!(run.total_rows, Some(5), "{strategy}: only b.csv");
        assert_eq!(h.table().await.len(), 24);
    }
}

#[tokio::test]
async fn new_files_start_one_run_per_batch() {
    let h = harness(50);
    h.source.put("in/day1.csv", small_csv(1, 4));
    let p = h
        .pipeline(
            "append",
            json!({"polling": {"enabled": true, "trigger": "newFiles", "intervalMinutes": 1}}),
        )
        .await;
    assert_eq!(h.app.poll_cycle(true).await.expect("poll").triggered, 1);
    assert_eq!(
        h.app.poll_cycle(true).await.expect("poll").triggered,
        0,
        "the batch already started a run"
    );
    h.worker(1).run_until_idle().await.expect("worker");
    assert_eq!(
        h.app.poll_cycle(true).await.expect("poll").triggered,
        0,
        "nothing new"
    );
    h.source.put("in/day2.csv", small_csv(5, 4));
    let report = h.app.poll_cycle(true).await.expect("poll");
    assert_eq!((report.checked, report.triggered), (1, 1));
    h.worker(1).run_until_idle().await.expect("worker");
    let runs = h
        .app
        .list_runs(&h.admin, p.id, &PageRequest::default())
        .await
        .expect("runs");
    assert_eq!(runs.items.len(), 2);
    assert_eq!(runs.items[0].total_rows, Some(4), "only day 2");
    assert_eq!(h.table().await.len(), 8);
}

#[tokio::test]
async fn a_cron_tick_starts_one_run() {
    let h = harness(50);
    h.source.put("in/a.csv", small_csv(1, 4));
    // The clock starts at 2025-06-15T15:06:40Z; ticks every five minutes.
    let p = h
        .pipeline(
            "append",
            json!({"schedule": {"cron": "*/5 * * * *", "timezone": "Europe/Berlin"}}),
        )
        .await;
    assert_eq!(
        h.app.poll_cycle(false).await.expect("poll").triggered,
        0,
        "no tick yet"
    );
    h.clock.advance_ms(4 * 60_000);
    let report = h.app.poll_cycle(false).await.expect("poll");
    assert_eq!((report.checked, report.triggered), (1, 1), "15:10 is due");
    h.worker(1).run_until_idle().await.expect("worker");
    assert_eq!(
        h.app.poll_cycle(false).await.expect("poll").triggered,
        0,
        "once per tick"
    );
    h.clock.advance_ms(5 * 60_000);
    assert_eq!(
        h.app.poll_cycle(false).await.expect("poll").triggered,
        1,
        "15:15 is due"
    );
    h.worker(1).run_until_idle().await.expect("worker");
    let runs = h
        .app
        .list_runs(&h.admin, p.id, &PageRequest::default())
        .await
        .expect("runs");
    assert_eq!(runs.items.len(), 2);
    let log = log_of(&h, runs.items[1].id).await;
    assert!(
        log[0].starts_with("Scheduled run for 2025-06-15T15:10:00Z"),
        "{log:?}"
    );
    assert_eq!(
        runs.items[0].total_rows,
        Some(0),
        "the second tick found nothing new"
    );
    let bad = h
        .app
        .update_pipeline(&h.admin, p.id, json!({"schedule": {"cron": "0 25 * * *"}}))
        .await;
    assert!(
        matches!(bad, Err(crate::AppError::Invalid { ref field, .. }) if field == "schedule.cron"),
        "{bad:?}"
    );
}

/// Inference samples a connector's files as a run reads them; the pipeline
/// it proposes, created as answered, loads the samples without a reject,
/// with its columns read through `source` from headers that are not
/// identifiers.
#[tokio::test]
async fn an_inferred_pipeline_loads_its_samples_without_rejects() {
    use crate::usecases::InferRequest;
    use sluice_domain::schema::ColumnType;
    let h = harness(10);
    let connector = mem_connector(&h).await;
    h.source.put(
        "sales/a.csv",
        "Order ID,Amount €,Day,E-Mail,Note,Zip\n1,12.50,2024-01-31,a@example.com,x,01234\n2,3,2024-02-01,b@example.org,,98765\n",
    );
    h.source.put(
        "sales/b.csv",
        "Order ID,Amount €,Day,E-Mail,Note,Zip\n3,-1e3,2024-02-29,c@example.net,7,00001\n",
    );
    let request = InferRequest {
        source: from_json(json!({"prefix": "sales/", "pattern": "*.csv"})).expect("source"),
        rows: None,
        files: None,
    };
    let viewer = Principal {
        role: Role::Viewer,
        ..h.admin.clone()
    };
    assert!(matches!(
        h.app
            .infer_schema(&viewer, connector, request.clone())
            .await,
        Err(crate::AppError::Forbidden { .. })
    ));
    let report = h
        .app
        .infer_schema(&h.admin, connector, request)
        .await
        .expect("inference");
    let got: Vec<(&str, Option<&str>, ColumnType, bool)> = report
        .inferred
        .columns
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.source.as_deref(),
                c.column_type,
                c.required,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("order_id", Some("Order ID"), ColumnType::Integer, true),
            ("amount", Some("Amount €"), ColumnType::Number, true),
            ("day", Some("Day"), ColumnType::Date, true),
            ("e_mail", Some("E-Mail"), ColumnType::Email, true),
            ("note", Some("Note"), ColumnType::String, false),
            ("zip", Some("Zip"), ColumnType::String, true),
        ]
    );
    assert_eq!(report.files_sampled, ["sales/a.csv", "sales/b.csv"]);
    assert!(
        report
            .inferred
            .warnings
            .iter()
            .any(|w| w.contains("leading zeros")),
        "{:?}",
        report.inferred.warnings
    );
    assert!(report.create_table[0].starts_with("CREATE TABLE IF NOT EXISTS \"public\".\"sales\""));
    assert_eq!(report.pipeline.destination.table.as_str(), "sales");

    load_the_proposal(&h, &report.pipeline).await;
}

async fn mem_connector(h: &Harness) -> sluice_domain::ids::ConnectorId {
    h.app
        .create_connector(
            &h.admin,
            from_json(json!({"name": "mem", "type": "s3", "config": {"bucket": "b"}}))
                .expect("spec"),
        )
        .await
        .expect("connector")
        .id
}

/// Creates the proposed pipeline as answered and runs it: no reject.
async fn load_the_proposal(h: &Harness, spec: &sluice_domain::pipeline::PipelineSpec) {
    let body = serde_json::to_value(spec).expect("json");
    let p = h
        .app
        .create_pipeline(&h.admin, from_json(body).expect("spec"))
        .await
        .expect("pipeline as proposed");
    let run = h.run_to_end(p.id).await;
    let done = h.app.get_run(&h.admin, p.id, run).await.expect("run");
    assert_eq!(done.status, RunStatus::Completed, "{done:?}");
    assert_eq!((done.counters.loaded, done.counters.failed), (3, 0));
    let rows = h.store.table_rows("sales").await.expect("table");
    let emails: Vec<Option<String>> = rows.iter().map(|r| r.values[3].clone()).collect();
    assert_eq!(
        emails,
        [
            Some("a@example.com".to_owned()),
            Some("b@example.org".to_owned()),
            Some("c@example.net".to_owned())
        ]
    );
}

/// Two files: the second adds `email` and drops `age`.
fn drifting_files(h: &Harness) {
    h.source
        .put("in/a.csv", "id,name,age\n1,ann,10\n2,bob,20\n".to_owned());
    h.source.put(
        "in/b.csv",
        "id,name,email\n3,cy,cy@example.com\n".to_owned(),
    );
}

/// `schemaDrift: fail` fails the run before anything loads, naming the
/// added and the missing column; the dry run says so too. Retrying after
/// the schema takes the new column and the policy `ignore` loads it all.
#[tokio::test]
async fn drift_fail_names_the_columns_and_a_retry_after_a_fix_loads() {
    let h = harness(10);
    drifting_files(&h);
    let p = h
        .pipeline("append", json!({"schemaDrift": "fail", "partitions": 1}))
        .await;
    assert_eq!(
        serde_json::to_value(&p.spec).expect("json")["schemaDrift"],
        "fail"
    );
    let dry = h.app.dry_run(&h.admin, p.id, None).await.expect("dry run");
    assert_eq!(dry.warnings.len(), 1, "{:?}", dry.warnings);
    assert!(dry.warnings[0].contains("in/b.csv") && dry.warnings[0].ends_with("a run would fail"));

    let failed = h.run_to_end(p.id).await;
    let run = h.app.get_run(&h.admin, p.id, failed).await.expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    let progress = h
        .app
        .run_progress(&h.admin, p.id, failed)
        .await
        .expect("progress");
    let last = &progress.log.last().expect("log").message;
    assert!(
        last.starts_with("Schema drift in in/b.csv: its header adds email not in the schema and lacks schema column age"),
        "{last}"
    );
    assert_eq!(
        h.store.table_rows("customers").await,
        None,
        "nothing loaded"
    );

    h.app
        .update_pipeline(
            &h.admin,
            p.id,
            json!({"schemaDrift": "ignore", "schema": {"columns": [
                {"name": "id", "type": "integer"},
                {"name": "name", "type": "string"},
                {"name": "age", "type": "integer"},
                {"name": "email", "type": "email"}
            ]}}),
        )
        .await
        .expect("fix");
    let retry = h
        .app
        .retry_run(&h.admin, p.id, failed)
        .await
        .expect("retry");
    h.worker(1).run_until_idle().await.expect("worker");
    let run = h
        .app
        .get_run(&h.admin, p.id, retry.run.id)
        .await
        .expect("run");
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.counters.loaded, 3);
    let rows = h.store.table_rows("customers").await.expect("table");
    let emails: Vec<Option<String>> = rows.iter().map(|r| r.values[3].clone()).collect();
    assert_eq!(emails, [None, None, Some("cy@example.com".to_owned())]);
}

/// `schemaDrift: ignore` (the default) loads what the schema names, and the
/// run's log lists the added and the missing columns.
#[tokio::test]
async fn drift_ignore_loads_and_logs_both_columns() {
    let h = harness(10);
    drifting_files(&h);
    let p = h.pipeline("append", json!({"partitions": 1})).await;
    assert!(
        serde_json::to_value(&p.spec)
            .expect("json")
            .get("schemaDrift")
            .is_none(),
        "the default is not written"
    );
    let run_id = h.run_to_end(p.id).await;
    let run = h.app.get_run(&h.admin, p.id, run_id).await.expect("run");
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.counters.loaded, 3);
    let progress = h
        .app
        .run_progress(&h.admin, p.id, run_id)
        .await
        .expect("progress");
    let messages: Vec<&str> = progress.log.iter().map(|e| e.message.as_str()).collect();
    assert!(
        messages.contains(&"File in/b.csv has no column age in its header"),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"File in/b.csv has columns not in the schema, not loaded: email"),
        "{messages:?}"
    );
    let ages: Vec<Option<i64>> = h.table().await.into_iter().map(|r| r.2).collect();
    assert_eq!(ages, [Some(10), Some(20), None]);
    let drift = progress
        .log
        .iter()
        .filter(|e| e.stage == LogStage::Drift)
        .count();
    assert_eq!(drift, 2, "both entries are drift events");
    let metrics = h.app.metrics_snapshot().await.expect("metrics");
    assert_eq!(metrics.drift_events, 2);
}

/// `schemaDrift: rescue` keeps the added column's values, per row, in the
/// `_sluice_rescued` column: a JSON object for the rows of the file that has
/// it, NULL for the others; the log says where they went.
#[tokio::test]
async fn drift_rescue_keeps_added_values_for_exactly_the_rows_that_had_them() {
    let h = harness(10);
    drifting_files(&h);
    let p = h
        .pipeline("append", json!({"schemaDrift": "rescue", "partitions": 1}))
        .await;
    let run_id = h.run_to_end(p.id).await;
    let run = h.app.get_run(&h.admin, p.id, run_id).await.expect("run");
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.counters.loaded, 3);
    let rows = h.store.table_rows("customers").await.expect("table");
    let rescued: Vec<(u64, Option<String>)> = rows
        .iter()
        .map(|r| (r.row, r.values.get(3).cloned().flatten()))
        .collect();
    assert_eq!(
        rescued,
        [
            (1, None),
            (2, None),
            (3, Some(r#"{"email":"cy@example.com"}"#.to_owned()))
        ]
    );
    let progress = h
        .app
        .run_progress(&h.admin, p.id, run_id)
        .await
        .expect("progress");
    let messages: Vec<&str> = progress.log.iter().map(|e| e.message.as_str()).collect();
    assert!(
        messages.contains(
            &"File in/b.csv has columns not in the schema, kept per row in _sluice_rescued: email"
        ),
        "{messages:?}"
    );
    let dry = h.app.dry_run(&h.admin, p.id, None).await.expect("dry run");
    assert!(
        dry.warnings
            .iter()
            .any(|w| w.contains("kept per row in _sluice_rescued")),
        "{:?}",
        dry.warnings
    );
}

/// `schemaDrift: evolve` adds the added column to the pipeline's schema (its
/// stored definition) and to the table before loading, named as inference
/// would name it and reading the header by `source`; its values load.
#[tokio::test]
async fn drift_evolve_adds_the_column_to_the_definition_and_loads_it() {
    let h = harness(10);
    h.source
        .put("in/a.csv", "id,name,age\n1,ann,10\n2,bob,20\n".to_owned());
    h.source
        .put("in/b.csv", "id,name,Phone No\n3,cy,555-0100\n".to_owned());
    let p = h
        .pipeline("append", json!({"schemaDrift": "evolve", "partitions": 2}))
        .await;
    let run_id = h.run_to_end(p.id).await;
    let run = h.app.get_run(&h.admin, p.id, run_id).await.expect("run");
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.counters.loaded, 3);
    let stored = h.app.get_pipeline(&h.admin, p.id).await.expect("pipeline");
    let columns = serde_json::to_value(&stored.spec.schema).expect("json")["columns"].clone();
    assert_eq!(
        columns[3],
        json!({"name": "phone_no", "source": "Phone No", "type": "string", "required": false})
    );
    assert_eq!(stored.spec.schema.columns.len(), 4);
    let rows = h.store.table_rows("customers").await.expect("table");
    let phones: Vec<Option<String>> = rows
        .iter()
        .map(|r| r.values.get(3).cloned().flatten())
        .collect();
    assert_eq!(phones, [None, None, Some("555-0100".to_owned())]);
    let progress = h
        .app
        .run_progress(&h.admin, p.id, run_id)
        .await
        .expect("progress");
    let evolved: Vec<&str> = progress
        .log
        .iter()
        .filter(|e| e.stage == LogStage::Drift && e.message.starts_with("Schema evolved"))
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(
        evolved,
        [
            "Schema evolved (schemaDrift: evolve): added nullable string column phone_no (from \"Phone No\") to the pipeline's schema and to table customers"
        ]
    );
    // A later file with the same header: nothing more to add, and the
    // column loads as any other.
    h.source
        .put("in/c.csv", "id,name,Phone No\n4,di,555-0199\n".to_owned());
    let second = h.run_to_end(p.id).await;
    let run = h.app.get_run(&h.admin, p.id, second).await.expect("run");
    assert_eq!((run.status, run.counters.loaded), (RunStatus::Completed, 1));
    let stored_again = h.app.get_pipeline(&h.admin, p.id).await.expect("pipeline");
    assert_eq!(stored_again.spec.schema.columns.len(), 4);
    let rows = h.store.table_rows("customers").await.expect("table");
    assert!(
        rows.iter()
            .any(|r| r.values.get(3).cloned().flatten().as_deref() == Some("555-0199")),
        "{rows:?}"
    );
}

/// A drift policy the source cannot apply is refused when the pipeline is
/// written, naming the field.
#[tokio::test]
async fn drift_policies_a_source_cannot_apply_are_refused() {
    let h = harness(10);
    for (extra, refused) in [
        (
            json!({"schemaDrift": "fail", "source": {"format": "jsonl", "pattern": "*.jsonl"}}),
            true,
        ),
        (
            json!({"schemaDrift": "evolve", "source": {"format": "jsonl", "pattern": "*.jsonl"}}),
            true,
        ),
        (
            json!({"schemaDrift": "rescue", "source": {"format": "jsonl", "pattern": "*.jsonl"}}),
            false,
        ),
        (
            json!({"schemaDrift": "rescue", "source": {"csv": {"header": false}}}),
            true,
        ),
        (
            json!({"schemaDrift": "ignore", "source": {"csv": {"header": false}}}),
            false,
        ),
    ] {
        let got = h.try_pipeline("append", extra.clone()).await;
        match (got, refused) {
            (Err(crate::AppError::Invalid { field, message }), true) => {
                assert_eq!(field, "schemaDrift", "{extra}");
                assert!(message.contains("does not apply"), "{message}");
            }
            (Ok(_), false) => {}
            (other, _) => panic!("{extra}: {other:?}"),
        }
    }
}
