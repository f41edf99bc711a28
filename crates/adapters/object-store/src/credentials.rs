//! Ambient credentials: a connector signing in as the server itself.
//!
//! The server's environment is read once, into an [`AmbientEnvironment`]
//! (the process environment in production, an explicit list in tests), and
//! handed to `object_store`'s own credential providers through their
//! configuration keys: for AWS the access keys of the environment, a web
//! identity token exchanged through STS (EKS IRSA), container credentials
//! (ECS task roles, EKS Pod Identity) and the instance profile (IMDS); for
//! GCP application-default credentials and the metadata server; for Azure
//! workload identity, a service principal of the environment or the managed
//! identity. `object_store` caches what they return and fetches anew before
//! it expires.
//!
//! `object_store` has no provider for assuming a role with those
//! credentials (STS `AssumeRole`): [`AssumeRoleProvider`] makes that one
//! signed call itself, with `object_store`'s SigV4 signer and HTTP client,
//! and keeps the answer until five minutes before it expires (decision 0016).
//! The connector test asks STS `GetCallerIdentity` who the credentials are,
//! so it can name the ARN.
//!
//! Only variables that say *how to sign in* are passed on; the connector's
//! own settings (bucket, region, endpoint) never come from the environment.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer, AwsCredential};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::client::{HttpClient, HttpConnector, HttpRequestBody, ReqwestConnector};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::{Certificate, ClientOptions, CredentialProvider};
use serde::Deserialize;
use sluice_application::ports::SourceError;
use tokio::sync::Mutex;

use crate::secret::{Redactor, Secret};

/// The environment variables that tell the AWS providers how to sign in.
const AWS_VARS: &[(&str, AmazonS3ConfigKey)] = &[
    ("AWS_ACCESS_KEY_ID", AmazonS3ConfigKey::AccessKeyId),
    ("AWS_SECRET_ACCESS_KEY", AmazonS3ConfigKey::SecretAccessKey),
    ("AWS_SESSION_TOKEN", AmazonS3ConfigKey::Token),
    (
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        AmazonS3ConfigKey::WebIdentityTokenFile,
    ),
    ("AWS_ROLE_ARN", AmazonS3ConfigKey::RoleArn),
    ("AWS_ROLE_SESSION_NAME", AmazonS3ConfigKey::RoleSessionName),
    ("AWS_ENDPOINT_URL_STS", AmazonS3ConfigKey::StsEndpoint),
    (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        AmazonS3ConfigKey::ContainerCredentialsRelativeUri,
    ),
    (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        AmazonS3ConfigKey::ContainerCredentialsFullUri,
    ),
    (
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        AmazonS3ConfigKey::ContainerAuthorizationTokenFile,
    ),
    (
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        AmazonS3ConfigKey::MetadataEndpoint,
    ),
    ("AWS_IMDSV1_FALLBACK", AmazonS3ConfigKey::ImdsV1Fallback),
];

/// The same for GCP (the metadata server and the default credentials file
/// under `$HOME` are found by `object_store` itself).
const GCP_VARS: &[(&str, GoogleConfigKey)] = &[(
    "GOOGLE_APPLICATION_CREDENTIALS",
    GoogleConfigKey::ApplicationCredentials,
)];

/// The same for Azure.
const AZURE_VARS: &[(&str, AzureConfigKey)] = &[
    ("AZURE_CLIENT_ID", AzureConfigKey::ClientId),
    ("AZURE_TENANT_ID", AzureConfigKey::AuthorityId),
    ("AZURE_CLIENT_SECRET", AzureConfigKey::ClientSecret),
    (
        "AZURE_FEDERATED_TOKEN_FILE",
        AzureConfigKey::FederatedTokenFile,
    ),
    ("AZURE_AUTHORITY_HOST", AzureConfigKey::AuthorityHost),
    ("IDENTITY_ENDPOINT", AzureConfigKey::MsiEndpoint),
    ("MSI_ENDPOINT", AzureConfigKey::MsiEndpoint),
];

/// Variables whose values are secrets: kept out of every message.
const SECRET_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_CLIENT_SECRET",
];

/// A PEM bundle of extra certificate authorities for the AWS endpoints of
/// ambient connectors (S3 and STS), as the AWS SDKs read it.
const CA_BUNDLE_VAR: &str = "AWS_CA_BUNDLE";

