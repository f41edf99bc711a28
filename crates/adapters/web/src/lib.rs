//! # sluice-web
//!
//! The dashboard: a second inbound adapter beside the JSON API. It is a small
//! browser client (Preact and htm, vendored) that calls the public JSON API
//! itself with the API key the user signs in with, kept in the tab's
//! `sessionStorage`. This crate only serves its files, embedded in the
//! binary at compile time, and sends a strict `Content-Security-Policy`
//! and the usual security headers with every one of them.
//!
//! It knows nothing of the application: everything the dashboard shows comes
//! through the same API, and with the same role checks, as any other client.
//!
//! ```no_run
//! # fn app() -> actix_web::App<impl actix_web::dev::ServiceFactory<actix_web::dev::ServiceRequest, Config = (), Response = actix_web::dev::ServiceResponse, Error = actix_web::Error, InitError = ()>> {
//! actix_web::App::new().configure(sluice_web::configure)
//! # }
//! ```

mod assets;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};

pub use assets::{ASSETS, Asset};

/// Where the dashboard's files are served (`/` serves its page).
pub const ASSET_BASE: &str = "/ui/";

/// The policy of every response: scripts, styles and requests only from this
/// origin, no inline script or style, no `eval`, no plugins, no framing, no
/// form posting anywhere (forms are handled by the script, so a key typed
/// before the script ran never lands in a URL), and Trusted Types enforced
/// with no policy at all, so no string can ever reach `innerHTML` and
/// friends.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'; \
     require-trusted-types-for 'script'; trusted-types 'none'";

/// The headers sent with every response of the dashboard.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    ),
    // Files change with the binary: revalidate (cheap, with the ETag).
    ("cache-control", "no-cache"),
];

/// Registers `/` (the dashboard's page) and `/ui/…` (its files).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").to(index)).service(
        web::resource(format!("{ASSET_BASE}{{path:.*}}")).to(|req: HttpRequest| async move {
            let path = req.match_info().get("path").unwrap_or_default().to_owned();
            file(&req, &path)
        }),
    );
}

async fn index(req: HttpRequest) -> HttpResponse {
    file(&req, "index.html")
}

/// A response carrying the security headers.
fn secured(status: StatusCode) -> HttpResponseBuilder {
    let mut builder = HttpResponse::build(status);
    for (name, value) in SECURITY_HEADERS {
        builder.insert_header((*name, *value));
    }
    builder
}

/// Answers `GET` or `HEAD` of one embedded file: 304 when the browser's copy
/// is current, 404 for an unknown path, 405 for other methods.
fn file(req: &HttpRequest, path: &str) -> HttpResponse {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return secured(StatusCode::METHOD_NOT_ALLOWED)
            .insert_header((header::ALLOW, "GET, HEAD"))
            .content_type("text/plain; charset=utf-8")
            .body("method not allowed\n");
    }
    let Some(asset) = assets::find(path) else {
        return secured(StatusCode::NOT_FOUND)
            .content_type("text/plain; charset=utf-8")
            .body("not found\n");
    };
    let etag = asset.etag();
    let fresh = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    let etag = HeaderValue::from_str(&etag).ok();
    let mut builder = secured(if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    });
    if let Some(etag) = etag {
        builder.insert_header((header::ETAG, etag));
    }
    if fresh {
        return builder.finish();
    }
    builder.content_type(asset.content_type).body(asset.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::{TestRequest, call_service, init_service, read_body};

    async fn get(uri: &str, etag: Option<&str>) -> (StatusCode, Vec<(String, String)>, Vec<u8>) {
        let app = init_service(actix_web::App::new().configure(configure)).await;
        let mut req = TestRequest::get().uri(uri);
        if let Some(tag) = etag {
            req = req.insert_header((header::IF_NONE_MATCH, tag));
        }
        let resp = call_service(&app, req.to_request()).await;
        let status = resp.status();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        (status, headers, read_body(resp).await.to_vec())
    }

    fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[actix_web::test]
    async fn every_answer_carries_the_security_headers() {
        for uri in ["/", "/ui/js/app.js", "/ui/app.css", "/ui/no-such-file.js"] {
            let (_, headers, _) = get(uri, None).await;
            for (name, value) in SECURITY_HEADERS {
                assert_eq!(header_of(&headers, name), Some(*value), "{uri}: {name}");
            }
        }
    }

    #[actix_web::test]
    async fn the_policy_allows_no_inline_script_and_no_eval() {
        let script = CONTENT_SECURITY_POLICY
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"))
            .expect("script-src");
        assert_eq!(script, "script-src 'self'");
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    }

    #[actix_web::test]
    async fn the_page_and_its_files_are_served_with_their_types() {
        let (status, headers, body) = get("/", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            header_of(&headers, "content-type"),
            Some("text/html; charset=utf-8")
        );
        let page = String::from_utf8(body).expect("utf-8");
        assert!(page.contains(r#"<script type="module" src="/ui/js/app.js">"#));
        assert!(
            !page.contains("<script>") && !page.contains(" style="),
            "no inline script or style in the page"
        );
        let (status, headers, _) = get("/ui/js/app.js", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            header_of(&headers, "content-type"),
            Some("text/javascript; charset=utf-8")
        );
        let (status, _, _) = get("/ui/../Cargo.toml", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[actix_web::test]
    async fn a_current_copy_is_not_sent_again() {
        let (_, headers, _) = get("/ui/app.css", None).await;
        let etag = header_of(&headers, "etag").expect("etag").to_owned();
        let (status, _, body) = get("/ui/app.css", Some(&etag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        let (status, _, _) = get("/ui/app.css", Some("\"other\"")).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[actix_web::test]
    async fn other_methods_are_refused() {
        let app = init_service(actix_web::App::new().configure(configure)).await;
        let resp = call_service(&app, TestRequest::post().uri("/").to_request()).await;
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
