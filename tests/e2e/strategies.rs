//! Issue 5, acceptance 1: each strategy loads a 100,000-row CSV with invalid
//! rows and duplicate keys from S3 into PostgreSQL, exactly.

use std::time::Duration;

use serde_json::json;

use crate::data::{self, COLUMNS};
use crate::support::s3::Bucket;
use crate::support::sql::{expected_digest, table_digest};
use crate::support::{Launch, SluiceMigrations, TestDb};

const ROWS: u64 = 100_000;

async fn load(strategy: &str) {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    // Two files, so partitions span a file boundary.
    bucket.put("in/part-1.csv", data::csv(1, 60_000)).await;
    let second: String = data::csv(60_001, ROWS)
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect();
    bucket
        .put(
            "in/part-2.csv",
            format!("id,email,name,age,signup_date,score\n{second}"),
        )
        .await;
    let (_server, api) = Launch::new(&db).workers(2).serve().await;
    let connector = api.s3_connector(&bucket.name).await;
    let pipeline = api
        .pipeline(json!({
            "name": format!("{strategy} customers"),
            "connectorId": connector,
            "source": {"prefix": "in/", "pattern": "*.csv"},
            "schema": data::schema("email"),
            "destination": {"table": "customers", "keyColumns": ["id"]},
            "loadStrategy": strategy,
            "partitions": 8
        }))
        .await;
    let run = api.start_run(&pipeline).await;
    let p = api
        .wait_terminal(&pipeline, &run, Duration::from_secs(600))
        .await;

    let want = data::expected(ROWS, strategy, true);
    assert_eq!(p["status"], "completed_with_errors", "{p}");
    assert_eq!(p["totalRows"], ROWS);
    assert_eq!(p["processedRows"], ROWS);
    assert_eq!(p["failedRows"], want.failed);
    assert_eq!(p["partitions"], 8);
    assert_eq!(p["completedPartitions"], 8);
    let details = p["partitionDetails"].as_array().expect("details");
    assert_eq!(details.len(), 8);
    let per_partition: Vec<u64> = details
        .iter()
        .map(|d| d["rows"].as_u64().expect("rows"))
        .collect();
    assert_eq!(per_partition.iter().sum::<u64>(), ROWS);
    assert!(
        per_partition.iter().all(|r| r.abs_diff(ROWS / 8) <= 1),
        "nearly equal ranges: {per_partition:?}"
    );
    let skipped = p["skippedRows"].as_u64().expect("skipped");
    let (status, run_json) = api
        .get(&format!("/api/v1/pipelines/{pipeline}/runs/{run}"))
        .await;
    assert!(status.is_success(), "{run_json}");
    let loaded = run_json["loadedRows"].as_u64().expect("loadedRows");
    assert_eq!(
        loaded + skipped + want.failed,
        ROWS,
        "processed = loaded + skipped + failed"
    );
    if strategy != "upsert" {
        assert_eq!(skipped, want.skipped, "skippedRows is exact for {strategy}");
    }

    let client = db.client().await;
    let got = table_digest(&client, "customers", COLUMNS).await;
    assert_eq!(
        got,
        expected_digest(want.rows),
        "destination contents for {strategy}"
    );
    let errors = api
        .get(&format!("/api/v1/pipelines/{pipeline}/runs/{run}/errors"))
        .await
        .1;
    // One error per bad value: a row with a bad e-mail and a bad age has two.
    let bad_values = (1..=ROWS)
        .map(data::Row::new)
        .map(|r| u64::from(r.email == "not-an-email") + u64::from(r.age == "abc"))
        .sum::<u64>();
    assert_eq!(errors["total"], bad_values);
    assert!(
        want.failed < bad_values,
        "the data has a row with two errors"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn append_loads_exactly() {
    load("append").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upsert_loads_the_last_occurrence_of_each_key() {
    load("upsert").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replace_loads_exactly() {
    load("replace").await;
}
