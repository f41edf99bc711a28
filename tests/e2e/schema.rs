//! Issue 16: schema inference from sample files, mapping by `source`, and
//! the `schemaDrift` policies, against the real server, PostgreSQL and the
//! S3 server.

use std::io::Write;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::api::Api;
use crate::support::s3::Bucket;
use crate::support::{Launch, SluiceMigrations, TestDb};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip into memory");
    e.finish().expect("gzip into memory")
}

/// Rows of ids, amounts with decimals, ISO dates, a mixed column, e-mails.
fn sample_rows(first: u64, n: u64) -> Vec<[String; 5]> {
    (first..first + n)
        .map(|i| {
            [
                i.to_string(),
                format!("{}.{:02}", i * 3, i % 100),
                format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
                if i % 7 == 0 {
                    "n/a".to_owned()
                } else {
                    i.to_string()
                },
                format!("user{i}@example.com"),
            ]
        })
        .collect()
}

fn csv_of(rows: &[[String; 5]], header: bool) -> String {
    let mut s = String::new();
    if header {
        s.push_str("id,amount,day,mixed,email\n");
    }
    for r in rows {
        s.push_str(&r.join(","));
        s.push('\n');
    }
    s
}

fn jsonl_of(rows: &[[String; 5]]) -> String {
    rows.iter()
        .map(|r| {
            // Written by hand: members in this order (a `json!` map sorts them).
            format!(
                "{{\"id\": {}, \"amount\": {}, \"day\": \"{}\", \"mixed\": \"{}\", \"email\": \"{}\"}}\n",
                r[0], r[1], r[2], r[3], r[4]
            )
        })
        .collect()
}

async fn infer(api: &Api, connector: &str, body: Value) -> Value {
    let (status, answer) = api
        .post(&format!("/api/v1/connectors/{connector}/infer"), body)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

fn types(answer: &Value) -> Vec<(String, String, bool)> {
    answer["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_owned(),
                c["type"].as_str().expect("type").to_owned(),
                c["required"].as_bool().expect("required"),
            )
        })
        .collect()
}

/// Creates the proposed pipeline exactly as answered, runs it, and checks
/// that it loaded every sampled row without a reject.
async fn run_proposal(api: &Api, answer: &Value, rows: u64) -> String {
    let pipeline = api.pipeline(answer["pipeline"].clone()).await;
    let run = api.start_run(&pipeline).await;
    let p = api
        .wait_terminal(&pipeline, &run, Duration::from_secs(120))
        .await;
    assert_eq!(p["status"], "completed", "{p}");
    assert_eq!(p["failedRows"], 0, "{p}");
    assert_eq!(p["processedRows"], rows, "{p}");
    pipeline
}

