//! The S3 server of the harness, used over plain HTTP (moto accepts unsigned
//! requests), so the tests do not share code with the adapter under test.

use bytes::Bytes;
use reqwest::StatusCode;

/// A bucket of its own on the test S3 server.
pub struct Bucket {
    /// Its name.
    pub name: String,
    client: reqwest::Client,
    base: String,
}

impl Bucket {
    /// Creates `e2e-<random>`.
    pub async fn new() -> Self {
        let env = super::env();
        let name = format!("e2e-{}", super::suffix());
        let client = reqwest::Client::new();
        let r = client
            .put(format!("{}/{name}", env.s3))
            .send()
            .await
            .expect("create bucket");
        assert!(r.status().is_success(), "create bucket: {}", r.status());
        Self {
            name,
            client,
            base: env.s3,
        }
    }

    /// Uploads an object.
    pub async fn put(&self, key: &str, body: impl Into<Bytes>) {
        let r = self
            .client
            .put(format!("{}/{}/{key}", self.base, self.name))
            // Public-read lets this unsigned client HEAD the object later.
            .header("x-amz-acl", "public-read")
            .body(body.into())
            .send()
            .await
            .expect("put object");
        assert!(r.status().is_success(), "put {key}: {}", r.status());
    }

    /// True if the object exists.
    pub async fn exists(&self, key: &str) -> bool {
        let r = self
            .client
            .head(format!("{}/{}/{key}", self.base, self.name))
            .send()
            .await
            .expect("head");
        match r.status() {
            StatusCode::OK => true,
            StatusCode::NOT_FOUND => false,
            other => panic!("head {key}: {other}"),
        }
    }
}
