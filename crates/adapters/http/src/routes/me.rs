//! `/me`: who the caller is, so that a client (the dashboard) can show only
//! what the caller's role may do. The server still checks every request.

use actix_web::HttpResponse;
use sluice_domain::role::Action;

use crate::auth::Caller;
use crate::dto::WhoAmI;
use crate::error::ApiError;

/// The caller's key and role.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    operation_id = "whoAmI",
    tag = "api-keys",
    responses((status = 200, description = "The key used and its role", body = WhoAmI))
)]
pub async fn get(Caller(who): Caller) -> Result<HttpResponse, ApiError> {
    who.require(Action::ReadOwnKey)?;
    Ok(HttpResponse::Ok().json(WhoAmI {
        key_id: who.key_id,
        role: who.role,
    }))
}
