//! The file ledger over HTTP: the ledger list, a run's files, forgetting,
//! the optional body of `POST …/runs` and the failed-run rule's 422.

use std::collections::BTreeSet;

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;
use serde_json::{Value, json};
use sluice_domain::role::Role;
use sluice_domain::validation::RowError;

use crate::support::{RunEnd, RunPlan, TestApi};

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

#[actix_web::test]
async fn the_ledger_and_a_runs_files_are_listed_and_forgotten() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let p = api.pipeline(&c, json!({})).await;
    let bad = RowError::new(2, "email", "x", "Invalid email format");
    let run = api
        .run(&p, RunPlan::single(5, vec![bad], RunEnd::Finalize))
        .await;

    let reply = api
        .get(&format!("/api/v1/pipelines/{p}/files"), Role::Viewer)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let v = reply.json();
    assert_eq!(v["nextCursor"], Value::Null);
    let entry = &v["items"][0];
    assert_eq!(
        keys(entry),
        [
            "key",
            "etag",
            "size",
            "lastModified",
            "totalRows",
            "loadedRows",
            "skippedRows",
            "failedRows",
            "runId",
            "loadedAt"
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
    assert_eq!(entry["key"], "data/customers/a.csv");
    assert_eq!(entry["runId"], run.as_str());
    assert_eq!(
        (
            &entry["totalRows"],
            &entry["loadedRows"],
            &entry["failedRows"]
        ),
        (&json!(5), &json!(4), &json!(1))
    );
    let none = api
        .get(
            &format!("/api/v1/pipelines/{p}/files?prefix=elsewhere/"),
            Role::Viewer,
        )
        .await
        .json();
    assert_eq!(none["items"], json!([]));

    let files = api
        .get(
            &format!("/api/v1/pipelines/{p}/runs/{run}/files"),
            Role::Viewer,
        )
        .await;
    assert_eq!(files.status, StatusCode::OK, "{}", files.text());
    let f = &files.json()["items"][0];
    assert_eq!(
        (&f["index"], &f["status"], &f["firstRow"]),
        (&json!(0), &json!("completed"), &json!(1))
    );
    assert_eq!(
        (&f["loadedRows"], &f["skippedRows"], &f["failedRows"]),
        (&json!(4), &json!(0), &json!(1))
    );

    let forget = async |query: &str| {
        api.send(
            Method::DELETE,
            &format!("/api/v1/pipelines/{p}/files{query}"),
            Some(&api.editor),
            None,
        )
        .await
    };
    for bad in ["", "?key=a&prefix=b", "?key="] {
        let reply = forget(bad).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.text()
        );
    }
    let reply = forget("?key=data/customers/a.csv").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json(), json!({"forgotten": 1}));
    assert_eq!(
        forget("?prefix=data/").await.json(),
        json!({"forgotten": 0})
    );
    let empty = api
        .get(&format!("/api/v1/pipelines/{p}/files"), Role::Viewer)
        .await
        .json();
    assert_eq!(empty["items"], json!([]));
    let missing = "/api/v1/pipelines/pipe_01J9Z8Y7X6W5V4T3S2R1Q0P9NM/files";
    assert_eq!(
        api.get(missing, Role::Viewer).await.status,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn the_run_start_body_is_optional_and_checked() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let p = api.pipeline(&c, json!({})).await;
    let path = format!("/api/v1/pipelines/{p}/runs");
    for (body, field) in [
        (json!({"files": "some"}), "files"),
        (json!({"reload": [""]}), "reload[0]"),
        (json!({"reload": "a.csv"}), "reload"),
        (json!({"other": 1}), "other"),
    ] {
        let reply = api
            .send(Method::POST, &path, Some(&api.editor), Some(body.clone()))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text()
        );
        assert_eq!(reply.error_field(), field, "{body}");
    }
    let too_many: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
    let reply = api
        .send(
            Method::POST,
            &path,
            Some(&api.editor),
            Some(json!({"reload": too_many})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let text = TestRequest::post()
        .uri(&path)
        .insert_header(("Authorization", format!("Bearer {}", api.editor)))
        .insert_header(("Content-Type", "text/plain"))
        .set_payload("files=all");
    assert_eq!(
        api.call(text).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // No body (and any content type) is today's start.
    let bare = TestRequest::post()
        .uri(&path)
        .insert_header(("Authorization", format!("Bearer {}", api.editor)))
        .insert_header(("Content-Type", "application/json"));
    let reply = api.call(bare).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let run = reply.json();
    assert_eq!(run["metadata"], json!({}));
}

#[actix_web::test]
async fn a_failed_run_with_committed_rows_refuses_a_new_run_until_retried_or_forced() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let p = api.pipeline(&c, json!({})).await;
    let failed = api.run(&p, RunPlan::sample(RunEnd::Fail)).await;
    let path = format!("/api/v1/pipelines/{p}/runs");
    let reply = api.send(Method::POST, &path, Some(&api.editor), None).await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text()
    );
    let message = reply.json()["error"]["message"]
        .as_str()
        .expect("message")
        .to_owned();
    assert!(
        message.contains(&format!("run {failed} failed after committing")),
        "{message}"
    );
    assert!(message.contains("/retry"), "{message}");
    let forced = api
        .send(
            Method::POST,
            &path,
            Some(&api.editor),
            Some(json!({"reload": ["data/customers/a.csv"]})),
        )
        .await;
    assert_eq!(forced.status, StatusCode::CREATED, "{}", forced.text());
    assert_eq!(
        forced.json()["metadata"],
        json!({"reload": ["data/customers/a.csv"]})
    );
}
