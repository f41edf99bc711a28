//! Issue 19, load held: 20 pipelines started within one second on one
//! `sluice serve` with 2 workers. Every run ends with the exact contents and
//! totals, and meanwhile the API answers every request (reads of progress,
//! runs, pipelines, errors; starting runs), none with an error of any kind
//! (the database pool never turns an ordinary request into one) and none
//! slower than 2 s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::data::{self, COLUMNS};
use crate::support::s3::Bucket;
use crate::support::sql::{expected_digest, table_digest};
use crate::support::{Api, Launch, SluiceMigrations, TestDb};

const PIPELINES: usize = 20;
const ROWS: u64 = 20_000;
const STRATEGIES: [&str; 3] = ["append", "upsert", "replace"];
const SLOWEST: Duration = Duration::from_secs(2);

/// Reads `paths` in a loop until `stop`; returns (requests, slowest, every
/// answer that was not a 2xx).
async fn reader(
    api: Api,
    paths: Vec<String>,
    stop: Arc<AtomicBool>,
) -> (u64, Duration, Vec<String>) {
    let (mut requests, mut slowest, mut bad) = (0u64, Duration::ZERO, Vec::new());
    while !stop.load(Ordering::SeqCst) {
        for path in &paths {
            let started = Instant::now();
            let (status, body) = api.get(path).await;
            let took = started.elapsed();
            requests += 1;
            slowest = slowest.max(took);
            if !status.is_success() {
                bad.push(format!("{path}: {status} {body}"));
            }
            if took > SLOWEST {
                bad.push(format!("{path}: took {took:?}"));
            }
        }
    }
    (requests, slowest, bad)
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_pipelines_started_at_once_finish_exact_while_the_api_answers() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("in/customers.csv", data::csv(1, ROWS)).await;
    let (server, api) = Launch::new(&db).workers(2).serve().await;
    let connector = api.s3_connector(&bucket.name).await;
    let mut pipelines = Vec::new();
    for i in 0..PIPELINES {
        let strategy = STRATEGIES[i % STRATEGIES.len()];
        let id = api
            .pipeline(json!({
                "name": format!("load {i}"),
                "connectorId": connector,
                "source": {"prefix": "in/"},
                "schema": data::schema("email"),
                "destination": {"table": format!("load_{i:02}"), "keyColumns": ["id"]},
                "loadStrategy": strategy,
                "partitions": 2
            }))
            .await;
        pipelines.push((id, strategy, format!("load_{i:02}")));
    }

    // Start all 20 at once, each start itself a timed request.
    let started = Instant::now();
    let starts = futures::future::join_all(pipelines.iter().map(|(p, ..)| {
        let api = api.clone();
        let p = p.clone();
        async move {
            let begun = Instant::now();
            let run = api.start_run(&p).await;
            (run, begun.elapsed())
        }
    }))
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1) + SLOWEST,
        "{:?}",
        started.elapsed()
    );
    for (_, took) in &starts {
        assert!(*took < SLOWEST, "a start took {took:?}");
    }
    let runs: Vec<String> = starts.into_iter().map(|(r, _)| r).collect();

    // Readers hammer the API while the runs load.
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for (i, ((pipeline, ..), run)) in pipelines.iter().zip(&runs).enumerate().take(4) {
        let paths = vec![
            format!("/api/v1/pipelines/{pipeline}/runs/{run}/progress"),
            format!("/api/v1/pipelines/{pipeline}/runs/{run}"),
            format!("/api/v1/pipelines/{pipeline}/runs"),
            format!("/api/v1/pipelines/{pipeline}/runs/{run}/errors?limit=10"),
            if i % 2 == 0 {
                "/api/v1/pipelines".into()
            } else {
                "/api/v1/connectors".into()
            },
        ];
        readers.push(tokio::spawn(reader(api.clone(), paths, stop.clone())));
    }
    let mut finals = Vec::new();
    for ((pipeline, ..), run) in pipelines.iter().zip(&runs) {
        finals.push(
            api.wait_terminal(pipeline, run, Duration::from_secs(900))
                .await,
        );
    }
    let loaded_in = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (mut requests, mut slowest, mut bad) = (0, Duration::ZERO, Vec::new());
    for r in readers {
        let (n, s, b) = r.await.expect("reader");
        requests += n;
        slowest = slowest.max(s);
        bad.extend(b);
    }
    println!(
        "{PIPELINES} runs of {ROWS} rows in {loaded_in:?}; {requests} API reads meanwhile, the slowest {slowest:?}"
    );
    assert!(
        bad.is_empty(),
        "{} bad answers, the first: {:?}",
        bad.len(),
        bad.first()
    );
    assert!(requests > 0);

    let client = db.client().await;
    for (((pipeline, strategy, table), run), p) in pipelines.iter().zip(&runs).zip(&finals) {
        assert_eq!(p["status"], "completed_with_errors", "{pipeline}: {p}");
        let want = data::expected(ROWS, strategy, true);
        let got = table_digest(&client, table, COLUMNS).await;
        assert_eq!(got, expected_digest(want.rows), "{table} ({strategy})");
        let (status, r) = api.get(&format!("/api/v1/runs/{run}")).await;
        assert_eq!(status, StatusCode::OK);
        let count = |f: &str| r[f].as_u64().unwrap_or(u64::MAX);
        assert_eq!(count("totalRows"), ROWS, "{r}");
        assert_eq!(count("processedRows"), ROWS, "{r}");
        assert_eq!(count("failedRows"), want.failed, "{r}");
        assert_eq!(count("skippedRows"), want.skipped, "{r}");
        assert_eq!(
            count("loadedRows") + count("skippedRows") + count("failedRows"),
            ROWS,
            "{r}"
        );
    }
    let log = server.log_text();
    assert!(!log.contains("panicked"), "{log}");
}