/// Fetch new role credentials when the ones held expire within this.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// How long assumed-role credentials are asked for.
const ROLE_SESSION_SECONDS: u32 = 3600;

/// The environment variables ambient credentials are resolved from.
/// `Debug` prints their names only.
#[derive(Clone, Default)]
pub struct AmbientEnvironment {
    vars: BTreeMap<String, String>,
}

impl fmt::Debug for AmbientEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmbientEnvironment")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl AmbientEnvironment {
    /// The process environment, as the server sees it at start-up.
    pub fn from_process() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// Exactly these variables (for tests and embedders).
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let wanted = |k: &str| {
            AWS_VARS.iter().any(|(n, _)| *n == k)
                || GCP_VARS.iter().any(|(n, _)| *n == k)
                || AZURE_VARS.iter().any(|(n, _)| *n == k)
                || k == CA_BUNDLE_VAR
        };
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .filter(|(k, v)| wanted(k) && !v.is_empty())
                .collect(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The secret values among the variables, for redaction.
    pub(crate) fn secrets(&self) -> impl Iterator<Item = &str> {
        SECRET_VARS.iter().filter_map(|n| self.get(n))
    }

    /// Client options with the extra certificate authorities, if any.
    pub(crate) fn client_options(
        &self,
        options: ClientOptions,
    ) -> Result<ClientOptions, SourceError> {
        let Some(path) = self.get(CA_BUNDLE_VAR) else {
            return Ok(options);
        };
        let pem = std::fs::read(path).map_err(|e| {
            SourceError::InvalidConfig(format!(
                "{CA_BUNDLE_VAR} names {path}, which cannot be read: {e}"
            ))
        })?;
        let certificates = Certificate::from_pem_bundle(&pem).map_err(|_| {
            SourceError::InvalidConfig(format!(
                "{CA_BUNDLE_VAR} names {path}, which holds no PEM certificate"
            ))
        })?;
        Ok(certificates
            .into_iter()
            .fold(options, ClientOptions::with_root_certificate))
    }

    /// An S3 builder that signs in as the server.
    pub(crate) fn aws(&self, mut builder: AmazonS3Builder) -> AmazonS3Builder {
        for (name, key) in AWS_VARS {
            if let Some(v) = self.get(name) {
                builder = builder.with_config(*key, v);
            }
        }
        builder
    }

    /// A GCS builder that signs in as the server.
    pub(crate) fn gcp(&self, mut builder: GoogleCloudStorageBuilder) -> GoogleCloudStorageBuilder {
        for (name, key) in GCP_VARS {
            if let Some(v) = self.get(name) {
                builder = builder.with_config(*key, v);
            }
        }
        builder
    }

    /// An Azure builder that signs in as the server (`client_id` picks a
    /// user-assigned managed identity).
    pub(crate) fn azure(
        &self,
        mut builder: MicrosoftAzureBuilder,
        client_id: Option<&str>,
    ) -> MicrosoftAzureBuilder {
        for (name, key) in AZURE_VARS {
            if let Some(v) = self.get(name) {
                builder = builder.with_config(*key, v);
            }
        }
        if let Some(id) = client_id {
            builder = builder.with_config(AzureConfigKey::ClientId, id);
        }
        builder
    }

    /// The STS endpoint for `region`.
    pub(crate) fn sts_endpoint(&self, region: &str) -> String {
        self.get("AWS_ENDPOINT_URL_STS")
            .map(|e| e.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"))
    }

    /// The session name of assumed roles.
    pub(crate) fn session_name(&self) -> String {
        self.get("AWS_ROLE_SESSION_NAME")
            .unwrap_or("sluice")
            .to_owned()
    }

    /// Who a GCP connector signs in as, when the credentials file says.
    pub(crate) fn gcp_identity(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct KeyFile {
            #[serde(rename = "type")]
            kind: Option<String>,
            client_email: Option<String>,
        }
        let path = self.get("GOOGLE_APPLICATION_CREDENTIALS")?;
        let text = std::fs::read_to_string(path).ok()?;
        let file: KeyFile = serde_json::from_str(&text).ok()?;
        match (file.kind.as_deref(), file.client_email) {
            (_, Some(email)) => Some(format!("service account {email}")),
            (Some("authorized_user"), None) => {
                Some("the user of `gcloud auth application-default login`".to_owned())
            }
            _ => None,
        }
    }

    /// Who an Azure connector signs in as, as far as the settings tell.
    pub(crate) fn azure_identity(&self, client_id: Option<&str>) -> String {
        match (
            client_id.or(self.get("AZURE_CLIENT_ID")),
            self.get("AZURE_TENANT_ID"),
        ) {
            (Some(id), Some(tenant)) if self.get("AZURE_FEDERATED_TOKEN_FILE").is_some() => {
                format!("workload identity {id} (tenant {tenant})")
            }
            (Some(id), Some(tenant)) if self.get("AZURE_CLIENT_SECRET").is_some() => {
                format!("service principal {id} (tenant {tenant})")
            }
            (Some(id), _) => format!("managed identity {id}"),
            (None, _) => "the system-assigned managed identity".to_owned(),
        }
    }
}

/// An STS endpoint reached with `object_store`'s HTTP client and signer.
#[derive(Debug, Clone)]
pub(crate) struct Sts {
    client: HttpClient,
    endpoint: String,
    region: String,
    redactor: Redactor,
}

/// Temporary credentials from STS.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expiration: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleResponse {
    assume_role_result: AssumeRoleResult,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleResult {
    credentials: StsCredentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CallerIdentityResponse {
    get_caller_identity_result: CallerIdentity,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CallerIdentity {
    arn: String,
}

impl Sts {
    pub(crate) fn new(
        options: &ClientOptions,
        endpoint: String,
        region: &str,
        redactor: Redactor,
    ) -> Result<Self, SourceError> {
        let options = options
            .clone()
            .with_allow_http(endpoint.starts_with("http://"));
        let client = ReqwestConnector::default().connect(&options).map_err(|e| {
            SourceError::InvalidConfig(format!("cannot set up STS at {endpoint}: {e}"))
        })?;
        Ok(Self {
            client,
            endpoint,
            region: region.to_owned(),
            redactor,
        })
    }

    /// `text` without any credential this connector knows of.
    pub(crate) fn scrub(&self, text: &str) -> String {
        self.redactor.scrub(text)
    }

    /// One signed STS query (form-encoded POST); the answer's XML body.
    async fn call(
        &self,
        credential: &AwsCredential,
        form: &[(&str, &str)],
    ) -> Result<Bytes, String> {
        let mut body = String::from("Version=2011-06-15");
        for (k, v) in form {
            body.push('&');
            body.push_str(k);
            body.push('=');
            body.push_str(&percent_encode(v));
        }
        let mut request = http::Request::builder()
            .method("POST")
            .uri(format!("{}/", self.endpoint))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(HttpRequestBody::from(body))
            .map_err(|e| e.to_string())?;
        AwsAuthorizer::new(credential, "sts", &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| format!("STS at {} could not be reached ({e})", self.endpoint))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .bytes()
            .await
            .map_err(|e| format!("STS at {} did not answer ({e})", self.endpoint))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let message = xml_element(&text, "Message").unwrap_or_default();
            let code = xml_element(&text, "Code").unwrap_or_default();
            return Err(self.redactor.scrub(&format!(
                "STS answered HTTP {}: {code} {message}",
                status.as_u16()
            )));
        }
        Ok(bytes)
    }

    /// The ARN the credentials belong to.
    pub(crate) async fn caller_identity(
        &self,
        credential: &AwsCredential,
    ) -> Result<String, String> {
        let body = self
            .call(credential, &[("Action", "GetCallerIdentity")])
            .await?;
        let parsed: CallerIdentityResponse = quick_xml::de::from_reader(body.as_ref())
            .map_err(|e| format!("STS answered something unexpected ({e})"))?;
        Ok(parsed.get_caller_identity_result.arn)
    }
}

/// AWS credentials of a role assumed with the server's ambient credentials,
/// fetched again five minutes before they expire.
pub(crate) struct AssumeRoleProvider {
    base: Arc<dyn CredentialProvider<Credential = AwsCredential>>,
    sts: Sts,
    role_arn: String,
    external_id: Option<Secret>,
    session_name: String,
    held: Mutex<Option<(Arc<AwsCredential>, DateTime<Utc>)>>,
}

impl fmt::Debug for AssumeRoleProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssumeRoleProvider")
            .field("role_arn", &self.role_arn)
            .field("sts", &self.sts.endpoint)
            .finish_non_exhaustive()
    }
}

