//! Ambient credentials against a moto of the test's own that checks every
//! signature and IAM policy (`sluice_testkit::PrivateMoto`), behind TLS with
//! a CA made for the test (given to Sluice as `AWS_CA_BUNDLE`, as an AWS SDK
//! would take it; `object_store` talks to STS over HTTPS only).
//!
//! The bucket is private: only the IAM users and roles below may read it.

use sluice_application::ports::{ObjectSource, SourceError};
use sluice_domain::connector::{AmbientCredentials, ConnectorType, Credentials};
use sluice_object_store::{AmbientEnvironment, ObjectStoreSource, ObjectStoreSourceFactory};
use sluice_testkit::{AccessKey, MOTO_ACCOUNT, PrivateMoto};

use crate::common::{connector, credentials, read_all, s3_config};
use crate::secrets::Captured;

const BUCKET: &str = "private-data";
const EXTERNAL_ID: &str = "fake-external-id-for-tests";
const READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":["s3:ListBucket","s3:GetObject"],"Resource":"*"}]}"#;
const ASSUME: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":"sts:AssumeRole","Resource":"*"}]}"#;

/// A role trust policy: `principal` may take the role through `action`.
fn trust(principal: &str, action: &str, condition: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},
        "Action":"{action}"{condition}}}]}}"#
    )
}

/// What the test set up in its moto.
struct Cloud {
    moto: PrivateMoto,
    reader: AccessKey,
    assumer: AccessKey,
    reader_role: String,
    web_role: String,
}

