//! Issue 21, acceptance 1: a destination that refuses a row. An existing
//! table with a primary key of its own, an `append` pipeline without key
//! columns, a file repeating an id: the run must end (failed) within one
//! lease period, its log and error naming the constraint and the key, and
//! never be abandoned and claimed again forever.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::s3::Bucket;
use crate::support::{Launch, SluiceMigrations, TestDb};

const ROWS: u64 = 1_000;
/// The row that repeats an id (7, first loaded at row 7).
const REPEAT: u64 = 600;

fn people_csv() -> String {
    let mut csv = String::from("id,name\n");
    for r in 1..=ROWS {
        let id = if r == REPEAT { 7 } else { r };
        csv.push_str(&format!("{id},person {r}\n"));
    }
    csv
}

#[tokio::test(flavor = "multi_thread")]
async fn a_primary_key_refusing_a_repeated_id_fails_the_run_and_names_it() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("in/people.csv", people_csv()).await;
    let sql = db.client().await;
    sql.batch_execute("CREATE TABLE public.people (id bigint PRIMARY KEY, name text)")
        .await
        .expect("an existing table with a primary key");
    let lease = Duration::from_secs(10);
    let (server, api) = Launch::new(&db)
        .workers(2)
        .var("SLUICE_LEASE_SECONDS", lease.as_secs().to_string())
        .var("SLUICE_BATCH_ROWS", "100")
        .serve()
        .await;
    let connector = api.s3_connector(&bucket.name).await;
    let pipeline = api
        .pipeline(json!({
            "name": "people",
            "connectorId": connector,
            "source": {"prefix": "in/"},
            "schema": {"columns": [
                {"name": "id", "type": "integer"},
                {"name": "name", "type": "string"}
            ]},
            "destination": {"table": "people"},
            "loadStrategy": "append",
            "partitions": 2
        }))
        .await;
    let started = Instant::now();
    let run = api.start_run(&pipeline).await;
    let p = api.wait_terminal(&pipeline, &run, lease).await;
    assert!(
        started.elapsed() < lease,
        "terminal within one lease period"
    );
    assert_eq!(p["status"], "failed", "{p}");
    let names_it = |m: &str| m.contains("people_pkey") && m.contains("(id)=(7)");
    let log = p["log"].as_array().expect("log");
    assert!(
        log.iter()
            .any(|e| e["message"].as_str().is_some_and(names_it)),
        "the log names the constraint and the key: {p}"
    );
    let (_, run_json) = api
        .get(&format!("/api/v1/pipelines/{pipeline}/runs/{run}"))
        .await;
    assert!(
        run_json["error"].as_str().is_some_and(names_it),
        "the run's error names them too: {run_json}"
    );
    let stored: i64 = sql
        .query_one("SELECT count(*) FROM public.people", &[])
        .await
        .expect("count")
        .get(0);
    let loaded = run_json["loadedRows"].as_i64().expect("loadedRows");
    assert_eq!(stored, loaded, "the refused batch wrote nothing");
    assert!(stored < ROWS as i64, "{stored}");
    assert!(
        server.log_text().contains("people_pkey"),
        "the server's log names the constraint"
    );
}
