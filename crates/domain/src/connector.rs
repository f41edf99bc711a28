//! Connectors: where a pipeline's files live.
//!
//! The non-secret configuration is readable by every role; credentials are
//! write-only: [`Credentials`] can be deserialised from a request but has no
//! `Serialize` and a redacting `Debug`, so it cannot leak into a response or a
//! log line by accident.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::ConnectorId;
use crate::time::Timestamp;

/// The kinds of object store Sluice reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConnectorType {
    /// Amazon S3 or any S3-compatible server (MinIO, Ceph, ...).
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
    /// A directory on the server, inside one of the allowed local roots.
    Local,
    /// Read-only files over HTTP(S).
    Http,
}

impl ConnectorType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S3 => "s3",
            Self::Gcs => "gcs",
            Self::Azure => "azure",
            Self::Local => "local",
            Self::Http => "http",
        }
    }
}

/// Non-secret connector settings. Which fields matter depends on the type,
/// and the ones a type needs are required: `s3` and `gcs` need `bucket`,
/// `azure` needs `account` and `container`, `local` needs `root`, `http` needs `url`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectorConfig {
    /// Bucket (s3, gcs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Region (s3); `us-east-1` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Custom endpoint (S3-compatible servers, Azure emulators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Path-style requests (s3); default true when an endpoint is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// Root directory (local).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Storage account (azure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Container (azure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Base URL (http).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Secret settings (keys, tokens). Write-only: deserialisable, never serialised,
/// and printed as `Credentials { keys: [..] }` without values.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Credentials(BTreeMap<String, String>);

impl Credentials {
    /// Wraps secret key/value pairs.
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Self(values)
    }

    /// True without any secret.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One secret value. Callers must not log or return it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The names of the secrets held (safe to show).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Every secret value, for redaction filters.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0.values().map(String::as_str)
    }

    /// The pairs, for the storage adapter that persists them.
    pub fn expose(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("keys", &self.0.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What a user submits to create a connector.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectorSpec {
    /// Display name.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 200,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
        )
    )]
    pub name: String,
    /// Store kind.
    #[serde(rename = "type")]
    pub connector_type: ConnectorType,
    /// Non-secret settings.
    #[serde(default)]
    pub config: ConnectorConfig,
    /// Secret settings (write-only).
    #[serde(default)]
    pub credentials: Credentials,
}

impl ConnectorSpec {
    /// Checks that the settings the type needs are present.
    pub fn validate(&self) -> Result<(), DomainError> {
        validate_name(&self.name, "name")?;
        let c = &self.config;
        let need = |v: &Option<String>, field: &str| match v.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => Ok(()),
            _ => Err(DomainError::field(
                format!("config.{field}"),
                format!(
                    "is required for {} connectors",
                    self.connector_type.as_str()
                ),
            )),
        };
        match self.connector_type {
            ConnectorType::S3 | ConnectorType::Gcs => need(&c.bucket, "bucket")?,
            ConnectorType::Azure => {
                need(&c.account, "account")?;
                need(&c.container, "container")?;
            }
            ConnectorType::Local => need(&c.root, "root")?,
            ConnectorType::Http => need(&c.url, "url")?,
        }
        for (field, url) in [("endpoint", &c.endpoint), ("url", &c.url)] {
            if let Some(u) = url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(DomainError::field(
                        format!("config.{field}"),
                        "must start with http:// or https://",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Checks a display name: 1–200 characters, not blank, no control characters
/// (the same rules the OpenAPI document declares).
pub fn validate_name(name: &str, field: &str) -> Result<(), DomainError> {
    if name.trim().is_empty() {
        return Err(DomainError::field(field, "must not be empty"));
    }
    // Counted untrimmed, as the OpenAPI document's maxLength counts.
    if name.chars().count() > 200 {
        return Err(DomainError::field(field, "must be at most 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(DomainError::field(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A stored connector as every role may see it (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Connector {
    /// Id (`conn_…`).
    pub id: ConnectorId,
    /// Display name.
    pub name: String,
    /// Store kind.
    #[serde(rename = "type")]
    pub connector_type: ConnectorType,
    /// Non-secret settings.
    pub config: ConnectorConfig,
    /// Names of the stored secrets (values are never shown).
    pub credential_keys: Vec<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> ConnectorSpec {
        serde_json::from_str(json).expect("spec")
    }

    #[test]
    fn debug_never_shows_secret_values() {
        let s = spec(
            r#"{"name":"p","type":"s3","config":{"bucket":"b"},"credentials":{"secretAccessKey":"hunter2-very-secret"}}"#,
        );
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2-very-secret"), "{printed}");
        assert!(printed.contains("secretAccessKey"));
    }

    #[test]
    fn required_settings_per_type() {
        assert!(
            spec(r#"{"name":"p","type":"s3","config":{"bucket":"b"}}"#)
                .validate()
                .is_ok()
        );
        let missing = spec(r#"{"name":"p","type":"s3"}"#).validate();
        assert_eq!(
            missing,
            Err(DomainError::field(
                "config.bucket",
                "is required for s3 connectors"
            ))
        );
        assert!(
            spec(r#"{"name":"p","type":"local","config":{"root":"./data"}}"#)
                .validate()
                .is_ok()
        );
        assert!(
            spec(r#"{"name":"p","type":"azure","config":{"account":"a"}}"#)
                .validate()
                .is_err()
        );
        assert!(
            spec(r#"{"name":"p","type":"http","config":{"url":"ftp://x"}}"#)
                .validate()
                .is_err()
        );
        assert!(
            spec(r#"{"name":" ","type":"local","config":{"root":"x"}}"#)
                .validate()
                .is_err()
        );
        assert!(serde_json::from_str::<ConnectorSpec>(r#"{"name":"p","type":"ftp"}"#).is_err());
    }
}
