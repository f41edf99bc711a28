//! Issue 18, acceptance 1, through the real `sluice serve`: an `s3` connector
//! with ambient credentials reads a private bucket with the access keys of
//! the server's environment and its test names the identity; only admins may
//! create one, only where the operator allows it; a connector with stored
//! credentials ignores the environment; no secret is answered or logged.
//! The bucket lives in a moto of the test's own that checks signatures and
//! IAM policies (`sluice_testkit::PrivateMoto`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sluice_testkit::{MOTO_ACCOUNT, PrivateMoto};

use crate::data;
use crate::support::{Launch, SluiceMigrations, TestDb};

const READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":["s3:ListBucket","s3:GetObject"],"Resource":"*"}]}"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_ambient_connector_reads_a_private_bucket_as_the_server() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let moto = PrivateMoto::start(false).await;
    let csv = data::csv(1, 500);
    moto.bucket("private-data", &[("in/customers.csv", csv.as_str())])
        .await;
    let key = moto.user("sluice-server", READ).await;
    moto.enforce_auth(0).await;

    let (server, api) = Launch::new(&db)
        .var("SLUICE_ALLOW_AMBIENT_CREDENTIALS", "1")
        .var("AWS_ACCESS_KEY_ID", &key.id)
        .var("AWS_SECRET_ACCESS_KEY", &key.secret)
        .var("AWS_ENDPOINT_URL_STS", &moto.endpoint)
        .serve()
        .await;
    let ambient = |name: &str| {
        json!({"name": name, "type": "s3",
               "config": {"bucket": "private-data", "endpoint": moto.endpoint, "region": "us-east-1"},
               "credentials": {"source": "ambient"}})
    };

    // Editors may not hand out the server's identity (nor write connectors).
    let (status, body) = api
        .post(
            "/api/v1/api-keys",
            json!({"name": "editor", "role": "editor"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let editor = api.with_key(body["key"].as_str().expect("key"));
    let (status, _) = editor
        .post("/api/v1/connectors", ambient("by an editor"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, created) = api.post("/api/v1/connectors", ambient("ambient")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["credentialSource"], "ambient");
    let id = created["id"].as_str().expect("id").to_owned();
    let (_, test) = api
        .post(&format!("/api/v1/connectors/{id}/test"), json!({}))
        .await;
    let user = format!("arn:aws:iam::{MOTO_ACCOUNT}:user/sluice-server");
    assert_eq!(test["ok"], true, "{test}");
    assert_eq!(test["identity"], user.as_str(), "{test}");
    assert!(
        test["message"].as_str().unwrap_or_default().contains(&user),
        "{test}"
    );

    // A run reads the private bucket.
    let pipeline = api
        .pipeline(json!({
            "name": "private", "connectorId": id, "source": {"prefix": "in/"},
            "schema": data::schema("string"), "destination": {"table": "customers"},
            "loadStrategy": "append", "partitions": 2
        }))
        .await;
    let run = api.start_run(&pipeline).await;
    let done = api
        .wait_terminal(&pipeline, &run, Duration::from_secs(120))
        .await;
    assert_eq!(done["status"], "completed_with_errors", "{done}");
    assert_eq!(done["processedRows"], 500, "{done}");

    // Stored credentials ignore the environment: their own keys are used,
    // and moto does not know them.
    let (status, stored) = api
        .post(
            "/api/v1/connectors",
            json!({"name": "stored", "type": "s3",
                   "config": {"bucket": "private-data", "endpoint": moto.endpoint},
                   "credentials": {"accessKeyId": key.id, "secretAccessKey": "fake-secret-value"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let (_, test) = api
        .post(
            &format!(
                "/api/v1/connectors/{}/test",
                stored["id"].as_str().expect("id")
            ),
            json!({}),
        )
        .await;
    assert_eq!(test["ok"], false, "{test}");

    // Nothing secret in any answer about connectors, or in the log.
    let (_, list) = api.get("/api/v1/connectors").await;
    let (_, one) = api.get(&format!("/api/v1/connectors/{id}")).await;
    for text in [list.to_string(), one.to_string(), created.to_string()] {
        assert!(!text.contains(&key.secret) && !text.contains("fake-secret-value"));
    }
    assert!(!server.log_text().contains(&key.secret));
    drop(server);

    // Where the operator did not allow ambient credentials, they are refused:
    // new connectors, and the existing one.
    let (server, api) = Launch::new(&db)
        .var("AWS_ACCESS_KEY_ID", &key.id)
        .var("AWS_SECRET_ACCESS_KEY", &key.secret)
        .serve()
        .await;
    let (status, body) = api.post("/api/v1/connectors", ambient("refused")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.to_string()
            .contains("SLUICE_ALLOW_AMBIENT_CREDENTIALS=1"),
        "{body}"
    );
    let (_, test) = api
        .post(&format!("/api/v1/connectors/{id}/test"), json!({}))
        .await;
    assert_eq!(test["ok"], false, "{test}");
    assert!(
        test["message"]
            .as_str()
            .unwrap_or_default()
            .contains("does not allow"),
        "{test}"
    );
    assert!(!server.log_text().contains(&key.secret));
}
