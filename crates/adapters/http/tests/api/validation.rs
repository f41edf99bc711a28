//! Bad input of every kind: a precise 400 naming the field, or the JSON 404,
//! 405, 413 and 415; never a 500, never a non-JSON error.

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;
use serde_json::{Value, json};
use sluice_domain::role::Role;

use crate::support::{Reply, TestApi, pipeline_spec};

fn with_patch(connector: &str, patch: Value) -> Value {
    let mut spec = pipeline_spec(connector);
    sluice_application::usecases::merge_patch(&mut spec, &patch);
    spec
}

fn assert_json_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        reply.headers
    );
    assert_eq!(reply.json()["error"]["code"], code, "{}", reply.text());
}

#[actix_web::test]
async fn pipeline_rules_name_the_offending_field() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let cases = [
        (json!({"loadStrategy": "merge"}), "loadStrategy"),
        (
            json!({"destination": {"table": "Bad-Table"}}),
            "destination.table",
        ),
        (
            json!({"schema": {"columns": [{"name": "1st", "type": "string"}]}}),
            "schema.columns[0].name",
        ),
        (
            json!({"destination": {"keyColumns": []}}),
            "destination.keyColumns",
        ),
        (
            json!({"destination": {"keyColumns": ["nope"]}}),
            "destination.keyColumns[0]",
        ),
        (json!({"partitions": 0}), "partitions"),
        (json!({"partitions": 65}), "partitions"),
        (json!({"partitions": -1}), "partitions"),
        (json!({"partitions": "4"}), "partitions"),
        (
            json!({"polling": {"intervalMinutes": 0}}),
            "polling.intervalMinutes",
        ),
        (
            json!({"polling": {"intervalMinutes": -5}}),
            "polling.intervalMinutes",
        ),
        (json!({"connectorId": "conn_nope"}), "connectorId"),
        (
            json!({"connectorId": "conn_01J9Z8Y7X6W5V4T3S2R1Q0P9NM"}),
            "connectorId",
        ),
        (json!({"unknownMember": 1}), "unknownMember"),
        (json!({"name": ""}), "name"),
    ];
    for (patch, field) in cases {
        let body = with_patch(&c, patch.clone());
        for role in [Role::Admin, Role::Editor] {
            let reply = api
                .send(
                    Method::POST,
                    "/api/v1/pipelines",
                    Some(api.key(role)),
                    Some(body.clone()),
                )
                .await;
            assert_eq!(reply.error_field(), field, "{patch}");
        }
    }
    let missing = json!({"name": "x"});
    let reply = api
        .send(
            Method::POST,
            "/api/v1/pipelines",
            Some(&api.admin),
            Some(missing),
        )
        .await;
    assert_eq!(reply.error_field(), "body");
    // The same rules apply to a patch, on the merged result.
    let p = api.pipeline(&c, json!({})).await;
    for (patch, field) in [
        (json!({"partitions": 100}), "partitions"),
        (json!({"loadStrategy": "sideways"}), "loadStrategy"),
        (
            json!({"polling": {"intervalMinutes": 0}}),
            "polling.intervalMinutes",
        ),
        (json!([1, 2]), "body"),
    ] {
        let reply = api
            .send(
                Method::PATCH,
                &format!("/api/v1/pipelines/{p}"),
                Some(&api.editor),
                Some(patch),
            )
            .await;
        assert_eq!(reply.error_field(), field);
    }
}

