//! Issue 5, acceptance 3: a run that fails mid-way is retried: committed rows
//! are skipped, the destination ends exact, and a row fixed by a schema change
//! between the runs is loaded by the retry.

use std::time::Duration;

use serde_json::json;

use crate::data::{self, COLUMNS};
use crate::support::s3::Bucket;
use crate::support::sql::{expected_digest, table_digest};
use crate::support::{Launch, SluiceMigrations, TestDb};

const ROWS: u64 = 40_000;

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_upsert_resumes_and_loads_rows_fixed_by_a_schema_change() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("in/customers.csv", data::csv(1, ROWS)).await;
    let (_server, api) = Launch::new(&db)
        .workers(2)
        .var("SLUICE_BATCH_ROWS", "2000")
        .serve()
        .await;
    let connector = api.s3_connector(&bucket.name).await;
    let pipeline = api
        .pipeline(json!({
            "name": "retry",
            "connectorId": connector,
            "source": {"prefix": "in/"},
            "schema": data::schema("email"),
            "destination": {"table": "customers", "keyColumns": ["id"]},
            "loadStrategy": "upsert",
            "partitions": 4
        }))
        .await;

    // The destination starts refusing rows past 25,000: the run fails mid-way.
    let sql = db.client().await;
    sql.batch_execute(
        "CREATE TABLE public.customers (id bigint, email text, name text, age bigint, signup_date date, score numeric,
             _sluice_run_id text NOT NULL, _sluice_row bigint NOT NULL, _sluice_loaded_at timestamptz NOT NULL DEFAULT now());
         CREATE UNIQUE INDEX customers_key ON public.customers (id);
         CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN IF NEW._sluice_row > 25000 THEN RAISE EXCEPTION 'destination revoked'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON public.customers FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .await
    .expect("prepare a destination that fails");
    let first = api.start_run(&pipeline).await;
    let p = api
        .wait_terminal(&pipeline, &first, Duration::from_secs(300))
        .await;
    assert_eq!(p["status"], "failed", "{p}");
    let committed = p["processedRows"].as_u64().expect("processed");
    assert!(
        committed > 0 && committed < ROWS,
        "failed mid-way: {committed}"
    );
    assert!(
        p["log"]
            .as_array()
            .expect("log")
            .iter()
            .any(|e| e["message"]
                .as_str()
                .is_some_and(|m| m.contains("Destination error"))),
        "the log says why: {p}"
    );

    // Fix the destination, and relax the schema: bad e-mails become plain strings.
    sql.batch_execute("DROP TRIGGER refuse ON public.customers")
        .await
        .expect("drop trigger");
    let (status, body) = api
        .patch(
            &format!("/api/v1/pipelines/{pipeline}"),
            json!({"schema": data::schema("string")}),
        )
        .await;
    assert!(status.is_success(), "{body}");

    let (status, retry) = api
        .post(
            &format!("/api/v1/pipelines/{pipeline}/runs/{first}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status.as_u16(), 201, "{retry}");
    assert_eq!(retry["status"], "pending");
    assert_eq!(retry["metadata"]["retryOf"], first.as_str());
    assert_eq!(
        retry["metadata"]["resumeFromRow"], committed,
        "resumeFromRow is the committed count"
    );
    assert_eq!(retry["metadata"]["resumable"], true);
    assert_eq!(retry["log"][0]["stage"], "retry");
    assert_eq!(
        retry["log"][0]["message"],
        format!("Resuming from row {committed} (original run: {first})")
    );
    let second = retry["id"].as_str().expect("id").to_owned();
    let p = api
        .wait_terminal(&pipeline, &second, Duration::from_secs(300))
        .await;
    assert_eq!(p["processedRows"], ROWS, "{p}");
    let want = data::expected(ROWS, "upsert", false);
    assert_eq!(p["failedRows"], want.failed, "only the bad ages still fail");
    assert_eq!(p["status"], "completed_with_errors");
    let got = table_digest(&sql, "customers", COLUMNS).await;
    assert_eq!(
        got,
        expected_digest(want.rows),
        "exact contents after the retry"
    );
    let fixed = sql
        .query_one("SELECT email FROM public.customers WHERE id = 250", &[])
        .await
        .expect("row 250, whose e-mail failed in the first run");
    assert_eq!(fixed.get::<_, String>(0), "not-an-email");
}