async fn cloud() -> Cloud {
    let moto = PrivateMoto::start(true).await;
    moto.bucket(BUCKET, &[("in/a.csv", "id\n1\n2\n")]).await;
    let reader = moto.user("reader", READ).await;
    let assumer = moto.user("assumer", ASSUME).await;
    let reader_role = moto
        .role(
            "reader-role",
            &trust(
                &format!(r#"{{"AWS":"arn:aws:iam::{MOTO_ACCOUNT}:user/assumer"}}"#),
                "sts:AssumeRole",
                &format!(r#","Condition":{{"StringEquals":{{"sts:ExternalId":"{EXTERNAL_ID}"}}}}"#),
            ),
            READ,
        )
        .await;
    let web_role = moto
        .role(
            "web-reader",
            &trust(
                &format!(r#"{{"Federated":"arn:aws:iam::{MOTO_ACCOUNT}:oidc-provider/example"}}"#),
                "sts:AssumeRoleWithWebIdentity",
                "",
            ),
            READ,
        )
        .await;
    moto.enforce_auth(0).await;
    Cloud {
        moto,
        reader,
        assumer,
        reader_role,
        web_role,
    }
}

impl Cloud {
    fn env(&self, vars: &[(&str, &str)]) -> AmbientEnvironment {
        let ca = self
            .moto
            .ca_file
            .as_ref()
            .expect("TLS")
            .display()
            .to_string();
        // STS is the test's moto, as a VPC endpoint would be named.
        let mut all: Vec<(String, String)> = vec![
            ("AWS_CA_BUNDLE".into(), ca),
            ("AWS_ENDPOINT_URL_STS".into(), self.moto.endpoint.clone()),
        ];
        all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        AmbientEnvironment::from_vars(all)
    }

    fn keys_of(&self, key: &AccessKey) -> AmbientEnvironment {
        self.env(&[
            ("AWS_ACCESS_KEY_ID", &key.id),
            ("AWS_SECRET_ACCESS_KEY", &key.secret),
        ])
    }

    /// Opens an s3 connector on the private bucket.
    fn open(
        &self,
        factory: &ObjectStoreSourceFactory,
        creds: &Credentials,
    ) -> Result<ObjectStoreSource, SourceError> {
        let c = connector(
            ConnectorType::S3,
            s3_config(&self.moto.endpoint, BUCKET),
            creds,
        );
        factory.open_source(&c, creds)
    }
}

fn ambient(role: Option<&str>, external_id: Option<&str>) -> Credentials {
    Credentials::ambient(AmbientCredentials {
        role_arn: role.map(str::to_owned),
        external_id: external_id.map(str::to_owned),
        ..AmbientCredentials::default()
    })
}

fn factory(env: AmbientEnvironment) -> ObjectStoreSourceFactory {
    ObjectStoreSourceFactory::new(Vec::new()).with_ambient_credentials(env)
}

/// Lists and reads the bucket: what a run does.
async fn reads(source: &dyn ObjectSource) -> Result<Vec<u8>, SourceError> {
    let files = source.list("in", None, &[]).await?;
    assert_eq!(files.len(), 1);
    read_all(source, "in/a.csv", 0, false).await
}

// Current-thread runtime: every task runs on the test thread, where the
// capturing subscriber is installed.
#[tokio::test]
async fn ambient_credentials_read_a_private_bucket() {
    let (logs, _guard) = Captured::install();
    let c = cloud().await;
    let mut printed = Vec::new();

    // Off unless the server allows it.
    let plain = ObjectStoreSourceFactory::new(Vec::new());
    match c.open(&plain, &ambient(None, None)) {
        Err(SourceError::PermissionDenied(m)) => {
            assert!(m.contains("SLUICE_ALLOW_AMBIENT_CREDENTIALS"), "{m}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // The access keys of the server's environment.
    let f = factory(c.keys_of(&c.reader));
    printed.push(format!("{f:?}"));
    let source = c.open(&f, &ambient(None, None)).expect("open");
    printed.push(format!("{source:?}"));
    let check = source.check().await.expect("check");
    assert_eq!(
        check.identity.as_deref(),
        Some(format!("arn:aws:iam::{MOTO_ACCOUNT}:user/reader").as_str())
    );
    assert_eq!(reads(&source).await.expect("read"), b"id\n1\n2\n");

    // A role assumed with the environment's keys (STS AssumeRole), which
    // needs the external id its trust policy names. The assuming user may
    // not read the bucket itself.
    let f = factory(c.keys_of(&c.assumer));
    let own = c.open(&f, &ambient(None, None)).expect("open");
    let denied = reads(&own).await.expect_err("the user alone may not read");
    assert!(
        matches!(denied, SourceError::PermissionDenied(_)),
        "{denied:?}"
    );
    let role = c
        .open(&f, &ambient(Some(&c.reader_role), Some(EXTERNAL_ID)))
        .expect("open");
    let check = role.check().await.expect("check");
    let identity = check.identity.unwrap_or_default();
    assert!(
        identity.starts_with(&format!(
            "arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/reader-role/"
        )),
        "{identity}"
    );
    assert_eq!(reads(&role).await.expect("read"), b"id\n1\n2\n");
    let wrong = c
        .open(
            &f,
            &ambient(Some(&c.reader_role), Some("another-external-id")),
        )
        .expect("open");
    let refused = wrong.check().await.expect_err("wrong external id");
    printed.push(refused.to_string());
    assert!(
        refused.to_string().contains("cannot assume role"),
        "{refused}"
    );

    // A web identity token (EKS IRSA), exchanged by `object_store`'s
    // provider through STS `AssumeRoleWithWebIdentity`. moto finds STS only
    // by a signature's scope or a form body, and this call is unsigned with
    // its parameters in the query string: the STS endpoint is the testkit's
    // front, which moves them into the body. The call is unsigned, which
    // moto answers with HTTP 500 while it checks signatures; it is let
    // through as moto's one unchecked request, everything after it (the
    // listing with the exchanged credentials, GetCallerIdentity) is checked.
    let token = c.moto.dir.path().join("web-identity-token");
    let front = c.moto.sts_front().await;
    let f = factory(c.env(&[
        ("AWS_WEB_IDENTITY_TOKEN_FILE", &token.display().to_string()),
        ("AWS_ROLE_ARN", &c.web_role),
        ("AWS_ENDPOINT_URL_STS", &front),
    ]));
    let source = c.open(&f, &ambient(None, None)).expect("open");
    let missing = source.check().await.expect_err("no token file yet");
    assert!(
        missing.to_string().contains("Failed to read token file"),
        "{missing}"
    );
    std::fs::write(&token, "fake-web-identity-token").expect("token file");
    c.moto.enforce_auth(1).await;
    let check = source.check().await.expect("check");
    let identity = check.identity.unwrap_or_default();
    assert!(
        identity.starts_with(&format!(
            "arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/web-reader/"
        )),
        "{identity}"
    );
    c.moto.enforce_auth(1).await;
    assert_eq!(reads(&source).await.expect("read"), b"id\n1\n2\n");

    // No secret anywhere: in what was printed, returned or logged.
    let logs = logs.text();
    assert!(logs.contains("connector test passed"), "{logs}");
    for secret in [
        c.reader.secret.as_str(),
        c.assumer.secret.as_str(),
        EXTERNAL_ID,
    ] {
        assert!(!logs.contains(secret), "a secret was logged");
        for p in &printed {
            assert!(!p.contains(secret), "a secret was printed: {p}");
        }
    }
}

/// A connector with stored credentials ignores the environment: with the
/// server's environment holding keys that may read the bucket (an ambient
/// connector reads it), the stored (fake) keys are used, and refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_credentials_ignore_the_environment() {
    let moto = PrivateMoto::start(false).await;
    moto.bucket(BUCKET, &[("in/a.csv", "id\n1\n2\n")]).await;
    let reader = moto.user("reader", READ).await;
    moto.enforce_auth(0).await;
    let f = factory(AmbientEnvironment::from_vars([
        ("AWS_ACCESS_KEY_ID", reader.id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", reader.secret.as_str()),
    ]));
    let open = |creds: &Credentials| {
        let c = connector(ConnectorType::S3, s3_config(&moto.endpoint, BUCKET), creds);
        f.open_source(&c, creds).expect("open")
    };
    let control = open(&ambient(None, None));
    assert_eq!(reads(&control).await.expect("read"), b"id\n1\n2\n");
    for stored in [
        credentials(&[
            ("accessKeyId", "fake-key-id-not-in-moto"),
            ("secretAccessKey", "fake-secret-not-in-moto"),
        ]),
        credentials(&[
            ("accessKeyId", reader.id.as_str()),
            ("secretAccessKey", "fake-secret-not-in-moto"),
        ]),
    ] {
        let refused = reads(&open(&stored)).await.expect_err("refused");
        assert!(
            matches!(refused, SourceError::PermissionDenied(_)),
            "{refused:?}"
        );
        assert!(!refused.to_string().contains(&reader.secret));
    }
}
