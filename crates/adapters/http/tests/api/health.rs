//! `/healthz`, `/readyz` and `/metrics`.

use actix_web::http::{Method, StatusCode};
use serde_json::json;
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
        "sluice_http_requests_total{method=\"GET\",route=\"/api/v1/pipelines/{id}\",status=\"400\"} 1",
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
