//! The documented example shapes (`docs/openapi.json`), field by field: progress,
//! errors (JSON and CSV), retry (201, 404, 422) and poll (GET and POST).

use std::collections::BTreeSet;

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;
use serde_json::{Value, json};
use sluice_domain::role::Role;
use sluice_domain::validation::RowError;

use crate::support::{PartitionPlan, RunEnd, RunPlan, TestApi, pipeline_spec};

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

#[actix_web::test]
async fn progress_has_every_field_of_the_reference_page() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let p = api.pipeline(&c, json!({})).await;
    let run = api.run(&p, RunPlan::sample(RunEnd::Running)).await;
    api.clock.advance_ms(45_200);
    let reply = api
        .get(
            &format!("/api/v1/pipelines/{p}/runs/{run}/progress"),
            Role::Viewer,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let v = reply.json();
    assert_eq!(
        keys(&v),
        set(&[
            "status",
            "totalRows",
            "processedRows",
            "failedRows",
            "skippedRows",
            "partitions",
            "completedPartitions",
            "partitionDetails",
            "validationErrors",
            "eta",
            "durationMs",
            "loadStrategy",
            "log"
        ])
    );
    assert_eq!(v["status"], "running");
    assert_eq!(v["totalRows"], 40);
    assert_eq!(v["processedRows"], 25);
    assert_eq!(v["failedRows"], 1);
    assert_eq!(v["skippedRows"], 0);
    assert_eq!(v["partitions"], 4);
    assert_eq!(v["completedPartitions"], 2);
    assert_eq!(
        v["partitionDetails"],
        json!([
            {"index": 0, "status": "completed", "rows": 10},
            {"index": 1, "status": "completed", "rows": 10},
            {"index": 2, "status": "running", "rows": 5, "progress": 50},
            {"index": 3, "status": "pending", "rows": 0}
        ])
    );
    assert_eq!(
        v["validationErrors"],
        json!([{"row": 2, "column": "email", "value": "not-an-email", "error": "Invalid email format"}])
    );
    assert!(v["eta"].is_string() || v["eta"].is_null(), "{v}");
    assert_eq!(v["durationMs"], 45_200);
    assert_eq!(v["loadStrategy"], "upsert");
    assert_eq!(
        v["log"][0],
        json!({"stage": "extract", "message": "Read 40 rows from source", "timestamp": "2026-03-30T10:00:00Z"})
    );
}

/// A failed run whose errors exercise CSV quoting and formula neutralising.
async fn failed_run_with_tricky_errors(api: &TestApi) -> (String, String) {
    let c = api.connector("Production S3").await;
    let p = api.pipeline(&c, json!({})).await;
    let bad = vec![
        RowError::new(
            1,
            "email",
            "=HYPERLINK(\"http://x\")",
            "Invalid email format",
        ),
        RowError::new(2, "id", "+1", "Expected integer"),
        RowError::new(3, "id", "-2", "Expected integer"),
        RowError::new(4, "email", "@SUM(A1)", "Invalid email format"),
        RowError::new(5, "email", "\tcmd", "Invalid email format"),
        RowError::new(6, "email", "\rcmd", "Invalid email format"),
        RowError::new(7, "email", "a,\"b\"\nc", "Invalid email format"),
        RowError::new(8, "email", "not-an-email", "Invalid email format"),
    ];
    let run = api
        .run(
            &p,
            RunPlan {
                rows_each: 10,
                partitions: vec![
                    PartitionPlan::Commit { rows: 10, bad },
                    PartitionPlan::Commit {
                        rows: 4,
                        bad: vec![],
                    },
                ],
                end: RunEnd::Fail,
            },
        )
        .await;
    (p, run)
}

#[actix_web::test]
async fn errors_json_is_streamed_with_the_reference_shape() {
    let api = TestApi::new().await;
    let (p, run) = failed_run_with_tricky_errors(&api).await;
    let path = format!("/api/v1/pipelines/{p}/runs/{run}/errors");
    for accept in [None, Some("application/json"), Some("*/*")] {
        let mut req = TestRequest::get()
            .uri(&path)
            .insert_header(("Authorization", format!("Bearer {}", api.viewer)));
        if let Some(a) = accept {
            req = req.insert_header(("Accept", a));
        }
        let reply = api.call(req).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert!(reply.streamed, "the JSON export must be streamed");
        assert!(
            reply
                .header("content-type")
                .is_some_and(|t| t.starts_with("application/json"))
        );
        let v = reply.json();
        assert_eq!(keys(&v), set(&["runId", "total", "errors"]));
        assert_eq!(v["runId"], run.as_str());
        assert_eq!(v["total"], 8);
        let errors = v["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), 8);
        for e in errors {
            assert_eq!(keys(e), set(&["row", "column", "value", "error"]));
        }
        // JSON carries values as they were: neutralising is for spreadsheets.
        assert_eq!(
            errors[7],
            json!({"row": 8, "column": "email", "value": "not-an-email", "error": "Invalid email format"})
        );
        assert_eq!(errors[0]["value"], "=HYPERLINK(\"http://x\")");
    }
}

#[actix_web::test]
async fn errors_json_pages_with_limit_and_cursor() {
    let api = TestApi::new().await;
    let (p, run) = failed_run_with_tricky_errors(&api).await;
    let path = format!("/api/v1/pipelines/{p}/runs/{run}/errors");
    let whole = api.get(&path, Role::Viewer).await.json();
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let uri = match &cursor {
            Some(c) => format!("{path}?limit=3&cursor={c}"),
            None => format!("{path}?limit=3"),
        };
        let reply = api.get(&uri, Role::Viewer).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let v = reply.json();
        assert_eq!(keys(&v), set(&["runId", "total", "errors", "nextCursor"]));
        assert_eq!(v["total"], 8, "the total is the whole list's");
        let errors = v["errors"].as_array().expect("errors").clone();
        assert!(errors.len() <= 3);
        paged.extend(errors);
        pages += 1;
        match v["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                assert!(v["nextCursor"].is_null());
                break;
            }
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(Value::Array(paged), whole["errors"]);
    let bad = api.get(&format!("{path}?limit=0"), Role::Viewer).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.error_field(), "limit");
}

