//! Connectors: create, read, change, delete, test.

use std::time::Instant;

use sluice_domain::connector::{Connector, ConnectorSpec, Credentials};
use sluice_domain::ids::ConnectorId;
use sluice_domain::role::Action;

use super::{Principal, UseCases, check_patch_members, from_json, merge_patch};
use crate::AppError;
use crate::ports::{Page, PageRequest, SourceError, StoreError};
use crate::reading::{OpenError, open_known};

/// The outcome of a connector test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorCheck {
    /// True when the store answered and the credentials worked.
    pub ok: bool,
    /// What happened, in plain words.
    pub message: String,
    /// How long the check took.
    pub duration_ms: u64,
    /// For ambient credentials, the identity the server signed in as (an
    /// ARN, a service account, a managed identity; never a secret).
    pub identity: Option<String>,
}

impl UseCases {
    /// Checks that the object-store adapter accepts the settings (e.g. a
    /// `local` root inside the allowed directories) without any network call.
    fn check_openable(
        &self,
        connector: &Connector,
        credentials: &Credentials,
    ) -> Result<(), AppError> {
        match self.ports().sources.open(connector, credentials) {
            Ok(_) => Ok(()),
            Err(SourceError::InvalidConfig(m)) => Err(AppError::invalid("config", m)),
            Err(e) => Err(AppError::invalid("config", e.to_string())),
        }
    }

    /// Ambient credentials are the server's identity, not the connector's:
    /// only an admin may hand them to a connector, and only where the
    /// operator allows it (`SLUICE_ALLOW_AMBIENT_CREDENTIALS=1`).
    fn authorize_credentials(
        &self,
        who: &Principal,
        credentials: &Credentials,
    ) -> Result<(), AppError> {
        if credentials.as_ambient().is_none() {
            return Ok(());
        }
        who.require(Action::UseAmbientCredentials)?;
        if !self.tunables().allow_ambient_credentials {
            return Err(AppError::Forbidden {
                role: who.role.to_string(),
                action: "use ambient credentials: this server does not allow them \
                         (its operator can set SLUICE_ALLOW_AMBIENT_CREDENTIALS=1)"
                    .to_owned(),
            });
        }
        Ok(())
    }

    /// Creates a connector (admin only).
    pub async fn create_connector(
        &self,
        who: &Principal,
        spec: ConnectorSpec,
    ) -> Result<Connector, AppError> {
        who.require(Action::WriteConnectors)?;
        spec.validate()?;
        self.authorize_credentials(who, &spec.credentials)?;
        let now = self.ports().clock.now();
        let connector = Connector {
            id: ConnectorId::from_ulid(self.ports().ids.ulid()),
            name: spec.name.trim().to_owned(),
            connector_type: spec.connector_type,
            config: spec.config,
            credential_source: spec.credentials.source(),
            credential_keys: key_names(&spec.credentials),
            created_at: now,
            updated_at: now,
        };
        self.check_openable(&connector, &spec.credentials)?;
        self.ports()
            .connectors
            .insert_connector(&connector, &spec.credentials)
            .await?;
        Ok(connector)
    }

    /// One connector (any role); never its secrets.
    pub async fn get_connector(
        &self,
        who: &Principal,
        id: ConnectorId,
    ) -> Result<Connector, AppError> {
        who.require(Action::ReadConnectors)?;
        Ok(self.ports().connectors.get_connector(id).await?)
    }

    /// Connectors, newest first (any role).
    pub async fn list_connectors(
        &self,
        who: &Principal,
        page: &PageRequest,
    ) -> Result<Page<Connector>, AppError> {
        who.require(Action::ReadConnectors)?;
        Ok(self.ports().connectors.list_connectors(page).await?)
    }

