//! Configured secrets never appear in a `Debug` form, an error message or a
//! log line, whatever happens to the connector.

use std::io::Write;
use std::sync::{Arc, Mutex};

use sluice_application::ports::{ObjectSource, ObjectSourceFactory, SourceError};
use sluice_domain::connector::{ConnectorConfig, ConnectorType};
use tracing_subscriber::fmt::MakeWriter;

use crate::common::{
    Fixture, closed_port, connector, credentials, read_all, s3_config, s3_error_stub, unique_name,
};

// Made-up values, distinct enough to find in any output; none has the
// shape of a real cloud credential.
const ACCESS_KEY_ID: &str = "test-key-id-SLUICE-DISTINCT";
const SECRET_ACCESS_KEY: &str = "test-secret-SLUICE-DISTINCT-not-a-real-key";
const SESSION_TOKEN: &str = "test-session-SLUICE-DISTINCT-token";
const SAS_TOKEN: &str = "sv=2024-01-01&sig=SLUICEDISTINCTSASSIGNATURE";
const BEARER_TOKEN: &str = "SLUICE-DISTINCT-BEARER-TOKEN";
const PASSWORD: &str = "SLUICE-DISTINCT-PASSWORD";

const ALL_SECRETS: [&str; 6] = [
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    SESSION_TOKEN,
    SAS_TOKEN,
    BEARER_TOKEN,
    PASSWORD,
];

/// Log lines, captured as the server would print them.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Captures every log line of this thread until the guard drops.
    pub(crate) fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Everything printed or returned during the test, checked at the end.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn debug(&mut self, value: &impl std::fmt::Debug) {
        self.0.push(format!("{value:?}"));
        self.0.push(format!("{value:#?}"));
    }
    fn outcome<T: std::fmt::Debug>(&mut self, result: &Result<T, SourceError>) {
        if let Err(e) = result {
            self.0.push(e.to_string());
            self.0.push(format!("{e:?}"));
        }
    }
}

// Current-thread runtime: every task runs on the test thread, where the
// capturing subscriber is installed.
#[tokio::test]
async fn no_secret_in_debug_errors_or_logs() {
    let (logs, _guard) = Captured::install();
    let mut seen = Seen::default();

    // An S3 connector on the real server, with distinctive credentials.
    let mut f = Fixture::s3().await;
    f.credentials = credentials(&[
        ("accessKeyId", ACCESS_KEY_ID),
        ("secretAccessKey", SECRET_ACCESS_KEY),
        ("sessionToken", SESSION_TOKEN),
    ]);
    f.connector = connector(
        ConnectorType::S3,
        f.connector.config.clone(),
        &f.credentials,
    );
    f.put("in/a.csv.gz", crate::common::gz(b"id\n1\n")).await;
    let concrete = f.concrete();
    seen.debug(&concrete);
    seen.debug(&f.factory);
    seen.debug(&f.credentials);
    let source = f.source();
    seen.outcome(&source.check().await);
    seen.outcome(&source.list("in", Some("*.gz"), &[]).await);
    seen.outcome(&source.head("in/a.csv.gz").await);
    seen.outcome(&read_all(source.as_ref(), "in/a.csv.gz", 1, true).await);
    seen.outcome(&read_all(source.as_ref(), "in/missing.csv", 0, false).await);
    seen.outcome(&source.delete("in/a.csv.gz").await);
    let mut missing_bucket = f.connector.clone();
    missing_bucket.config.bucket = Some(unique_name("gone"));
    let gone = f
        .factory
        .open(&missing_bucket, &f.credentials)
        .expect("open");
    seen.outcome(&gone.check().await);
    seen.outcome(&gone.list("", None, &[]).await);

    // A server that refuses the signature and echoes the access key id, as
    // S3 does in `SignatureDoesNotMatch` bodies.
    let stub = s3_error_stub(403, "SignatureDoesNotMatch", ACCESS_KEY_ID.to_owned()).await;
    let refused = connector(
        ConnectorType::S3,
        s3_config(&stub, &f.place),
        &f.credentials,
    );
    let refused = f.factory.open(&refused, &f.credentials).expect("open");
    let result = refused.check().await;
    assert!(
        matches!(result, Err(SourceError::PermissionDenied(_))),
        "{result:?}"
    );
    seen.outcome(&result);
    seen.outcome(&refused.list("", None, &[]).await);
    seen.outcome(&read_all(refused.as_ref(), "a.csv", 0, false).await);
    // A body error that is neither a code we know nor a status we map: the
    // driver's text is kept (scrubbed) in the message.
    let teapot = s3_error_stub(418, "Teapot", SECRET_ACCESS_KEY.to_owned()).await;
    let teapot = connector(
        ConnectorType::S3,
        s3_config(&teapot, &f.place),
        &f.credentials,
    );
    let teapot = f.factory.open(&teapot, &f.credentials).expect("open");
    let result = teapot.list("", None, &[]).await;
    let Err(SourceError::Other(message)) = &result else {
        panic!("Other expected, got {result:?}")
    };
    assert!(message.contains("[redacted]"), "{message}");
    seen.outcome(&result);

    // Azure with a SAS token and HTTP with a bearer token or a password, on
    // an endpoint that refuses connections.
    let dead = closed_port().await;
    let azure_creds = credentials(&[("sasToken", SAS_TOKEN)]);
    let azure = connector(
        ConnectorType::Azure,
        ConnectorConfig {
            account: Some("acct".into()),
            container: Some("c".into()),
            endpoint: Some(format!("{dead}/acct")),
            ..ConnectorConfig::default()
        },
        &azure_creds,
    );
    let azure_source = f
        .factory
        .open_source(&azure, &azure_creds)
        .expect("open azure");
    seen.debug(&azure_source);
    seen.outcome(&azure_source.check().await);
    seen.outcome(&read_all(&azure_source, "a.csv", 0, false).await);
    for http_creds in [
        credentials(&[("bearerToken", BEARER_TOKEN)]),
        credentials(&[("username", "reader"), ("password", PASSWORD)]),
    ] {
        let http = connector(
            ConnectorType::Http,
            ConnectorConfig {
                url: Some(format!("{dead}/files/")),
                ..ConnectorConfig::default()
            },
            &http_creds,
        );
        let http_source = f
            .factory
            .open_source(&http, &http_creds)
            .expect("open http");
        seen.debug(&http_source);
        seen.outcome(&http_source.check().await);
        seen.outcome(&read_all(&http_source, "a.csv", 0, false).await);
    }
    // Invalid settings are reported by name, not by value.
    let typo = credentials(&[("secretKey", SECRET_ACCESS_KEY)]);
    let typo_connector = connector(ConnectorType::S3, s3_config(&dead, "b"), &typo);
    seen.outcome(&f.factory.open(&typo_connector, &typo).map(|_| ()));

    let logs = logs.text();
    assert!(
        logs.contains(&f.place) && logs.contains("connector test failed"),
        "the capture must have seen our log lines:\n{logs}"
    );
    for text in seen.0.iter().chain(std::iter::once(&logs)) {
        for secret in ALL_SECRETS {
            assert!(!text.contains(secret), "a secret leaked into:\n{text}");
        }
    }
}