#[actix_web::test]
async fn errors_csv_is_a_streamed_download_with_formulas_neutralised() {
    let api = TestApi::new().await;
    let (p, run) = failed_run_with_tricky_errors(&api).await;
    let reply = api
        .call(
            TestRequest::get()
                .uri(&format!("/api/v1/pipelines/{p}/runs/{run}/errors"))
                .insert_header(("Authorization", format!("Bearer {}", api.viewer)))
                .insert_header(("Accept", "text/csv")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.streamed, "the CSV export must be streamed");
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        reply.header("content-disposition"),
        Some(format!(
            "attachment; filename=\"pipeline-run-{run}-errors.csv\""
        ))
    );
    assert_eq!(
        reply.text(),
        "Row,Column,Value,Error\r\n\
         1,email,\"'=HYPERLINK(\"\"http://x\"\")\",Invalid email format\r\n\
         2,id,'+1,Expected integer\r\n\
         3,id,'-2,Expected integer\r\n\
         4,email,'@SUM(A1),Invalid email format\r\n\
         5,email,'\tcmd,Invalid email format\r\n\
         6,email,\"'\rcmd\",Invalid email format\r\n\
         7,email,\"a,\"\"b\"\"\nc\",Invalid email format\r\n\
         8,email,not-an-email,Invalid email format\r\n"
    );
}

#[actix_web::test]
async fn a_large_export_stays_one_valid_document() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let p = api.pipeline(&c, json!({"partitions": 1})).await;
    let bad: Vec<RowError> = (1..=5_000)
        .map(|r| RowError::new(r, "email", "not-an-email", "Invalid email format"))
        .collect();
    let run = api
        .run(&p, RunPlan::single(5_000, bad, RunEnd::Finalize))
        .await;
    let path = format!("/api/v1/pipelines/{p}/runs/{run}/errors");
    let v = api.get(&path, Role::Viewer).await.json();
    assert_eq!(v["total"], 5_000);
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(5_000));
    let csv = api
        .call(
            TestRequest::get()
                .uri(&path)
                .insert_header(("Authorization", format!("Bearer {}", api.viewer)))
                .insert_header(("Accept", "text/csv")),
        )
        .await
        .text();
    assert_eq!(csv.lines().count(), 5_001);
}

