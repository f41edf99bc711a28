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

/// Where a connector's identity comes from (shown to every role; the
/// credentials themselves never are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    /// No credentials: unsigned or anonymous requests (public buckets).
    None,
    /// Secrets stored on the connector (write-only).
    Stored,
    /// The server's own cloud identity (environment, instance or workload
    /// identity), optionally assuming an AWS role.
    Ambient,
}

impl CredentialSource {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Stored => "stored",
            Self::Ambient => "ambient",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::None, Self::Stored, Self::Ambient]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// A cloud whose platform identity a connector may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cloud {
    /// Amazon Web Services (`s3` connectors).
    Aws,
    /// Google Cloud (`gcs` connectors).
    Gcp,
    /// Microsoft Azure (`azure` connectors).
    Azure,
}

impl Cloud {
    /// The `source` value naming it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::Gcp => "gcp",
            Self::Azure => "azure",
        }
    }

    /// The cloud of a connector type, if it has one.
    pub fn of(kind: ConnectorType) -> Option<Self> {
        match kind {
            ConnectorType::S3 => Some(Self::Aws),
            ConnectorType::Gcs => Some(Self::Gcp),
            ConnectorType::Azure => Some(Self::Azure),
            ConnectorType::Local | ConnectorType::Http => None,
        }
    }
}

/// Ambient credentials: `{"source": "ambient"}` or, naming the cloud,
/// `{"source": "aws" | "gcp" | "azure"}`, with options that are identifiers,
/// not secrets (the external id is treated as one all the same).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AmbientCredentials {
    /// The cloud named by `source`; `None` for `ambient` (the connector
    /// type's cloud).
    pub cloud: Option<Cloud>,
    /// AWS: a role to assume with the ambient identity (`roleArn`).
    pub role_arn: Option<String>,
    /// AWS: the external id the role's trust policy requires (`externalId`).
    pub external_id: Option<String>,
    /// Azure: the client id of a user-assigned managed identity (`clientId`).
    pub client_id: Option<String>,
}

impl AmbientCredentials {
    /// The options given, by wire name (no values).
    fn option_names(&self) -> Vec<&'static str> {
        [
            ("clientId", self.client_id.is_some()),
            ("externalId", self.external_id.is_some()),
            ("roleArn", self.role_arn.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

impl fmt::Debug for AmbientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmbientCredentials")
            .field("cloud", &self.cloud)
            .field("role_arn", &self.role_arn)
            .field(
                "external_id",
                &self.external_id.as_ref().map(|_| "[redacted]"),
            )
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// What a connector signs in with. Write-only: deserialisable from a request
/// (an object of strings), never serialised, and printed without values.
///
/// Either secrets stored on the connector (`{"accessKeyId": …}`; none at all
/// means anonymous requests) or, with a `source` member, the server's own
/// [`AmbientCredentials`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "BTreeMap<String, String>")]
pub struct Credentials(Kind);

#[derive(Clone, PartialEq, Eq)]
enum Kind {
    Stored(BTreeMap<String, String>),
    Ambient(AmbientCredentials),
}

impl Default for Credentials {
    fn default() -> Self {
        Self(Kind::Stored(BTreeMap::new()))
    }
}

impl TryFrom<BTreeMap<String, String>> for Credentials {
    type Error = DomainError;

    fn try_from(map: BTreeMap<String, String>) -> Result<Self, DomainError> {
        Self::from_map(map)
    }
}

impl Credentials {
    /// Wraps secret key/value pairs stored on the connector.
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Self(Kind::Stored(values))
    }

    /// Ambient credentials.
    pub fn ambient(ambient: AmbientCredentials) -> Self {
        Self(Kind::Ambient(ambient))
    }

    /// Reads the wire (and storage) form: with a `source` member, ambient
    /// credentials and their options; otherwise stored secrets.
    pub fn from_map(mut map: BTreeMap<String, String>) -> Result<Self, DomainError> {
        let Some(source) = map.remove("source") else {
            return Ok(Self::new(map));
        };
        let cloud = match source.as_str() {
            "ambient" => None,
            "aws" => Some(Cloud::Aws),
            "gcp" => Some(Cloud::Gcp),
            "azure" => Some(Cloud::Azure),
            _ => {
                return Err(DomainError::field(
                    "credentials.source",
                    "must be `ambient`, `aws`, `gcp` or `azure` (or leave `source` out to \
                     store keys)",
                ));
            }
        };
        let mut take = |name: &str| map.remove(name).filter(|v| !v.trim().is_empty());
        let ambient = AmbientCredentials {
            cloud,
            role_arn: take("roleArn"),
            external_id: take("externalId"),
            client_id: take("clientId"),
        };
        if let Some(other) = map.keys().next() {
            return Err(DomainError::field(
                format!("credentials.{other}"),
                "is not an option of ambient credentials (they take `roleArn` and \
                 `externalId` for aws, `clientId` for azure; keys cannot be mixed with \
                 `source`)",
            ));
        }
        Ok(Self::ambient(ambient))
    }

    /// The wire (and storage) form, values included: for the store that
    /// persists them only.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        match &self.0 {
            Kind::Stored(map) => map.clone(),
            Kind::Ambient(a) => {
                let mut map = BTreeMap::new();
                let source = a.cloud.map_or("ambient", Cloud::as_str);
                map.insert("source".to_owned(), source.to_owned());
                for (name, value) in [
                    ("roleArn", &a.role_arn),
                    ("externalId", &a.external_id),
                    ("clientId", &a.client_id),
                ] {
                    if let Some(v) = value {
                        map.insert(name.to_owned(), v.clone());
                    }
                }
                map
            }
        }
    }

