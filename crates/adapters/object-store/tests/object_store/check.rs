//! The connector test (`POST /connectors/{id}/test`): success, or the reason
//! in plain words, within the timeout.

use std::time::{Duration, Instant};

use sluice_application::ports::{SourceCheck, SourceError};
use sluice_domain::connector::ConnectorType;

use crate::common::{
    ACCESS_KEY, Fixture, Kind, closed_port, connector, s3_config, s3_error_stub, silent_stub,
    unique_name,
};

#[tokio::test]
async fn s3_check_passes_with_good_settings() {
    let f = Fixture::s3().await;
    assert_eq!(f.source().check().await, Ok(SourceCheck::default()));
    f.put("a.csv", "x").await;
    assert_eq!(f.source().check().await, Ok(SourceCheck::default()));
}

#[tokio::test]
async fn local_check_passes_with_good_settings() {
    let f = Fixture::new(Kind::Local).await;
    assert_eq!(f.source().check().await, Ok(SourceCheck::default()));
}

#[tokio::test]
async fn s3_check_reports_a_missing_bucket() {
    let mut f = Fixture::s3().await;
    let missing = unique_name("missing");
    f.connector.config.bucket = Some(missing.clone());
    let Err(SourceError::NotFound(message)) = f.source().check().await else {
        panic!("NotFound expected")
    };
    assert!(
        message.contains(&missing) && message.contains("does not exist"),
        "{message}"
    );
}

#[tokio::test]
async fn local_check_reports_a_missing_root() {
    let mut f = Fixture::local();
    f.connector.config.root = Some(f.tmp().join("gone").display().to_string());
    let Err(SourceError::NotFound(message)) = f.source().check().await else {
        panic!("NotFound expected")
    };
    assert!(message.contains("does not exist"), "{message}");
}

#[tokio::test]
async fn s3_check_reports_an_unreachable_endpoint_quickly() {
    let mut f = Fixture::s3().await;
    let endpoint = closed_port().await;
    f.connector.config = s3_config(&endpoint, &f.place);
    let started = Instant::now();
    let Err(SourceError::Unreachable(message)) = f.source().check().await else {
        panic!("Unreachable expected")
    };
    assert!(
        message.contains("cannot connect") && message.contains(&endpoint),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn s3_check_reports_wrong_credentials() {
    for (code, words) in [
        ("InvalidAccessKeyId", "wrong credentials"),
        ("SignatureDoesNotMatch", "wrong secret access key"),
        ("AccessDenied", "refused access"),
    ] {
        let endpoint = s3_error_stub(403, code, ACCESS_KEY.to_owned()).await;
        let mut f = Fixture::s3().await;
        f.connector = connector(
            ConnectorType::S3,
            s3_config(&endpoint, &f.place),
            &f.credentials,
        );
        let Err(SourceError::PermissionDenied(message)) = f.source().check().await else {
            panic!("PermissionDenied expected for {code}")
        };
        assert!(
            message.contains(words) && message.contains(code),
            "{message}"
        );
    }
}

#[tokio::test]
async fn check_gives_up_after_its_timeout() {
    let endpoint = silent_stub().await;
    let mut f = Fixture::s3()
        .await
        .with_factory(|x| x.with_check_timeout(Duration::from_millis(1500)));
    f.connector.config = s3_config(&endpoint, &f.place);
    let started = Instant::now();
    let Err(SourceError::Unreachable(message)) = f.source().check().await else {
        panic!("Unreachable expected")
    };
    assert!(message.contains("did not answer within 1.5 s"), "{message}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[test]
fn default_check_timeout_is_ten_seconds() {
    assert_eq!(
        sluice_object_store::DEFAULT_CHECK_TIMEOUT,
        Duration::from_secs(10)
    );
}
