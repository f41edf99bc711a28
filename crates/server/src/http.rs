//! The HTTP server: `sluice-http`'s API and `sluice-web`'s dashboard on one
//! actix-web server and port.

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::HttpServer;
use actix_web::dev::Server;
use sluice_application::usecases::UseCases;

/// Binds `addr` and returns the (not yet polled) server with the addresses
/// it listens on (port 0 picks a free one). Two HTTP worker threads are
/// plenty: handlers are async and the heavy work runs in the engine's workers.
///
/// A client must send its request head within 5 s of connecting (actix's
/// `client_request_timeout`, answered 408) and its body within
/// `body_timeout`; an idle keep-alive connection is closed after 5 s. Many
/// thousands of connections are held at once (actix's default of 25,000 per
/// worker), within the process's open-files limit, which start-up raises
/// to its hard limit.
pub fn serve(
    app: UseCases,
    addr: SocketAddr,
    body_timeout: Duration,
) -> std::io::Result<(Server, Vec<SocketAddr>)> {
    let state = sluice_http::ApiState::new(app).with_body_timeout(body_timeout);
    let bound =
        HttpServer::new(move || sluice_http::api_with(state.clone(), sluice_web::configure))
            .workers(2)
            .disable_signals()
            .shutdown_timeout(10)
            .bind(addr)?;
    let addrs = bound.addrs();
    Ok((bound.run(), addrs))
}

/// The OpenAPI document of the API.
pub fn openapi_json() -> String {
    sluice_http::openapi_json()
}
