//! Issue 19, database and object-store faults, through the real binary,
//! PostgreSQL and the S3 server.
//!
//! The database: while a run loads, every connection to its database is cut
//! (`pg_terminate_backend`, the `57P01 terminating connection due to
//! administrator command` a restart gives) and new ones are refused for a
//! while (`ALLOW_CONNECTIONS false`, a database that is down). The other
//! tests' databases on the same cluster are untouched.
//!
//! Meanwhile `sluice serve` stays up and answers 200 or 503, never another
//! 5xx. Once the database is back the run ends by itself (it continues, or
//! it fails cleanly and a retry completes it), nothing is left running, the
//! destination is exact (count and checksum) and the totals add up.
//!
//! The object store: the connector reaches the S3 server through a proxy
//! that the test takes down mid-run for 10 s (open connections cut, new
//! ones refused) and then up again; the same exact outcome is required.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::data::{self, COLUMNS};
use crate::support::proxy::Proxy;
use crate::support::s3::Bucket;
use crate::support::sql::{expected_digest, table_digest};
use crate::support::{Launch, SluiceMigrations, TestDb, admin, env};

const ROWS: u64 = 150_000;
const LEASE: Duration = Duration::from_secs(5);

/// How the database goes away.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Every connection cut once; new ones are accepted at once.
    Cut,
    /// Every connection cut, and new ones refused for this long.
    Down(Duration),
}

/// Cuts every connection to `db` (and refuses new ones while `refuse`).
async fn cut(admin: &tokio_postgres::Client, db: &str, refuse: bool) {
    if refuse {
        admin
            .batch_execute(&format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS false"))
            .await
            .expect("refuse connections");
    }
    let cut = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .await
        .expect("terminate backends");
    assert!(cut > 0, "sluice had no connection to cut");
}

/// Asks the API what a user watching the run would, and checks the answer
/// is a 200 or a 503; answers how many were 503.
async fn probe(api: &crate::support::Api, pipeline: &str, run: &str) -> u32 {
    let mut unavailable = 0;
    for path in [
        format!("/api/v1/pipelines/{pipeline}/runs/{run}/progress"),
        format!("/api/v1/pipelines/{pipeline}/runs/{run}"),
        format!("/api/v1/pipelines/{pipeline}/runs"),
        format!("/api/v1/pipelines/{pipeline}"),
        format!("/api/v1/pipelines/{pipeline}/runs/{run}/errors?limit=5"),
        "/api/v1/connectors".to_owned(),
    ] {
        let (status, body) = api.get(&path).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {status} {body}"
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(
                body["error"]["code"], "service_unavailable",
                "{path}: {body}"
            );
            unavailable += 1;
        }
    }
    unavailable
}

/// A `strategy` pipeline over one `ROWS`-row file, reached through
/// `endpoint`, with its run started and loading.
struct Loading {
    db: TestDb,
    server: crate::support::Process,
    api: crate::support::Api,
    pipeline: String,
    run: String,
    strategy: &'static str,
    _bucket: Bucket,
}

impl Loading {
    async fn start(strategy: &'static str, proxy: Option<&Proxy>) -> Self {
        let db = TestDb::migrated(&SluiceMigrations).await;
        let bucket = Bucket::new().await;
        bucket.put("in/customers.csv", data::csv(1, ROWS)).await;
        let (server, api) = Launch::new(&db)
            .workers(2)
            .var("SLUICE_LEASE_SECONDS", LEASE.as_secs().to_string())
            .serve()
            .await;
        let endpoint = proxy.map_or_else(|| env().s3, |p| p.endpoint.clone());
        let connector = api.s3_connector_at(&bucket.name, &endpoint).await;
        let pipeline = api
            .pipeline(json!({
                "name": format!("{strategy} under a fault"),
                "connectorId": connector,
                "source": {"prefix": "in/"},
                "schema": data::schema("email"),
                "destination": {"table": "customers", "keyColumns": ["id"]},
                "loadStrategy": strategy,
                "partitions": 4
            }))
            .await;
        let run = api.start_run(&pipeline).await;
        let before = api
            .wait_until(&pipeline, &run, Duration::from_secs(300), |p| {
                p["processedRows"].as_u64().unwrap_or(0) > 0
                    || !matches!(p["status"].as_str(), Some("running" | "pending"))
            })
            .await;
        assert_eq!(
            before["status"], "running",
            "the fault must land mid-run: {before}"
        );
        assert!(
            before["processedRows"].as_u64() < Some(ROWS),
            "the fault must land mid-run: {before}"
        );
        Self {
            db,
            server,
            api,
            pipeline,
            run,
            strategy,
            _bucket: bucket,
        }
    }

