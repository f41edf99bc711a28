//! The OpenAPI 3 document, generated from the handlers and wire types.
//!
//! Who may call what is not written per handler: [`OPERATION_ACTIONS`] maps
//! every authenticated operation to its domain [`Action`](sluice_domain::role::Action), and the roles,
//! the security requirement and the 401/403 responses are derived from the
//! domain's permission table, so the document cannot drift from it.

use std::sync::OnceLock;

use serde_json::json;
use sluice_domain::role::Role;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::{ApiError, ErrorBody};
use crate::routes;

/// Name of the bearer security scheme.
const SCHEME: &str = "apiKey";

pub use sluice_api_types::OPERATION_ACTIONS;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice API",
        description = "Sluice ingests files from object stores into PostgreSQL tables: connectors, pipelines, runs with progress, error exports, retry and touch-file polling.\n\nAuthenticate with `Authorization: Bearer <api key>`. Every error is `{\"error\": {\"code\", \"message\"}}`, with a `field` member naming the offending field for 400s. Lists take `?limit=` (1-200, default 50) and `?cursor=` and return `{items, nextCursor}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        routes::me::get,
        routes::api_keys::list,
        routes::api_keys::create,
        routes::api_keys::revoke,
        routes::connectors::list,
        routes::connectors::create,
        routes::connectors::get,
        routes::connectors::update,
        routes::connectors::delete,
        routes::connectors::test,
        routes::connectors::infer,
        routes::pipelines::list,
        routes::pipelines::create,
        routes::pipelines::get,
        routes::pipelines::update,
        routes::pipelines::delete,
        routes::poll::status,
        routes::poll::trigger,
        routes::runs::start,
        routes::runs::dry_run,
        routes::runs::list,
        routes::runs::get,
        routes::runs::cancel,
        routes::runs::progress,
        routes::errors::export,
        routes::runs::retry,
        routes::files::ledger,
        routes::files::forget,
        routes::files::run_files,
        routes::runs::find,
        routes::webhooks::list,
        routes::webhooks::create,
        routes::webhooks::get,
        routes::webhooks::update,
        routes::webhooks::delete,
        routes::webhooks::deliveries,
        routes::webhooks::redeliver,
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
        routes::health::openapi,
    ),
    components(schemas(ErrorBody)),
    modifiers(&DerivedFromRoles),
    tags(
        (name = "api-keys", description = "API keys (admin only)"),
        (name = "connectors", description = "Object stores holding the source files"),
        (name = "pipelines", description = "What to load, from where, into which table"),
        (name = "runs", description = "Runs, progress, error exports and retry"),
        (name = "files", description = "The file ledger: which files each pipeline has loaded, and the files each run read"),
        (name = "webhooks", description = "Signed notifications when runs start and end (admin only)"),
        (name = "polling", description = "Touch-file, new-file and scheduled polling"),
        (name = "health", description = "Liveness, readiness, metrics, this document")
    )
)]
struct ApiDoc;

/// The shared error responses: component name, description and an example body.
fn error_responses() -> [(&'static str, &'static str, ApiError); 6] {
    [
        (
            "BadRequest",
            "Bad input; `field` names it",
            ApiError::invalid("partitions", "must be between 1 and 64"),
        ),
        (
            "Unauthorized",
            "Missing, unknown or revoked API key",
            ApiError::App(sluice_application::AppError::Unauthorized),
        ),
        (
            "Forbidden",
            "The key's role may not do this",
            ApiError::App(sluice_application::AppError::Forbidden {
                role: "viewer".into(),
                action: "retry runs".into(),
            }),
        ),
        (
            "NotFound",
            "No such entity",
            ApiError::App(sluice_application::AppError::NotFound {
                entity: "run",
                id: "run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM".into(),
            }),
        ),
        (
            "PayloadTooLarge",
            "The body is too large",
            ApiError::PayloadTooLarge {
                limit: crate::request::MAX_BODY_BYTES,
            },
        ),
        (
            "UnsupportedMediaType",
            "The body is not `application/json`",
            ApiError::UnsupportedMediaType,
        ),
    ]
}

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds what follows from the role table and the operation's inputs:
/// security, roles in the description, and the shared error responses.
struct DerivedFromRoles;

