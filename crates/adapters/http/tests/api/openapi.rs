//! The OpenAPI document: served, and committed as `docs/openapi.json`.

use std::path::PathBuf;

use actix_web::http::{Method, StatusCode};

use crate::support::TestApi;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../docs/openapi.json")
}

/// Fails when `docs/openapi.json` differs from the code's document. With
/// `SLUICE_UPDATE_OPENAPI=1` it rewrites the file instead.
#[test]
fn committed_document_matches_the_code() {
    let generated = sluice_http::openapi_json();
    let path = committed_path();
    if std::env::var_os("SLUICE_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write docs/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date with the code.\n\
         Regenerate it with:\n\
         \n    SLUICE_UPDATE_OPENAPI=1 cargo test -p sluice-http --test api committed_document_matches_the_code\n\
         \n(or `cargo xtask openapi` once the xtask has it), then commit docs/openapi.json."
    );
}

#[actix_web::test]
async fn the_document_is_served() {
    let api = TestApi::new().await;
    let reply = api
        .send(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), sluice_http::openapi_json());
    let doc = reply.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/api/v1/pipelines/{id}/runs/{runId}/progress",
        "/api/v1/pipelines/{id}/runs/{runId}/errors",
        "/api/v1/pipelines/{id}/runs/{runId}/retry",
        "/api/v1/pipelines/poll",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
}
