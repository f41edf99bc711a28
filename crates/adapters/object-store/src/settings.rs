//! A connector's stored configuration turned into an `object_store` store.
//!
//! Credential names are camelCase like the rest of the API:
//!
//! | type | credentials |
//! |---|---|
//! | `s3` | `accessKeyId` + `secretAccessKey`, optional `sessionToken` |
//! | `gcs` | `serviceAccountKey` (the JSON key file's content) |
//! | `azure` | one of `accessKey`, `sasToken`, `bearerToken`, or `tenantId` + `clientId` + `clientSecret` |
//! | `http` | optional `bearerToken`, or `username` + `password` |
//! | `local` | none |
//!
//! Without credentials, requests go unsigned (public buckets). A connector
//! never falls back to the environment or to a cloud metadata endpoint on its
//! own: only `{"source": "ambient"}` (or `aws`, `gcp`, `azure`) signs in as
//! the server, through [`crate::credentials`], and only where the server
//! allows it. A connector with stored credentials ignores the environment.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use object_store::aws::{AmazonS3Builder, AwsCredentialProvider};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::{
    BackoffConfig, ClientOptions, HeaderMap, HeaderValue, ObjectStore, RetryConfig,
};
use sluice_application::ports::SourceError;
use sluice_domain::connector::{AmbientCredentials, ConnectorConfig, ConnectorType, Credentials};

use crate::credentials::{AmbientEnvironment, AssumeRoleProvider, Sts};
use crate::error::detail;
use crate::secret::{Redactor, Secret};

/// Region of an S3 connector that names none.
const DEFAULT_REGION: &str = "us-east-1";

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a response body may stall before the read fails (and
/// `object_store` resumes it with a ranged request). Generous, because the
/// clock also runs while the consumer is busy committing a batch and does not
/// poll the stream; `object_store`'s default total-request timeout (30 s) is
/// switched off instead, since it would cut every read that lasts longer.
const READ_STALL_TIMEOUT: Duration = Duration::from_secs(300);

/// The shortest wait between two tries of a read or a listing.
const MIN_BACKOFF: Duration = Duration::from_secs(1);

/// What a store is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Listing and reading files: retry transient errors as `object_store` does.
    Data,
    /// The connector test: retry once at most, so a refused connection or a
    /// wrong key is reported with its reason instead of the test's timeout.
    Check,
}

/// A connector's settings, credentials included (hidden from `Debug`).
#[derive(Debug, Clone)]
pub(crate) enum Settings {
    /// A store reached over HTTP.
    Remote(RemoteSettings),
    /// A directory on this server.
    Local {
        /// The configured root, not yet checked against the allowed roots.
        root: String,
    },
}

/// Settings of the stores reached over HTTP.
#[derive(Debug, Clone)]
pub(crate) enum RemoteSettings {
    S3 {
        bucket: String,
        region: String,
        endpoint: Option<String>,
        path_style: bool,
        auth: S3Auth,
    },
    Gcs {
        bucket: String,
        endpoint: Option<String>,
        auth: GcsAuth,
    },
    Azure {
        account: String,
        container: String,
        endpoint: Option<String>,
        auth: AzureAuth,
    },
    Http {
        url: String,
        auth: HttpAuth,
    },
}

/// How an S3 connector signs in.
#[derive(Debug, Clone)]
pub(crate) enum S3Auth {
    Anonymous,
    Keys {
        id: Secret,
        secret: Secret,
        session_token: Option<Secret>,
    },
    /// The server's credentials, optionally assuming a role with them.
    Ambient {
        role_arn: Option<String>,
        external_id: Option<Secret>,
    },
}

/// How a GCS connector signs in.
#[derive(Debug, Clone)]
pub(crate) enum GcsAuth {
    Anonymous,
    ServiceAccountKey(Secret),
    /// Application-default credentials or the metadata server.
    Ambient,
}

/// How an Azure connector signs in.
#[derive(Debug, Clone)]
pub(crate) enum AzureAuth {
    Anonymous,
    /// Workload identity, an environment service principal, or a managed
    /// identity (user-assigned when `client_id` is given).
    Ambient {
        client_id: Option<String>,
    },
    AccessKey(Secret),
    Sas(Secret),
    Bearer(Secret),
    ClientSecret {
        tenant_id: Secret,
        client_id: Secret,
        client_secret: Secret,
    },
}