/// Acceptance 1: CSV with and without a header, JSON Lines and gzip samples
/// propose the expected types; the proposed pipelines, created as answered,
/// load their samples with zero rejects.
#[tokio::test]
async fn infer_proposes_types_for_csv_jsonl_and_gzip_and_the_proposal_loads() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    // Two files per source: the type must hold across both.
    let (a, b) = (sample_rows(1, 300), sample_rows(301, 200));
    bucket.put("header/a.csv", csv_of(&a, true)).await;
    bucket.put("header/b.csv", csv_of(&b, true)).await;
    bucket.put("noheader/a.csv", csv_of(&a, false)).await;
    bucket.put("jsonl/a.jsonl", jsonl_of(&a)).await;
    bucket.put("jsonl/b.jsonl", jsonl_of(&b)).await;
    bucket
        .put("gzip/a.csv.gz", gzip(csv_of(&a, true).as_bytes()))
        .await;
    let (_server, api) = Launch::new(&db).serve().await;
    let connector = api.s3_connector(&bucket.name).await;
    let expected = |names: [&str; 5]| -> Vec<(String, String, bool)> {
        names
            .iter()
            .zip(["integer", "number", "date", "string", "email"])
            .map(|(n, t)| ((*n).to_owned(), t.to_owned(), true))
            .collect()
    };
    let names = ["id", "amount", "day", "mixed", "email"];

    let header = infer(
        &api,
        &connector,
        json!({"prefix": "header/", "pattern": "*.csv"}),
    )
    .await;
    assert_eq!(types(&header), expected(names), "{header}");
    assert_eq!(header["rowsSampled"], 500);
    assert_eq!(
        header["filesSampled"],
        json!(["header/a.csv", "header/b.csv"])
    );
    assert_eq!(
        header["warnings"].as_array().map(Vec::len),
        Some(1),
        "{header}"
    );
    assert!(
        header["warnings"][0]
            .as_str()
            .expect("warning")
            .contains("integer")
    );
    let mixed = &header["columns"][3];
    assert_eq!(mixed["closest"]["type"], "integer", "{mixed}");
    assert_eq!(
        header["columns"][0]["samples"].as_array().map(Vec::len),
        Some(5)
    );
    assert_eq!(header["columns"][0]["fitShare"], 1.0);
    assert!(
        header["createTable"]
            .as_str()
            .expect("sql")
            .starts_with(
                "CREATE TABLE IF NOT EXISTS \"public\".\"header\" (\"id\" bigint, \"amount\" numeric, \"day\" date, \"mixed\" text, \"email\" text"
            ),
        "{header}"
    );
    run_proposal(&api, &header, 500).await;

    let noheader = infer(
        &api,
        &connector,
        json!({"prefix": "noheader/", "csv": {"header": false}}),
    )
    .await;
    assert_eq!(
        types(&noheader),
        expected(["column_1", "column_2", "column_3", "column_4", "column_5"])
    );
    run_proposal(&api, &noheader, 300).await;

    let jsonl = infer(
        &api,
        &connector,
        json!({"prefix": "jsonl/", "format": "jsonl"}),
    )
    .await;
    assert_eq!(types(&jsonl), expected(names), "{jsonl}");
    run_proposal(&api, &jsonl, 500).await;

    let gz = infer(&api, &connector, json!({"prefix": "gzip/"})).await;
    assert_eq!(types(&gz), expected(names), "{gz}");
    let pipeline = run_proposal(&api, &gz, 300).await;
    assert!(!pipeline.is_empty());

    // Limits: rows and files bound the sample; bad limits and a viewer are refused.
    let one = infer(
        &api,
        &connector,
        json!({"prefix": "header/", "rows": 10, "files": 1}),
    )
    .await;
    assert_eq!(one["rowsSampled"], 10);
    assert_eq!(one["filesMatched"], 2);
    assert_eq!(one["filesSampled"].as_array().map(Vec::len), Some(1));
    let (status, body) = api
        .post(
            &format!("/api/v1/connectors/{connector}/infer"),
            json!({"prefix": "header/", "rows": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "rows");
    let (status, body) = api
        .post(
            "/api/v1/api-keys",
            json!({"name": "viewer", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let viewer = api.with_key(body["key"].as_str().expect("key"));
    let (status, _) = viewer
        .post(
            &format!("/api/v1/connectors/{connector}/infer"),
            json!({"rows": "not even a number"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the role before the input");
    let (status, body) = api
        .post(
            &format!("/api/v1/connectors/{connector}/infer"),
            json!({"prefix": "nothing-here/"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

/// Acceptance 4: header names with spaces, capitals, accents and SQL
/// keywords map to valid quoted identifiers, and the mapping round-trips
/// through `source`: the proposed pipeline reads each header into its column.
#[tokio::test]
async fn infer_maps_awkward_headers_to_identifiers_that_round_trip_through_source() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket
        .put(
            "names/people.csv",
            "Customer ID,Full Name,Café Crème,Order,SELECT,E-Mail Adresse,Größe\n\
             1,Ann Lee,oui,3,x,ann@example.com,170\n\
             2,Bob Ray,non,4,y,bob@example.com,182\n",
        )
        .await;
    let (_server, api) = Launch::new(&db).serve().await;
    let connector = api.s3_connector(&bucket.name).await;
    let answer = infer(&api, &connector, json!({"prefix": "names/"})).await;
    let mapping: Vec<(String, String)> = answer["mapping"]
        .as_array()
        .expect("mapping")
        .iter()
        .map(|m| {
            (
                m["header"].as_str().expect("header").to_owned(),
                m["name"].as_str().expect("name").to_owned(),
            )
        })
        .collect();
    let want = [
        ("Customer ID", "customer_id"),
        ("Full Name", "full_name"),
        ("Café Crème", "cafe_creme"),
        ("Order", "order"),
        ("SELECT", "select"),
        ("E-Mail Adresse", "e_mail_adresse"),
        ("Größe", "grosse"),
    ];
    assert_eq!(
        mapping,
        want.map(|(h, n)| (h.to_owned(), n.to_owned())).to_vec()
    );
    for (i, (header, _)) in want.iter().enumerate() {
        assert_eq!(
            answer["pipeline"]["schema"]["columns"][i]["source"],
            *header
        );
    }
    assert!(
        answer["createTable"]
            .as_str()
            .expect("sql")
            .contains("\"order\" bigint, \"select\" text"),
        "{answer}"
    );
    run_proposal(&api, &answer, 2).await;
    let sql = db.client().await;
    let rows = sql
        .query(
            "SELECT customer_id, full_name, cafe_creme, \"order\", \"select\", e_mail_adresse, grosse \
             FROM public.names ORDER BY customer_id",
            &[],
        )
        .await
        .expect("read the table");
    let got: Vec<(i64, String, String, i64, String, String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                1,
                "Ann Lee".into(),
                "oui".into(),
                3,
                "x".into(),
                "ann@example.com".into(),
                170
            ),
            (
                2,
                "Bob Ray".into(),
                "non".into(),
                4,
                "y".into(),
                "bob@example.com".into(),
                182
            ),
        ]
    );
}

/// Two files: the second adds `email` and drops `age`.
async fn drifting(bucket: &Bucket) {
    bucket
        .put("drift/a.csv", "id,name,age\n1,ann,30\n2,bob,40\n")
        .await;
    bucket
        .put(
            "drift/b.csv",
            "id,name,email\n3,cy,cy@example.com\n4,di,di@example.com\n",
        )
        .await;
}

fn drift_pipeline(connector: &str, table: &str, policy: Option<&str>) -> Value {
    let mut spec = json!({
        "name": format!("drift {table}"),
        "connectorId": connector,
        "source": {"prefix": "drift/", "pattern": "*.csv"},
        "schema": {"columns": [
            {"name": "id", "type": "integer", "required": true},
            {"name": "name", "type": "string"},
            {"name": "age", "type": "integer"}
        ]},
        "destination": {"table": table},
        "loadStrategy": "append",
        "partitions": 2
    });
    if let Some(p) = policy {
        spec["schemaDrift"] = json!(p);
    }
    spec
}

fn log_messages(progress: &Value) -> Vec<String> {
    progress["log"]
        .as_array()
        .expect("log")
        .iter()
        .map(|e| e["message"].as_str().expect("message").to_owned())
        .collect()
}

/// Acceptance 3 for `fail` and `ignore`: `fail` fails naming both columns
/// before loading anything, and a retry after a schema fix loads everything;
/// `ignore` loads and logs.
#[tokio::test]
async fn drift_fail_names_both_columns_then_retry_after_a_fix_and_ignore_loads_and_logs() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    drifting(&bucket).await;
    let (_server, api) = Launch::new(&db).serve().await;
    let connector = api.s3_connector(&bucket.name).await;
    let sql = db.client().await;

    let failing = api
        .pipeline(drift_pipeline(&connector, "drift_fail", Some("fail")))
        .await;
    let (status, dry) = api
        .post(&format!("/api/v1/pipelines/{failing}/dry-run"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert!(
        dry["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("drift/b.csv") && w.ends_with("a run would fail")),
        "{dry}"
    );
    let run = api.start_run(&failing).await;
    let p = api
        .wait_terminal(&failing, &run, Duration::from_secs(60))
        .await;
    assert_eq!(p["status"], "failed", "{p}");
    let last = log_messages(&p).pop().expect("a log entry");
    assert!(
        last.starts_with(
            "Schema drift in drift/b.csv: its header adds email not in the schema and lacks schema column age"
        ),
        "{last}"
    );
    let table = sql
        .query_one("SELECT to_regclass('public.drift_fail') IS NULL", &[])
        .await
        .expect("query");
    assert!(table.get::<_, bool>(0), "nothing was loaded, no table made");

    // The fix: the schema takes the new column, the policy tolerates the
    // files that lack one; the retry loads both files.
    let (status, body) = api
        .patch(
            &format!("/api/v1/pipelines/{failing}"),
            json!({"schemaDrift": "ignore", "schema": {"columns": [
                {"name": "id", "type": "integer", "required": true},
                {"name": "name", "type": "string"},
                {"name": "age", "type": "integer"},
                {"name": "email", "type": "email"}
            ]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.get("schemaDrift").is_none(),
        "the default is not written: {body}"
    );
    let (status, retry) = api
        .post(
            &format!("/api/v1/pipelines/{failing}/runs/{run}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{retry}");
    let retry = retry["run"]["id"]
        .as_str()
        .or(retry["id"].as_str())
        .expect("retry id")
        .to_owned();
    let p = api
        .wait_terminal(&failing, &retry, Duration::from_secs(60))
        .await;
    assert_eq!(p["status"], "completed", "{p}");
    assert_eq!(p["processedRows"], 4);
    let rows = sql
        .query(
            "SELECT id, age, email FROM public.drift_fail ORDER BY id",
            &[],
        )
        .await
        .expect("read");
    let got: Vec<(i64, Option<i64>, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        [
            (1, Some(30), None),
            (2, Some(40), None),
            (3, None, Some("cy@example.com".into())),
            (4, None, Some("di@example.com".into())),
        ]
    );

    // ignore (the default): loads what the schema names, logs both columns.
    let ignoring = api
        .pipeline(drift_pipeline(&connector, "drift_ignore", None))
        .await;
    let run = api.start_run(&ignoring).await;
    let p = api
        .wait_terminal(&ignoring, &run, Duration::from_secs(60))
        .await;
    assert_eq!(p["status"], "completed", "{p}");
    assert_eq!(p["failedRows"], 0);
    let log = log_messages(&p);
    assert!(
        log.iter()
            .any(|m| m == "File drift/b.csv has no column age in its header"),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|m| m == "File drift/b.csv has columns not in the schema, not loaded: email"),
        "{log:?}"
    );
    let n: i64 = sql
        .query_one(
            "SELECT count(*) FROM public.drift_ignore WHERE age IS NULL",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 2, "the second file's rows have no age");
    let drift_entries = log
        .iter()
        .zip(p["log"].as_array().expect("log"))
        .filter(|(_, e)| e["stage"] == "drift")
        .count();
    assert_eq!(drift_entries, 2, "{p}");

    // Every drift event is counted in /metrics: the failure (1), the
    // retry's two files each lacking a column (2), the ignoring run (2).
    let metrics = api
        .raw_get("/metrics")
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("sluice_schema_drift_events 5\n"),
        "{metrics}"
    );
}

/// Acceptance 3 for `rescue` and `evolve`, over the same two files (the
/// second adds `email` and lacks `age`): `rescue` keeps the added values in
/// `_sluice_rescued` (jsonb) for exactly the second file's rows, and JSON
/// Lines members no column reads likewise; `evolve` adds `email` to the
/// pipeline's stored schema and to the table and loads it, and a later file
/// adding another column gets it added to the existing table.
#[tokio::test]
async fn drift_rescue_keeps_added_values_and_evolve_adds_the_columns() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    drifting(&bucket).await;
    let (_server, api) = Launch::new(&db).serve().await;
    let connector = api.s3_connector(&bucket.name).await;
    let sql = db.client().await;

    let rescuing = api
        .pipeline(drift_pipeline(&connector, "drift_rescue", Some("rescue")))
        .await;
    let run = api.start_run(&rescuing).await;
    let p = api
        .wait_terminal(&rescuing, &run, Duration::from_secs(60))
        .await;
    assert_eq!(p["status"], "completed", "{p}");
    assert_eq!(
        (p["processedRows"].as_u64(), p["failedRows"].as_u64()),
        (Some(4), Some(0))
    );
    let log = log_messages(&p);
    assert!(
        log.iter().any(|m| m
            == "File drift/b.csv has columns not in the schema, kept per row in _sluice_rescued: email"),
        "{log:?}"
    );
    let kind: String = sql
        .query_one(
            "SELECT atttypid::regtype::text FROM pg_attribute \
             WHERE attrelid = 'public.drift_rescue'::regclass AND attname = '_sluice_rescued'",
            &[],
        )
        .await
        .expect("the rescue column exists")
        .get(0);
    assert_eq!(kind, "jsonb");
    let rows = sql
        .query(
            "SELECT id, age, _sluice_rescued::text FROM public.drift_rescue ORDER BY id",
            &[],
        )
        .await
        .expect("read");
    let got: Vec<(i64, Option<i64>, Option<Value>)> = rows
        .iter()
        .map(|r| {
            let rescued: Option<String> = r.get(2);
            let rescued = rescued.map(|t| serde_json::from_str(&t).expect("json"));
            (r.get(0), r.get(1), rescued)
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, Some(30), None),
            (2, Some(40), None),
            (3, None, Some(json!({"email": "cy@example.com"}))),
            (4, None, Some(json!({"email": "di@example.com"}))),
        ]
    );

    // The keyed and the replacing loads carry the column through their
    // staging table and their shadow table alike.
    for (table, strategy) in [
        ("drift_rescue_upsert", "upsert"),
        ("drift_rescue_replace", "replace"),
    ] {
        let mut spec = drift_pipeline(&connector, table, Some("rescue"));
        spec["loadStrategy"] = json!(strategy);
        spec["destination"]["keyColumns"] = json!(["id"]);
        let pipeline = api.pipeline(spec).await;
        let run = api.start_run(&pipeline).await;
        let p = api
            .wait_terminal(&pipeline, &run, Duration::from_secs(60))
            .await;
        assert_eq!(p["status"], "completed", "{strategy}: {p}");
        let rows = sql
            .query(
                &format!("SELECT id, _sluice_rescued ->> 'email' FROM public.{table} ORDER BY id"),
                &[],
            )
            .await
            .expect("read");
        let got: Vec<(i64, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(
            got,
            [
                (1, None),
                (2, None),
                (3, Some("cy@example.com".into())),
                (4, Some("di@example.com".into())),
            ],
            "{strategy}"
        );
    }

    // JSON Lines: members no column reads are rescued as they are.
    bucket
        .put(
            "drift-jsonl/a.jsonl",
            "{\"id\": 1, \"name\": \"ann\", \"age\": 30}\n\
             {\"id\": 2, \"name\": \"bob\", \"tags\": [\"x\", {\"y\": 2}], \"vip\": true}\n",
        )
        .await;
    let mut spec = drift_pipeline(&connector, "drift_rescue_jsonl", Some("rescue"));
    spec["source"] = json!({"prefix": "drift-jsonl/", "pattern": "*.jsonl", "format": "jsonl"});
    let jsonl = api.pipeline(spec).await;
    let run = api.start_run(&jsonl).await;
    let p = api
        .wait_terminal(&jsonl, &run, Duration::from_secs(60))
        .await;
    assert_eq!(p["status"], "completed", "{p}");
    let rows = sql
        .query(
            "SELECT id, _sluice_rescued::text FROM public.drift_rescue_jsonl ORDER BY id",
            &[],
        )
        .await
        .expect("read");
    let got: Vec<(i64, Option<Value>)> = rows
        .iter()
        .map(|r| {
            let rescued: Option<String> = r.get(1);
            (
                r.get(0),
                rescued.map(|t| serde_json::from_str(&t).expect("json")),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, None),
            (2, Some(json!({"tags": ["x", {"y": 2}], "vip": true})))
        ]
    );

    // evolve: `email` joins the schema and the table, and loads.
    let evolving = api
        .pipeline(drift_pipeline(&connector, "drift_evolve", Some("evolve")))
        .await;
    let run = api.start_run(&evolving).await;
    let p = api
        .wait_terminal(&evolving, &run, Duration::from_secs(60))
        .await;
    assert_eq!(p["status"], "completed", "{p}");
    let log = log_messages(&p);
    assert!(
        log.iter().any(|m| m
            == "Schema evolved (schemaDrift: evolve): added nullable string column email to the \
                pipeline's schema and to table drift_evolve"),
        "{log:?}"
    );
    let (status, stored) = api.get(&format!("/api/v1/pipelines/{evolving}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stored["schema"]["columns"][3],
        json!({"name": "email", "type": "string", "required": false}),
        "{stored}"
    );
    let rows = sql
        .query(
            "SELECT id, age, email FROM public.drift_evolve ORDER BY id",
            &[],
        )
        .await
        .expect("read");
    let got: Vec<(i64, Option<i64>, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        [
            (1, Some(30), None),
            (2, Some(40), None),
            (3, None, Some("cy@example.com".into())),
            (4, None, Some("di@example.com".into())),
        ]
    );
    // A later file adds `Phone`: added to the existing table as `phone`.
    bucket
        .put(
            "drift/c.csv",
            "id,name,email,Phone\n5,ed,ed@example.com,555-0100\n",
        )
        .await;
    let run = api.start_run(&evolving).await;
    let p = api
        .wait_terminal(&evolving, &run, Duration::from_secs(60))
        .await;
    assert_eq!(p["status"], "completed", "{p}");
    assert_eq!(p["processedRows"], 1, "only the new file: {p}");
    let (_, stored) = api.get(&format!("/api/v1/pipelines/{evolving}")).await;
    assert_eq!(
        stored["schema"]["columns"][4],
        json!({"name": "phone", "source": "Phone", "type": "string", "required": false}),
        "{stored}"
    );
    let phone: Option<String> = sql
        .query_one("SELECT phone FROM public.drift_evolve WHERE id = 5", &[])
        .await
        .expect("read")
        .get(0);
    assert_eq!(phone.as_deref(), Some("555-0100"));
}

/// A figure of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a figure in kB")
}

/// Acceptance 2: inference on a 1 GiB file answers within its limits (the
/// per-file byte cap stops it, well inside the time limit) and in bounded
/// memory: the server's peak resident set grows by far less than the file.
#[tokio::test]
async fn infer_on_a_1_gib_file_answers_within_its_limits_in_bounded_memory() {
    const GIB: u64 = 1 << 30;
    let db = TestDb::migrated(&SluiceMigrations).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.csv");
    {
        let mut out = std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&path).expect("create"),
        );
        out.write_all(b"id,amount,day,email,comment\n")
            .expect("write");
        let pad = "x".repeat(40);
        let mut written = 0u64;
        let mut i = 0u64;
        while written < GIB {
            let line = format!(
                "{i},{}.{:02},2024-{:02}-{:02},user{i}@example.com,{pad}\n",
                i * 3,
                i % 100,
                i % 12 + 1,
                i % 28 + 1
            );
            out.write_all(line.as_bytes()).expect("write");
            written += line.len() as u64;
            i += 1;
        }
        out.flush().expect("flush");
    }
    let size = std::fs::metadata(&path).expect("size").len();
    assert!(size >= GIB);
    let (server, api) = Launch::new(&db)
        .var("SLUICE_LOCAL_ROOTS", dir.path().to_str().expect("utf-8"))
        .serve()
        .await;
    let (status, connector) = api
        .post(
            "/api/v1/connectors",
            json!({"name": "big files", "type": "local", "config": {"root": dir.path()}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{connector}");
    let connector = connector["id"].as_str().expect("id").to_owned();
    let before = proc_kib(server.pid(), "VmRSS");
    let started = std::time::Instant::now();
    let answer = infer(
        &api,
        &connector,
        json!({"prefix": "", "pattern": "*.csv", "rows": 1_000_000, "files": 1}),
    )
    .await;
    let took = started.elapsed();
    let peak = proc_kib(server.pid(), "VmHWM");
    eprintln!(
        "1 GiB inference: {} rows sampled in {:.1} s; server RSS before {} MiB, peak {} MiB",
        answer["rowsSampled"],
        took.as_secs_f64(),
        before / 1024,
        peak / 1024
    );
    let rows = answer["rowsSampled"].as_u64().expect("rows");
    assert!(
        rows > 0 && rows < 1_000_000,
        "the byte cap stopped it: {rows}"
    );
    let warnings = answer["warnings"].to_string();
    assert!(
        warnings.contains("Sampled only the first 64 MiB of big.csv")
            || warnings.contains("Sampling stopped after 30 s"),
        "{warnings}"
    );
    assert!(took < Duration::from_secs(45), "took {took:?}");
    assert_eq!(
        types(&answer)[..4],
        [
            ("id".to_owned(), "integer".to_owned(), true),
            ("amount".to_owned(), "number".to_owned(), true),
            ("day".to_owned(), "date".to_owned(), true),
            ("email".to_owned(), "email".to_owned(), true),
        ]
    );
    assert!(
        peak < 256 * 1024,
        "peak RSS {} MiB for a 1 GiB file",
        peak / 1024
    );
}
