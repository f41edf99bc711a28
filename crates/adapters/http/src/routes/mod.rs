//! The route table. `/pipelines/poll` is registered before `/pipelines/{id}`
//! so that it wins; every resource answers a JSON 405 (with `Allow`) for
//! methods it lacks, and unknown paths fall through to the app's JSON 404.

use actix_web::{HttpResponse, Resource, web};

use crate::error::ApiError;

pub mod api_keys;
pub mod connectors;
pub mod errors;
pub mod files;
pub mod health;
pub mod me;
pub mod pipelines;
pub mod poll;
pub mod runs;
pub mod webhooks;

/// Base path of the API.
pub const BASE: &str = "/api/v1";

/// A resource whose unknown methods get a JSON 405 listing `allow`.
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow })
    }))
}

/// Answers paths that no route matches.
pub async fn route_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz", "GET").route(web::get().to(health::healthz)))
        .service(resource("/readyz", "GET").route(web::get().to(health::readyz)))
        .service(resource("/metrics", "GET").route(web::get().to(health::metrics)))
        .service(
            web::scope(BASE)
                .service(resource("/openapi.json", "GET").route(web::get().to(health::openapi)))
                .service(resource("/me", "GET").route(web::get().to(me::get)))
                .service(
                    resource("/api-keys", "GET, POST")
                        .route(web::get().to(api_keys::list))
                        .route(web::post().to(api_keys::create)),
                )
                .service(
                    resource("/api-keys/{id}", "DELETE").route(web::delete().to(api_keys::revoke)),
                )
                .service(
                    resource("/connectors", "GET, POST")
                        .route(web::get().to(connectors::list))
                        .route(web::post().to(connectors::create)),
                )
                .service(
                    resource("/connectors/{id}", "GET, PATCH, DELETE")
                        .route(web::get().to(connectors::get))
                        .route(web::patch().to(connectors::update))
                        .route(web::delete().to(connectors::delete)),
                )
                .service(
                    resource("/connectors/{id}/test", "POST")
                        .route(web::post().to(connectors::test)),
                )
                .service(
                    resource("/connectors/{id}/infer", "POST")
                        .route(web::post().to(connectors::infer)),
                )
                // Before `/pipelines/{id}`, which would otherwise match `poll`.
                .service(
                    resource("/pipelines/poll", "GET, POST")
                        .route(web::get().to(poll::status))
                        .route(web::post().to(poll::trigger)),
                )
                .service(
                    resource("/pipelines", "GET, POST")
                        .route(web::get().to(pipelines::list))
                        .route(web::post().to(pipelines::create)),
                )
                .service(
                    resource("/pipelines/{id}", "GET, PATCH, DELETE")
                        .route(web::get().to(pipelines::get))
                        .route(web::patch().to(pipelines::update))
                        .route(web::delete().to(pipelines::delete)),
                )
                .service(
                    resource("/pipelines/{id}/runs", "GET, POST")
                        .route(web::get().to(runs::list))
                        .route(web::post().to(runs::start)),
                )
                .service(
                    resource("/pipelines/{id}/files", "GET, DELETE")
                        .route(web::get().to(files::ledger))
                        .route(web::delete().to(files::forget)),
                )
                .service(
                    resource("/pipelines/{id}/runs/{runId}/files", "GET")
                        .route(web::get().to(files::run_files)),
                )
                .service(
                    resource("/pipelines/{id}/dry-run", "POST")
                        .route(web::post().to(runs::dry_run)),
                )
                .service(
                    resource("/pipelines/{id}/runs/{runId}", "GET").route(web::get().to(runs::get)),
                )
                .service(
                    resource("/pipelines/{id}/runs/{runId}/cancel", "POST")
                        .route(web::post().to(runs::cancel)),
                )
                .service(
                    resource("/pipelines/{id}/runs/{runId}/progress", "GET")
                        .route(web::get().to(runs::progress)),
                )
                .service(
                    resource("/pipelines/{id}/runs/{runId}/errors", "GET")
                        .route(web::get().to(errors::export)),
                )
                .service(
                    resource("/pipelines/{id}/runs/{runId}/retry", "POST")
                        .route(web::post().to(runs::retry)),
                )
                .service(resource("/runs/{runId}", "GET").route(web::get().to(runs::find)))
                .service(
                    resource("/webhooks", "GET, POST")
                        .route(web::get().to(webhooks::list))
                        .route(web::post().to(webhooks::create)),
                )
                .service(
                    resource("/webhooks/{id}", "GET, PATCH, DELETE")
                        .route(web::get().to(webhooks::get))
                        .route(web::patch().to(webhooks::update))
                        .route(web::delete().to(webhooks::delete)),
                )
                .service(
                    resource("/webhooks/{id}/deliveries", "GET")
                        .route(web::get().to(webhooks::deliveries)),
                )
                .service(
                    resource("/webhooks/{id}/deliveries/{deliveryId}/redeliver", "POST")
                        .route(web::post().to(webhooks::redeliver)),
                ),
        );
}
