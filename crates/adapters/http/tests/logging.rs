//! Request logging: one event per request with method, route pattern,
//! status, latency and request id, and never a credential.
//!
//! A test binary of its own: it captures logs with a thread-scoped subscriber,
//! and tracing caches callsite interest process-wide, so tests running on
//! other threads of the same process could make it miss events.

#[allow(dead_code)]
#[path = "api/support.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use actix_web::test::TestRequest;
use serde_json::json;

use support::{SECRET_VALUES, TestApi};

/// A log sink shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("sink").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("sink")).into_owned()
    }
}

#[actix_web::test]
async fn requests_are_logged_without_credentials() {
    let sink = Captured::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // The actix test runtime is single-threaded: a thread default sees every event.
    let _guard = tracing::subscriber::set_default(subscriber);
    let api = TestApi::new().await;
    let connector = api.connector("Production S3").await;
    let reply = api
        .call(
            TestRequest::get()
                .uri(&format!("/api/v1/connectors/{connector}?limit=5"))
                .insert_header(("Authorization", format!("Bearer {}", api.viewer)))
                .insert_header(("x-request-id", "trace-me-123")),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200);
    api.call(
        TestRequest::post()
            .uri("/api/v1/connectors")
            .insert_header(("Authorization", format!("Bearer {}", api.admin)))
            .set_json(json!({"name": "x", "type": "s3", "credentials": {"k": SECRET_VALUES[1]}})),
    )
    .await;
    let logs = sink.text();
    let line = logs
        .lines()
        .find(|l| l.contains("request_id=trace-me-123") && l.contains("status=200"))
        .unwrap_or_else(|| panic!("no access line in\n{logs}"));
    for part in [
        "method=GET",
        "route=\"/api/v1/connectors/{id}\"",
        "latency_ms=",
    ] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
    assert!(
        logs.contains("route=\"/api/v1/connectors\"") && logs.contains("status=400"),
        "the rejected create is logged too:\n{logs}"
    );
    for secret in [&api.admin, &api.editor, &api.viewer]
        .into_iter()
        .map(String::as_str)
        .chain(SECRET_VALUES)
    {
        assert!(
            !logs.contains(secret),
            "a credential reached the log:\n{logs}"
        );
    }
    assert!(!logs.to_ascii_lowercase().contains("authorization"));
}
