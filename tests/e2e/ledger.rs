//! Issue 13: each file loads once. The real binary, PostgreSQL and the S3
//! server: the reference page's polling flow (one more file a day, then the
//! touch file), unchanged and changed re-uploads, forced reloads, the ledger
//! and the per-run file list, the failed-run rule, and the new triggers
//! across two `sluice serve` replicas.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::data::{self, COLUMNS, Row};
use crate::support::s3::Bucket;
use crate::support::sql::{expected_digest, table_digest};
use crate::support::{Api, Launch, SluiceMigrations, TestDb};

const LIMIT: Duration = Duration::from_secs(120);

fn rows(from: u64, to: u64) -> Vec<Vec<String>> {
    (from..=to)
        .map(Row::new)
        .filter(|r| !r.invalid(true))
        .map(|r| r.loaded())
        .collect()
}

async fn runs(api: &Api, pipeline: &str) -> Vec<Value> {
    let (status, body) = api.get(&format!("/api/v1/pipelines/{pipeline}/runs")).await;
    assert!(status.is_success(), "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

fn messages(progress: &Value) -> Vec<String> {
    progress["log"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect()
}

async fn start(api: &Api, pipeline: &str, body: Value) -> String {
    let (status, run) = api
        .post(&format!("/api/v1/pipelines/{pipeline}/runs"), body)
        .await;
    assert_eq!(status.as_u16(), 201, "{run}");
    run["id"].as_str().expect("id").to_owned()
}

async fn poll(api: &Api) -> Value {
    let (status, body) = api.post("/api/v1/pipelines/poll", json!({})).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn each_file_loads_once_in_the_daily_touch_file_flow() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    let day1 = data::csv(1, 1_000);
    bucket.put("data/customers/day1.csv", day1.clone()).await;
    let (_server, api) = Launch::new(&db).serve().await;
    let connector = api.s3_connector(&bucket.name).await;
    // Append without key columns: a file loaded twice would duplicate its rows.
    let pipeline = api
        .pipeline(json!({
            "name": "Daily Customer Import", "connectorId": connector,
            "source": {"prefix": "data/customers/", "pattern": "*.csv"},
            "schema": data::schema("email"), "destination": {"table": "daily"},
            "loadStrategy": "append", "partitions": 3,
            "polling": {"enabled": true, "intervalMinutes": 15, "touchFile": "_READY.dat", "deleteAfterProcess": true}
        }))
        .await;
    let sql = db.client().await;

    // Day 1: a run loads it.
    let first = start(&api, &pipeline, json!({})).await;
    let p = api.wait_terminal(&pipeline, &first, LIMIT).await;
    assert_eq!(p["totalRows"], 1_000, "{p}");
    assert_eq!(
        table_digest(&sql, "daily", COLUMNS).await,
        expected_digest(rows(1, 1_000))
    );

    // Day 2 and the touch file: the triggered run loads day 2 only.
    bucket
        .put("data/customers/day2.csv", data::csv(1_001, 1_500))
        .await;
    bucket.put("data/customers/_READY.dat", "").await;
    assert_eq!(poll(&api).await["triggered"], 1);
    let second = runs(&api, &pipeline).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let p = api.wait_terminal(&pipeline, &second, LIMIT).await;
    assert_eq!(p["totalRows"], 500, "{p}");
    assert!(
        messages(&p).contains(&"1 files to read (1 already loaded)".to_owned()),
        "{p}"
    );
    assert_eq!(
        table_digest(&sql, "daily", COLUMNS).await,
        expected_digest(rows(1, 1_500)),
        "each row once: count and checksum"
    );
    // The touch file is still cleaned up.
    let t = Instant::now();
    while bucket.exists("data/customers/_READY.dat").await {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "touch file not deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Day 1 uploaded again unchanged (same content, same ETag): nothing to read.
    bucket.put("data/customers/day1.csv", day1).await;
    let idle = start(&api, &pipeline, json!({})).await;
    let p = api.wait_terminal(&pipeline, &idle, LIMIT).await;
    assert_eq!(
        (p["status"].as_str(), p["totalRows"].as_u64()),
        (Some("completed"), Some(0)),
        "{p}"
    );
    assert!(
        messages(&p).contains(&"No new files (2 already loaded)".to_owned()),
        "{p}"
    );
    assert_eq!(
        table_digest(&sql, "daily", COLUMNS).await.0,
        rows(1, 1_500).len() as u64
    );

    // Day 1 changed: loaded again, and the log names it.
    bucket
        .put("data/customers/day1.csv", data::csv(2_001, 2_100))
        .await;
    let changed = start(&api, &pipeline, json!({})).await;
    let p = api.wait_terminal(&pipeline, &changed, LIMIT).await;
    assert_eq!(p["totalRows"], 100, "{p}");
    let line = format!("Changed since {first}: data/customers/day1.csv");
    assert!(messages(&p).contains(&line), "{p}");
    let mut want = rows(1, 1_500);
    want.extend(rows(2_001, 2_100));
    assert_eq!(
        table_digest(&sql, "daily", COLUMNS).await,
        expected_digest(want.clone())
    );

    // {"files": "all"} reads both again (the user asked for it).
    let all = start(&api, &pipeline, json!({"files": "all"})).await;
    let p = api.wait_terminal(&pipeline, &all, LIMIT).await;
    assert_eq!(p["totalRows"], 600, "{p}");
    assert!(
        messages(&p).contains(&"Reload of every listed file requested (files: all)".to_owned()),
        "{p}"
    );
    want.extend(rows(1_001, 1_500));
    want.extend(rows(2_001, 2_100));
    assert_eq!(
        table_digest(&sql, "daily", COLUMNS).await,
        expected_digest(want)
    );

    // The ledger: newest first, the last run, the right counts.
    let (status, ledger) = api
        .get(&format!("/api/v1/pipelines/{pipeline}/files"))
        .await;
    assert_eq!(status.as_u16(), 200, "{ledger}");
    let items = ledger["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{ledger}");
    for item in items {
        assert_eq!(item["runId"], all.as_str(), "{item}");
    }
    let day2 = items
        .iter()
        .find(|i| i["key"] == "data/customers/day2.csv")
        .expect("day 2");
    let failed = (1_001..=1_500)
        .filter(|n| Row::new(*n).invalid(true))
        .count() as u64;
    assert_eq!(day2["totalRows"], 500);
    assert_eq!(day2["failedRows"], failed);
    assert_eq!(day2["loadedRows"], 500 - failed);
    assert_eq!(day2["skippedRows"], 0);
    assert!(day2["etag"].is_string(), "{day2}");
    // The per-run file list of the touch-file run: day 2 only, completed.
    let (_, files) = api
        .get(&format!("/api/v1/pipelines/{pipeline}/runs/{second}/files"))
        .await;
    let files = files["items"].as_array().expect("items").clone();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0]["key"], "data/customers/day2.csv");
    assert_eq!(files[0]["status"], "completed");
    assert_eq!(
        (
            files[0]["loadedRows"].as_u64(),
            files[0]["failedRows"].as_u64()
        ),
        (Some(500 - failed), Some(failed))
    );
}

/// The failed-run rule for one strategy: a run fails after committing rows
/// (its error threshold), a new run is refused with a 422 that says to retry,
/// the retry finishes exactly the original's files, and the next run reads
/// only the file that arrived meanwhile: every row once.
async fn failed_run_rule(strategy: &str) {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("in/a.csv", data::csv(1, 2_000)).await;
    let (_server, api) = Launch::new(&db)
        .var("SLUICE_BATCH_ROWS", "200")
        .serve()
        .await;
    let connector = api.s3_connector(&bucket.name).await;
    let table = format!("rule_{strategy}");
    let pipeline = api
        .pipeline(json!({
            "name": "rule", "connectorId": connector, "source": {"prefix": "in/"},
            "schema": data::schema("email"), "destination": {"table": table, "keyColumns": ["id"]},
            "loadStrategy": strategy, "partitions": 1, "maxErrors": 3
        }))
        .await;
    let failed = start(&api, &pipeline, json!({})).await;
    let p = api.wait_terminal(&pipeline, &failed, LIMIT).await;
    assert_eq!(p["status"], "failed", "{p}");
    assert!(p["processedRows"].as_u64().unwrap_or(0) > 0, "{p}");

    bucket.put("in/b.csv", data::csv(2_001, 2_300)).await;
    let (status, body) = api
        .post(&format!("/api/v1/pipelines/{pipeline}/runs"), json!({}))
        .await;
    assert_eq!(status.as_u16(), 422, "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains(&format!("run {failed} failed after committing")),
        "{message}"
    );
    assert!(message.contains("retry"), "{message}");

    let (status, _) = api
        .patch(
            &format!("/api/v1/pipelines/{pipeline}"),
            json!({"maxErrors": null}),
        )
        .await;
    assert_eq!(status.as_u16(), 200);
    let (status, retry) = api
        .post(
            &format!("/api/v1/pipelines/{pipeline}/runs/{failed}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status.as_u16(), 201, "{retry}");
    let retry = retry["id"].as_str().expect("id").to_owned();
    let p = api.wait_terminal(&pipeline, &retry, LIMIT).await;
    assert_eq!(p["status"], "completed_with_errors", "{p}");
    assert_eq!(
        p["totalRows"], 2_000,
        "the retry reads the original's files, not b.csv"
    );

    let next = start(&api, &pipeline, json!({})).await;
    let p = api.wait_terminal(&pipeline, &next, LIMIT).await;
    assert_eq!(p["totalRows"], 300, "only the file that arrived since: {p}");
    let sql = db.client().await;
    // b.csv shares no key with a.csv, so loading a then b is loading 1..=2300.
    assert_eq!(
        table_digest(&sql, &table, COLUMNS).await,
        expected_digest(data::expected(2_300, strategy, true).rows),
        "{strategy}: every row once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn append_a_failed_run_is_retried_not_reloaded() {
    failed_run_rule("append").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upsert_a_failed_run_is_retried_not_reloaded() {
    failed_run_rule("upsert").await;
}

async fn two_replicas(
    db: &TestDb,
) -> (
    (crate::support::Process, Api),
    (crate::support::Process, Api),
) {
    let a = Launch::new(db)
        .var("SLUICE_POLL_TICK_SECONDS", "1")
        .serve()
        .await;
    let b = Launch::new(db)
        .var("SLUICE_POLL_TICK_SECONDS", "1")
        .serve()
        .await;
    (a, b)
}

/// Waits until the pipeline has `n` runs, all terminal, then a little longer
/// (both schedulers tick every second) to see that no other starts.
async fn settle(api: &Api, pipeline: &str, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let all = runs(api, pipeline).await;
        let done = all.iter().all(|r| {
            matches!(
                r["status"].as_str(),
                Some("completed" | "completed_with_errors" | "failed" | "cancelled")
            )
        });
        if all.len() >= n && done {
            // Three more ticks of both schedulers: nothing else may start.
            tokio::time::sleep(Duration::from_secs(3)).await;
            return runs(api, pipeline).await;
        }
        assert!(
            start.elapsed() < LIMIT,
            "{} runs after {LIMIT:?}: {all:?}",
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_start_one_run_per_batch_of_new_files() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("data/in/day1.csv", data::csv(1, 300)).await;
    let ((_a, api_a), (_b, api_b)) = two_replicas(&db).await;
    let connector = api_a.s3_connector(&bucket.name).await;
    let pipeline = api_a
        .pipeline(json!({
            "name": "new files", "connectorId": connector,
            "source": {"prefix": "data/in/", "pattern": "*.csv"}, "schema": data::schema("email"),
            "destination": {"table": "newfiles"}, "loadStrategy": "append", "partitions": 2,
            "polling": {"enabled": true, "trigger": "newFiles", "intervalMinutes": 1}
        }))
        .await;
    // Both replicas are also asked to poll at the same moments.
    let (a, b) = tokio::join!(poll(&api_a), poll(&api_b));
    let triggered = a["triggered"].as_u64().unwrap_or(0) + b["triggered"].as_u64().unwrap_or(0);
    assert!(triggered <= 1, "{a} {b}");
    let all = settle(&api_a, &pipeline, 1).await;
    assert_eq!(all.len(), 1, "one run for the first batch: {all:?}");
    bucket.put("data/in/day2.csv", data::csv(301, 400)).await;
    bucket.put("data/in/day3.csv", data::csv(401, 450)).await;
    let (a, b) = tokio::join!(poll(&api_a), poll(&api_b));
    let triggered = a["triggered"].as_u64().unwrap_or(0) + b["triggered"].as_u64().unwrap_or(0);
    assert_eq!(triggered, 1, "one run for the second batch: {a} {b}");
    let all = settle(&api_a, &pipeline, 2).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0]["totalRows"], 150, "{all:?}");
    let sql = db.client().await;
    assert_eq!(
        table_digest(&sql, "newfiles", COLUMNS).await,
        expected_digest(rows(1, 450))
    );
    let (_, status) = api_b.get("/api/v1/pipelines/poll").await;
    assert_eq!(
        status["pipelines"][0]["polling"]["trigger"], "newFiles",
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_start_one_run_per_cron_tick() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("data/in/a.csv", data::csv(1, 100)).await;
    let ((_a, api_a), (_b, api_b)) = two_replicas(&db).await;
    let connector = api_a.s3_connector(&bucket.name).await;
    let pipeline = api_a
        .pipeline(json!({
            "name": "cron", "connectorId": connector,
            "source": {"prefix": "data/in/"}, "schema": data::schema("email"),
            "destination": {"table": "cron"}, "loadStrategy": "append",
            "schedule": {"cron": "* * * * *", "timezone": "Europe/Berlin"}
        }))
        .await;
    // Every minute is a tick: wait for two of them, with both replicas'
    // schedulers ticking every second and manual polls on both.
    let start = Instant::now();
    let mut seen = 0;
    while start.elapsed() < Duration::from_secs(150) && seen < 2 {
        let _ = tokio::join!(poll(&api_a), poll(&api_b));
        seen = runs(&api_a, &pipeline).await.len();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all = runs(&api_a, &pipeline).await;
    assert!(all.len() >= 2, "two ticks in 150 s: {all:?}");
    // Ticks are whole minutes: one run per tick, never two for one minute.
    let mut ticks: Vec<String> = Vec::new();
    for run in &all {
        let id = run["id"].as_str().expect("id");
        let p = api_a.progress(&pipeline, id).await;
        let line = messages(&p)
            .into_iter()
            .find(|m| m.starts_with("Scheduled run for "))
            .expect("a scheduled run");
        ticks.push(line);
    }
    let mut unique = ticks.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ticks.len(), "one run per tick: {ticks:?}");
    let (_, status) = api_b.get("/api/v1/pipelines/poll").await;
    assert_eq!(
        status["pipelines"][0]["schedule"]["cron"], "* * * * *",
        "{status}"
    );
}

fn wait_for_line(p: &crate::support::Process, line: &str) {
    let start = Instant::now();
    while !p.log_text().contains(line) {
        assert!(
            start.elapsed() < LIMIT,
            "`{line}` never appeared:\n{}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILL of the only worker at a finalisation fail point (after the last
/// batch commit, or inside the finalising transaction before COMMIT): the
/// ledger holds nothing while the run is unfinished; after another worker
/// recovers, the run is complete, the ledger lists every file once and the
/// table holds every row once; the next run reads nothing.
async fn killed_at_finalisation(point: &str) {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    for (i, (from, to)) in [(1, 2_000), (2_001, 4_000), (4_001, 6_000)]
        .into_iter()
        .enumerate()
    {
        bucket
            .put(&format!("in/f{i}.csv"), data::csv(from, to))
            .await;
    }
    let (_server, api) = Launch::new(&db).workers(0).serve().await;
    let connector = api.s3_connector(&bucket.name).await;
    // Without key columns a file loaded twice would duplicate its rows.
    let pipeline = api
        .pipeline(json!({
            "name": "finalise", "connectorId": connector, "source": {"prefix": "in/"},
            "schema": data::schema("email"), "destination": {"table": "finalised"},
            "loadStrategy": "append", "partitions": 4
        }))
        .await;
    let mut victim = Launch::new(&db)
        .workers(1)
        .var("SLUICE_BATCH_ROWS", "700")
        .var("SLUICE_FAILPOINT", format!("{point}:1"))
        .worker();
    let run = start(&api, &pipeline, json!({})).await;
    wait_for_line(&victim, &format!("sluice failpoint {point} reached"));
    let p = api.progress(&pipeline, &run).await;
    assert_eq!(
        (p["status"].as_str(), p["processedRows"].as_u64()),
        (Some("running"), Some(6_000)),
        "{p}"
    );
    let (_, ledger) = api
        .get(&format!("/api/v1/pipelines/{pipeline}/files"))
        .await;
    assert_eq!(
        ledger["items"],
        json!([]),
        "not in the ledger before the run is final"
    );
    victim.kill();

    let _rescuer = Launch::new(&db).workers(1).worker();
    let p = api.wait_terminal(&pipeline, &run, LIMIT).await;
    assert_eq!(p["status"], "completed_with_errors", "{p}");
    let (_, ledger) = api
        .get(&format!("/api/v1/pipelines/{pipeline}/files"))
        .await;
    let items = ledger["items"].as_array().expect("items");
    assert_eq!(items.len(), 3, "{ledger}");
    let total: u64 = items
        .iter()
        .map(|i| i["totalRows"].as_u64().unwrap_or(0))
        .sum();
    let loaded: u64 = items
        .iter()
        .map(|i| i["loadedRows"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(total, 6_000);
    assert_eq!(
        loaded,
        p["processedRows"].as_u64().unwrap_or(0) - p["failedRows"].as_u64().unwrap_or(0)
    );
    let sql = db.client().await;
    assert_eq!(
        table_digest(&sql, "finalised", COLUMNS).await,
        expected_digest(rows(1, 6_000)),
        "every row once"
    );
    let next = start(&api, &pipeline, json!({})).await;
    let p = api.wait_terminal(&pipeline, &next, LIMIT).await;
    assert_eq!(p["totalRows"], 0, "{p}");
    assert!(
        messages(&p).contains(&"No new files (3 already loaded)".to_owned()),
        "{p}"
    );
    assert_eq!(
        table_digest(&sql, "finalised", COLUMNS).await.0,
        rows(1, 6_000).len() as u64
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_between_the_last_commit_and_finalisation() {
    killed_at_finalisation("before_finalize").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_during_finalisation() {
    killed_at_finalisation("finalize_before_commit").await;
}