    /// Applies a JSON merge patch to a connector (admin only). A `credentials`
    /// member replaces every stored secret, `"credentials": null` removes them,
    /// and without it the secrets are kept.
    pub async fn update_connector(
        &self,
        who: &Principal,
        id: ConnectorId,
        patch: serde_json::Value,
    ) -> Result<Connector, AppError> {
        who.require(Action::WriteConnectors)?;
        check_patch_members(&patch, &["name", "type", "config", "credentials"])?;
        let current = self.ports().connectors.get_connector(id).await?;
        let mut doc = serde_json::json!({
            "name": current.name,
            "type": current.connector_type,
            "config": current.config,
        });
        // `credentials` replaces every stored secret; `null` removes them all
        // (RFC 7386); absent keeps them.
        let new_credentials = patch.get("credentials").map(|c| {
            if c.is_null() {
                serde_json::json!({})
            } else {
                c.clone()
            }
        });
        let mut patch = patch;
        if let Some(map) = patch.as_object_mut() {
            map.remove("credentials");
        }
        merge_patch(&mut doc, &patch);
        let spec: ConnectorSpec = from_json(doc)?;
        spec.validate()?;
        let credentials = match new_credentials {
            Some(c) => Some(from_json::<Credentials>(c).map_err(|e| match e {
                AppError::Invalid { message, .. } => AppError::invalid("credentials", message),
                other => other,
            })?),
            None => None,
        };
        if let Some(c) = &credentials {
            c.validate_for(spec.connector_type)?;
            self.authorize_credentials(who, c)?;
        }
        let updated = Connector {
            id,
            name: spec.name.trim().to_owned(),
            connector_type: spec.connector_type,
            config: spec.config,
            credential_source: match &credentials {
                Some(c) => c.source(),
                None => current.credential_source,
            },
            credential_keys: match &credentials {
                Some(c) => key_names(c),
                None => current.credential_keys.clone(),
            },
            created_at: current.created_at,
            updated_at: self.ports().clock.now(),
        };
        let effective = match &credentials {
            Some(c) => c.clone(),
            None => self.ports().connectors.connector_credentials(id).await?,
        };
        self.check_openable(&updated, &effective)?;
        self.ports()
            .connectors
            .update_connector(&updated, credentials.as_ref())
            .await?;
        Ok(updated)
    }

    /// Deletes a connector no pipeline uses (admin only).
    pub async fn delete_connector(&self, who: &Principal, id: ConnectorId) -> Result<(), AppError> {
        who.require(Action::WriteConnectors)?;
        self.ports()
            .connectors
            .delete_connector(id)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => AppError::Conflict(format!(
                    "connector {id} is used by at least one pipeline; delete or move those first"
                )),
                other => other.into(),
            })
    }

    /// Lists the connector's bucket or root to check settings and credentials
    /// (admin only). A failed check is a normal answer (`ok: false`), not an error.
    pub async fn test_connector(
        &self,
        who: &Principal,
        id: ConnectorId,
    ) -> Result<ConnectorCheck, AppError> {
        who.require(Action::TestConnector)?;
        let connector = self.ports().connectors.get_connector(id).await?;
        let started = Instant::now();
        // `check` answers within its own timeout (the port's contract): the
        // adapter knows how to make a client that gives up in time.
        let outcome = match open_known(self.ports(), &connector, None).await {
            Ok(source) => source.source.check().await,
            Err(OpenError::Refused { error, .. }) => Err(error),
            Err(e) => return Err(e.into()),
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(match outcome {
            Ok(check) => ConnectorCheck {
                ok: true,
                message: match &check.identity {
                    Some(identity) => format!(
                        "Connected as {identity}: listed {} successfully",
                        connector.connector_type.as_str()
                    ),
                    None => format!(
                        "Connected: listed {} successfully",
                        connector.connector_type.as_str()
                    ),
                },
                duration_ms,
                identity: check.identity,
            },
            Err(e) => ConnectorCheck {
                ok: false,
                message: e.to_string(),
                duration_ms,
                identity: None,
            },
        })
    }
}

fn key_names(credentials: &Credentials) -> Vec<String> {
    credentials.keys().into_iter().map(str::to_owned).collect()
}
