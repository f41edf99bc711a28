//! Issue 5, acceptance 4: a replace run is invisible to readers until it
//! completes; a failed replace run leaves the old contents.

use std::time::Duration;

use serde_json::json;

use crate::data::{self, COLUMNS};
use crate::support::s3::Bucket;
use crate::support::sql::table_digest;
use crate::support::{Api, Launch, SluiceMigrations, TestDb};

/// Points the pipeline at another folder.
async fn switch_prefix(api: &Api, pipeline: &str, prefix: &str) {
    let (status, body) = api
        .patch(
            &format!("/api/v1/pipelines/{pipeline}"),
            json!({"source": {"prefix": prefix}}),
        )
        .await;
    assert!(status.is_success(), "{body}");
}

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
    switch_prefix(&api, &pipeline, "v2/").await;
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

/// Issue 18: tried as a new user would (a replace pipeline, a view and a
/// grant on its table, a second run), the second run completes and the view
/// answers the new rows. A swap that cannot carry the table's attachments
/// over (a materialized view created while the run loads) ends the run
/// `failed` with the reason, instead of leaving it `running`, and the table
/// stays as it was.
#[tokio::test(flavor = "multi_thread")]
async fn a_view_survives_replace_runs_and_a_refused_swap_fails_the_run() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("v1/customers.csv", data::csv(1, 3_000)).await;
    bucket
        .put("v2/customers.csv", data::csv(5_001, 6_000))
        .await;
    // Small batches, so the third run is still loading when the
    // materialized view appears.
    let (_server, api) = Launch::new(&db)
        .workers(2)
        .var("SLUICE_BATCH_ROWS", "500")
        .serve()
        .await;
    let connector = api.s3_connector(&bucket.name).await;
    let pipeline = api
        .pipeline(json!({
            "name": "snapshot", "connectorId": connector, "source": {"prefix": "v1/"},
            "schema": data::schema("string"), "destination": {"table": "customers"},
            "loadStrategy": "replace", "partitions": 2
        }))
        .await;
    let limit = Duration::from_secs(120);
    let run = api.start_run(&pipeline).await;
    assert_eq!(
        api.wait_terminal(&pipeline, &run, limit).await["status"],
        "completed_with_errors"
    );
    let sql = db.client().await;
    sql.batch_execute(
        "CREATE VIEW public.adults AS SELECT id, name FROM public.customers WHERE age >= 18;
         CREATE INDEX customers_email_idx ON public.customers (email);
         COMMENT ON TABLE public.customers IS 'nightly snapshot';",
    )
    .await
    .expect("a view, an index and a comment");

    // The second run completes: the view was carried over, not in the way.
    switch_prefix(&api, &pipeline, "v2/").await;
    let run = api.start_run(&pipeline).await;
    let done = api.wait_terminal(&pipeline, &run, limit).await;
    assert_eq!(done["status"], "completed_with_errors", "{done}");
    let in_view: i64 = sql
        .query_one("SELECT count(*) FROM public.adults WHERE id > 5000", &[])
        .await
        .expect("the view answers")
        .get(0);
    assert_eq!(in_view, 1_000 - 3, "the view shows the new rows");
    let kept: (Option<String>, i64) = {
        let r = sql
            .query_one(
                "SELECT obj_description('public.customers'::regclass, 'pg_class'), \
                 (SELECT count(*) FROM pg_indexes WHERE indexname = 'customers_email_idx')",
                &[],
            )
            .await
            .expect("catalog");
        (r.get(0), r.get(1))
    };
    assert_eq!(kept, (Some("nightly snapshot".to_owned()), 1));
    let v2 = table_digest(&sql, "customers", COLUMNS).await;

    // A materialized view appears while the third run loads: the swap
    // cannot carry it over, so the run fails, saying why.
    bucket.put("v3/customers.csv", data::csv(1, 40_000)).await;
    switch_prefix(&api, &pipeline, "v3/").await;
    let run = api.start_run(&pipeline).await;
    api.wait_until(&pipeline, &run, limit, |p| p["status"] == "running")
        .await;
    sql.batch_execute(
        "CREATE MATERIALIZED VIEW public.customer_count AS SELECT count(*) AS n FROM public.customers",
    )
    .await
    .expect("materialized view");
    let done = api.wait_terminal(&pipeline, &run, limit).await;
    assert_eq!(done["status"], "failed", "{done}");
    let log = done["log"].to_string();
    assert!(
        log.contains("materialized view public.customer_count depends on it"),
        "{log}"
    );
    assert_eq!(table_digest(&sql, "customers", COLUMNS).await, v2);
}