#[actix_web::test]
async fn retry_answers_201_with_exactly_the_reference_fields() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let p = api.pipeline(&c, json!({})).await;
    let original = api.run(&p, RunPlan::sample(RunEnd::Fail)).await;
    api.clock.advance_ms(7_200_000);
    let reply = api
        .send(
            Method::POST,
            &format!("/api/v1/pipelines/{p}/runs/{original}/retry"),
            Some(&api.editor),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let v = reply.json();
    assert_eq!(
        keys(&v),
        set(&[
            "id",
            "pipelineId",
            "status",
            "loadStrategy",
            "metadata",
            "log"
        ])
    );
    assert!(
        v["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("run_") && id != original)
    );
    assert_eq!(v["pipelineId"], p.as_str());
    assert_eq!(v["status"], "pending");
    assert_eq!(v["loadStrategy"], "upsert");
    assert_eq!(
        v["metadata"],
        json!({"retryOf": original, "resumeFromRow": 25, "resumable": true})
    );
    assert_eq!(
        v["log"],
        json!([{
            "stage": "retry",
            "message": format!("Resuming from row 25 (original run: {original})"),
            "timestamp": "2026-03-30T12:00:00Z"
        }])
    );
}

#[actix_web::test]
async fn retry_of_a_replace_run_starts_over() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let p = api
        .pipeline(
            &c,
            json!({"loadStrategy": "replace", "destination": {"keyColumns": []}}),
        )
        .await;
    let original = api.run(&p, RunPlan::sample(RunEnd::Fail)).await;
    let reply = api
        .send(
            Method::POST,
            &format!("/api/v1/pipelines/{p}/runs/{original}/retry"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let v = reply.json();
    assert_eq!(v["loadStrategy"], "replace");
    assert_eq!(
        v["metadata"],
        json!({"retryOf": original, "resumeFromRow": 0, "resumable": false})
    );
    assert_eq!(v["log"][0]["stage"], "retry");
}

#[actix_web::test]
async fn retry_answers_404_and_422_as_documented() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let p = api.pipeline(&c, json!({})).await;
    let completed = api
        .run(&p, RunPlan::single(5, vec![], RunEnd::Finalize))
        .await;
    let running = api.run(&p, RunPlan::sample(RunEnd::Running)).await;
    let retry =
        |pipeline: &str, run: &str| format!("/api/v1/pipelines/{pipeline}/runs/{run}/retry");
    let missing_run = "run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM";
    let missing_pipeline = "pipe_01J9Z8Y7X6W5V4T3S2R1Q0P9NM";
    for path in [retry(&p, missing_run), retry(missing_pipeline, &completed)] {
        let reply = api.send(Method::POST, &path, Some(&api.admin), None).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.text()
        );
        assert_eq!(reply.json()["error"]["code"], "not_found");
    }
    for (run, status) in [(&completed, "completed"), (&running, "running")] {
        let reply = api
            .send(Method::POST, &retry(&p, run), Some(&api.editor), None)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.text()
        );
        let v = reply.json();
        assert_eq!(v["error"]["code"], "unprocessable_entity");
        assert_eq!(
            v["error"]["message"],
            format!(
                "run status {status} does not allow retry (must be failed or completed_with_errors)"
            )
        );
    }
}

#[actix_web::test]
async fn poll_get_lists_watched_pipelines_as_the_reference_page() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let p = api.pipeline(&c, json!({})).await;
    api.pipeline(
        &c,
        json!({"name": "Unwatched", "polling": {"enabled": false}}),
    )
    .await;
    let empty = api.get("/api/v1/pipelines/poll", Role::Viewer).await.json();
    assert_eq!(empty["total"], 1);
    assert_eq!(empty["pipelines"][0]["lastRunAt"], Value::Null);
    assert_eq!(empty["pipelines"][0]["lastRunStatus"], Value::Null);
    api.run(&p, RunPlan::single(5, vec![], RunEnd::Finalize))
        .await;
    let reply = api.get("/api/v1/pipelines/poll", Role::Viewer).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({
            "pipelines": [{
                "id": p,
                "name": "Daily Customer Import",
                "connector": "Production S3",
                "connectorType": "s3",
                "polling": pipeline_spec(&c)["polling"],
                "lastRunAt": "2026-03-30T10:00:00Z",
                "lastRunStatus": "completed"
            }],
            "total": 1
        })
    );
}

#[actix_web::test]
async fn poll_post_runs_one_cycle_and_reports_it() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    for name in ["A", "B", "C"] {
        api.pipeline(&c, json!({"name": name})).await;
    }
    api.source.put("data/customers/_READY.dat", "");
    let reply = api
        .send(
            Method::POST,
            "/api/v1/pipelines/poll",
            Some(&api.editor),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({
            "message": "Polling cycle complete: checked 3 pipelines, triggered 3 runs",
            "checked": 3,
            "triggered": 3
        })
    );
    // Same touch file again: checked, nothing new to trigger.
    let again = api
        .send(
            Method::POST,
            "/api/v1/pipelines/poll",
            Some(&api.admin),
            None,
        )
        .await
        .json();
    assert_eq!(again["triggered"], 0);
    assert_eq!(
        again["message"],
        format!(
            "Polling cycle complete: checked {} pipelines, triggered 0 runs",
            again["checked"]
        )
    );
}

#[actix_web::test]
async fn a_run_is_found_by_its_id_alone() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let p = api.pipeline(&c, json!({})).await;
    let run = api
        .run(&p, RunPlan::single(5, vec![], RunEnd::Finalize))
        .await;
    let nested = api
        .get(&format!("/api/v1/pipelines/{p}/runs/{run}"), Role::Viewer)
        .await;
    let found = api.get(&format!("/api/v1/runs/{run}"), Role::Viewer).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text());
    let (mut a, mut b) = (nested.json(), found.json());
    assert_eq!(b["pipelineId"], p.as_str());
    // Measured at two instants; everything else is the same answer.
    for v in [&mut a, &mut b] {
        v.as_object_mut().expect("object").remove("durationMs");
    }
    assert_eq!(a, b);

    let missing = api
        .get("/api/v1/runs/run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM", Role::Viewer)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let malformed = api.get("/api/v1/runs/pipe_1", Role::Viewer).await;
    assert_eq!(malformed.status, StatusCode::NOT_FOUND);
    assert_eq!(malformed.json()["error"]["code"], "not_found");
}
