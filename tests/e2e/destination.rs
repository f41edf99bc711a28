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

/// One way a destination refuses: the SQL that sets it up, its table, and
/// what the run's error must name.
struct Refusal {
    what: &'static str,
    setup: &'static str,
    table: &'static str,
    /// Row 600 of the file (id 600).
    row_600: &'static str,
    names: &'static [&'static str],
}

const REFUSALS: [Refusal; 5] = [
    Refusal {
        what: "a check constraint",
        setup: "CREATE TABLE public.checked (id bigint, name text, \
                CONSTRAINT name_is_not_600 CHECK (name <> 'person 600'))",
        table: "checked",
        row_600: "600,person 600",
        names: &["check constraint", "name_is_not_600", "checked"],
    },
    Refusal {
        what: "a NOT NULL column given an empty value",
        setup: "CREATE TABLE public.named (id bigint, name text NOT NULL)",
        table: "named",
        row_600: "600,",
        names: &["not-null constraint", "name", "named"],
    },
    Refusal {
        what: "a NOT NULL column the pipeline does not fill",
        setup: "CREATE TABLE public.regioned (id bigint, name text, region text NOT NULL)",
        table: "regioned",
        row_600: "600,person 600",
        names: &["region", "regioned", "NOT NULL", "add it to the schema"],
    },
    Refusal {
        what: "a trigger raising an exception",
        setup: "CREATE TABLE public.guarded (id bigint, name text);
                CREATE FUNCTION public.no_600() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  IF NEW.name = 'person 600' THEN RAISE EXCEPTION 'person 600 is not welcome here'; END IF;
                  RETURN NEW;
                END $$;
                CREATE TRIGGER no_600 BEFORE INSERT ON public.guarded
                  FOR EACH ROW EXECUTE FUNCTION public.no_600()",
        table: "guarded",
        row_600: "600,person 600",
        names: &["trigger", "person 600 is not welcome here"],
    },
    Refusal {
        what: "a view as the destination",
        setup: "CREATE TABLE public.base (id bigint, name text);
                CREATE VIEW public.people_view AS SELECT id, name FROM public.base",
        table: "people_view",
        row_600: "600,person 600",
        names: &["people_view", "views", "must be a table"],
    },
];

/// Issue 19, "no run outlives its work": every way a destination refuses a
/// load that a retry cannot cure fails the run within one lease period, and
/// the run's error and log say what PostgreSQL refused in the user's terms.
#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_by_the_destination_fails_the_run_and_names_what_refused() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    let sql = db.client().await;
    let lease = Duration::from_secs(10);
    let (server, api) = Launch::new(&db)
        .workers(2)
        .var("SLUICE_LEASE_SECONDS", lease.as_secs().to_string())
        .var("SLUICE_BATCH_ROWS", "100")
        .serve()
        .await;
    let connector = api.s3_connector(&bucket.name).await;
    let mut runs = Vec::new();
    for (i, refusal) in REFUSALS.iter().enumerate() {
        let prefix = format!("in{i}/");
        bucket
            .put(
                &format!("{prefix}people.csv"),
                people_csv().replace("\n7,person 600", &format!("\n{}", refusal.row_600)),
            )
            .await;
        sql.batch_execute(refusal.setup)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", refusal.what));
        let pipeline = api
            .pipeline(json!({
                "name": refusal.what,
                "connectorId": connector,
                "source": {"prefix": prefix},
                "schema": {"columns": [
                    {"name": "id", "type": "integer"},
                    {"name": "name", "type": "string"}
                ]},
                "destination": {"table": refusal.table},
                "loadStrategy": "append",
                "partitions": 2
            }))
            .await;
        let run = api.start_run(&pipeline).await;
        runs.push((refusal, pipeline, run, Instant::now()));
    }
    for (refusal, pipeline, run, started) in runs {
        let p = api.wait_terminal(&pipeline, &run, lease * 2).await;
        let what = refusal.what;
        assert!(
            started.elapsed() < lease * 2,
            "{what}: terminal within its lease"
        );
        assert_eq!(p["status"], "failed", "{what}: {p}");
        let (_, r) = api
            .get(&format!("/api/v1/pipelines/{pipeline}/runs/{run}"))
            .await;
        let error = r["error"].as_str().unwrap_or_default();
        println!("{what}: {error}");
        for name in refusal.names {
            assert!(
                error.contains(name),
                "{what}: the error names {name:?}: {error}"
            );
        }
        assert!(!error.contains("database error"), "{what}: {error}");
        let log = p["log"].as_array().expect("log");
        assert!(
            log.iter().any(|e| e["message"]
                .as_str()
                .is_some_and(|m| m.contains(refusal.names[0]))),
            "{what}: the log says it too: {p}"
        );
        let count = |f: &str| r[f].as_u64().unwrap_or(u64::MAX);
        assert!(
            count("loadedRows") + count("skippedRows") + count("failedRows") <= count("totalRows"),
            "{what}: {r}"
        );
        let (_, all) = api.get(&format!("/api/v1/pipelines/{pipeline}/runs")).await;
        for item in all["items"].as_array().into_iter().flatten() {
            assert!(
                !matches!(item["status"].as_str(), Some("running" | "pending")),
                "{what}: nothing left running: {item}"
            );
        }
    }
    assert!(!server.log_text().contains("panicked"));
}
