//! Issue 6, acceptance 1–3, black-box: every endpoint of the real binary over
//! HTTP, the documented shapes, the role matrix, and no secret in any
//! connector response.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::data;
use crate::support::s3::Bucket;
use crate::support::{Api, Launch, SluiceMigrations, TestDb};

const SECRET: &str = "test-secret-value";

/// A pipeline over `bucket/in/` whose runs fail (maxErrors 0, invalid rows).
/// One partition, so the run fails at the file's first invalid row (row 250,
/// a bad e-mail): with several, the partition that commits an error first
/// fails the run, and which one that is depends on timing.
async fn failing_pipeline(api: &Api, connector: &str, table: &str) -> String {
    api.pipeline(json!({
        "name": format!("pipeline {table}"),
        "connectorId": connector,
        "source": {"prefix": "in/", "pattern": "*.csv"},
        "schema": data::schema("email"),
        "destination": {"table": table, "keyColumns": ["id"]},
        "loadStrategy": "upsert",
        "partitions": 1,
        "maxErrors": 0,
        "polling": {"enabled": true, "intervalMinutes": 15, "touchFile": "_READY.dat", "deleteAfterProcess": false}
    }))
    .await
}

async fn key(api: &Api, role: &str) -> (String, String) {
    let (status, body) = api
        .post(
            "/api/v1/api-keys",
            json!({"name": format!("{role} key"), "role": role}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_str().expect("id").to_owned(),
        body["key"].as_str().expect("secret shown once").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_answers_with_the_documented_shapes() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("in/customers.csv", data::csv(1, 1_000)).await;
    let (_server, api) = Launch::new(&db).serve().await;

    // Health, metrics, spec: no key needed.
    for path in ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"] {
        let r = api.raw_get(path).await.expect("request");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let spec: Value = api
        .raw_get("/api/v1/openapi.json")
        .await
        .expect("spec")
        .json()
        .await
        .expect("json");
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    assert!(spec["paths"]["/api/v1/pipelines/{id}/runs/{runId}/progress"].is_object());

    // API keys.
    let (viewer_id, viewer) = key(&api, "viewer").await;
    let (status, keys) = api.get("/api/v1/api-keys").await;
    assert_eq!(status, StatusCode::OK);
    assert!(keys["items"].as_array().is_some_and(|k| k.len() >= 2));
    assert!(
        !keys.to_string().contains(&viewer),
        "secrets are shown only once"
    );
    assert_eq!(
        api.with_key(&viewer).get("/api/v1/connectors").await.0,
        StatusCode::OK
    );
    assert_eq!(
        api.delete(&format!("/api/v1/api-keys/{viewer_id}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.with_key(&viewer).get("/api/v1/connectors").await.0,
        StatusCode::UNAUTHORIZED,
        "revoked at once"
    );

    // Connectors.
    let connector = api.s3_connector(&bucket.name).await;
    let (status, c) = api.get(&format!("/api/v1/connectors/{connector}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c["type"], "s3");
    assert_eq!(c["config"]["bucket"], bucket.name.as_str());
    let (status, tested) = api
        .post(&format!("/api/v1/connectors/{connector}/test"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["ok"], true, "{tested}");
    let (status, patched) = api
        .patch(
            &format!("/api/v1/connectors/{connector}"),
            json!({"name": "Production S3"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Production S3");
    let (status, list) = api.get("/api/v1/connectors?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let spare = api.s3_connector(&bucket.name).await;
    assert_eq!(
        api.delete(&format!("/api/v1/connectors/{spare}")).await.0,
        StatusCode::NO_CONTENT
    );

    // Pipelines, pause and resume.
    let pipeline = failing_pipeline(&api, &connector, "customers").await;
    let (status, p) = api.get(&format!("/api/v1/pipelines/{pipeline}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(p["loadStrategy"], "upsert");
    assert_eq!(p["status"], "active");
    let (_, paused) = api
        .patch(
            &format!("/api/v1/pipelines/{pipeline}"),
            json!({"status": "paused"}),
        )
        .await;
    assert_eq!(paused["status"], "paused");
    assert_eq!(
        api.post(&format!("/api/v1/pipelines/{pipeline}/runs"), json!({}))
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (_, resumed) = api
        .patch(
            &format!("/api/v1/pipelines/{pipeline}"),
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(resumed["status"], "active");
    assert_eq!(
        api.get("/api/v1/pipelines").await.1["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // A run that fails on its first invalid row (maxErrors 0).
    let run = api.start_run(&pipeline).await;
    let (status, r) = api
        .get(&format!("/api/v1/pipelines/{pipeline}/runs/{run}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["pipelineId"], pipeline.as_str());
    let p = api
        .wait_terminal(&pipeline, &run, Duration::from_secs(60))
        .await;
    assert_eq!(p["status"], "failed", "{p}");
    for field in [
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
        "log",
    ] {
        assert!(p.get(field).is_some(), "progress has {field}: {p}");
    }
    assert_eq!(p["eta"], Value::Null);
    assert_eq!(p["totalRows"], 1000);
    assert_eq!(p["loadStrategy"], "upsert");
    let first_error = &p["validationErrors"][0];
    assert_eq!(first_error["column"], "email");
    assert_eq!(first_error["value"], "not-an-email");
    assert_eq!(first_error["error"], "Invalid email format");
    assert!(p["log"].as_array().is_some_and(|l| l.iter().any(|e| {
        e["stage"] == "extract"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Read 1000 rows from source"))
    })));

    // A dry run reads the same 1000 rows and finds the same invalid ones
    // (every 250th e-mail, every 333rd age), without starting a run.
    let (status, dry) = api
        .post(&format!("/api/v1/pipelines/{pipeline}/dry-run"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry["rowsChecked"], 1000);
    assert_eq!(dry["failedRows"], 7);
    assert_eq!(dry["validRows"], 993);
    assert_eq!(dry["complete"], true);
    assert_eq!(dry["filesMatched"], dry["filesRead"]);
    assert_eq!(dry["errors"][0]["row"], first_error["row"]);
    assert_eq!(dry["errors"][0]["column"], "email");
    assert_eq!(dry["warnings"], json!([]));
    let (status, dry) = api
        .post(
            &format!("/api/v1/pipelines/{pipeline}/dry-run?rows=10"),
            json!({}),
        )
        .await;
    assert_eq!((status, &dry["rowsChecked"]), (StatusCode::OK, &json!(10)));
    for bad in ["0", "abc", "100001"] {
        let (status, body) = api
            .post(
                &format!("/api/v1/pipelines/{pipeline}/dry-run?rows={bad}"),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["field"], "rows");
    }
    let (_, runs) = api.get(&format!("/api/v1/pipelines/{pipeline}/runs")).await;
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(1));

    // Errors as JSON and CSV.
    let (status, errors) = api
        .get(&format!("/api/v1/pipelines/{pipeline}/runs/{run}/errors"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(errors["runId"], run.as_str());
    assert_eq!(
        errors["total"].as_u64(),
        errors["errors"].as_array().map(|e| e.len() as u64)
    );
    assert_eq!(
        errors["errors"][0],
        json!({"row": first_error["row"], "column": "email", "value": "not-an-email", "error": "Invalid email format"})
    );
    let csv = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/pipelines/{pipeline}/runs/{run}/errors",
            api.base
        ))
        .bearer_auth(&api.key)
        .header("Accept", "text/csv")
        .send()
        .await
        .expect("csv");
    assert_eq!(csv.status(), StatusCode::OK);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        csv.headers()["content-disposition"],
        format!("attachment; filename=\"pipeline-run-{run}-errors.csv\"").as_str()
    );
    let text = csv.text().await.expect("body");
    assert!(text.starts_with("Row,Column,Value,Error"), "{text}");
    assert!(
        text.contains(",email,not-an-email,Invalid email format"),
        "{text}"
    );

    // Retry: 201 with the documented fields, 422 for a running run, 404 for an unknown one.
    let (status, retry) = api
        .post(
            &format!("/api/v1/pipelines/{pipeline}/runs/{run}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{retry}");
    let keys: Vec<&str> = retry
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for k in [
        "id",
        "pipelineId",
        "status",
        "loadStrategy",
        "metadata",
        "log",
    ] {
        assert!(keys.contains(&k), "retry answer has {k}: {retry}");
    }
    assert_eq!(retry["status"], "pending");
    assert_eq!(retry["metadata"]["retryOf"], run.as_str());
    assert_eq!(retry["log"][0]["stage"], "retry");
    let retry_id = retry["id"].as_str().expect("id").to_owned();
    let (status, _) = api
        .post(
            &format!("/api/v1/pipelines/{pipeline}/runs/{retry_id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a pending or running run cannot be retried"
    );
    let ghost = "run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM";
    assert_eq!(
        api.post(
            &format!("/api/v1/pipelines/{pipeline}/runs/{ghost}/retry"),
            json!({})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // Cancel the retry, list runs.
    let (status, cancelled) = api
        .post(
            &format!("/api/v1/pipelines/{pipeline}/runs/{retry_id}/cancel"),
            json!({}),
        )
        .await;
    assert!(
        status == StatusCode::OK || status == StatusCode::UNPROCESSABLE_ENTITY,
        "{status} {cancelled}"
    );
    let (status, runs) = api.get(&format!("/api/v1/pipelines/{pipeline}/runs")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(2));

    // Poll GET and POST.
    let (status, poll) = api.get("/api/v1/pipelines/poll").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(poll["total"], 1);
    assert_eq!(poll["pipelines"][0]["connector"], "Production S3");
    let (status, cycle) = api.post("/api/v1/pipelines/poll", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        cycle,
        json!({"message": "Polling cycle complete: checked 1 pipelines, triggered 0 runs", "checked": 1, "triggered": 0})
    );

    // Metrics count what happened.
    let metrics = api
        .raw_get("/metrics")
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("sluice_runs{status=\"failed\"} 1")
            || metrics.contains("status=\"failed\"} 1"),
        "{metrics}"
    );

    // Deleting: a pipeline, then its connector.
    assert_eq!(
        api.delete(&format!("/api/v1/connectors/{connector}"))
            .await
            .0,
        StatusCode::CONFLICT,
        "in use"
    );
    assert_eq!(
        api.delete(&format!("/api/v1/pipelines/{pipeline}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.delete(&format!("/api/v1/connectors/{connector}"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
}

/// (method, path, body, allowed roles, success status)
type Case = (
    Method,
    String,
    Option<Value>,
    &'static [&'static str],
    StatusCode,
);

const ALL: &[&str] = &["admin", "editor", "viewer"];
const WRITERS: &[&str] = &["admin", "editor"];
const ADMIN: &[&str] = &["admin"];

/// Fresh entities for one role's pass, so writes do not disturb each other.
async fn cases(admin: &Api, bucket: &str) -> Vec<Case> {
    let connector = admin.s3_connector(bucket).await;
    let spare_connector = admin.s3_connector(bucket).await;
    let pipeline = failing_pipeline(
        admin,
        &connector,
        &format!("t_{}", crate::support::suffix()),
    )
    .await;
    let run = admin.start_run(&pipeline).await;
    admin
        .wait_terminal(&pipeline, &run, Duration::from_secs(60))
        .await;
    let busy = failing_pipeline(
        admin,
        &connector,
        &format!("t_{}", crate::support::suffix()),
    )
    .await;
    let spare_pipeline = failing_pipeline(
        admin,
        &connector,
        &format!("t_{}", crate::support::suffix()),
    )
    .await;
    let (spare_key, _) = key(admin, "viewer").await;
    let p = |s: &str| format!("/api/v1{s}");
    vec![
        (Method::GET, p("/api-keys"), None, ADMIN, StatusCode::OK),
        (
            Method::POST,
            p("/api-keys"),
            Some(json!({"name": "k", "role": "viewer"})),
            ADMIN,
            StatusCode::CREATED,
        ),
        (
            Method::DELETE,
            p(&format!("/api-keys/{spare_key}")),
            None,
            ADMIN,
            StatusCode::NO_CONTENT,
        ),
        (Method::GET, p("/connectors"), None, ALL, StatusCode::OK),
        (
            Method::GET,
            p(&format!("/connectors/{connector}")),
            None,
            ALL,
            StatusCode::OK,
        ),
        (
            Method::POST,
            p("/connectors"),
            Some(json!({"name": "c", "type": "s3", "config": {"bucket": "b"}})),
            ADMIN,
            StatusCode::CREATED,
        ),
        (
            Method::PATCH,
            p(&format!("/connectors/{spare_connector}")),
            Some(json!({"name": "renamed"})),
            ADMIN,
            StatusCode::OK,
        ),
        (
            Method::POST,
            p(&format!("/connectors/{connector}/test")),
            Some(json!({})),
            ADMIN,
            StatusCode::OK,
        ),
        (
            Method::DELETE,
            p(&format!("/connectors/{spare_connector}")),
            None,
            ADMIN,
            StatusCode::NO_CONTENT,
        ),
        (Method::GET, p("/pipelines"), None, ALL, StatusCode::OK),
        (
            Method::GET,
            p(&format!("/pipelines/{pipeline}")),
            None,
            ALL,
            StatusCode::OK,
        ),
        (
            Method::PATCH,
            p(&format!("/pipelines/{spare_pipeline}")),
            Some(json!({"name": "renamed"})),
            WRITERS,
            StatusCode::OK,
        ),
        (
            Method::GET,
            p(&format!("/pipelines/{pipeline}/runs")),
            None,
            ALL,
            StatusCode::OK,
        ),
        (
            Method::GET,
            p(&format!("/pipelines/{pipeline}/runs/{run}")),
            None,
            ALL,
            StatusCode::OK,
        ),
        (
            Method::GET,
            p(&format!("/pipelines/{pipeline}/runs/{run}/progress")),
            None,
            ALL,
            StatusCode::OK,
        ),
        (
            Method::GET,
            p(&format!("/pipelines/{pipeline}/runs/{run}/errors")),
            None,
            ALL,
            StatusCode::OK,
        ),
        (Method::GET, p("/pipelines/poll"), None, ALL, StatusCode::OK),
        (
            Method::POST,
            p("/pipelines/poll"),
            Some(json!({})),
            WRITERS,
            StatusCode::OK,
        ),
        (
            Method::POST,
            p(&format!("/pipelines/{pipeline}/dry-run?rows=10")),
            Some(json!({})),
            WRITERS,
            StatusCode::OK,
        ),
        (
            Method::POST,
            p(&format!("/pipelines/{busy}/runs")),
            Some(json!({})),
            WRITERS,
            StatusCode::CREATED,
        ),
        (
            Method::POST,
            p(&format!("/pipelines/{pipeline}/runs/{run}/retry")),
            Some(json!({})),
            WRITERS,
            StatusCode::CREATED,
        ),
        (
            Method::DELETE,
            p(&format!("/pipelines/{spare_pipeline}")),
            None,
            WRITERS,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::POST,
            p("/pipelines"),
            Some(
                json!({"name": "n", "connectorId": connector, "source": {"prefix": "in/"}, "schema": data::schema("string"),
                "destination": {"table": "new_table"}, "loadStrategy": "append"}),
            ),
            WRITERS,
            StatusCode::CREATED,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_enforces_the_role_table() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("in/customers.csv", data::csv(1, 300)).await;
    let (_server, admin) = Launch::new(&db).serve().await;
    for role in ["viewer", "editor", "admin"] {
        let (_, secret) = key(&admin, role).await;
        let caller = admin.with_key(&secret);
        for (method, path, body, allowed, ok) in cases(&admin, &bucket.name).await {
            for (who, api) in [
                ("no key", admin.with_key("")),
                ("bad key", admin.with_key("sk_not_a_key")),
            ] {
                let (status, _) = api.call(method.clone(), &path, body.clone()).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{who} {method} {path}");
            }
            let (status, answer) = caller.call(method.clone(), &path, body.clone()).await;
            let expected = if allowed.contains(&role) {
                ok
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(status, expected, "{role} {method} {path}: {answer}");
        }
    }
    // Cancel needs a running or pending run per call: checked per role here.
    for role in ["viewer", "editor", "admin"] {
        let (_, secret) = key(&admin, role).await;
        let connector = admin.s3_connector(&bucket.name).await;
        let pipeline = failing_pipeline(
            &admin,
            &connector,
            &format!("c_{}", crate::support::suffix()),
        )
        .await;
        admin
            .patch(
                &format!("/api/v1/pipelines/{pipeline}"),
                json!({"status": "active"}),
            )
            .await;
        let run = admin.start_run(&pipeline).await;
        let (status, body) = admin
            .with_key(&secret)
            .post(
                &format!("/api/v1/pipelines/{pipeline}/runs/{run}/cancel"),
                json!({}),
            )
            .await;
        match role {
            "viewer" => assert_eq!(status, StatusCode::FORBIDDEN),
            // The run may have failed already (maxErrors 0): then cancel is 422.
            _ => assert!(
                status == StatusCode::OK || status == StatusCode::UNPROCESSABLE_ENTITY,
                "{role}: {status} {body}"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_connector_response_contains_a_secret() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    let (server, api) = Launch::new(&db).serve().await;
    let connector = api.s3_connector(&bucket.name).await;
    let mut bodies = Vec::new();
    bodies.push(api.get(&format!("/api/v1/connectors/{connector}")).await.1);
    bodies.push(api.get("/api/v1/connectors").await.1);
    bodies.push(
        api.patch(
            &format!("/api/v1/connectors/{connector}"),
            json!({"credentials": {"accessKeyId": "test", "secretAccessKey": SECRET}}),
        )
        .await
        .1,
    );
    bodies.push(
        api.post(&format!("/api/v1/connectors/{connector}/test"), json!({}))
            .await
            .1,
    );
    bodies.push(api.post("/api/v1/connectors", json!({"name": "bad", "type": "s3", "config": {"bucket": "x"}, "credentials": {"secretAccessKey": 42}})).await.1);
    for b in &bodies {
        assert!(!b.to_string().contains(SECRET), "secret in {b}");
    }
    assert!(
        !server.log_text().contains(SECRET),
        "secret in the server log"
    );
}
