//! `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use serde_json::json;
use sluice_application::testing::InMemoryStore;
use sluice_domain::role::Role;

use crate::support::{RunEnd, RunPlan, TestApi};

#[actix_web::test]
async fn liveness_and_readiness() {
    let api = TestApi::new().await;
    let live = api.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (live.status, live.json()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let ready = api.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (ready.status, ready.json()),
        (StatusCode::OK, json!({"status": "ready"}))
    );
}

#[actix_web::test]
async fn metrics_count_runs_by_status_and_requests_by_route() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let p = api.pipeline(&c, json!({})).await;
    api.run(&p, RunPlan::single(1, vec![], RunEnd::Fail)).await;
    api.get(&format!("/api/v1/pipelines/{p}"), Role::Viewer)
        .await;
    api.get(&format!("/api/v1/pipelines/{p}"), Role::Viewer)
        .await;
    api.get("/api/v1/pipelines/nope", Role::Viewer).await;
    api.get("/no/such/route", Role::Viewer).await;
    let reply = api.send(Method::GET, "/metrics", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4"))
    );
    let text = reply.text();
    for line in [
        "sluice_store_up 1",
        "sluice_runs{status=\"failed\"} 1",
        "sluice_runs{status=\"pending\"} 0",
        "sluice_runs{status=\"completed_with_errors\"} 0",
        "sluice_http_requests_total{method=\"GET\",route=\"/api/v1/pipelines/{id}\",status=\"200\"} 2",
        "sluice_http_requests_total{method=\"GET\",route=\"/api/v1/pipelines/{id}\",status=\"404\"} 1",
        "sluice_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
        "sluice_http_requests_total{method=\"POST\",route=\"/api/v1/pipelines\",status=\"201\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
    assert!(!text.contains(&p), "metrics carry route patterns, not ids");
}

/// A run store whose database is down, with a message naming a host (which
/// must not reach anonymous callers).
fn database_down() -> Arc<InMemoryStore> {
    Arc::new(InMemoryStore::unavailable(
        "connection refused by db.internal port 5432",
    ))
}

#[actix_web::test]
async fn a_database_that_is_down_makes_readyz_503_without_details() {
    let api = TestApi::with_ports(|ports| ports.runs = database_down()).await;
    let ready = api.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready.json(),
        json!({"error": {"code": "service_unavailable", "message": "service unavailable: the database does not answer"}})
    );
    let live = api.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        live.status,
        StatusCode::OK,
        "liveness does not depend on the database"
    );
    let metrics = api.send(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.text().lines().any(|l| l == "sluice_store_up 0"));
    let run = api
        .get(
            "/api/v1/pipelines/pipe_01J9Z8Y7X6W5V4T3S2R1Q0P9NM/runs/run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM",
            Role::Viewer,
        )
        .await;
    assert_eq!(run.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(run.json()["error"]["code"], "service_unavailable");
}
