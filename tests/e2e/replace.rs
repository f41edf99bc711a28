//! Issue 5, acceptance 4: a replace run is invisible to readers until it
//! completes; a failed replace run leaves the old contents.

use std::time::Duration;

use serde_json::json;

use crate::data::{self, COLUMNS};
use crate::support::s3::Bucket;
use crate::support::sql::table_digest;
use crate::support::{Launch, SluiceMigrations, TestDb};

#[tokio::test(flavor = "multi_thread")]
async fn readers_see_the_old_table_until_a_replace_run_succeeds() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("v1/customers.csv", data::csv(1, 1_000)).await;
    let (_server, api) = Launch::new(&db)
        .workers(2)
        .var("SLUICE_BATCH_ROWS", "500")
        .serve()
        .await;
    let connector = api.s3_connector(&bucket.name).await;
    let spec = |prefix: &str| {
        json!({
            "name": "snapshot", "connectorId": connector, "source": {"prefix": prefix},
            "schema": data::schema("string"), "destination": {"table": "customers"},
            "loadStrategy": "replace", "partitions": 2
        })
    };
    let pipeline = api.pipeline(spec("v1/")).await;
    let run = api.start_run(&pipeline).await;
    assert_eq!(
        api.wait_terminal(&pipeline, &run, Duration::from_secs(120))
            .await["status"],
        "completed_with_errors"
    );
    let sql = db.client().await;
    let v1 = table_digest(&sql, "customers", COLUMNS).await;
    assert_eq!(v1.0, 1_000 - 3, "rows 333, 666, 999 have a bad age");

    // A big second version: while it loads, readers still see version 1.
    bucket.put("v2/customers.csv", data::csv(1, 60_000)).await;
    let (status, _) = api
        .patch(
            &format!("/api/v1/pipelines/{pipeline}"),
            json!({"source": {"prefix": "v2/"}}),
        )
        .await;
    assert!(status.is_success());
    let run = api.start_run(&pipeline).await;
    let mut seen_loading = 0;
    loop {
        // Read the table first: if the run is still loading afterwards, the
        // read certainly happened while it was loading.
        let during = table_digest(&sql, "customers", COLUMNS).await;
        let p = api.progress(&pipeline, &run).await;
        let status = p["status"].as_str().expect("status").to_owned();
        if status == "running" && p["processedRows"].as_u64().unwrap_or(0) > 0 {
            seen_loading += 1;
            assert_eq!(
                during, v1,
                "a reader sees the old contents while the replace run loads"
            );
        }
        if status != "running" && status != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        seen_loading > 0,
        "the table was read while the run was loading"
    );
    let v2 = table_digest(&sql, "customers", COLUMNS).await;
    assert_eq!(
        v2.0,
        60_000 - 60_000 / 333,
        "after success, only the new contents"
    );

    // A third version fails (error threshold): version 2 stays.
    let (status, _) = api
        .patch(
            &format!("/api/v1/pipelines/{pipeline}"),
            json!({"maxErrors": 0, "source": {"prefix": "v1/"}}),
        )
        .await;
    assert!(status.is_success());
    let run = api.start_run(&pipeline).await;
    assert_eq!(
        api.wait_terminal(&pipeline, &run, Duration::from_secs(120))
            .await["status"],
        "failed"
    );
    assert_eq!(
        table_digest(&sql, "customers", COLUMNS).await,
        v2,
        "a failed replace run leaves the old contents"
    );
}