impl AssumeRoleProvider {
    pub(crate) fn new(
        base: Arc<dyn CredentialProvider<Credential = AwsCredential>>,
        sts: Sts,
        role_arn: String,
        external_id: Option<Secret>,
        session_name: String,
    ) -> Self {
        Self {
            base,
            sts,
            role_arn,
            external_id,
            session_name,
            held: Mutex::new(None),
        }
    }

    async fn assume(&self) -> Result<(Arc<AwsCredential>, DateTime<Utc>), String> {
        let base = self.base.get_credential().await.map_err(|e| {
            self.sts.redactor.scrub(&format!(
                "no ambient credentials to assume the role with: {e}"
            ))
        })?;
        let seconds = ROLE_SESSION_SECONDS.to_string();
        let mut form = vec![
            ("Action", "AssumeRole"),
            ("RoleArn", self.role_arn.as_str()),
            ("RoleSessionName", self.session_name.as_str()),
            ("DurationSeconds", seconds.as_str()),
        ];
        if let Some(id) = &self.external_id {
            form.push(("ExternalId", id.expose()));
        }
        let body = self
            .sts
            .call(&base, &form)
            .await
            .map_err(|e| format!("cannot assume role {}: {e}", self.role_arn))?;
        let parsed: AssumeRoleResponse = quick_xml::de::from_reader(body.as_ref())
            .map_err(|e| format!("STS answered AssumeRole with something unexpected ({e})"))?;
        let c = parsed.assume_role_result.credentials;
        let expires = DateTime::parse_from_rfc3339(&c.expiration)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| "STS gave credentials without a readable expiry".to_owned())?;
        self.sts.redactor.add([
            c.access_key_id.as_str(),
            c.secret_access_key.as_str(),
            c.session_token.as_str(),
        ]);
        Ok((
            Arc::new(AwsCredential {
                key_id: c.access_key_id,
                secret_key: c.secret_access_key,
                token: Some(c.session_token),
            }),
            expires,
        ))
    }
}