/// How an HTTP connector signs in.
#[derive(Debug, Clone)]
pub(crate) enum HttpAuth {
    Anonymous,
    Bearer(Secret),
    Basic { username: Secret, password: Secret },
}

impl Settings {
    /// Reads the settings a connector type needs. `InvalidConfig` names the
    /// missing or unexpected field, never a credential value.
    pub(crate) fn parse(
        kind: ConnectorType,
        config: &ConnectorConfig,
        credentials: &Credentials,
    ) -> Result<Self, SourceError> {
        if let Some(ambient) = credentials.as_ambient() {
            return Self::parse_ambient(kind, config, ambient);
        }
        let creds = CredentialReader::new(kind, credentials)?;
        let settings = match kind {
            ConnectorType::S3 => {
                let keys = match (creds.get("accessKeyId"), creds.get("secretAccessKey")) {
                    (Some(id), Some(secret)) => Some((id, secret)),
                    (None, None) => None,
                    _ => {
                        return Err(invalid(
                            "s3 credentials need both `accessKeyId` and `secretAccessKey`",
                        ));
                    }
                };
                let session_token = creds.get("sessionToken");
                if session_token.is_some() && keys.is_none() {
                    return Err(invalid(
                        "s3 credential `sessionToken` needs `accessKeyId` and `secretAccessKey`",
                    ));
                }
                let auth = match keys {
                    Some((id, secret)) => S3Auth::Keys {
                        id,
                        secret,
                        session_token,
                    },
                    None => S3Auth::Anonymous,
                };
                s3(config, auth)?
            }
            ConnectorType::Gcs => gcs(
                config,
                creds
                    .get("serviceAccountKey")
                    .map_or(GcsAuth::Anonymous, GcsAuth::ServiceAccountKey),
            )?,
            ConnectorType::Azure => {
                let auth = match (
                    creds.get("accessKey"),
                    creds.get("sasToken"),
                    creds.get("bearerToken"),
                    creds.get("tenantId"),
                    creds.get("clientId"),
                    creds.get("clientSecret"),
                ) {
                    (None, None, None, None, None, None) => AzureAuth::Anonymous,
                    (Some(k), None, None, None, None, None) => AzureAuth::AccessKey(k),
                    (None, Some(t), None, None, None, None) => AzureAuth::Sas(t),
                    (None, None, Some(t), None, None, None) => AzureAuth::Bearer(t),
                    (None, None, None, Some(tenant_id), Some(client_id), Some(client_secret)) => {
                        AzureAuth::ClientSecret {
                            tenant_id,
                            client_id,
                            client_secret,
                        }
                    }
                    _ => {
                        return Err(invalid(
                            "azure credentials are one of `accessKey`, `sasToken`, \
                             `bearerToken`, or `tenantId` + `clientId` + `clientSecret`",
                        ));
                    }
                };
                azure(config, auth)?
            }
            ConnectorType::Http => {
                let url = required(&config.url, "url", kind)?;
                check_url(&url, "url")?;
                let auth = match (
                    creds.get("bearerToken"),
                    creds.get("username"),
                    creds.get("password"),
                ) {
                    (None, None, None) => HttpAuth::Anonymous,
                    (Some(t), None, None) => HttpAuth::Bearer(t),
                    (None, Some(username), Some(password)) => {
                        HttpAuth::Basic { username, password }
                    }
                    _ => {
                        return Err(invalid(
                            "http credentials are `bearerToken`, or `username` + `password`",
                        ));
                    }
                };
                Self::Remote(RemoteSettings::Http { url, auth })
            }
            ConnectorType::Local => Self::Local {
                root: required(&config.root, "root", kind)?,
            },
        };
        Ok(settings)
    }
}

