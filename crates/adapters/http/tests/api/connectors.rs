//! Connector secrets are write-only: no response body of any connector
//! endpoint contains a secret value, whatever the outcome.

use actix_web::http::{Method, StatusCode};
use serde_json::json;
use sluice_application::ports::SourceError;
use sluice_domain::role::Role;

use crate::support::{Reply, SECRET_VALUES, TestApi};

fn assert_no_secret(what: &str, reply: &Reply) {
    let body = reply.text();
    for secret in SECRET_VALUES
        .iter()
        .chain(&["rotated-secret-9f8e7d", "1234567890123"])
    {
        assert!(!body.contains(secret), "{what} leaked a secret: {body}");
    }
}

#[actix_web::test]
async fn no_connector_response_contains_a_secret_value() {
    let api = TestApi::new().await;
    let create = api
        .send(
            Method::POST,
            "/api/v1/connectors",
            Some(&api.admin),
            Some(json!({
                "name": "Production S3",
                "type": "s3",
                "config": {"bucket": "data"},
                "credentials": {"accessKeyId": SECRET_VALUES[0], "secretAccessKey": SECRET_VALUES[1]}
            })),
        )
        .await;
    assert_eq!(create.status, StatusCode::CREATED, "{}", create.text());
    assert_no_secret("create", &create);
    let created = create.json();
    assert_eq!(
        created["credentialKeys"],
        json!(["accessKeyId", "secretAccessKey"])
    );
    assert!(created.get("credentials").is_none());
    let id = created["id"].as_str().expect("id").to_owned();
    let one = format!("/api/v1/connectors/{id}");

    let mut replies = Vec::new();
    for role in Role::ALL {
        replies.push(("get", api.get(&one, role).await));
        replies.push(("list", api.get("/api/v1/connectors", role).await));
    }
    let patch = |body| api.send(Method::PATCH, &one, Some(&api.admin), Some(body));
    replies.push((
        "patch config",
        patch(json!({"config": {"region": "eu-west-1"}})).await,
    ));
    replies.push((
        "patch credentials",
        patch(json!({"credentials": {"secretAccessKey": "rotated-secret-9f8e7d"}})).await,
    ));
    replies.push((
        "patch credentials with a number",
        patch(json!({"credentials": {"secretAccessKey": 1_234_567_890_123_u64}})).await,
    ));
    replies.push((
        "create with a number",
        api.send(
            Method::POST,
            "/api/v1/connectors",
            Some(&api.admin),
            Some(json!({"name": "x", "type": "s3", "config": {"bucket": "b"},
                        "credentials": {"token": 1_234_567_890_123_u64}})),
        )
        .await,
    ));
    let test = format!("/api/v1/connectors/{id}/test");
    replies.push((
        "test ok",
        api.send(Method::POST, &test, Some(&api.admin), None).await,
    ));
    api.source.fail_with(Some(SourceError::PermissionDenied(
        "access denied by the store".into(),
    )));
    replies.push((
        "test failing",
        api.send(Method::POST, &test, Some(&api.admin), None).await,
    ));
    api.source.fail_with(None);
    replies.push((
        "test as editor",
        api.send(Method::POST, &test, Some(&api.editor), None).await,
    ));
    replies.push((
        "delete",
        api.send(Method::DELETE, &one, Some(&api.admin), None).await,
    ));
    replies.push(("get deleted", api.get(&one, Role::Admin).await));
    for (what, reply) in &replies {
        assert!(reply.status.as_u16() < 500, "{what}: {}", reply.text());
        assert_no_secret(what, reply);
    }
    let statuses: Vec<u16> = replies.iter().map(|(_, r)| r.status.as_u16()).collect();
    assert_eq!(
        statuses,
        [
            200, 200, 200, 200, 200, 200, 200, 200, 400, 400, 200, 200, 403, 204, 404
        ]
    );
    let patched = &replies[7].1.json();
    assert_eq!(patched["credentialKeys"], json!(["secretAccessKey"]));
    let failing = &replies[11].1.json();
    assert_eq!(failing["ok"], false);
}