    /// Where the identity comes from.
    pub fn source(&self) -> CredentialSource {
        match &self.0 {
            Kind::Stored(map) if map.is_empty() => CredentialSource::None,
            Kind::Stored(_) => CredentialSource::Stored,
            Kind::Ambient(_) => CredentialSource::Ambient,
        }
    }

    /// The ambient credentials, if these are.
    pub fn as_ambient(&self) -> Option<&AmbientCredentials> {
        match &self.0 {
            Kind::Ambient(a) => Some(a),
            Kind::Stored(_) => None,
        }
    }

    /// True without any secret or ambient identity.
    pub fn is_empty(&self) -> bool {
        self.source() == CredentialSource::None
    }

    /// One stored secret value. Callers must not log or return it.
    pub fn get(&self, key: &str) -> Option<&str> {
        match &self.0 {
            Kind::Stored(map) => map.get(key).map(String::as_str),
            Kind::Ambient(_) => None,
        }
    }

    /// The names of the stored secrets, or of the ambient options given
    /// (safe to show).
    pub fn keys(&self) -> Vec<&str> {
        match &self.0 {
            Kind::Stored(map) => map.keys().map(String::as_str).collect(),
            Kind::Ambient(a) => a.option_names(),
        }
    }

    /// Every value to keep out of text, for redaction filters.
    pub fn values(&self) -> Vec<&str> {
        match &self.0 {
            Kind::Stored(map) => map.values().map(String::as_str).collect(),
            Kind::Ambient(a) => a.external_id.iter().map(String::as_str).collect(),
        }
    }