impl Settings {
    /// The settings of a connector that signs in as the server.
    fn parse_ambient(
        kind: ConnectorType,
        config: &ConnectorConfig,
        ambient: &AmbientCredentials,
    ) -> Result<Self, SourceError> {
        match kind {
            ConnectorType::S3 => s3(
                config,
                S3Auth::Ambient {
                    role_arn: ambient.role_arn.clone(),
                    external_id: ambient.external_id.as_deref().map(Secret::new),
                },
            ),
            ConnectorType::Gcs => gcs(config, GcsAuth::Ambient),
            ConnectorType::Azure => azure(
                config,
                AzureAuth::Ambient {
                    client_id: ambient.client_id.clone(),
                },
            ),
            ConnectorType::Local | ConnectorType::Http => Err(SourceError::InvalidConfig(format!(
                "{} connectors cannot use ambient credentials",
                kind.as_str()
            ))),
        }
    }
}

fn s3(config: &ConnectorConfig, auth: S3Auth) -> Result<Settings, SourceError> {
    let endpoint = optional_url(&config.endpoint, "endpoint")?;
    Ok(Settings::Remote(RemoteSettings::S3 {
        bucket: required(&config.bucket, "bucket", ConnectorType::S3)?,
        region: non_empty(&config.region).unwrap_or_else(|| DEFAULT_REGION.to_owned()),
        path_style: config.path_style.unwrap_or(endpoint.is_some()),
        endpoint,
        auth,
    }))
}

fn gcs(config: &ConnectorConfig, auth: GcsAuth) -> Result<Settings, SourceError> {
    Ok(Settings::Remote(RemoteSettings::Gcs {
        bucket: required(&config.bucket, "bucket", ConnectorType::Gcs)?,
        endpoint: optional_url(&config.endpoint, "endpoint")?,
        auth,
    }))
}

fn azure(config: &ConnectorConfig, auth: AzureAuth) -> Result<Settings, SourceError> {
    Ok(Settings::Remote(RemoteSettings::Azure {
        account: required(&config.account, "account", ConnectorType::Azure)?,
        container: required(&config.container, "container", ConnectorType::Azure)?,
        endpoint: optional_url(&config.endpoint, "endpoint")?,
        auth,
    }))
}

/// A built store, and for ambient credentials how to tell who it signs in as.
pub(crate) struct Built {
    pub store: Arc<dyn ObjectStore>,
    pub identity: Option<Identity>,
}

/// Who an ambient connector signs in as.
pub(crate) enum Identity {
    /// Ask STS (`GetCallerIdentity`) with the store's credentials.
    Aws {
        credentials: AwsCredentialProvider,
        sts: Sts,
    },
    /// Known from the settings.
    Described(String),
}

impl Identity {
    /// The ARN, service account or managed identity; never a secret.
    pub(crate) async fn name(&self) -> String {
        match self {
            Self::Described(d) => d.clone(),
            Self::Aws { credentials, sts } => {
                let asked = match credentials.get_credential().await {
                    Ok(c) => sts.caller_identity(&c).await,
                    Err(e) => Err(e.to_string()),
                };
                asked.unwrap_or_else(|reason| {
                    format!("an identity STS did not name ({})", sts.scrub(&reason))
                })
            }
        }
    }
}

impl RemoteSettings {
    /// True when the connector signs in as the server.
    pub(crate) fn is_ambient(&self) -> bool {
        matches!(
            self,
            Self::S3 {
                auth: S3Auth::Ambient { .. },
                ..
            } | Self::Gcs {
                auth: GcsAuth::Ambient,
                ..
            } | Self::Azure {
                auth: AzureAuth::Ambient { .. },
                ..
            }
        )
    }

    /// A description without secrets, used in messages and logs.
    pub(crate) fn location(&self) -> String {
        match self {
            Self::S3 {
                bucket,
                endpoint: Some(e),
                ..
            } => format!("s3 bucket `{bucket}` at {e}"),
            Self::S3 { bucket, region, .. } => format!("s3 bucket `{bucket}` (region {region})"),
            Self::Gcs { bucket, .. } => format!("gcs bucket `{bucket}`"),
            Self::Azure {
                account, container, ..
            } => format!("azure container `{container}` of account `{account}`"),
            Self::Http { url, .. } => format!("http server {url}"),
        }
    }

    /// Where requests go.
    pub(crate) fn endpoint(&self) -> String {
        match self {
            Self::S3 {
                endpoint: Some(e), ..
            }
            | Self::Gcs {
                endpoint: Some(e), ..
            }
            | Self::Azure {
                endpoint: Some(e), ..
            } => e.clone(),
            Self::S3 { region, .. } => format!("https://s3.{region}.amazonaws.com"),
            Self::Gcs { .. } => "https://storage.googleapis.com".to_owned(),
            Self::Azure { account, .. } => format!("https://{account}.blob.core.windows.net"),
            Self::Http { url, .. } => url.clone(),
        }
    }