impl DerivedFromRoles {
    fn apply(method: &str, path: &str, op: &mut Operation) {
        let action = OPERATION_ACTIONS
            .iter()
            .find(|(m, p, _)| *m == method && *p == path)
            .map(|(_, _, a)| *a);
        let mut add = |status: &str, name: &str| {
            op.responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
        };
        let has_params = path.contains('{');
        if has_params {
            add("404", "NotFound");
        }
        if let Some(action) = action {
            add("401", "Unauthorized");
            if action.allowed_roles().len() < Role::ALL.len() {
                add("403", "Forbidden");
            }
        }
        let has_query = op.parameters.as_ref().is_some_and(|ps| {
            ps.iter()
                .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
        });
        if op.request_body.is_some() {
            add("400", "BadRequest");
            add("413", "PayloadTooLarge");
            add("415", "UnsupportedMediaType");
        } else if has_query {
            add("400", "BadRequest");
        }
        match action {
            Some(action) => {
                let roles = format!("Roles: {}.", roles_text(action.allowed_roles()));
                op.description = Some(match op.description.take() {
                    Some(d) if !d.is_empty() => format!("{d}\n\n{roles}"),
                    _ => roles,
                });
                op.security = Some(vec![SecurityRequirement::new(SCHEME, Vec::<String>::new())]);
            }
            // No authentication: an empty requirement list.
            None => op.security = Some(Vec::new()),
        }
    }
}

impl Modify for DerivedFromRoles {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.security_schemes.insert(
            SCHEME.to_owned(),
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: `Authorization: Bearer sk_…`"))
                    .build(),
            ),
        );
        for (name, description, example) in error_responses() {
            let body = json!(example.body());
            components.responses.insert(
                name.to_owned(),
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("ErrorBody")))
                                .example(Some(body))
                                .build(),
                        )
                        .build(),
                ),
            );
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let ops = [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
                ("put", &mut item.put),
            ];
            for (method, op) in ops {
                if let Some(op) = op {
                    Self::apply(method, path, op);
                }
            }
        }
    }
}

/// The OpenAPI document as pretty JSON with a final newline: what
/// `/api/v1/openapi.json` serves and `docs/openapi.json` holds.
pub fn openapi_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| match ApiDoc::openapi().to_pretty_json() {
        Ok(mut text) => {
            text.push('\n');
            text
        }
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document could not be serialised");
            "{}\n".to_owned()
        }
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operations() -> Vec<(String, String, serde_json::Value)> {
        let doc: serde_json::Value = serde_json::from_str(&openapi_json()).expect("json");
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("item") {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
        out
    }

    #[test]
    fn every_authenticated_operation_is_in_the_table_and_the_document() {
        let ops = operations();
        for (method, path, _) in OPERATION_ACTIONS {
            assert!(
                ops.iter().any(|(m, p, _)| m == method && p == path),
                "{method} {path} is in the table but not in the document"
            );
        }
        let public = ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"];
        for (method, path, op) in &ops {
            let secured = OPERATION_ACTIONS
                .iter()
                .any(|(m, p, _)| m == method && p == path);
            assert_eq!(secured, !public.contains(&path.as_str()), "{method} {path}");
            assert_eq!(
                op["security"].as_array().map(Vec::is_empty),
                Some(!secured),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn retry_documents_the_reference_page_codes() {
        let ops = operations();
        let (_, _, retry) = ops
            .iter()
            .find(|(m, p, _)| m == "post" && p.ends_with("/retry"))
            .expect("retry");
        for code in ["201", "401", "403", "404", "422"] {
            assert!(retry["responses"].get(code).is_some(), "retry lacks {code}");
        }
        assert!(
            retry["description"]
                .as_str()
                .is_some_and(|d| d.ends_with("Roles: admin, editor."))
        );
    }
}