    /// Once the fault has passed: the run ends by itself (or fails cleanly,
    /// and its retry completes), with the exact contents and totals.
    async fn finish(self) {
        let Self {
            db,
            server,
            api,
            pipeline,
            run,
            strategy,
            ..
        } = self;
        let mut p = api
            .wait_terminal(&pipeline, &run, Duration::from_secs(600))
            .await;
        let mut last = run.clone();
        let error = p["error"].as_str().unwrap_or_default().to_owned();
        println!("{strategy}: the run ended {} {error}", p["status"]);
        if p["status"] == "failed" {
            // Failing cleanly is allowed; the retry must then complete the load.
            let (status, retry) = api
                .post(
                    &format!("/api/v1/pipelines/{pipeline}/runs/{run}/retry"),
                    json!({}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{retry}");
            last = retry["id"].as_str().expect("retry id").to_owned();
            p = api
                .wait_terminal(&pipeline, &last, Duration::from_secs(600))
                .await;
        }
        assert_eq!(p["status"], "completed_with_errors", "{p}");
        assert_eq!(probe(&api, &pipeline, &last).await, 0, "healthy again");

        let want = data::expected(ROWS, strategy, true);
        let client = db.client().await;
        let got = table_digest(&client, "customers", COLUMNS).await;
        assert_eq!(got, expected_digest(want.rows), "destination contents");
        let (_, r) = api.get(&format!("/api/v1/runs/{last}")).await;
        let count = |f: &str| r[f].as_u64().unwrap_or(u64::MAX);
        let total = count("totalRows");
        assert_eq!(total, ROWS, "{r}");
        assert_eq!(count("processedRows"), total, "{r}");
        assert_eq!(
            count("loadedRows") + count("skippedRows") + count("failedRows"),
            total,
            "{r}"
        );
        let (_, runs) = api.get(&format!("/api/v1/pipelines/{pipeline}/runs")).await;
        for item in runs["items"].as_array().into_iter().flatten() {
            assert!(
                !matches!(item["status"].as_str(), Some("running" | "pending")),
                "nothing left running: {item}"
            );
        }
        let log = server.log_text();
        assert!(!log.contains("panicked"), "sluice serve panicked:\n{log}");
    }
}

async fn outage(strategy: &'static str, fault: Fault) {
    let loading = Loading::start(strategy, None).await;
    let (api, pipeline, run) = (&loading.api, &loading.pipeline, &loading.run);
    let admin = admin().await;
    let mut unavailable = 0;
    match fault {
        Fault::Cut => {
            cut(&admin, &loading.db.name, false).await;
            unavailable += probe(api, pipeline, run).await;
        }
        Fault::Down(hold) => {
            cut(&admin, &loading.db.name, true).await;
            let down = Instant::now();
            while down.elapsed() < hold {
                unavailable += probe(api, pipeline, run).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true",
                    loading.db.name
                ))
                .await
                .expect("accept connections again");
            assert!(unavailable > 0, "a database that is down answers 503");
        }
    }
    println!("{strategy} {fault:?}: {unavailable} answers were 503");
    loading.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn append_survives_its_connections_cut_mid_run() {
    outage("append", Fault::Cut).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upsert_survives_its_database_down_for_20_s_mid_run() {
    outage("upsert", Fault::Down(Duration::from_secs(20))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replace_survives_its_database_down_for_20_s_mid_run() {
    outage("replace", Fault::Down(Duration::from_secs(20))).await;
}

/// The S3 server unreachable for 10 s mid-run (open connections cut, new
/// ones refused), then back: the load ends exact, by itself or by a retry.
#[tokio::test(flavor = "multi_thread")]
async fn append_survives_its_object_store_down_for_10_s_mid_run() {
    let target = env()
        .s3
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = Proxy::start(target).await;
    let loading = Loading::start("append", Some(&proxy)).await;
    proxy.down();
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(10) {
        // The API does not depend on the store: it answers throughout.
        let (status, body) = loading
            .api
            .get(&format!(
                "/api/v1/pipelines/{}/runs/{}/progress",
                loading.pipeline, loading.run
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    proxy.up();
    println!("object store down: {} connections refused", proxy.refused());
    loading.finish().await;
}
