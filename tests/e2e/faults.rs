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
use sluice_embedded_postgres::{Auth, Cluster, Options};

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
    /// The database sluice loads into (the test database, or a private
    /// cluster's).
    destination: String,
    server: crate::support::Process,
    api: crate::support::Api,
    pipeline: String,
    run: String,
    strategy: &'static str,
    _bucket: Bucket,
}

impl Loading {
    async fn start(strategy: &'static str, proxy: Option<&Proxy>) -> Self {
        Self::start_on(strategy, proxy, None).await
    }

    /// [`Loading::start`], with sluice on the database at `database` (a
    /// migrated one) instead of a test database of the shared cluster.
    async fn start_on(
        strategy: &'static str,
        proxy: Option<&Proxy>,
        database: Option<String>,
    ) -> Self {
        let db = TestDb::migrated(&SluiceMigrations).await;
        let destination = database.clone().unwrap_or_else(|| db.url.clone());
        let bucket = Bucket::new().await;
        bucket.put("in/customers.csv", data::csv(1, ROWS)).await;
        let mut launch = Launch::new(&db)
            .workers(2)
            .var("SLUICE_LEASE_SECONDS", LEASE.as_secs().to_string());
        if let Some(url) = database {
            launch = launch.var("DATABASE_URL", url);
        }
        let (server, api) = launch.serve().await;
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
            destination,
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
            destination,
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
        let (client, connection) = tokio_postgres::connect(&destination, tokio_postgres::NoTls)
            .await
            .expect("connect to the destination");
        tokio::spawn(connection);
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

fn s3_target() -> String {
    env()
        .s3
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// Lets `hold` pass while the store misbehaves, checking that the API,
/// which does not depend on the store, answers throughout.
async fn through(loading: &Loading, hold: Duration) {
    let since = Instant::now();
    while since.elapsed() < hold {
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
}

/// The S3 server unreachable for 10 s mid-run (open connections cut, new
/// ones refused), then back: the load ends exact, by itself or by a retry.
#[tokio::test(flavor = "multi_thread")]
async fn append_survives_its_object_store_down_for_10_s_mid_run() {
    let proxy = Proxy::start(s3_target()).await;
    let loading = Loading::start("append", Some(&proxy)).await;
    proxy.down();
    through(&loading, Duration::from_secs(10)).await;
    proxy.up();
    println!("object store down: {} connections refused", proxy.refused());
    loading.finish().await;
}

/// The S3 server shedding load mid-run: every request answered `503 Slow
/// Down` for 10 s, then every response crawling (each 16 KiB held 100 ms)
/// for 10 s, then well again: the same exact outcome.
#[tokio::test(flavor = "multi_thread")]
async fn append_survives_its_object_store_answering_503_then_slowly_mid_run() {
    let proxy = Proxy::start(s3_target()).await;
    let loading = Loading::start("append", Some(&proxy)).await;
    proxy.unavailable();
    through(&loading, Duration::from_secs(10)).await;
    proxy.slow(Duration::from_millis(100));
    through(&loading, Duration::from_secs(10)).await;
    proxy.up();
    let (unavailable, slowed) = (proxy.answered_unavailable(), proxy.slowed_chunks());
    println!("object store: {unavailable} requests answered 503, {slowed} chunks slowed");
    assert!(unavailable > 0, "the run met the 503s");
    assert!(slowed > 0, "the run met the slow responses");
    loading.finish().await;
}

/// A pipeline over a 100-row file reached through `proxy`, on a server of
/// its own.
async fn through_proxy(
    proxy: &Proxy,
) -> (
    TestDb,
    crate::support::Process,
    crate::support::Api,
    String,
    Bucket,
) {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("in/customers.csv", data::csv(1, 100)).await;
    let (server, api) = Launch::new(&db)
        .workers(1)
        .var("SLUICE_LEASE_SECONDS", LEASE.as_secs().to_string())
        .serve()
        .await;
    let connector = api.s3_connector_at(&bucket.name, &proxy.endpoint).await;
    let pipeline = api
        .pipeline(json!({
            "name": "a store shedding load",
            "connectorId": connector,
            "source": {"prefix": "in/"},
            "schema": data::schema("email"),
            "destination": {"table": "customers", "keyColumns": ["id"]},
            "loadStrategy": "append"
        }))
        .await;
    (db, server, api, pipeline, bucket)
}

/// A store answering 503 to everything for 8 s as a run starts (its
/// listing): the reads are retried with backoff, whose waits add up to at
/// least 12 s however they are drawn, and the run completes exact.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_shedding_load_as_a_run_starts_only_delays_it() {
    let proxy = Proxy::start(s3_target()).await;
    let (db, server, api, pipeline, _bucket) = through_proxy(&proxy).await;
    proxy.unavailable();
    let run = api.start_run(&pipeline).await;
    // The fault's duration, not a synchronisation.
    tokio::time::sleep(Duration::from_secs(8)).await;
    proxy.up();
    let p = api
        .wait_terminal(&pipeline, &run, Duration::from_secs(300))
        .await;
    assert!(
        matches!(
            p["status"].as_str(),
            Some("completed" | "completed_with_errors")
        ),
        "{p}"
    );
    assert_eq!(p["processedRows"], 100, "{p}");
    assert!(proxy.answered_unavailable() > 0, "the run met the 503s");
    let want = data::expected(100, "append", true);
    let got = table_digest(&db.client().await, "customers", COLUMNS).await;
    assert_eq!(got, expected_digest(want.rows), "destination contents");
    assert!(!server.log_text().contains("panicked"));
}

/// A store that never stops answering 503: the run fails by itself, in
/// bounded time, saying what the store answered, and nothing stays running.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_stays_unavailable_fails_the_run_in_plain_words() {
    let proxy = Proxy::start(s3_target()).await;
    let (_db, server, api, pipeline, _bucket) = through_proxy(&proxy).await;
    proxy.unavailable();
    let started = Instant::now();
    let run = api.start_run(&pipeline).await;
    let p = api
        .wait_terminal(&pipeline, &run, Duration::from_secs(300))
        .await;
    println!("failed after {:?}", started.elapsed());
    assert_eq!(p["status"], "failed", "{p}");
    let (_, r) = api.get(&format!("/api/v1/runs/{run}")).await;
    let error = r["error"].as_str().unwrap_or_default().to_owned();
    println!("the run failed with: {error}");
    assert!(
        error.contains("503") || error.contains("Slow Down") || error.contains("SlowDown"),
        "the error says what the store answered: {r}"
    );
    assert!(proxy.answered_unavailable() > 1, "the listing was retried");
    assert!(!server.log_text().contains("panicked"));
}

/// A PostgreSQL cluster of one test's own, which the test may really
/// restart, reached through a proxy so that it keeps its address when it
/// comes back on another port.
struct PrivateCluster {
    options: Options,
    cluster: Option<Cluster>,
    proxy: Proxy,
    _dir: tempfile::TempDir,
}

impl PrivateCluster {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("a directory for the cluster");
        let mut options = Options::new(dir.path().join("pg"));
        // Durable: with `synchronous_commit=off` (what the shared test
        // cluster runs with, for speed) an immediate shutdown loses the last
        // commits PostgreSQL acknowledged, batches and checkpoints alike,
        // while the worker goes on from the batch after them. Seen here:
        // 19,701 rows missing. Exactly-once needs durable commits.
        options.durable = true;
        options.auth = Auth::Trust;
        let cluster = Self::launch(options.clone()).await;
        let proxy = Proxy::start(format!("127.0.0.1:{}", cluster.port())).await;
        Self {
            options,
            cluster: Some(cluster),
            proxy,
            _dir: dir,
        }
    }

    async fn launch(options: Options) -> Cluster {
        tokio::task::spawn_blocking(move || Cluster::start(options))
            .await
            .expect("start the cluster")
            .expect("a private PostgreSQL cluster")
    }

    /// The cluster's URL through the proxy.
    fn url(&self) -> String {
        let cluster = self.cluster.as_ref().expect("running");
        cluster.url().replace(
            &format!(":{}/", cluster.port()),
            &format!(":{}/", self.proxy.port()),
        )
    }

    /// Shuts the server down with `signal` (`INT`: fast, `QUIT`: immediate,
    /// as `pg_ctl stop -m fast|immediate` does), runs `meanwhile` while it
    /// is down, then starts it again (crash recovery after an immediate
    /// shutdown) and sends new connections to it.
    async fn restart<F: std::future::Future<Output = ()>>(&mut self, signal: &str, meanwhile: F) {
        let cluster = self.cluster.take().expect("running");
        let status = std::process::Command::new("kill")
            .args(["-s", signal, &cluster.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "signal the postmaster");
        let watch = cluster.exit_watch();
        tokio::task::spawn_blocking(move || watch.wait())
            .await
            .expect("wait for the postmaster");
        drop(cluster);
        meanwhile.await;
        let cluster = Self::launch(self.options.clone()).await;
        self.proxy.retarget(format!("127.0.0.1:{}", cluster.port()));
        self.cluster = Some(cluster);
    }
}

/// Issue 19: the destination's PostgreSQL itself restarted under a running
/// load, first with a fast shutdown, then with an immediate one (crash
/// recovery on start). `sluice serve` stays up, answers 503 while the
/// server is down, reconnects, and the run ends exact (by itself or by a
/// retry).
#[tokio::test(flavor = "multi_thread")]
async fn append_survives_postgresql_restarted_fast_then_immediately_mid_run() {
    let mut pg = PrivateCluster::start().await;
    let url = pg.url();
    let migrate = std::process::Command::new(env().bin)
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .output()
        .expect("sluice migrate");
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let loading = Loading::start_on("append", None, Some(url)).await;
    let (api, pipeline, run) = (&loading.api, &loading.pipeline, &loading.run);
    let unavailable = std::sync::atomic::AtomicU32::new(0);
    let count = |n| {
        unavailable.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
    };
    pg.restart("INT", async { count(probe(api, pipeline, run).await) })
        .await;
    // Let the load go on before the second fault, if it has rows left.
    let p = api
        .wait_until(pipeline, run, Duration::from_secs(120), |p| {
            p["processedRows"].as_u64().unwrap_or(0) > ROWS / 2
                || !matches!(p["status"].as_str(), Some("running" | "pending"))
        })
        .await;
    println!(
        "after the fast restart: {} {} rows",
        p["status"], p["processedRows"]
    );
    pg.restart("QUIT", async { count(probe(api, pipeline, run).await) })
        .await;
    let unavailable = unavailable.load(std::sync::atomic::Ordering::SeqCst);
    println!("postgresql restarted twice: {unavailable} answers were 503");
    assert!(unavailable > 0, "a database that is down answers 503");
    loading.finish().await;
}
