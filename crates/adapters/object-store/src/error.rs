//! Translates `object_store` errors into [`SourceError`]s in plain words.
//!
//! `object_store` maps only some HTTP statuses to typed variants (and none for
//! list requests, which arrive as `Generic`), and its retry error type is
//! private. So besides the typed variants we read the error's text for the
//! HTTP status and the S3/Azure XML `<Code>`, and walk the source chain for
//! the public `HttpError` (connect, timeout) and `std::io::Error` (local
//! files). Any text taken from the driver passes through the connector's
//! [`Redactor`] before it reaches a message.

use std::error::Error as StdError;
use std::io;

use object_store::client::{HttpError, HttpErrorKind};
use sluice_application::ports::SourceError;

use crate::secret::Redactor;

/// Longest driver detail kept in a message.
const MAX_DETAIL: usize = 300;

/// What an operation was aimed at, for the wording of its error.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    /// The bucket, container, root or server as a whole (list, check).
    Store,
    /// One object.
    Object(&'a str),
}

/// The connector an error happened on: how to name it, and what to scrub.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorContext<'a> {
    /// A description without secrets, e.g. "s3 bucket `raw` at http://…".
    pub location: &'a str,
    /// Where requests go, for "cannot connect to …" messages.
    pub endpoint: &'a str,
    /// The connector's credential values.
    pub redactor: &'a Redactor,
}

/// Maps one `object_store` error.
pub(crate) fn map_error(
    err: &object_store::Error,
    target: Target<'_>,
    ctx: &ErrorContext<'_>,
) -> SourceError {
    let text = err.to_string();
    let code = xml_code(&text);
    let status = http_status(&text);

    // Connectivity first: these carry no status and no code.
    if let Some(kind) = http_error_kind(err) {
        match kind {
            HttpErrorKind::Connect => {
                return SourceError::Unreachable(format!(
                    "cannot connect to {} ({})",
                    ctx.endpoint,
                    innermost(err, ctx.redactor)
                ));
            }
            HttpErrorKind::Timeout | HttpErrorKind::Interrupted => {
                return SourceError::Unreachable(format!(
                    "{} did not answer in time ({})",
                    ctx.endpoint,
                    innermost(err, ctx.redactor)
                ));
            }
            _ => {}
        }
    }

    if let Some(e) = by_code(code.as_deref(), target, ctx) {
        return e;
    }
    match err {
        object_store::Error::NotFound { .. } => return not_found(target, ctx),
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => return denied(ctx, code.as_deref()),
        object_store::Error::InvalidPath { .. } => {
            return SourceError::InvalidConfig(match target {
                Target::Object(key) => format!("`{key}` is not a valid object key"),
                Target::Store => "the prefix is not a valid key prefix".to_owned(),
            });
        }
        _ => {}
    }
    match status {
        Some(404) => return not_found(target, ctx),
        Some(401 | 403) => return denied(ctx, code.as_deref()),
        _ => {}
    }
    if let Some(kind) = io_error_kind(err) {
        match kind {
            io::ErrorKind::NotFound => return not_found(target, ctx),
            io::ErrorKind::PermissionDenied => {
                return SourceError::PermissionDenied(format!(
                    "the server may not read {} (file permissions)",
                    describe(target, ctx)
                ));
            }
            _ => {}
        }
    }
    SourceError::Other(format!(
        "{} failed: {}",
        describe(target, ctx),
        summary(&text, status, code.as_deref(), ctx.redactor)
    ))
}

/// What a server answered, in one short line: the status and, from an
/// S3/Azure XML body, its code and message; the driver's whole text (cut
/// short) when there is no status. Scrubbed either way.
fn summary(text: &str, status: Option<u16>, code: Option<&str>, redactor: &Redactor) -> String {
    let Some(status) = status else {
        return detail(text, redactor);
    };
    let mut out = format!("the server answered HTTP {status}");
    if let Some(code) = code {
        out.push_str(&format!(" ({code})"));
    }
    if let Some(message) = xml_tag(text, "Message") {
        out.push_str(": ");
        out.push_str(&message);
    }
    detail(&out, redactor)
}

/// True when the error says the bucket or container itself is missing, as
/// opposed to one object in it.
pub(crate) fn store_missing(err: &object_store::Error) -> bool {
    matches!(
        xml_code(&err.to_string()).as_deref(),
        Some("NoSuchBucket" | "ContainerNotFound")
    )
}

