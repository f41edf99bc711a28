//! A small client of the Sluice API.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Calls the API with one key.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    /// Base URL (`http://127.0.0.1:port`).
    pub base: String,
    /// Bearer key.
    pub key: String,
}

impl Api {
    /// A client for `base` using `key`.
    pub fn new(base: String, key: String) -> Self {
        Self {
            client: reqwest::Client::new(),
            base,
            key,
        }
    }

    /// The same server with another key.
    pub fn with_key(&self, key: &str) -> Self {
        Self {
            client: self.client.clone(),
            base: self.base.clone(),
            key: key.to_owned(),
        }
    }

    /// An unauthenticated GET.
    pub async fn raw_get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.client.get(format!("{}{path}", self.base)).send().await
    }

    /// A request with the key; returns status and JSON body (Null when empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// GET.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    /// POST.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// PATCH.
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates an `s3` connector on the test S3 server; returns its id.
    pub async fn s3_connector(&self, bucket: &str) -> String {
        self.s3_connector_at(bucket, &super::env().s3).await
    }

    /// Creates an `s3` connector reaching the test S3 server's bucket through
    /// `endpoint` (a proxy); returns its id.
    pub async fn s3_connector_at(&self, bucket: &str, endpoint: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/connectors",
                json!({
                    "name": format!("s3 {bucket}"),
                    "type": "s3",
                    "config": {"bucket": bucket, "endpoint": endpoint, "region": "us-east-1", "pathStyle": true},
                    "credentials": {"accessKeyId": "test", "secretAccessKey": "test-secret-value"}
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("connector id").to_owned()
    }

    /// Creates a pipeline; returns its id.
    pub async fn pipeline(&self, spec: Value) -> String {
        let (status, body) = self.post("/api/v1/pipelines", spec).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("pipeline id").to_owned()
    }

    /// Starts a run; returns its id.
    pub async fn start_run(&self, pipeline: &str) -> String {
        let (status, body) = self
            .post(&format!("/api/v1/pipelines/{pipeline}/runs"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("run id").to_owned()
    }

    /// The progress of a run.
    pub async fn progress(&self, pipeline: &str, run: &str) -> Value {
        let (status, body) = self
            .get(&format!("/api/v1/pipelines/{pipeline}/runs/{run}/progress"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Waits (polling the API, which has no push channel) until the run is
    /// terminal; returns its progress.
    pub async fn wait_terminal(&self, pipeline: &str, run: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let p = self.progress(pipeline, run).await;
            if matches!(
                p["status"].as_str(),
                Some("completed" | "completed_with_errors" | "failed" | "cancelled")
            ) {
                return p;
            }
            assert!(
                start.elapsed() < limit,
                "run {run} not finished after {limit:?}: {p}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `cond` holds for the run's progress.
    pub async fn wait_until(
        &self,
        pipeline: &str,
        run: &str,
        limit: Duration,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let p = self.progress(pipeline, run).await;
            if cond(&p) {
                return p;
            }
            assert!(
                start.elapsed() < limit,
                "condition not met after {limit:?}: {p}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
