//! # sluice-http
//!
//! The HTTP shell of Sluice on actix-web: the API `docs/api.md` describes
//! (and `docs/openapi.json` lists operation by operation). It
//! authenticates callers, decodes and validates input into precise 400s,
//! calls one use case per route, maps [`sluice_application::AppError`] to
//! statuses in one place ([`error`]), streams error exports, logs and counts
//! requests, and serves its own OpenAPI document.
//!
//! The composition root builds the actix app per worker:
//!
//! ```no_run
//! # async fn serve(use_cases: sluice_application::usecases::UseCases, addr: std::net::SocketAddr) -> std::io::Result<()> {
//! let state = sluice_http::ApiState::new(use_cases);
//! actix_web::HttpServer::new(move || sluice_http::api(state.clone()))
//!     .bind(addr)?
//!     .run()
//!     .await
//! # }
//! ```

pub mod auth;
pub mod dto;
pub mod error;
pub mod export;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod request;
pub mod routes;
pub mod state;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::web;

pub use error::{ApiError, ErrorBody};
pub use metrics::HttpMetrics;
pub use openapi::openapi_json;
pub use state::ApiState;

/// Registers the state and every route on a service config, without the
/// request logging middleware and the JSON 404 fallback (use [`api`] for
/// those), for embedding the API in another actix app.
pub fn configure(state: ApiState) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        cfg.app_data(web::Data::new(state.clone()));
        routes::configure(cfg);
    }
}

/// The whole API as an actix app: state, routes, request logging and
/// metrics, and JSON 404s for unknown paths. Call it inside
/// `HttpServer::new` with a clone of one [`ApiState`].
pub fn api(
    state: ApiState,
) -> actix_web::App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    api_with(state, |_| {})
}

/// [`api`] with more routes registered beside the API's (another inbound
/// adapter, such as the dashboard), under the same request logging and
/// metrics and the same JSON 404 for paths no one serves.
pub fn api_with(
    state: ApiState,
    more: impl FnOnce(&mut web::ServiceConfig),
) -> actix_web::App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let mut headers = DefaultHeaders::new();
    for header in SECURITY_HEADERS {
        headers = headers.add(*header);
    }
    actix_web::App::new()
        .configure(configure(state))
        .configure(more)
        .default_service(web::to(routes::route_not_found))
        .wrap(headers)
        .wrap(from_fn(logging::observe))
}

/// Headers every response carries unless its route set its own (the
/// dashboard sends a stricter set for its page): nothing is sniffed, framed,
/// cached or sent on as a referrer, and no active content runs from an API
/// answer opened in a browser.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];