    /// Checks that these credentials fit a connector of type `kind`.
    pub fn validate_for(&self, kind: ConnectorType) -> Result<(), DomainError> {
        let Some(a) = self.as_ambient() else {
            return Ok(());
        };
        let field = |f: &str, m: String| Err(DomainError::field(format!("credentials.{f}"), m));
        let Some(cloud) = Cloud::of(kind) else {
            return field(
                "source",
                format!(
                    "{} connectors cannot use ambient credentials",
                    kind.as_str()
                ),
            );
        };
        if a.cloud.is_some_and(|c| c != cloud) {
            return field(
                "source",
                format!(
                    "{} connectors use `{}` (or `ambient`) credentials",
                    kind.as_str(),
                    cloud.as_str()
                ),
            );
        }
        if cloud != Cloud::Aws {
            if let Some(name) = ["roleArn", "externalId"]
                .into_iter()
                .find(|n| a.option_names().contains(n))
            {
                return field(name, "is an option of aws (s3) connectors only".to_owned());
            }
        }
        if cloud != Cloud::Azure && a.client_id.is_some() {
            return field(
                "clientId",
                "is an option of azure connectors only".to_owned(),
            );
        }
        if a.external_id.is_some() && a.role_arn.is_none() {
            return field("externalId", "needs `roleArn`".to_owned());
        }
        if let Some(arn) = &a.role_arn {
            if !(arn.starts_with("arn:") && arn.contains(":role/")) {
                return field(
                    "roleArn",
                    "must be a role ARN such as arn:aws:iam::123456789012:role/name".to_owned(),
                );
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Stored(map) => f
                .debug_struct("Credentials")
                .field("keys", &map.keys().collect::<Vec<_>>())
                .finish_non_exhaustive(),
            Kind::Ambient(a) => f.debug_tuple("Credentials").field(a).finish(),
        }
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
    /// Secret settings (write-only): stored keys, or `{"source": "ambient"}`
    /// and its options.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = CredentialsInput))]
    pub credentials: Credentials,
}

/// The request form of connector credentials (write-only, an object of
/// strings): either the secrets of the connector's type (s3 `accessKeyId` +
/// `secretAccessKey` [+ `sessionToken`]; gcs `serviceAccountKey`; azure
/// `accessKey`, `sasToken`, `bearerToken` or `tenantId` + `clientId` +
/// `clientSecret`; http `bearerToken` or `username` + `password`), or the
/// server's own cloud identity: `source` `ambient` (or `aws`, `gcp`, `azure`),
/// with `roleArn` and `externalId` (aws) or `clientId` (azure). Ambient
/// credentials need an admin key and `SLUICE_ALLOW_AMBIENT_CREDENTIALS=1`.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CredentialsInput(BTreeMap<String, String>);

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
        self.credentials.validate_for(self.connector_type)?;
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
    /// Where the connector's identity comes from.
    pub credential_source: CredentialSource,
    /// Names of the stored secrets, or of the ambient options given (values
    /// are never shown).
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
    fn ambient_credentials_parse_and_fit_their_type() {
        let s = spec(
            r#"{"name":"p","type":"s3","config":{"bucket":"b"},"credentials":{"source":"ambient",
                "roleArn":"arn:aws:iam::123456789012:role/reader","externalId":"ext-fake-value"}}"#,
        );
        assert_eq!(s.credentials.source(), CredentialSource::Ambient);
        assert_eq!(s.credentials.keys(), vec!["externalId", "roleArn"]);
        assert!(s.validate().is_ok());
        let printed = format!("{s:?}");
        assert!(!printed.contains("ext-fake-value"), "{printed}");
        assert_eq!(
            Credentials::from_map(s.credentials.to_map()).expect("round trip"),
            s.credentials
        );
        let bad = |json: &str| spec(json).validate().expect_err("invalid");
        assert_eq!(
            bad(
                r#"{"name":"p","type":"gcs","config":{"bucket":"b"},"credentials":{"source":"aws"}}"#
            ),
            DomainError::field(
                "credentials.source",
                "gcs connectors use `gcp` (or `ambient`) credentials"
            )
        );
        assert!(matches!(
            bad(r#"{"name":"p","type":"local","config":{"root":"x"},"credentials":{"source":"ambient"}}"#),
            DomainError::InvalidField { field, .. } if field == "credentials.source"
        ));
        assert!(matches!(
            bad(r#"{"name":"p","type":"s3","config":{"bucket":"b"},"credentials":{"source":"aws","externalId":"x"}}"#),
            DomainError::InvalidField { field, .. } if field == "credentials.externalId"
        ));
        assert!(matches!(
            bad(r#"{"name":"p","type":"s3","config":{"bucket":"b"},"credentials":{"source":"aws","roleArn":"reader"}}"#),
            DomainError::InvalidField { field, .. } if field == "credentials.roleArn"
        ));
        // Unknown sources and options, or keys mixed with `source`, do not parse.
        for creds in [
            r#"{"source":"instance"}"#,
            r#"{"source":"ambient","accessKeyId":"x"}"#,
        ] {
            assert!(
                serde_json::from_str::<Credentials>(creds).is_err(),
                "{creds}"
            );
        }
        let stored: Credentials = serde_json::from_str(r#"{"accessKeyId":"a"}"#).expect("stored");
        assert_eq!(stored.source(), CredentialSource::Stored);
        assert_eq!(Credentials::default().source(), CredentialSource::None);
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
