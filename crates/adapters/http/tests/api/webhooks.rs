//! `/webhooks`: admin only, the secret never answered, private targets
//! refused with a 400 naming `url`, the delivery log and redelivery.

use actix_web::http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_application::ports::{AttemptResult, Delivery, WebhookStore, WorkerId};
use sluice_domain::ids::{DeliveryId, Ulid};
use sluice_domain::role::Role;

use crate::support::{RunEnd, RunPlan, TestApi, id_of, t0};

pub const WEBHOOK_SECRET: &str = "whsec-http-test-0123456789";

pub fn webhook_body(url: &str) -> Value {
    json!({
        "url": url,
        "events": ["run.completed", "run.failed"],
        "secret": WEBHOOK_SECRET,
    })
}

/// Creates a subscription to every run end; returns its id.
pub async fn webhook(api: &TestApi) -> String {
    id_of(
        &api.admin_post(
            "/api/v1/webhooks",
            Some(webhook_body("https://hooks.example.com/sluice")),
            StatusCode::CREATED,
        )
        .await,
    )
}

/// Records one failed attempt of the subscription's first due event (the
/// delivery worker's part, done here through the store); returns its id.
pub async fn delivery(api: &TestApi) -> String {
    let claimed = api
        .store
        .claim_events(
            &WorkerId("test".into()),
            t0().plus_millis(86_400_000),
            30_000,
            1,
        )
        .await
        .expect("claim");
    let c = claimed.first().expect("an event to deliver");
    let d = Delivery {
        id: DeliveryId::from_ulid(Ulid(0xD00D)),
        event_id: c.id,
        event: c.event,
        run_id: c.run_id,
        webhook_id: c.webhook.id,
        attempt: 1,
        attempted_at: t0(),
        status_code: Some(503),
        latency_ms: 7,
        error: None,
        result: AttemptResult::Failed,
        next_attempt_at: None,
    };
    assert!(api.store.record_attempt(c, "{}", &d).await.expect("record"));
    d.id.to_string()
}

#[actix_web::test]
async fn a_subscription_answers_everything_but_its_secret() {
    let api = TestApi::new().await;
    let created = api
        .admin_post(
            "/api/v1/webhooks",
            Some(json!({
                "url": "https://hooks.example.com/sluice",
                "events": ["run.failed", "run.errors_exceeded"],
                "errorsThreshold": 100,
                "format": "slack",
                "secret": WEBHOOK_SECRET,
            })),
            StatusCode::CREATED,
        )
        .await;
    let id = id_of(&created);
    assert!(id.starts_with("whk_"), "{created}");
    assert_eq!(
        created["events"],
        json!(["run.failed", "run.errors_exceeded"])
    );
    assert_eq!(created["format"], "slack");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["errorsThreshold"], 100);
    assert_eq!(created["pipelineIds"], Value::Null);
    assert_eq!(created["secretSet"], true);
    let patched = api
        .send(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(&api.admin),
            Some(json!({"enabled": false, "secret": "rotated-secret-0123456789"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    assert_eq!(patched.json()["enabled"], false);
    let one = api
        .get(&format!("/api/v1/webhooks/{id}"), Role::Admin)
        .await;
    let list = api.get("/api/v1/webhooks", Role::Admin).await;
    assert_eq!(list.json()["items"][0]["id"], id.as_str());
    for reply in [&one, &list, &patched] {
        let text = reply.text();
        assert!(!text.contains(WEBHOOK_SECRET), "{text}");
        assert!(!text.contains("rotated-secret-0123456789"), "{text}");
        assert!(!text.contains("\"secret\""), "{text}");
    }
    let gone = api
        .send(
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let missing = api
        .get(&format!("/api/v1/webhooks/{id}"), Role::Admin)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn private_and_loopback_urls_are_a_400_naming_url() {
    let api = TestApi::new().await;
    for url in [
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://10.0.0.8/hook",
        "http://192.168.1.20/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "ftp://hooks.example.com/",
    ] {
        let reply = api
            .send(
                Method::POST,
                "/api/v1/webhooks",
                Some(&api.admin),
                Some(webhook_body(url)),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{url}: {}",
            reply.text()
        );
        assert_eq!(reply.error_field(), "url", "{url}");
    }
    let id = webhook(&api).await;
    let reply = api
        .send(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(&api.admin),
            Some(json!({"url": "http://172.16.3.4/"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert_eq!(reply.error_field(), "url");
}

#[actix_web::test]
async fn a_bad_secret_is_refused_without_being_quoted() {
    let api = TestApi::new().await;
    for secret in [
        json!("short-secret"),
        json!(12345678901234567u64),
        json!(" padded-secret-0123456789"),
    ] {
        let mut body = webhook_body("https://hooks.example.com/");
        body["secret"] = secret.clone();
        let reply = api
            .send(
                Method::POST,
                "/api/v1/webhooks",
                Some(&api.admin),
                Some(body),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
        assert_eq!(reply.error_field(), "secret");
        let shown = secret.to_string();
        assert!(
            !reply.text().contains(shown.trim_matches('"')),
            "{}",
            reply.text()
        );
    }
    let mut missing = webhook_body("https://hooks.example.com/");
    missing.as_object_mut().map(|o| o.remove("secret"));
    let reply = api
        .send(
            Method::POST,
            "/api/v1/webhooks",
            Some(&api.admin),
            Some(missing),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn the_delivery_log_lists_attempts_and_redelivery_queues_the_event_again() {
    let api = TestApi::new().await;
    let hook = webhook(&api).await;
    let c = api.connector("Production S3").await;
    let p = api.pipeline(&c, json!({})).await;
    api.run(&p, RunPlan::sample(RunEnd::Fail)).await;
    let dlv = delivery(&api).await;
    let log = api
        .get(&format!("/api/v1/webhooks/{hook}/deliveries"), Role::Admin)
        .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.text());
    let items = log.json()["items"].clone();
    assert_eq!(items.as_array().map(Vec::len), Some(1), "{items}");
    assert_eq!(items[0]["id"], dlv.as_str());
    assert_eq!(items[0]["event"], "run.failed");
    assert_eq!(items[0]["statusCode"], 503);
    assert_eq!(items[0]["result"], "failed");
    assert_eq!(items[0]["attempt"], 1);
    let event = items[0]["eventId"].as_str().unwrap_or_default().to_owned();
    assert!(event.starts_with("evt_"));
    let again = api
        .send(
            Method::POST,
            &format!("/api/v1/webhooks/{hook}/deliveries/{dlv}/redeliver"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text());
    assert_eq!(again.json()["eventId"], event.as_str());
    let due = api
        .store
        .claim_events(
            &WorkerId("test".into()),
            t0().plus_millis(86_400_000),
            30_000,
            10,
        )
        .await
        .expect("claim");
    assert_eq!(
        due.iter().map(|e| e.id.to_string()).collect::<Vec<_>>(),
        vec![event]
    );
    let unknown = api
        .send(
            Method::POST,
            &format!("/api/v1/webhooks/{hook}/deliveries/dlv_01J9Z8Y7X6W5V4T3S2R1Q0P9NM/redeliver"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());
}