#[actix_web::test]
async fn malformed_bodies_are_400_413_or_415_in_json() {
    let api = TestApi::new().await;
    let auth = ("Authorization", format!("Bearer {}", api.admin));
    let post = |body: &'static [u8], content_type: Option<&'static str>| {
        let mut req = TestRequest::post()
            .uri("/api/v1/pipelines")
            .insert_header(auth.clone())
            .set_payload(body);
        if let Some(t) = content_type {
            req = req.insert_header(("Content-Type", t));
        }
        req
    };
    for body in [&b"{"[..], b"{\"name\": }", b"nul", b"", b"   ", b"\xff\xfe"] {
        let reply = api.call(post(body, Some("application/json"))).await;
        assert_eq!(reply.error_field(), "body", "{body:?}");
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let reply = api
        .call(
            TestRequest::post()
                .uri("/api/v1/pipelines")
                .insert_header(auth.clone())
                .insert_header(("Content-Type", "application/json"))
                .set_payload(deep),
        )
        .await;
    assert_eq!(reply.error_field(), "body");
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let reply = api.call(post(b"{}", content_type)).await;
        assert_json_error(
            &reply,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    let huge = vec![b' '; 2 * 1024 * 1024];
    let reply = api
        .call(
            TestRequest::post()
                .uri("/api/v1/pipelines")
                .insert_header(auth.clone())
                .insert_header(("Content-Type", "application/json"))
                .set_payload(huge),
        )
        .await;
    assert_json_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[actix_web::test]
async fn other_bodies_name_their_fields() {
    let api = TestApi::new().await;
    let key = |body: Value| {
        api.send(
            Method::POST,
            "/api/v1/api-keys",
            Some(&api.admin),
            Some(body),
        )
    };
    assert_eq!(
        key(json!({"name": "x", "role": "root"}))
            .await
            .error_field(),
        "role"
    );
    assert_eq!(key(json!({"role": "viewer"})).await.error_field(), "body");
    assert_eq!(
        key(json!({"name": " ", "role": "viewer"}))
            .await
            .error_field(),
        "name"
    );
    let connector = |body: Value| {
        api.send(
            Method::POST,
            "/api/v1/connectors",
            Some(&api.admin),
            Some(body),
        )
    };
    assert_eq!(
        connector(json!({"name": "x", "type": "s3"}))
            .await
            .error_field(),
        "config.bucket"
    );
    assert_eq!(
        connector(json!({"name": "x", "type": "ftp"}))
            .await
            .error_field(),
        "type"
    );
    assert_eq!(
        connector(json!({"name": "x", "type": "http", "config": {"url": "ftp://x"}}))
            .await
            .error_field(),
        "config.url"
    );
}

/// A malformed id in a path names nothing: a 404 (decision 0007, amended),
/// whose message says the id is malformed and which parameter holds it.
fn assert_malformed_id_404(reply: &Reply, param: &str, path: &str) {
    assert_json_error(reply, StatusCode::NOT_FOUND, "not_found");
    let v = reply.json();
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("invalid") && message.contains(&format!("`{param}`")),
        "{path}: {v}"
    );
    assert!(v["error"].get("field").is_none(), "{path}: {v}");
}

#[actix_web::test]
async fn malformed_path_ids_are_404_and_bad_query_parameters_400_naming_them() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let p = api.pipeline(&c, json!({})).await;
    let ids = [
        ("/api/v1/pipelines/nope".to_owned(), "id"),
        (
            "/api/v1/pipelines/run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM".to_owned(),
            "id",
        ),
        ("/api/v1/connectors/%00%ff".to_owned(), "id"),
        (format!("/api/v1/pipelines/{p}/runs/nope"), "runId"),
        (format!("/api/v1/pipelines/{p}/runs/{p}/progress"), "runId"),
        (format!("/api/v1/pipelines/{p}/runs/x/errors"), "runId"),
        ("/api/v1/runs/run_doesnotexist".to_owned(), "runId"),
    ];
    for (path, param) in ids {
        let reply = api.get(&path, Role::Viewer).await;
        assert_malformed_id_404(&reply, param, &path);
    }
    let queries = [
        ("/api/v1/pipelines?limit=0".to_owned(), "limit"),
        ("/api/v1/pipelines?limit=201".to_owned(), "limit"),
        ("/api/v1/pipelines?limit=ten".to_owned(), "limit"),
        ("/api/v1/connectors?limit=1&limit=2".to_owned(), "query"),
        (format!("/api/v1/pipelines/{p}/runs?limit=-3"), "limit"),
        (
            format!("/api/v1/pipelines?cursor={}", "c".repeat(300)),
            "cursor",
        ),
    ];
    for (path, field) in queries {
        let reply = api.get(&path, Role::Viewer).await;
        assert_eq!(reply.error_field(), field, "{path}");
    }
    let path = "/api/v1/api-keys/key_x";
    let reply = api.send(Method::DELETE, path, Some(&api.admin), None).await;
    assert_malformed_id_404(&reply, "id", path);
    let path = format!("/api/v1/pipelines/{p}/runs/run_doesnotexist/retry");
    let reply = api.send(Method::POST, &path, Some(&api.admin), None).await;
    assert_malformed_id_404(&reply, "runId", &path);
}

#[actix_web::test]
async fn unknown_routes_are_json_404_and_wrong_methods_json_405() {
    let api = TestApi::new().await;
    for path in [
        "/",
        "/nope",
        "/api/v1",
        "/api/v1/nope",
        "/api/v2/pipelines",
        "/api/v1/pipelines/x/y/z/w/v",
    ] {
        let reply = api.get(path, Role::Admin).await;
        assert_json_error(&reply, StatusCode::NOT_FOUND, "not_found");
    }
    let cases = [
        (Method::PUT, "/api/v1/pipelines", "GET, POST"),
        (Method::DELETE, "/api/v1/pipelines", "GET, POST"),
        (Method::PATCH, "/api/v1/pipelines/poll", "GET, POST"),
        (Method::DELETE, "/api/v1/pipelines/poll", "GET, POST"),
        (
            Method::GET,
            "/api/v1/api-keys/key_01J9Z8Y7X6W5V4T3S2R1Q0P9NM",
            "DELETE",
        ),
        (Method::POST, "/healthz", "GET"),
        (Method::POST, "/metrics", "GET"),
        (
            Method::GET,
            "/api/v1/connectors/conn_01J9Z8Y7X6W5V4T3S2R1Q0P9NM/test",
            "POST",
        ),
    ];
    for (method, path, allow) in cases {
        let reply = api.send(method.clone(), path, Some(&api.admin), None).await;
        assert_json_error(&reply, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_eq!(
            reply.header("allow").as_deref(),
            Some(allow),
            "{method} {path}"
        );
    }
}

#[actix_web::test]
async fn missing_entities_are_404_and_busy_ones_409() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let p = api.pipeline(&c, json!({})).await;
    let missing = [
        "/api/v1/pipelines/pipe_01J9Z8Y7X6W5V4T3S2R1Q0P9NM".to_owned(),
        "/api/v1/connectors/conn_01J9Z8Y7X6W5V4T3S2R1Q0P9NM".to_owned(),
        format!("/api/v1/pipelines/{p}/runs/run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM"),
        format!("/api/v1/pipelines/{p}/runs/run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM/progress"),
        format!("/api/v1/pipelines/{p}/runs/run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM/errors"),
        "/api/v1/pipelines/pipe_01J9Z8Y7X6W5V4T3S2R1Q0P9NM/runs".to_owned(),
    ];
    for path in missing {
        assert_json_error(
            &api.get(&path, Role::Viewer).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    api.start_run(&p).await;
    let again = api
        .send(
            Method::POST,
            &format!("/api/v1/pipelines/{p}/runs"),
            Some(&api.editor),
            None,
        )
        .await;
    assert_json_error(&again, StatusCode::CONFLICT, "conflict");
    let in_use = api
        .send(
            Method::DELETE,
            &format!("/api/v1/connectors/{c}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_json_error(&in_use, StatusCode::CONFLICT, "conflict");
    let paused = api
        .send(
            Method::PATCH,
            &format!("/api/v1/pipelines/{p}"),
            Some(&api.editor),
            Some(json!({"status": "paused"})),
        )
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.text());
    assert_eq!(paused.json()["status"], "paused");
}

#[actix_web::test]
async fn every_response_carries_the_security_headers() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let replies = [
        api.get("/api/v1/connectors", Role::Viewer).await,
        api.get(&format!("/api/v1/connectors/{c}"), Role::Viewer)
            .await,
        api.get("/api/v1/pipelines/nope", Role::Viewer).await,
        api.get("/nope", Role::Viewer).await,
        api.send(Method::GET, "/api/v1/connectors", None, None)
            .await,
        api.send(Method::PUT, "/api/v1/pipelines", Some(&api.admin), None)
            .await,
        api.send(Method::GET, "/healthz", None, None).await,
    ];
    for reply in &replies {
        for (name, value) in sluice_http::SECURITY_HEADERS {
            assert_eq!(
                reply.header(name).as_deref(),
                Some(*value),
                "{name} of a {} answer: {:?}",
                reply.status,
                reply.headers
            );
        }
    }
}
