//! API keys: shown once, one role each, revoked keys stop at once; 401s and
//! request ids.

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;
use serde_json::json;
use sluice_domain::role::Role;

use crate::support::{TestApi, id_of};

#[actix_web::test]
async fn a_created_key_is_shown_once_and_works_with_its_role() {
    let api = TestApi::new().await;
    let created = api
        .admin_post(
            "/api/v1/api-keys",
            Some(json!({"name": "ci", "role": "editor"})),
            StatusCode::CREATED,
        )
        .await;
    let keys: Vec<&str> = created
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 6, "{created}");
    for k in ["id", "name", "role", "prefix", "createdAt", "key"] {
        assert!(created.get(k).is_some(), "{k} missing in {created}");
    }
    let secret = created["key"].as_str().expect("key").to_owned();
    assert!(secret.starts_with("sk_") && secret.len() > 40);
    assert!(secret.starts_with(created["prefix"].as_str().expect("prefix")));
    assert_eq!(created["role"], "editor");
    let list = api.get("/api/v1/api-keys", Role::Admin).await;
    assert!(
        !list.text().contains(&secret),
        "a list must never show a secret"
    );
    assert_eq!(list.json()["items"].as_array().map(Vec::len), Some(4));
    assert_eq!(list.json()["nextCursor"], serde_json::Value::Null);
    // The new editor key may change pipelines but not read API keys.
    let own = api
        .send(Method::GET, "/api/v1/pipelines", Some(&secret), None)
        .await;
    assert_eq!(own.status, StatusCode::OK);
    let denied = api
        .send(Method::GET, "/api/v1/api-keys", Some(&secret), None)
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        denied.json()["error"]["message"],
        "role editor may not list API keys"
    );
}

#[actix_web::test]
async fn a_revoked_key_stops_working_at_once() {
    let api = TestApi::new().await;
    let created = api
        .admin_post(
            "/api/v1/api-keys",
            Some(json!({"name": "temp", "role": "viewer"})),
            StatusCode::CREATED,
        )
        .await;
    let secret = created["key"].as_str().expect("key").to_owned();
    let before = api
        .send(Method::GET, "/api/v1/pipelines", Some(&secret), None)
        .await;
    assert_eq!(before.status, StatusCode::OK);
    let revoke = api
        .send(
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", id_of(&created)),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    assert!(revoke.body.is_empty());
    let after = api
        .send(Method::GET, "/api/v1/pipelines", Some(&secret), None)
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    let listed = api.get("/api/v1/api-keys", Role::Admin).await.json();
    let revoked = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|k| k["id"] == created["id"])
        .expect("still listed");
    assert!(revoked["revokedAt"].is_string(), "{revoked}");
}

#[actix_web::test]
async fn unauthenticated_calls_get_401_with_a_bearer_challenge() {
    let api = TestApi::new().await;
    for header in [
        None,
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some(format!("Basic {}", api.admin)),
        Some(api.admin.clone()),
        Some(format!("Bearer {}", "x".repeat(10_000))),
    ] {
        let mut req = TestRequest::get().uri("/api/v1/pipelines");
        if let Some(h) = &header {
            req = req.insert_header(("Authorization", h.as_str()));
        }
        let reply = api.call(req).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(reply.header("www-authenticate").as_deref(), Some("Bearer"));
        assert_eq!(
            reply.json(),
            json!({"error": {"code": "unauthorized", "message": "missing or invalid API key"}})
        );
    }
    let lower = api
        .call(
            TestRequest::get()
                .uri("/api/v1/pipelines")
                .insert_header(("Authorization", format!("bearer {}", api.viewer))),
        )
        .await;
    assert_eq!(
        lower.status,
        StatusCode::OK,
        "the scheme is case-insensitive"
    );
}

#[actix_web::test]
async fn request_ids_are_echoed_or_generated() {
    let api = TestApi::new().await;
    let echoed = api
        .call(
            TestRequest::get()
                .uri("/healthz")
                .insert_header(("x-request-id", "req-42.a_b")),
        )
        .await;
    assert_eq!(echoed.header("x-request-id").as_deref(), Some("req-42.a_b"));
    for req in [
        TestRequest::get().uri("/healthz"),
        TestRequest::get().uri("/nope"),
        TestRequest::get()
            .uri("/api/v1/pipelines")
            .insert_header(("x-request-id", "has spaces and \"quotes\"")),
    ] {
        let reply = api.call(req).await;
        let id = reply.header("x-request-id").expect("a request id");
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}

#[actix_web::test]
async fn lists_page_with_limit_and_cursor() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d", "e"] {
        ids.push(api.pipeline(&c, json!({"name": name})).await);
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/pipelines?limit=2".to_owned();
    loop {
        let page = api.get(&path, Role::Viewer).await.json();
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(id_of));
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/pipelines?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, every pipeline once");
}
