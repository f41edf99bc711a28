//! Issue 5, acceptance 2: a load with three `sluice worker` processes, one of
//! them killed with SIGKILL mid-run, still completes with exactly the expected
//! rows: none lost, none duplicated.
//!
//! Kill points: between COPY and COMMIT and right after COMMIT (exact, through
//! the test-only `SLUICE_FAILPOINT` hook: the worker stops dead there and says
//! so on stderr), and at an arbitrary moment while partitions load.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::data::{self, COLUMNS};
use crate::support::s3::Bucket;
use crate::support::sql::{expected_digest, table_digest};
use crate::support::{Launch, Process, SluiceMigrations, TestDb};

const ROWS: u64 = 30_000;

#[derive(Clone, Copy)]
enum Kill {
    BeforeCommit,
    AfterCommit,
    WhileLoading,
}

fn wait_for_line(p: &Process, line: &str, limit: Duration) {
    let start = Instant::now();
    while !p.log_text().contains(line) {
        assert!(
            start.elapsed() < limit,
            "`{line}` never appeared:\n{}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn crash(strategy: &str, kill: Kill) {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("in/customers.csv", data::csv(1, ROWS)).await;
    // The API process runs no workers: all the loading happens in the three workers.
    let (_server, api) = Launch::new(&db).workers(0).serve().await;
    let connector = api.s3_connector(&bucket.name).await;
    let pipeline = api
        .pipeline(json!({
            "name": "crash", "connectorId": connector, "source": {"prefix": "in/"},
            "schema": data::schema("email"), "destination": {"table": "customers", "keyColumns": ["id"]},
            "loadStrategy": strategy, "partitions": 6
        }))
        .await;
    let worker = |failpoint: Option<&str>| {
        let mut launch = Launch::new(&db).workers(1).var("SLUICE_BATCH_ROWS", "1000");
        if let Some(f) = failpoint {
            launch = launch.var("SLUICE_FAILPOINT", f);
        }
        launch.worker()
    };
    let run;
    let mut victim;
    let (_b, _c);
    match kill {
        Kill::BeforeCommit | Kill::AfterCommit => {
            let point = if matches!(kill, Kill::BeforeCommit) {
                "before_commit"
            } else {
                "after_commit"
            };
            // The victim starts alone so it certainly reaches its third commit.
            victim = worker(Some(&format!("{point}:3")));
            run = api.start_run(&pipeline).await;
            wait_for_line(
                &victim,
                &format!("sluice failpoint {point} reached"),
                Duration::from_secs(120),
            );
            _b = worker(None);
            _c = worker(None);
        }
        Kill::WhileLoading => {
            victim = worker(None);
            _b = worker(None);
            _c = worker(None);
            run = api.start_run(&pipeline).await;
            api.wait_until(&pipeline, &run, Duration::from_secs(120), |p| {
                p["processedRows"].as_u64().unwrap_or(0) >= ROWS / 5
            })
            .await;
        }
    }
    victim.kill();
    assert!(!victim.is_running());

    let p = api
        .wait_terminal(&pipeline, &run, Duration::from_secs(300))
        .await;
    let want = data::expected(ROWS, strategy, true);
    assert_eq!(p["status"], "completed_with_errors", "{p}");
    assert_eq!(p["processedRows"], ROWS);
    assert_eq!(p["failedRows"], want.failed);
    if strategy == "append" {
        assert_eq!(p["skippedRows"], want.skipped);
    }
    let sql = db.client().await;
    assert_eq!(
        table_digest(&sql, "customers", COLUMNS).await,
        expected_digest(want.rows),
        "no row lost or duplicated"
    );
    let errors: i64 = sql
        .query_one(
            "SELECT count(DISTINCT row_num) FROM sluice.validation_errors",
            &[],
        )
        .await
        .expect("count errors")
        .get(0);
    assert_eq!(errors as u64, want.failed, "each failed row recorded once");
}

#[tokio::test(flavor = "multi_thread")]
async fn append_survives_a_worker_killed_between_copy_and_commit() {
    crash("append", Kill::BeforeCommit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn append_survives_a_worker_killed_right_after_commit() {
    crash("append", Kill::AfterCommit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn append_survives_a_worker_killed_while_loading() {
    crash("append", Kill::WhileLoading).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upsert_survives_a_worker_killed_between_copy_and_commit() {
    crash("upsert", Kill::BeforeCommit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upsert_survives_a_worker_killed_right_after_commit() {
    crash("upsert", Kill::AfterCommit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upsert_survives_a_worker_killed_while_loading() {
    crash("upsert", Kill::WhileLoading).await;
}
