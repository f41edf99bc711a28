//! Issue 7: touch files start runs, exactly once.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::data;
use crate::support::s3::Bucket;
use crate::support::{Api, Launch, SluiceMigrations, TestDb};

async fn polled_pipeline(api: &Api, connector: &str, delete_after: bool) -> String {
    api.pipeline(json!({
        "name": "Daily Customer Import",
        "connectorId": connector,
        "source": {"prefix": "data/customers/", "pattern": "*.csv"},
        "schema": data::schema("string"),
        "destination": {"table": format!("polled_{}", crate::support::suffix()), "keyColumns": ["id"]},
        "loadStrategy": "upsert",
        "partitions": 2,
        "polling": {"enabled": true, "intervalMinutes": 15, "touchFile": "_READY.dat", "deleteAfterProcess": delete_after}
    }))
    .await
}

async fn runs(api: &Api, pipeline: &str) -> Vec<Value> {
    let (status, body) = api.get(&format!("/api/v1/pipelines/{pipeline}/runs")).await;
    assert!(status.is_success(), "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

async fn poll(api: &Api) -> Value {
    let (status, body) = api.post("/api/v1/pipelines/poll", json!({})).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn a_touch_file_starts_a_run_and_is_deleted_after_success() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket
        .put("data/customers/2026-03-30.csv", data::csv(1, 2_000))
        .await;
    let (_server, api) = Launch::new(&db).serve().await;
    let connector = api.s3_connector(&bucket.name).await;
    let pipeline = polled_pipeline(&api, &connector, true).await;

    let body = poll(&api).await;
    assert_eq!(
        body,
        json!({"message": "Polling cycle complete: checked 1 pipelines, triggered 0 runs", "checked": 1, "triggered": 0})
    );
    bucket.put("data/customers/_READY.dat", "").await;
    let body = poll(&api).await;
    assert_eq!(body["triggered"], 1, "{body}");
    assert_eq!(
        body["message"],
        "Polling cycle complete: checked 1 pipelines, triggered 1 runs"
    );
    let all = runs(&api, &pipeline).await;
    assert_eq!(all.len(), 1);
    let run = all[0]["id"].as_str().expect("id").to_owned();
    let p = api
        .wait_terminal(&pipeline, &run, Duration::from_secs(120))
        .await;
    assert_eq!(p["status"], "completed_with_errors");
    // The touch file is deleted right after the run ends; give finalisation a moment.
    let start = Instant::now();
    while bucket.exists("data/customers/_READY.dat").await {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "touch file not deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(poll(&api).await["triggered"], 0, "no touch file, no run");

    let (status, status_body) = api.get("/api/v1/pipelines/poll").await;
    assert_eq!(status.as_u16(), 200);
    assert_eq!(status_body["total"], 1);
    let entry = &status_body["pipelines"][0];
    assert_eq!(entry["id"], pipeline.as_str());
    assert_eq!(entry["name"], "Daily Customer Import");
    assert_eq!(entry["connectorType"], "s3");
    assert_eq!(
        entry["polling"],
        json!({"enabled": true, "intervalMinutes": 15, "touchFile": "_READY.dat", "prefix": "data/customers/", "deleteAfterProcess": true})
    );
    assert_eq!(entry["lastRunStatus"], "completed_with_errors");
    assert!(entry["lastRunAt"].is_string());

    bucket.put("data/customers/_READY.dat", "again").await;
    assert_eq!(
        poll(&api).await["triggered"],
        1,
        "a new touch file starts a new run"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_touch_file_never_starts_a_second_run() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("data/customers/a.csv", data::csv(1, 100)).await;
    bucket.put("data/customers/_READY.dat", "v1").await;
    let (_server, api) = Launch::new(&db).serve().await;
    let connector = api.s3_connector(&bucket.name).await;
    let pipeline = polled_pipeline(&api, &connector, false).await;
    assert_eq!(poll(&api).await["triggered"], 1);
    let run = runs(&api, &pipeline).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    api.wait_terminal(&pipeline, &run, Duration::from_secs(60))
        .await;
    for _ in 0..3 {
        assert_eq!(poll(&api).await["triggered"], 0);
    }
    assert!(
        bucket.exists("data/customers/_READY.dat").await,
        "kept without deleteAfterProcess"
    );
    bucket.put("data/customers/_READY.dat", "v2").await;
    assert_eq!(
        poll(&api).await["triggered"],
        1,
        "a replaced touch file (new ETag) starts a run"
    );
    assert_eq!(runs(&api, &pipeline).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_connector_does_not_stop_the_cycle() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("data/customers/a.csv", data::csv(1, 10)).await;
    bucket.put("data/customers/_READY.dat", "").await;
    let (_server, api) = Launch::new(&db).serve().await;
    let good = api.s3_connector(&bucket.name).await;
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let (status, bad) = api
        .post("/api/v1/connectors", json!({"name": "down", "type": "s3",
            "config": {"bucket": "nowhere", "endpoint": format!("http://127.0.0.1:{dead_port}"), "region": "us-east-1"},
            "credentials": {"accessKeyId": "x", "secretAccessKey": "y"}}))
        .await;
    assert_eq!(status.as_u16(), 201, "{bad}");
    let bad = bad["id"].as_str().expect("id").to_owned();
    let _p_bad = polled_pipeline(&api, &bad, true).await;
    let p_good = polled_pipeline(&api, &good, true).await;
    let body = poll(&api).await;
    assert_eq!(
        (body["checked"].as_u64(), body["triggered"].as_u64()),
        (Some(2), Some(1)),
        "{body}"
    );
    assert_eq!(runs(&api, &p_good).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_polling_for_a_minute_start_exactly_one_run() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("data/customers/a.csv", data::csv(1, 500)).await;
    let (_a, api_a) = Launch::new(&db)
        .var("SLUICE_POLL_TICK_SECONDS", "1")
        .serve()
        .await;
    let (_b, api_b) = Launch::new(&db)
        .var("SLUICE_POLL_TICK_SECONDS", "1")
        .serve()
        .await;
    let connector = api_a.s3_connector(&bucket.name).await;
    let pipeline = api_a
        .pipeline(json!({
            "name": "contended", "connectorId": connector,
            "source": {"prefix": "data/customers/", "pattern": "*.csv"}, "schema": data::schema("string"),
            "destination": {"table": "contended", "keyColumns": ["id"]}, "loadStrategy": "upsert", "partitions": 2,
            "polling": {"enabled": true, "intervalMinutes": 1, "touchFile": "_READY.dat", "deleteAfterProcess": false}
        }))
        .await;
    bucket.put("data/customers/_READY.dat", "").await;
    // For a minute both servers' schedulers tick every second, and both are
    // also asked to poll at the same moments.
    let start = Instant::now();
    let mut triggered = 0;
    while start.elapsed() < Duration::from_secs(60) {
        let (a, b) = tokio::join!(poll(&api_a), poll(&api_b));
        triggered += a["triggered"].as_u64().unwrap_or(0) + b["triggered"].as_u64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(triggered <= 1, "manual polls triggered {triggered} runs");
    let all = runs(&api_a, &pipeline).await;
    assert_eq!(all.len(), 1, "exactly one run for one touch file: {all:?}");
}