/// S3 and Azure error codes that say more than the HTTP status.
fn by_code(code: Option<&str>, target: Target<'_>, ctx: &ErrorContext<'_>) -> Option<SourceError> {
    let code = code?;
    let location = ctx.location;
    Some(match code {
        "NoSuchBucket" | "ContainerNotFound" => {
            SourceError::NotFound(format!("{location} does not exist"))
        }
        "NoSuchKey" | "BlobNotFound" => not_found(target, ctx),
        "InvalidAccessKeyId" => SourceError::PermissionDenied(format!(
            "{location} does not know the access key id: wrong credentials \
             (error code {code})"
        )),
        "SignatureDoesNotMatch" => SourceError::PermissionDenied(format!(
            "{location} refused the request signature: wrong secret access key \
             (error code {code})"
        )),
        "ExpiredToken" | "InvalidToken" | "TokenRefreshRequired" => {
            SourceError::PermissionDenied(format!(
                "{location} refused the session token: it is invalid or has expired \
                 (error code {code})"
            ))
        }
        "AuthenticationFailed" => SourceError::PermissionDenied(format!(
            "{location} refused the credentials: wrong key or token (error code {code})"
        )),
        "AccessDenied"
        | "AllAccessDisabled"
        | "AuthorizationFailure"
        | "AuthorizationPermissionMismatch"
        | "InsufficientAccountPermissions" => denied(ctx, Some(code)),
        _ => return None,
    })
}

fn not_found(target: Target<'_>, ctx: &ErrorContext<'_>) -> SourceError {
    SourceError::NotFound(match target {
        Target::Store => format!("{} does not exist", ctx.location),
        Target::Object(key) => format!("`{key}` does not exist in {}", ctx.location),
    })
}

fn denied(ctx: &ErrorContext<'_>, code: Option<&str>) -> SourceError {
    let suffix = code
        .map(|c| format!(" (error code {c})"))
        .unwrap_or_default();
    SourceError::PermissionDenied(format!(
        "{} refused access: the credentials are wrong or lack permission{suffix}",
        ctx.location
    ))
}

fn describe(target: Target<'_>, ctx: &ErrorContext<'_>) -> String {
    match target {
        Target::Store => format!("listing {}", ctx.location),
        Target::Object(key) => format!("`{key}` in {}", ctx.location),
    }
}

/// The driver's text, scrubbed and cut to a readable length.
pub(crate) fn detail(text: &str, redactor: &Redactor) -> String {
    let scrubbed = redactor.scrub(text);
    let one_line = scrubbed.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(MAX_DETAIL) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// The deepest error's message ("Connection refused (os error 111)").
fn innermost(err: &object_store::Error, redactor: &Redactor) -> String {
    let mut cur: &(dyn StdError + 'static) = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    detail(&cur.to_string(), redactor)
}

fn http_error_kind(err: &object_store::Error) -> Option<HttpErrorKind> {
    chain(err).find_map(|e| e.downcast_ref::<HttpError>().map(HttpError::kind))
}

fn io_error_kind(err: &object_store::Error) -> Option<io::ErrorKind> {
    chain(err).find_map(|e| e.downcast_ref::<io::Error>().map(io::Error::kind))
}

fn chain(err: &object_store::Error) -> impl Iterator<Item = &(dyn StdError + 'static)> {
    let first: &(dyn StdError + 'static) = err;
    std::iter::successors(Some(first), |e| (*e).source())
}

/// The `<Code>` of an S3 or Azure XML error body.
fn xml_code(text: &str) -> Option<String> {
    xml_tag(text, "Code").filter(|c| c.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// The text of the first `<tag>…</tag>` in `text`, if not empty.
fn xml_tag(text: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let len = text.get(start..)?.find(&format!("</{tag}>"))?;
    let value = text.get(start..start + len)?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// The HTTP status in `object_store`'s "status code: 403 Forbidden" text.
fn http_status(text: &str) -> Option<u16> {
    let at = text.find("status code: ")? + "status code: ".len();
    text.get(at..at + 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_code_and_status() {
        let t = "Generic S3 error: Server returned non-2xx status code: 403 Forbidden: \
                 <?xml version=\"1.0\"?><Error><Code>InvalidAccessKeyId</Code></Error>";
        assert_eq!(xml_code(t).as_deref(), Some("InvalidAccessKeyId"));
        assert_eq!(http_status(t), Some(403));
        assert_eq!(xml_code("no code"), None);
        assert_eq!(http_status("status code: 4"), None);
    }

    #[test]
    fn detail_is_scrubbed_and_short() {
        let r = Redactor::new(["s3cr3t"]);
        let long = format!("key s3cr3t {}", "x ".repeat(400));
        let d = detail(&long, &r);
        assert!(!d.contains("s3cr3t"));
        assert!(d.chars().count() <= MAX_DETAIL + 1);
    }

    #[test]
    fn generic_error_with_no_such_bucket_is_not_found() {
        let r = Redactor::default();
        let ctx = ErrorContext {
            location: "s3 bucket `b`",
            endpoint: "http://x",
            redactor: &r,
        };
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 404 Not Found: <Code>NoSuchBucket</Code>"
                .into(),
        };
        assert_eq!(
            map_error(&e, Target::Store, &ctx),
            SourceError::NotFound("s3 bucket `b` does not exist".into())
        );
    }
}
