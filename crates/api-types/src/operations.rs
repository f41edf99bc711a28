//! Who may call what: every authenticated operation of the API with the
//! domain [`Action`] it performs. The server derives the roles, security
//! and 401/403 answers of its OpenAPI document from this table; a client
//! uses it to say which role a refused call needs.

use sluice_domain::role::{Action, Role};

/// Every authenticated operation: method, path, and the action it performs.
pub const OPERATION_ACTIONS: &[(&str, &str, Action)] = &[
    ("get", "/api/v1/me", Action::ReadOwnKey),
    ("get", "/api/v1/api-keys", Action::ListApiKeys),
    ("post", "/api/v1/api-keys", Action::ManageApiKeys),
    ("delete", "/api/v1/api-keys/{id}", Action::ManageApiKeys),
    ("get", "/api/v1/connectors", Action::ReadConnectors),
    ("post", "/api/v1/connectors", Action::WriteConnectors),
    ("get", "/api/v1/connectors/{id}", Action::ReadConnectors),
    ("patch", "/api/v1/connectors/{id}", Action::WriteConnectors),
    ("delete", "/api/v1/connectors/{id}", Action::WriteConnectors),
    (
        "post",
        "/api/v1/connectors/{id}/test",
        Action::TestConnector,
    ),
    (
        "post",
        "/api/v1/connectors/{id}/infer",
        Action::WritePipelines,
    ),
    ("get", "/api/v1/pipelines", Action::ReadPipelines),
    ("post", "/api/v1/pipelines", Action::WritePipelines),
    ("get", "/api/v1/pipelines/{id}", Action::ReadPipelines),
    ("patch", "/api/v1/pipelines/{id}", Action::WritePipelines),
    ("delete", "/api/v1/pipelines/{id}", Action::WritePipelines),
    ("get", "/api/v1/pipelines/poll", Action::ReadPolling),
    ("post", "/api/v1/pipelines/poll", Action::TriggerPolling),
    ("post", "/api/v1/pipelines/{id}/runs", Action::StartRun),
    ("get", "/api/v1/pipelines/{id}/files", Action::ReadRuns),
    ("delete", "/api/v1/pipelines/{id}/files", Action::StartRun),
    (
        "get",
        "/api/v1/pipelines/{id}/runs/{runId}/files",
        Action::ReadRuns,
    ),
    ("post", "/api/v1/pipelines/{id}/dry-run", Action::StartRun),
    ("get", "/api/v1/pipelines/{id}/runs", Action::ReadRuns),
    (
        "get",
        "/api/v1/pipelines/{id}/runs/{runId}",
        Action::ReadRuns,
    ),
    (
        "post",
        "/api/v1/pipelines/{id}/runs/{runId}/cancel",
        Action::CancelRun,
    ),
    (
        "get",
        "/api/v1/pipelines/{id}/runs/{runId}/progress",
        Action::ReadProgress,
    ),
    (
        "get",
        "/api/v1/pipelines/{id}/runs/{runId}/errors",
        Action::ReadErrors,
    ),
    (
        "post",
        "/api/v1/pipelines/{id}/runs/{runId}/retry",
        Action::RetryRun,
    ),
    ("get", "/api/v1/runs/{runId}", Action::ReadRuns),
    ("get", "/api/v1/webhooks", Action::ManageWebhooks),
    ("post", "/api/v1/webhooks", Action::ManageWebhooks),
    ("get", "/api/v1/webhooks/{id}", Action::ManageWebhooks),
    ("patch", "/api/v1/webhooks/{id}", Action::ManageWebhooks),
    ("delete", "/api/v1/webhooks/{id}", Action::ManageWebhooks),
    (
        "get",
        "/api/v1/webhooks/{id}/deliveries",
        Action::ManageWebhooks,
    ),
    (
        "post",
        "/api/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver",
        Action::ManageWebhooks,
    ),
];

/// The roles that may call `method` on the path template `path`
/// (`/api/v1/pipelines/{id}/runs`); `None` for an operation without a key.
pub fn allowed_roles(method: &str, path: &str) -> Option<&'static [Role]> {
    OPERATION_ACTIONS
        .iter()
        .find(|(m, p, _)| m.eq_ignore_ascii_case(method) && *p == path)
        .map(|(_, _, action)| action.allowed_roles())
}
