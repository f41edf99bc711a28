//! Roles and what each may do, as data: the role table of `docs/api.md`
//! ("Authentication and roles").

use std::fmt;

use serde::{Deserialize, Serialize};

/// The role an API key carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including API keys and connectors.
    Admin,
    /// Pipelines and runs.
    Editor,
    /// Read-only.
    Viewer,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Self::Admin, Self::Editor, Self::Viewer];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Editor => "editor",
            Self::Viewer => "viewer",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// True if this role may perform `action`.
    pub fn may(self, action: Action) -> bool {
        action.allowed_roles().contains(&self)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything the API lets a caller do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `GET /api-keys`.
    ListApiKeys,
    /// `POST /api-keys`, `DELETE /api-keys/{id}`.
    ManageApiKeys,
    /// `GET /connectors`, `GET /connectors/{id}`.
    ReadConnectors,
    /// `POST`, `PATCH`, `DELETE /connectors…`.
    WriteConnectors,
    /// `POST /connectors/{id}/test`.
    TestConnector,
    /// `GET /pipelines`, `GET /pipelines/{id}`.
    ReadPipelines,
    /// `POST`, `PATCH`, `DELETE /pipelines…`.
    WritePipelines,
    /// `GET …/runs`, `GET …/runs/{runId}`.
    ReadRuns,
    /// `POST /pipelines/{id}/runs`.
    StartRun,
    /// `POST …/runs/{runId}/cancel`.
    CancelRun,
    /// `GET …/runs/{runId}/progress`.
    ReadProgress,
    /// `GET …/runs/{runId}/errors`.
    ReadErrors,
    /// `POST …/runs/{runId}/retry`.
    RetryRun,
    /// `GET /pipelines/poll`.
    ReadPolling,
    /// `POST /pipelines/poll`.
    TriggerPolling,
    /// `GET /me`: the caller's own key id and role.
    ReadOwnKey,
    /// Creating or changing a connector that signs in with the server's own
    /// (ambient) cloud identity: those are the server's, not the connector's.
    UseAmbientCredentials,
    /// Everything under `/webhooks`: subscriptions (whose secrets sign what
    /// is sent), their delivery log, redelivery.
    ManageWebhooks,
}

const ALL_ROLES: &[Role] = &[Role::Admin, Role::Editor, Role::Viewer];
const ADMIN_EDITOR: &[Role] = &[Role::Admin, Role::Editor];
const ADMIN: &[Role] = &[Role::Admin];

impl Action {
    /// Every action, for exhaustive tests.
    pub const ALL: [Action; 18] = [
        Self::ListApiKeys,
        Self::ManageApiKeys,
        Self::ReadConnectors,
        Self::WriteConnectors,
        Self::TestConnector,
        Self::ReadPipelines,
        Self::WritePipelines,
        Self::ReadRuns,
        Self::StartRun,
        Self::CancelRun,
        Self::ReadProgress,
        Self::ReadErrors,
        Self::RetryRun,
        Self::ReadPolling,
        Self::TriggerPolling,
        Self::ReadOwnKey,
        Self::UseAmbientCredentials,
        Self::ManageWebhooks,
    ];

    /// The roles allowed to perform this action: the permission table.
    pub fn allowed_roles(self) -> &'static [Role] {
        match self {
            Self::ListApiKeys | Self::ManageApiKeys => ADMIN,
            Self::ReadConnectors => ALL_ROLES,
            Self::WriteConnectors | Self::TestConnector | Self::UseAmbientCredentials => ADMIN,
            Self::ReadPipelines => ALL_ROLES,
            Self::WritePipelines => ADMIN_EDITOR,
            Self::ReadRuns | Self::ReadProgress | Self::ReadErrors => ALL_ROLES,
            Self::StartRun | Self::CancelRun | Self::RetryRun => ADMIN_EDITOR,
            Self::ReadPolling => ALL_ROLES,
            Self::TriggerPolling => ADMIN_EDITOR,
            Self::ReadOwnKey => ALL_ROLES,
            Self::ManageWebhooks => ADMIN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_page_role_summary() {
        // The role table of docs/api.md, row by row.
        for r in Role::ALL {
            assert!(r.may(Action::ReadProgress));
            assert!(r.may(Action::ReadErrors));
            assert!(r.may(Action::ReadPolling));
        }
        assert!(Role::Admin.may(Action::RetryRun));
        assert!(Role::Editor.may(Action::RetryRun));
        assert!(!Role::Viewer.may(Action::RetryRun));
        assert!(Role::Editor.may(Action::TriggerPolling));
        assert!(!Role::Viewer.may(Action::TriggerPolling));
    }

    #[test]
    fn design_table() {
        assert!(!Role::Editor.may(Action::ManageApiKeys));
        assert!(!Role::Editor.may(Action::ListApiKeys));
        assert!(!Role::Editor.may(Action::WriteConnectors));
        assert!(!Role::Editor.may(Action::TestConnector));
        assert!(!Role::Editor.may(Action::UseAmbientCredentials));
        assert!(!Role::Editor.may(Action::ManageWebhooks));
        assert!(!Role::Viewer.may(Action::ManageWebhooks));
        assert!(Role::Viewer.may(Action::ReadConnectors));
        assert!(Role::Editor.may(Action::WritePipelines));
        assert!(!Role::Viewer.may(Action::WritePipelines));
        assert!(!Role::Viewer.may(Action::StartRun));
        assert!(!Role::Viewer.may(Action::CancelRun));
        for a in Action::ALL {
            assert!(Role::Admin.may(a), "admin may do everything: {a:?}");
        }
    }

    #[test]
    fn role_names() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
