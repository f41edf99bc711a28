//! The HTTP server: `sluice-http`'s API and `sluice-web`'s dashboard on one
//! actix-web server and port.

use std::net::SocketAddr;

use actix_web::HttpServer;
use actix_web::dev::Server;
use sluice_application::usecases::UseCases;

/// Binds `addr` and returns the (not yet polled) server with the addresses
/// it listens on (port 0 picks a free one). Two HTTP worker threads are
/// plenty: handlers are async and the heavy work runs in the engine's workers.
pub fn serve(app: UseCases, addr: SocketAddr) -> std::io::Result<(Server, Vec<SocketAddr>)> {
    let state = sluice_http::ApiState::new(app);
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
