//! Issue 19's hostile files through the real binary, PostgreSQL and the S3
//! server: a binary file named `.csv` (NUL bytes in its first line), an
//! empty file, and a dozen more (ragged rows, an unbalanced quote at the
//! end, invalid UTF-8, a BOM, CRLF, a 10 MB field, a NUL in a field, a
//! header only, a header matching no column, truncated gzip, JSON Lines
//! with non-object lines and a 1 MB line). Each run must reach a terminal
//! status within one lease period, with a message PostgreSQL can store and
//! every row accounted for.

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

/// What a hostile file must end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Completed, every row loaded.
    Completed,
    /// Completed with errors: this many rows failed, the rest loaded.
    WithErrors(u64),
    /// The run failed, with a log message containing this text.
    Failed(&'static str),
}

/// One hostile file: where it goes, its bytes, its format and its outcome.
struct Hostile {
    name: &'static str,
    file: &'static str,
    format: &'static str,
    bytes: Vec<u8>,
    outcome: Outcome,
    /// The `name` values the table must hold afterwards (in any order).
    names: Vec<String>,
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip into memory");
    e.finish().expect("gzip into memory")
}

fn names(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

fn hostile_files() -> Vec<Hostile> {
    let big = "x".repeat(10 * 1024 * 1024);
    let long = "y".repeat(1024 * 1024);
    let many: String = (1..=2_000).map(|i| format!("{i},n{i}\n")).collect();
    let mut truncated = gzip(format!("id,name\n{many}").as_bytes());
    truncated.truncate(truncated.len() / 2);
    vec![
        Hostile {
            name: "ragged",
            file: "a.csv",
            format: "csv",
            bytes: b"id,name\n1,a\n2\n3,c,extra\n4,d\n".to_vec(),
            outcome: Outcome::WithErrors(2),
            names: names(&["a", "d"]),
        },
        Hostile {
            name: "quote",
            file: "a.csv",
            format: "csv",
            bytes: b"id,name\n1,a\n2,\"b\n".to_vec(),
            outcome: Outcome::WithErrors(1),
            names: names(&["a"]),
        },
        Hostile {
            name: "utf8",
            file: "a.csv",
            format: "csv",
            bytes: b"id,name\n1,a\xff\xfeb\n2,c\n".to_vec(),
            outcome: Outcome::WithErrors(1),
            names: names(&["c"]),
        },
        Hostile {
            name: "bom",
            file: "a.csv",
            format: "csv",
            bytes: b"\xef\xbb\xbfid,name\n1,a\n2,b\n".to_vec(),
            outcome: Outcome::Completed,
            names: names(&["a", "b"]),
        },
        Hostile {
            name: "crlf",
            file: "a.csv",
            format: "csv",
            bytes: b"id,name\r\n1,a\r\n2,b\r\n".to_vec(),
            outcome: Outcome::Completed,
            names: names(&["a", "b"]),
        },
        Hostile {
            name: "bigfield",
            file: "a.csv",
            format: "csv",
            bytes: format!("id,name\n1,{big}\n2,b\n").into_bytes(),
            outcome: Outcome::WithErrors(1),
            names: names(&["b"]),
        },
        Hostile {
            name: "nul",
            file: "a.csv",
            format: "csv",
            bytes: b"id,name\n1,a\x00b\n2,c\n".to_vec(),
            outcome: Outcome::WithErrors(1),
            names: names(&["c"]),
        },
        Hostile {
            name: "headeronly",
            file: "a.csv",
            format: "csv",
            bytes: b"id,name\n".to_vec(),
            outcome: Outcome::Completed,
            names: Vec::new(),
        },
        Hostile {
            name: "nocolumn",
            file: "a.csv",
            format: "csv",
            bytes: b"foo,bar\n1,2\n".to_vec(),
            outcome: Outcome::Failed("shares no column with the schema"),
            names: Vec::new(),
        },
        Hostile {
            name: "truncgz",
            file: "a.csv.gz",
            format: "csv",
            bytes: truncated,
            outcome: Outcome::Failed("a.csv.gz"),
            names: Vec::new(),
        },
        Hostile {
            name: "jsonarray",
            file: "a.jsonl",
            format: "jsonl",
            bytes: b"{\"id\":1,\"name\":\"a\"}\n[1,2]\n\"text\"\n{\"id\":4,\"name\":\"d\"}\n"
                .to_vec(),
            outcome: Outcome::WithErrors(2),
            names: names(&["a", "d"]),
        },
        Hostile {
            name: "jsonlong",
            file: "a.jsonl",
            format: "jsonl",
            bytes: format!("{{\"id\":1,\"name\":\"{long}\"}}\n{{\"id\":2,\"name\":\"b\"}}\n")
                .into_bytes(),
            outcome: Outcome::Completed,
            names: vec![long.clone(), "b".to_owned()],
        },
    ]
}

/// Issue 19's hostile files, each through a real run: every one ends in
/// the status a user would expect, with every row accounted for
/// (`processedRows = totalRows = loaded + skipped + failed`), one error per
/// failed row naming its row and saying what is wrong, the table holding
/// exactly the good rows, and the server healthy afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_files_end_in_a_terminal_status_with_every_row_accounted_for() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    let cases = hostile_files();
    for case in &cases {
        bucket
            .put(&format!("{}/{}", case.name, case.file), case.bytes.clone())
            .await;
    }
    let (_server, api) = Launch::new(&db)
        .workers(2)
        .var("SLUICE_LEASE_SECONDS", LEASE.as_secs().to_string())
        .serve()
        .await;
    let connector = api.s3_connector(&bucket.name).await;
    let mut started = Vec::new();
    for case in &cases {
        let pipeline = api
            .pipeline(json!({
                "name": format!("hostile {}", case.name),
                "connectorId": connector,
                "source": {"prefix": format!("{}/", case.name), "format": case.format},
                "schema": {"columns": [
                    {"name": "id", "type": "integer"},
                    {"name": "name", "type": "string"}
                ]},
                "destination": {"table": format!("hostile_{}", case.name)},
                "loadStrategy": "append"
            }))
            .await;
        let run = api.start_run(&pipeline).await;
        started.push((pipeline, run));
    }
    let client = db.client().await;
    for (case, (pipeline, run)) in cases.iter().zip(&started) {
        let what = case.name;
        let p = api.wait_terminal(pipeline, run, 6 * LEASE).await;
        let (_, r) = api.get(&format!("/api/v1/runs/{run}")).await;
        let count = |v: &serde_json::Value, f: &str| v[f].as_u64().unwrap_or(u64::MAX);
        let log: Vec<&str> = p["log"]
            .as_array()
            .map(|l| l.iter().filter_map(|e| e["message"].as_str()).collect())
            .unwrap_or_default();
        match case.outcome {
            Outcome::Failed(text) => {
                assert_eq!(p["status"], "failed", "{what}: {p}");
                assert!(
                    log.iter().any(|m| m.contains(text)),
                    "{what}: no log line with {text:?}: {log:?}"
                );
                assert!(log.iter().all(|m| !m.contains('\0')), "{what}: {log:?}");
                continue;
            }
            Outcome::Completed => assert_eq!(p["status"], "completed", "{what}: {p}"),
            Outcome::WithErrors(_) => {
                assert_eq!(p["status"], "completed_with_errors", "{what}: {p}");
            }
        }
        let failed = match case.outcome {
            Outcome::WithErrors(n) => n,
            _ => 0,
        };
        let total = count(&r, "totalRows");
        assert_eq!(count(&r, "processedRows"), total, "{what}: {r}");
        assert_eq!(
            count(&r, "loadedRows") + count(&r, "skippedRows") + count(&r, "failedRows"),
            total,
            "{what}: {r}"
        );
        assert_eq!(count(&r, "failedRows"), failed, "{what}: {r}");
        assert_eq!(
            count(&r, "loadedRows"),
            case.names.len() as u64,
            "{what}: {r}"
        );

        let (status, errors) = api
            .get(&format!("/api/v1/pipelines/{pipeline}/runs/{run}/errors"))
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{what}: {errors}");
        assert_eq!(errors["total"].as_u64(), Some(failed), "{what}: {errors}");
        let errors = errors["errors"].as_array().cloned().unwrap_or_default();
        assert_eq!(errors.len() as u64, failed, "{what}: {errors:?}");
        for e in &errors {
            assert!(
                e["row"]
                    .as_u64()
                    .is_some_and(|row| row >= 1 && row <= total),
                "{what}: {e}"
            );
            assert!(
                e["error"].as_str().is_some_and(|m| !m.trim().is_empty()),
                "{what}: {e}"
            );
            let value = e["value"].as_str().unwrap_or_default();
            assert!(
                !value.contains('\0') && value.len() <= 64 * 1024,
                "{what}: {e}"
            );
            if matches!(
                e["error"].as_str(),
                Some("Unbalanced quote" | "Record too long")
            ) {
                // A record that could not be decoded shows its first bytes.
                assert!(
                    !value.is_empty() && value.chars().count() <= 200,
                    "{what}: {e}"
                );
            }
            if what == "quote" {
                assert!(
                    value.starts_with("2,\"b"),
                    "{what}: the record's first bytes: {e}"
                );
            }
        }

        let rows = client
            .query(&format!("SELECT name FROM public.hostile_{what}"), &[])
            .await
            .unwrap_or_else(|e| panic!("{what}: read the table: {e}"));
        let mut got: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
        let mut want = case.names.clone();
        got.sort();
        want.sort();
        assert!(
            got == want,
            "{what}: the table holds {} rows, not the {} expected",
            got.len(),
            want.len()
        );
    }
    let health = reqwest::get(format!("{}/healthz", api.base))
        .await
        .expect("healthz");
    assert_eq!(health.status(), reqwest::StatusCode::OK);
}
