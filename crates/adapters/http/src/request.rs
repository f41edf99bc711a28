//! Reading requests: JSON bodies, ids in paths and list parameters, each
//! turned into a precise 400 (or 413, 415) instead of actix's plain-text errors.

use std::str::FromStr;

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sluice_application::AppError;
use sluice_application::ports::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageRequest};
use sluice_application::usecases::from_json;
use sluice_domain::DomainError;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::state::{ApiState, DEFAULT_BODY_TIMEOUT};

/// Largest accepted request body. A pipeline with the maximum 1,000 columns
/// and long patterns stays well below it.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Longest accepted `cursor` (cursors are ids or short opaque tokens).
const MAX_CURSOR_LEN: usize = 64;

/// True if `content_type` names JSON: `application/json` or any
/// `application/*+json` such as `application/merge-patch+json`.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads the body as a JSON value, within [`MAX_BODY_BYTES`].
pub async fn json_body(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<serde_json::Value, ApiError> {
    if !is_json(content_type(req)) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = read_body(req, payload).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("body", "a JSON body is required"));
    }
    parse_json(&body)
}

/// Reads an optional JSON body: `None` when the request has none (or only
/// whitespace), whatever its `Content-Type`; otherwise as [`json_body`].
pub async fn optional_json_body(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Option<serde_json::Value>, ApiError> {
    let body = read_body(req, payload).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !is_json(content_type(req)) {
        return Err(ApiError::UnsupportedMediaType);
    }
    parse_json(&body).map(Some)
}

fn content_type(req: &HttpRequest) -> &str {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn parse_json(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("malformed JSON: {e}")))
}

/// Reads the whole body, within [`MAX_BODY_BYTES`] and the state's body
/// timeout ([`ApiState::with_body_timeout`]).
async fn read_body(req: &HttpRequest, payload: web::Payload) -> Result<Vec<u8>, ApiError> {
    let timeout = ApiState::of(req).map_or(DEFAULT_BODY_TIMEOUT, |s| s.body_timeout());
    actix_web::rt::time::timeout(timeout, read_body_whole(req, payload))
        .await
        .map_err(|_| ApiError::RequestTimeout {
            seconds: timeout.as_secs().max(1),
        })?
}

async fn read_body_whole(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::invalid("body", "the body could not be read"))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Decodes a JSON body as `T`; errors name the field as a JSON path.
pub async fn decode_body<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<T, ApiError> {
    let value = json_body(req, payload).await?;
    Ok(from_json(value)?)
}

/// Parses the path parameter `name` as a typed id. A malformed id names
/// nothing, so it is a 404 like any other id that names nothing, with a
/// message saying what is wrong with it (decision 0007).
pub fn path_id<T>(req: &HttpRequest, name: &str) -> Result<T, ApiError>
where
    T: FromStr<Err = DomainError>,
{
    let raw = req
        .match_info()
        .get(name)
        .ok_or_else(|| ApiError::internal(format!("route has no `{name}` parameter")))?;
    T::from_str(raw).map_err(|e| ApiError::MalformedId {
        message: format!("not found: {e} (path parameter `{name}`)"),
    })
}

/// `?limit=&cursor=` of every list endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// The `nextCursor` of the previous page (letters, digits, `_` and `-`).
    #[param(pattern = "^[A-Za-z0-9_-]{0,64}$", max_length = 64)]
    cursor: Option<String>,
}

/// Reads the list parameters from the query string.
pub fn page_request(req: &HttpRequest) -> Result<PageRequest, ApiError> {
    page_request_from(list_params(req)?)
}

/// The list parameters, or `None` when the query names neither `limit` nor
/// `cursor` (for an endpoint that answers the whole list unless asked for a
/// page).
pub fn optional_page_request(req: &HttpRequest) -> Result<Option<PageRequest>, ApiError> {
    let params = list_params(req)?;
    if params.limit.is_none() && params.cursor.is_none() {
        return Ok(None);
    }
    page_request_from(params).map(Some)
}

fn list_params(req: &HttpRequest) -> Result<ListParams, ApiError> {
    Ok(web::Query::<ListParams>::from_query(req.query_string())
        .map_err(|_| ApiError::invalid("query", "malformed query string"))?
        .into_inner())
}

fn page_request_from(params: ListParams) -> Result<PageRequest, ApiError> {
    let limit = match params.limit.as_deref() {
        None => DEFAULT_PAGE_SIZE,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("must be an integer from 1 to {MAX_PAGE_SIZE}"),
                )
            })?,
    };
    let cursor = match params.cursor {
        Some(c) if c.is_empty() => None,
        // Cursors are ids: anything else cannot have come from this API. The
        // same rule is declared in the OpenAPI document.
        Some(c)
            if c.len() > MAX_CURSOR_LEN
                || !c
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-') =>
        {
            return Err(ApiError::invalid(
                "cursor",
                "is not a cursor returned by this endpoint",
            ));
        }
        other => other,
    };
    Ok(PageRequest { limit, cursor })
}

/// Maps a 400 on a secret to a fixed message: serde's messages quote the
/// offending value, which for credentials would echo a secret.
pub fn hide_secret_values(e: ApiError) -> ApiError {
    match e {
        ApiError::App(AppError::Invalid { field, .. }) if field.starts_with("credentials") => {
            ApiError::invalid(
                field,
                "credentials must be an object whose values are strings",
            )
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn field_of(e: ApiError) -> String {
        match e {
            ApiError::App(AppError::Invalid { field, .. }) => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json(""));
    }

    #[test]
    fn list_parameters() {
        let page = |q: &str| page_request(&TestRequest::with_uri(q).to_http_request());
        assert_eq!(page("/x").expect("default"), PageRequest::default());
        let p = page("/x?limit=200&cursor=pipe_1").expect("page");
        assert_eq!((p.limit, p.cursor.as_deref()), (200, Some("pipe_1")));
        for bad in ["/x?limit=0", "/x?limit=201", "/x?limit=abc", "/x?limit=-1"] {
            assert_eq!(field_of(page(bad).expect_err(bad)), "limit", "{bad}");
        }
        let long = format!("/x?cursor={}", "a".repeat(300));
        assert_eq!(field_of(page(&long).expect_err("long")), "cursor");
        assert_eq!(
            field_of(page("/x?limit=1&limit=2").expect_err("dup")),
            "query"
        );
    }
}
