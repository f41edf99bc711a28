//! Request logging and counting: one `tracing` event per request with the
//! method, route pattern, status, latency and request id, and the
//! `x-request-id` header echoed (or generated) on every response.
//!
//! Nothing here reads the `Authorization` header, the query string or the
//! body, so credentials cannot reach a log line through it.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use rand::Rng;
use tracing::Instrument;

use crate::state::ApiState;

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id that is echoed rather than replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The caller's request id if it is short and plain (so it is safe to log and
/// echo), otherwise a new random one.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(new_request_id, str::to_owned)
}

fn new_request_id() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The middleware (for `actix_web::middleware::from_fn`).
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().as_str().to_owned();
    let metrics = req
        .app_data::<web::Data<ApiState>>()
        .map(|s| s.metrics().clone());
    let span = tracing::info_span!("http_request", request_id = %id, method = %method);
    let result = next.call(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let _entered = span.enter();
    match result {
        Ok(mut res) => {
            let route = res.request().match_pattern();
            let status = res.status().as_u16();
            if let Some(m) = &metrics {
                m.record(&method, route.as_deref(), status, elapsed);
            }
            let route = route.as_deref().unwrap_or(crate::metrics::UNMATCHED_ROUTE);
            if status >= 500 {
                tracing::warn!(%method, route, status, latency_ms, request_id = %id, "request");
            } else {
                tracing::info!(%method, route, status, latency_ms, request_id = %id, "request");
            }
            if let Ok(v) = HeaderValue::from_str(&id) {
                res.headers_mut().insert(REQUEST_ID, v);
            }
            Ok(res)
        }
        Err(e) => {
            // Handlers answer errors themselves; this is an error of the
            // framework itself (the response is rendered by actix).
            tracing::warn!(%method, latency_ms, request_id = %id, error = %e, "request failed before a response");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn id_for(value: Option<&str>) -> String {
        let mut req = TestRequest::default();
        if let Some(v) = value {
            req = req.insert_header((REQUEST_ID, v));
        }
        request_id(&req.to_srv_request())
    }

    #[test]
    fn plain_ids_are_echoed_others_replaced() {
        assert_eq!(id_for(Some("abc-123_x.y:z")), "abc-123_x.y:z");
        for bad in [None, Some(""), Some("has space"), Some("{\"json\":1}")] {
            let id = id_for(bad);
            assert_eq!(id.len(), 32, "{bad:?}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_eq!(id_for(Some(&"a".repeat(129))).len(), 32);
    }
}