#[async_trait]
impl CredentialProvider for AssumeRoleProvider {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut held = self.held.lock().await;
        if let Some((credential, expires)) = held.as_ref() {
            let left = (*expires - Utc::now()).to_std().unwrap_or_default();
            if left > REFRESH_BEFORE_EXPIRY {
                return Ok(Arc::clone(credential));
            }
        }
        let (credential, expires) =
            self.assume()
                .await
                .map_err(|message| object_store::Error::Generic {
                    store: "S3",
                    source: message.into(),
                })?;
        *held = Some((Arc::clone(&credential), expires));
        Ok(credential)
    }
}

/// The text of the first `<name>…</name>` element of an XML error body.
fn xml_element(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{name}>"))? + start;
    Some(text[start..end].trim().to_owned())
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sign_in_variables_are_kept_and_never_printed() {
        let env = AmbientEnvironment::from_vars([
            ("AWS_ACCESS_KEY_ID", "fake-access-key-id"),
            ("AWS_SECRET_ACCESS_KEY", "fake-secret-value"),
            ("AWS_ENDPOINT", "http://elsewhere"),
            ("AWS_BUCKET", "other"),
            ("PATH", "/bin"),
        ]);
        let printed = format!("{env:?}");
        assert!(printed.contains("AWS_SECRET_ACCESS_KEY"), "{printed}");
        assert!(!printed.contains("fake-secret-value"), "{printed}");
        assert!(!printed.contains("AWS_ENDPOINT") && !printed.contains("AWS_BUCKET"));
        assert_eq!(
            env.secrets().collect::<Vec<_>>(),
            vec!["fake-access-key-id", "fake-secret-value"]
        );
    }

    #[test]
    fn sts_endpoints_and_encoding() {
        let env = AmbientEnvironment::default();
        assert_eq!(
            env.sts_endpoint("eu-west-1"),
            "https://sts.eu-west-1.amazonaws.com"
        );
        let env = AmbientEnvironment::from_vars([("AWS_ENDPOINT_URL_STS", "https://127.0.0.1:9/")]);
        assert_eq!(env.sts_endpoint("eu-west-1"), "https://127.0.0.1:9");
        assert_eq!(
            percent_encode("arn:aws:iam::1:role/a b"),
            "arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa%20b"
        );
        assert_eq!(
            xml_element(
                "<Error><Code>AccessDenied</Code><Message> no </Message></Error>",
                "Message"
            ),
            Some("no".to_owned())
        );
    }
}