    /// True for the read-only `http` type.
    pub(crate) fn is_read_only(&self) -> bool {
        matches!(self, Self::Http { .. })
    }

    /// Builds the store. Builder errors become `InvalidConfig`, scrubbed.
    /// `ambient` is the server's environment for connectors that sign in as
    /// the server (the factory refuses those when the server does not allow it).
    pub(crate) fn build(
        &self,
        purpose: Purpose,
        redactor: &Redactor,
        ambient: &AmbientEnvironment,
    ) -> Result<Built, SourceError> {
        let mut identity = None;
        let built: Result<Arc<dyn ObjectStore>, object_store::Error> = match self {
            Self::S3 {
                bucket,
                region,
                endpoint,
                path_style,
                auth,
            } => {
                let mut options = client_options(endpoint.as_deref());
                if let S3Auth::Ambient { .. } = auth {
                    options = ambient.client_options(options)?;
                }
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_virtual_hosted_style_request(!path_style)
                    .with_client_options(options.clone())
                    .with_retry(retry(purpose));
                if let Some(e) = endpoint {
                    b = b.with_endpoint(e);
                }
                match auth {
                    S3Auth::Keys {
                        id,
                        secret,
                        session_token,
                    } => {
                        b = b
                            .with_access_key_id(id.expose())
                            .with_secret_access_key(secret.expose());
                        if let Some(t) = session_token {
                            b = b.with_token(t.expose());
                        }
                    }
                    S3Auth::Anonymous => b = b.with_skip_signature(true),
                    S3Auth::Ambient {
                        role_arn,
                        external_id,
                    } => {
                        let sts = Sts::new(
                            &options,
                            ambient.sts_endpoint(region),
                            region,
                            redactor.clone(),
                        )?;
                        let base = ambient
                            .aws(b.clone())
                            .build()
                            .map_err(|e| self.build_error(&e, redactor))?;
                        let mut credentials = Arc::clone(base.credentials());
                        if let Some(role) = role_arn {
                            credentials = Arc::new(AssumeRoleProvider::new(
                                credentials,
                                sts.clone(),
                                role.clone(),
                                external_id.clone(),
                                ambient.session_name(),
                            ));
                        }
                        b = b.with_credentials(Arc::clone(&credentials));
                        identity = Some(Identity::Aws { credentials, sts });
                    }
                }
                b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            Self::Gcs {
                bucket,
                endpoint,
                auth,
            } => {
                let mut b = GoogleCloudStorageBuilder::new()
                    .with_bucket_name(bucket)
                    .with_client_options(client_options(endpoint.as_deref()))
                    .with_retry(retry(purpose));
                if let Some(e) = endpoint {
                    b = b.with_base_url(e);
                }
                b = match auth {
                    GcsAuth::ServiceAccountKey(k) => b.with_service_account_key(k.expose()),
                    GcsAuth::Anonymous => b.with_skip_signature(true),
                    GcsAuth::Ambient => {
                        identity =
                            Some(Identity::Described(ambient.gcp_identity().unwrap_or_else(
                                || "the metadata server's service account".to_owned(),
                            )));
                        ambient.gcp(b)
                    }
                };
                b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            Self::Azure {
                account,
                container,
                endpoint,
                auth,
            } => {
                let mut b = MicrosoftAzureBuilder::new()
                    .with_account(account)
                    .with_container_name(container)
                    .with_client_options(client_options(endpoint.as_deref()))
                    .with_retry(retry(purpose));
                if let Some(e) = endpoint {
                    b = b.with_endpoint(e.clone());
                }
                b = match auth {
                    AzureAuth::Anonymous => b.with_skip_signature(true),
                    AzureAuth::Ambient { client_id } => {
                        identity = Some(Identity::Described(
                            ambient.azure_identity(client_id.as_deref()),
                        ));
                        ambient.azure(b, client_id.as_deref())
                    }
                    AzureAuth::AccessKey(k) => b.with_access_key(k.expose()),
                    AzureAuth::Sas(t) => b.with_config(AzureConfigKey::SasKey, t.expose()),
                    AzureAuth::Bearer(t) => b.with_bearer_token_authorization(t.expose()),
                    AzureAuth::ClientSecret {
                        tenant_id,
                        client_id,
                        client_secret,
                    } => b.with_client_secret_authorization(
                        client_id.expose(),
                        client_secret.expose(),
                        tenant_id.expose(),
                    ),
                };
                b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            Self::Http { url, auth } => {
                let mut options = client_options(Some(url));
                if let Some(value) = authorization(auth) {
                    let mut headers = HeaderMap::new();
                    headers.insert("authorization", value?);
                    options = options.with_default_headers(headers);
                }
                // `HttpStore` joins keys with a `/` of its own; a base URL
                // ending in one would make every request path `base//key`.
                HttpBuilder::new()
                    .with_url(url.trim_end_matches('/'))
                    .with_client_options(options)
                    .with_retry(retry(purpose))
                    .build()
                    .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
        };
        let store = built.map_err(|e| self.build_error(&e, redactor))?;
        Ok(Built { store, identity })
    }

    fn build_error(&self, e: &object_store::Error, redactor: &Redactor) -> SourceError {
        SourceError::InvalidConfig(format!(
            "cannot set up {}: {}",
            self.location(),
            detail(&e.to_string(), redactor)
        ))
    }
}

/// The `Authorization` header of an HTTP connector, marked sensitive so the
/// HTTP stack never prints it.
fn authorization(auth: &HttpAuth) -> Option<Result<HeaderValue, SourceError>> {
    let raw = match auth {
        HttpAuth::Anonymous => return None,
        HttpAuth::Bearer(t) => format!("Bearer {}", t.expose()),
        HttpAuth::Basic { username, password } => {
            let pair = format!("{}:{}", username.expose(), password.expose());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        }
    };
    Some(
        HeaderValue::from_str(&raw)
            .map(|mut value| {
                value.set_sensitive(true);
                value
            })
            // Deliberately without the header's text.
            .map_err(|_| {
                SourceError::InvalidConfig(
                    "an http credential contains characters not allowed in an HTTP header"
                        .to_owned(),
                )
            }),
    )
}

fn client_options(endpoint: Option<&str>) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(endpoint.is_some_and(|e| e.starts_with("http://")))
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout_disabled()
        .with_read_timeout(READ_STALL_TIMEOUT)
}

/// Listing and reading retry a refused connection, a 5xx, a 429 or a 408
/// up to 12 times, waiting from 1 s up to 15 s between tries (random
/// within a growing range), 3 min at most in all. Each wait is at least
/// [`MIN_BACKOFF`], so the tries span at least 12 s whatever the random
/// draws: a store shedding load for that long (S3's `503 Slow Down`) never
/// fails a run, and one shedding it for tens of seconds almost never does
/// (the tries span 34 s at the median, 18 s at the 1st percentile, 103 s at
/// the 99th). One that stays down fails the run within 3 min with its
/// answer. The connector test retries once, so that it answers within its
/// own timeout.
fn retry(purpose: Purpose) -> RetryConfig {
    let mut config = RetryConfig::default();
    match purpose {
        Purpose::Check => {
            config.max_retries = 1;
            config.retry_timeout = Duration::from_secs(5);
        }
        Purpose::Data => {
            config.max_retries = 12;
            config.backoff = BackoffConfig {
                init_backoff: MIN_BACKOFF,
                max_backoff: Duration::from_secs(15),
                base: 2.0,
            };
            config.retry_timeout = Duration::from_secs(180);
        }
    }
    config
}

/// Credential lookups that reject names the connector type does not use, so
/// a typo (`secretKey`) is reported instead of silently ignored.
struct CredentialReader<'a> {
    credentials: &'a Credentials,
}

impl<'a> CredentialReader<'a> {
    fn new(kind: ConnectorType, credentials: &'a Credentials) -> Result<Self, SourceError> {
        let known: &[&str] = match kind {
            ConnectorType::S3 => &["accessKeyId", "secretAccessKey", "sessionToken"],
            ConnectorType::Gcs => &["serviceAccountKey"],
            ConnectorType::Azure => &[
                "accessKey",
                "sasToken",
                "bearerToken",
                "tenantId",
                "clientId",
                "clientSecret",
            ],
            ConnectorType::Http => &["bearerToken", "username", "password"],
            ConnectorType::Local => &[],
        };
        if let Some(unknown) = credentials.keys().into_iter().find(|k| !known.contains(k)) {
            let expected = if known.is_empty() {
                "none".to_owned()
            } else {
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(invalid(&format!(
                "{} connectors do not use the credential `{unknown}` (expected: {expected})",
                kind.as_str()
            )));
        }
        Ok(Self { credentials })
    }

    /// A non-empty credential value.
    fn get(&self, key: &str) -> Option<Secret> {
        self.credentials
            .get(key)
            .filter(|v| !v.is_empty())
            .map(Secret::new)
    }
}

fn invalid(message: &str) -> SourceError {
    SourceError::InvalidConfig(message.to_owned())
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn required(
    value: &Option<String>,
    field: &str,
    kind: ConnectorType,
) -> Result<String, SourceError> {
    non_empty(value).ok_or_else(|| {
        SourceError::InvalidConfig(format!(
            "config.{field} is required for {} connectors",
            kind.as_str()
        ))
    })
}

fn optional_url(value: &Option<String>, field: &str) -> Result<Option<String>, SourceError> {
    let url = non_empty(value);
    if let Some(u) = &url {
        check_url(u, field)?;
    }
    Ok(url)
}

/// URLs must be http(s) and carry no user name or password: those belong in
/// the write-only credentials, not in readable configuration.
fn check_url(url: &str, field: &str) -> Result<(), SourceError> {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return Err(SourceError::InvalidConfig(format!(
            "config.{field} must start with http:// or https://"
        )));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(SourceError::InvalidConfig(format!(
            "config.{field} must not contain a user name or password; \
             store them as credentials instead"
        )));
    }
    if authority.is_empty() {
        return Err(SourceError::InvalidConfig(format!(
            "config.{field} has no host"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn creds(pairs: &[(&str, &str)]) -> Credentials {
        Credentials::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    fn s3_config() -> ConnectorConfig {
        ConnectorConfig {
            bucket: Some("raw".into()),
            endpoint: Some("http://127.0.0.1:9".into()),
            ..ConnectorConfig::default()
        }
    }

    #[test]
    fn s3_defaults_and_debug_without_secrets() {
        let s = Settings::parse(
            ConnectorType::S3,
            &s3_config(),
            &creds(&[("accessKeyId", "AKIDX"), ("secretAccessKey", "SECRETX")]),
        )
        .expect("parse");
        let printed = format!("{s:?}");
        assert!(
            !printed.contains("AKIDX") && !printed.contains("SECRETX"),
            "{printed}"
        );
        let Settings::Remote(r) = s else {
            panic!("remote expected")
        };
        assert!(
            matches!(r, RemoteSettings::S3 { path_style: true, ref region, .. } if region == "us-east-1")
        );
        assert_eq!(r.location(), "s3 bucket `raw` at http://127.0.0.1:9");
    }

    #[test]
    fn rejects_half_credentials_and_unknown_names() {
        let e = Settings::parse(
            ConnectorType::S3,
            &s3_config(),
            &creds(&[("accessKeyId", "A")]),
        );
        assert!(matches!(e, Err(SourceError::InvalidConfig(_))));
        let e = Settings::parse(
            ConnectorType::S3,
            &s3_config(),
            &creds(&[("secretKey", "hunter2")]),
        );
        let Err(SourceError::InvalidConfig(m)) = e else {
            panic!("invalid config expected")
        };
        assert!(m.contains("secretKey") && !m.contains("hunter2"), "{m}");
    }

    #[test]
    fn required_fields_per_type() {
        let empty = ConnectorConfig::default();
        for kind in [
            ConnectorType::S3,
            ConnectorType::Gcs,
            ConnectorType::Azure,
            ConnectorType::Local,
            ConnectorType::Http,
        ] {
            assert!(
                matches!(
                    Settings::parse(kind, &empty, &Credentials::default()),
                    Err(SourceError::InvalidConfig(_))
                ),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn urls_without_user_info() {
        assert!(check_url("https://example.org/files", "url").is_ok());
        assert!(check_url("ftp://example.org", "url").is_err());
        assert!(check_url("https://user:pw@example.org/", "url").is_err());
        assert!(check_url("http:///x", "url").is_err());
    }

    /// GCS and Azure connectors with ambient credentials build from the
    /// server's environment alone (no request is made) and say who they
    /// will sign in as.
    #[tokio::test]
    async fn gcp_and_azure_ambient_connectors_build_and_name_their_identity() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let adc = dir.path().join("application_default_credentials.json");
        std::fs::write(
            &adc,
            r#"{"type":"authorized_user","client_id":"fake-client","client_secret":"fake-secret",
                "refresh_token":"fake-refresh-token"}"#,
        )
        .expect("credentials file");
        let env = AmbientEnvironment::from_vars([
            ("GOOGLE_APPLICATION_CREDENTIALS", adc.display().to_string()),
            (
                "AZURE_CLIENT_ID",
                "00000000-0000-0000-0000-000000000001".to_owned(),
            ),
            (
                "AZURE_TENANT_ID",
                "00000000-0000-0000-0000-000000000002".to_owned(),
            ),
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                dir.path().join("token").display().to_string(),
            ),
        ]);
        let ambient = Credentials::ambient(AmbientCredentials::default());
        let cases = [
            (
                ConnectorType::Gcs,
                ConnectorConfig {
                    bucket: Some("b".into()),
                    ..ConnectorConfig::default()
                },
                "the user of `gcloud auth application-default login`",
            ),
            (
                ConnectorType::Azure,
                ConnectorConfig {
                    account: Some("acct".into()),
                    container: Some("c".into()),
                    ..ConnectorConfig::default()
                },
                "workload identity 00000000-0000-0000-0000-000000000001 \
                 (tenant 00000000-0000-0000-0000-000000000002)",
            ),
        ];
        for (kind, config, identity) in cases {
            let Ok(Settings::Remote(s)) = Settings::parse(kind, &config, &ambient) else {
                panic!("{kind:?} should parse")
            };
            assert!(s.is_ambient());
            let built = s
                .build(Purpose::Check, &Redactor::default(), &env)
                .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            let Some(found) = built.identity else {
                panic!("{kind:?} names no identity")
            };
            assert_eq!(found.name().await, identity);
        }
        assert!(matches!(
            Settings::parse(ConnectorType::Http, &ConnectorConfig::default(), &ambient),
            Err(SourceError::InvalidConfig(_))
        ));
    }

    #[test]
    fn every_remote_type_builds_from_its_config() {
        let r = Redactor::default();
        let cases = [
            (ConnectorType::S3, s3_config(), creds(&[])),
            (
                ConnectorType::Gcs,
                ConnectorConfig {
                    bucket: Some("b".into()),
                    ..ConnectorConfig::default()
                },
                creds(&[]),
            ),
            (
                ConnectorType::Azure,
                ConnectorConfig {
                    account: Some("acct".into()),
                    container: Some("c".into()),
                    ..ConnectorConfig::default()
                },
                creds(&[("accessKey", "a2V5")]),
            ),
            (
                ConnectorType::Http,
                ConnectorConfig {
                    url: Some("https://example.org/files/".into()),
                    ..ConnectorConfig::default()
                },
                creds(&[("username", "u"), ("password", "p")]),
            ),
        ];
        for (kind, config, credentials) in cases {
            let Ok(Settings::Remote(s)) = Settings::parse(kind, &config, &credentials) else {
                panic!("{kind:?} should parse")
            };
            for purpose in [Purpose::Data, Purpose::Check] {
                assert!(
                    s.build(purpose, &r, &AmbientEnvironment::default()).is_ok(),
                    "{kind:?}"
                );
            }
        }
    }

    #[test]
    fn reads_retry_for_at_least_twelve_seconds_whatever_the_random_waits() {
        let config = retry(Purpose::Data);
        let floor = config.backoff.init_backoff * u32::try_from(config.max_retries).unwrap();
        assert!(floor >= Duration::from_secs(12), "{floor:?}");
        assert!(config.retry_timeout >= floor);
        let check = retry(Purpose::Check);
        assert!(check.max_retries <= 1 && check.retry_timeout <= Duration::from_secs(5));
    }
}
