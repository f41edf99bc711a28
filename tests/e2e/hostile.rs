//! Issue 19, first hostile files through the real binary, PostgreSQL and the
//! S3 server: a binary file named `.csv` (NUL bytes in its first line) and
//! an empty file. Each run must reach a terminal status within one lease
//! period, with a message PostgreSQL can store.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::s3::Bucket;
use crate::support::{Api, Launch, SluiceMigrations, TestDb};

const LEASE: Duration = Duration::from_secs(10);

async fn people_pipeline(api: &Api, bucket: &str, prefix: &str) -> String {
    let connector = api.s3_connector(bucket).await;
    api.pipeline(json!({
        "name": format!("hostile {prefix}"),
        "connectorId": connector,
        "source": {"prefix": prefix},
        "schema": {"columns": [
            {"name": "id", "type": "integer"},
            {"name": "name", "type": "string"}
        ]},
        "destination": {"table": "people"},
        "loadStrategy": "append"
    }))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_binary_file_fails_its_run_within_a_lease_and_an_empty_file_completes() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    let mut binary = b"\x7fELF\x02\x01\x01\x00\x00\x00".to_vec();
    binary.extend(std::iter::repeat_n(0xffu8, 4_096));
    binary.extend(b"\n\x00\x01\x02\n");
    bucket.put("binary/a.csv", binary).await;
    bucket.put("empty/a.csv", Vec::<u8>::new()).await;
    let (_server, api) = Launch::new(&db)
        .workers(1)
        .var("SLUICE_LEASE_SECONDS", LEASE.as_secs().to_string())
        .serve()
        .await;

    let binary = people_pipeline(&api, &bucket.name, "binary/").await;
    let started = Instant::now();
    let run = api.start_run(&binary).await;
    let p = api.wait_terminal(&binary, &run, LEASE).await;
    assert!(
        started.elapsed() < LEASE,
        "terminal within one lease period"
    );
    assert_eq!(p["status"], "failed", "{p}");
    let last = p["log"]
        .as_array()
        .and_then(|l| l.last())
        .and_then(|e| e["message"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(last.contains("shares no column with the schema"), "{p}");
    assert!(!last.contains('\0'), "{last}");

    let empty = people_pipeline(&api, &bucket.name, "empty/").await;
    let run = api.start_run(&empty).await;
    let p = api.wait_terminal(&empty, &run, LEASE).await;
    assert_eq!(
        (p["status"].as_str(), p["totalRows"].as_u64()),
        (Some("completed"), Some(0)),
        "{p}"
    );
    assert_eq!(p["processedRows"], 0, "{p}");
}
