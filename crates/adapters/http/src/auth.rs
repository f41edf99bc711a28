//! Authentication: `Authorization: Bearer <api key>` → the caller's principal.
//!
//! The extractor only authenticates; every use case checks the caller's role
//! itself, so a route registered with the wrong guard cannot widen access.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use sluice_application::AppError;
use sluice_application::usecases::Principal;

use crate::error::ApiError;
use crate::state::ApiState;

/// An authenticated caller. Extracting it answers 401 when the key is
/// missing, unknown or revoked.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// The secret of an `Authorization: Bearer …` header, if there is one.
fn bearer_secret(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim().to_owned())
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = ApiState::of(req);
        let secret = bearer_secret(req);
        Box::pin(async move {
            let state = state?;
            let Some(secret) = secret else {
                return Err(AppError::Unauthorized.into());
            };
            Ok(Caller(state.use_cases().authenticate(Some(&secret)).await?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn secret_of(value: &str) -> Option<String> {
        bearer_secret(
            &TestRequest::default()
                .insert_header((header::AUTHORIZATION, value))
                .to_http_request(),
        )
    }

    #[test]
    fn reads_bearer_secrets_only() {
        assert_eq!(secret_of("Bearer sk_abc").as_deref(), Some("sk_abc"));
        assert_eq!(secret_of("bearer  sk_abc ").as_deref(), Some("sk_abc"));
        assert_eq!(secret_of("Basic dXNlcjpwYXNz"), None);
        assert_eq!(secret_of("sk_abc"), None);
        assert_eq!(
            bearer_secret(&TestRequest::default().to_http_request()),
            None
        );
    }
}
