//! # sluice-client
//!
//! A typed async client of Sluice's HTTP API, built on the API's own wire
//! types ([`types`], the crate `sluice-api-types` that the server derives
//! its OpenAPI document from) and the domain's value types ([`domain`]), so
//! client and server cannot drift. Every operation of the API is a method;
//! an error answer is an [`ApiError`] with the API's `code`, `message` and
//! `field` (and, for a 403, the roles that may make the call); the errors
//! export streams; [`Client::watch`] follows a run's progress.
//!
//! It depends on reqwest (rustls), serde and tokio's timer: no actix, no
//! diesel.
//!
//! ## Connecting
//!
//! ```no_run
//! # async fn demo() -> Result<(), sluice_client::Error> {
//! let client = sluice_client::Client::new("http://127.0.0.1:8080", "sk_…")?;
//! let me = client.me().await?;
//! println!("{} is a {} key", me.key_id, me.role);
//! # Ok(()) }
//! ```
//!
//! ## Connectors and pipelines
//!
//! Create bodies are anything that serialises to the API's JSON (a
//! `serde_json::Value`, a [`domain::pipeline::PipelineSpec`], a struct of
//! your own); edits are JSON merge patches.
//!
//! ```no_run
//! # async fn demo(client: sluice_client::Client) -> Result<(), sluice_client::Error> {
//! use serde_json::json;
//! let connector = client
//!     .create_connector(&json!({"name": "Landing", "type": "local", "config": {"root": "./data"}}))
//!     .await?;
//! let pipeline = client
//!     .create_pipeline(&json!({
//!         "name": "Customers", "connectorId": connector.id,
//!         "source": {"prefix": "customers/", "pattern": "*.csv"},
//!         "schema": {"columns": [{"name": "id", "type": "integer", "required": true}]},
//!         "destination": {"table": "customers", "keyColumns": ["id"]},
//!         "loadStrategy": "upsert"
//!     }))
//!     .await?;
//! let check = client.dry_run(pipeline.id, Some(1000)).await?;
//! println!("{} of {} rows would load", check.valid_rows, check.rows_checked);
//! client.update_pipeline(pipeline.id, &json!({"status": "paused"})).await?;
//! # Ok(()) }
//! ```
//!
//! ## Runs: start, watch, export the rejected rows, retry
//!
//! ```no_run
//! # async fn demo(client: sluice_client::Client, pipeline: sluice_client::domain::ids::PipelineId) -> Result<(), Box<dyn std::error::Error>> {
//! use futures::StreamExt;
//! use sluice_client::ExportFormat;
//! use std::time::Duration;
//!
//! let run = client.start_run(pipeline).await?;
//! let mut progress = std::pin::pin!(client.watch(pipeline, run.id, Duration::from_secs(1)));
//! while let Some(snapshot) = progress.next().await {
//!     let p = snapshot?;
//!     println!("{}: {} of {} rows", p.status, p.processed_rows, p.total_rows);
//! }
//! // Every rejected row as CSV, streamed to a file in bounded memory.
//! let mut file = tokio::fs::File::create("errors.csv").await?;
//! client.write_errors(pipeline, run.id, ExportFormat::Csv, &mut file).await?;
//! let retry = client.retry_run(pipeline, run.id).await?;
//! println!("retry {} resumes from row {}", retry.id, retry.metadata.resume_from_row);
//! # Ok(()) }
//! ```
//!
//! ## The file ledger: what was loaded, forgetting, forced reloads
//!
//! ```no_run
//! # async fn demo(client: sluice_client::Client, pipeline: sluice_client::domain::ids::PipelineId) -> Result<(), sluice_client::Error> {
//! use sluice_client::{ForgetFiles, PageParams};
//! use sluice_client::domain::ledger::FileSelection;
//! use sluice_client::types::StartRunRequest;
//!
//! let ledger = client.list_files(pipeline, Some("2024/"), &PageParams::first(100)).await?;
//! for file in &ledger.items {
//!     println!("{} ({} rows) loaded by {}", file.key, file.total_rows, file.run_id);
//! }
//! // Read one file again on the next run, or every listed file now.
//! client.forget_files(pipeline, &ForgetFiles::Key("2024/01.csv".into())).await?;
//! let all = StartRunRequest { files: Some(FileSelection::All), reload: None };
//! let run = client.start_run_with(pipeline, &all).await?;
//! let files = client.run_files(pipeline, run.id, &PageParams::default()).await?;
//! println!("run {} reads {} files", run.id, files.items.len());
//! # Ok(()) }
//! ```
//!
//! ## Keys and polling
//!
//! ```no_run
//! # async fn demo(client: sluice_client::Client) -> Result<(), sluice_client::Error> {
//! use sluice_client::domain::role::Role;
//! let created = client.create_api_key("ci", Role::Editor).await?;
//! println!("store it now, it is shown once: {}", created.key);
//! let cycle = client.poll_now().await?;
//! println!("{}", cycle.message);
//! client.revoke_api_key(created.id).await?;
//! # Ok(()) }
//! ```
//!
//! ## Errors
//!
//! ```no_run
//! # async fn demo(client: sluice_client::Client, id: sluice_client::domain::ids::PipelineId) {
//! match client.get_pipeline(id).await {
//!     Ok(p) => println!("{}", p.spec.name),
//!     Err(e) if e.api().is_some_and(|a| a.is_not_found()) => println!("no such pipeline"),
//!     Err(e) => eprintln!("{e}"), // e.g. "role viewer may not … (this needs an admin or editor key)"
//! }
//! # }
//! ```

mod error;
mod export;
mod watch;

use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::{ApiError, Error};
pub use export::ExportFormat;
/// The API's own wire types: runs, pages, keys, polling answers, errors.
pub use sluice_api_types as types;
/// The domain's value types the API speaks in: ids, statuses, roles,
/// pipelines, connectors, progress, row errors.
pub use sluice_domain as domain;

use domain::connector::Connector;
use domain::ids::{ApiKeyId, ConnectorId, PipelineId, RunId};
use domain::pipeline::Pipeline;
use domain::progress::RunProgress;
use domain::role::Role;
use types::{
    ApiKeyPage, ConnectorCheckDto, ConnectorPage, CreateApiKeyRequest, CreatedApiKeyDto, DryRunDto,
    ForgetResponse, LedgerPage, PipelinePage, PollStatusResponse, PollTriggerResponse,
    RetryResponse, RunDto, RunErrorsResponse, RunFilePage, RunPage, StartRunRequest, WhoAmI,
};

/// Which page of a list: `limit` 1–200 (the API's default is 50) and the
/// `nextCursor` of the previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageParams {
    /// Items per page.
    pub limit: Option<u32>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The first page of `limit` items.
    pub fn first(limit: u32) -> Self {
        Self {
            limit: Some(limit),
            cursor: None,
        }
    }

    fn query(&self) -> String {
        self.query_with(&[])
    }

    /// The page's query with `extra` name/value pairs before it (values
    /// percent-encoded).
    fn query_with(&self, extra: &[(&str, &str)]) -> String {
        let mut parts: Vec<String> = extra
            .iter()
            .map(|(name, value)| format!("{name}={}", percent_encode(value)))
            .collect();
        if let Some(l) = self.limit {
            parts.push(format!("limit={l}"));
        }
        if let Some(c) = &self.cursor {
            // Cursors are letters, digits, `_` and `-`: nothing to escape.
            parts.push(format!("cursor={c}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// `value` with everything but RFC 3986's unreserved characters
/// percent-encoded, for a query string.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Which entries of a pipeline's file ledger to forget
/// ([`Client::forget_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForgetFiles {
    /// Exactly this key.
    Key(String),
    /// Every key starting with this prefix (empty: the whole ledger).
    Prefix(String),
}

/// A request body, already encoded.
enum Body {
    None,
    Json(Vec<u8>),
    MergePatch(Vec<u8>),
}

fn encode(body: &(impl Serialize + ?Sized)) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(body).map_err(|e| Error::Unexpected {
        status: 0,
        detail: format!("the request body cannot be encoded as JSON: {e}"),
    })
}

/// Most of an error answer read (they are small; anything longer is not ours).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A client of one Sluice API, with one API key. Cheap to clone (the
/// connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    /// A client of the API at `base_url` (`http://127.0.0.1:8080`; a trailing
    /// `/` or `/api/v1` is accepted) authenticating with `api_key`.
    pub fn new(base_url: &str, api_key: impl Into<String>) -> Result<Self, Error> {
        let mut client = Self::anonymous(base_url)?;
        client.key = Some(api_key.into());
        Ok(client)
    }

    /// A client without a key, for the endpoints that need none (health,
    /// the OpenAPI document).
    pub fn anonymous(base_url: &str) -> Result<Self, Error> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let base = trimmed.strip_suffix("/api/v1").unwrap_or(trimmed);
        let valid = ["http://", "https://"]
            .iter()
            .any(|s| base.len() > s.len() && base.starts_with(s));
        if !valid {
            return Err(Error::InvalidUrl(base_url.to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Between two reads, not for a whole (streamed) answer.
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("sluice-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| Error::Transport {
                url: base.to_owned(),
                source,
            })?;
        Ok(Self {
            http,
            base: base.to_owned(),
            key: None,
        })
    }

    /// The API's base URL (without `/api/v1`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends a request; an error answer becomes [`Error::Api`]. `template`
    /// is the path as the API documents it, to name the roles of a 403.
    async fn send(
        &self,
        method: Method,
        template: &'static str,
        path: &str,
        body: Body,
        accept: Option<&'static str>,
    ) -> Result<reqwest::Response, Error> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        if let Some(accept) = accept {
            req = req.header(ACCEPT, accept);
        }
        req = match body {
            Body::None => req,
            Body::Json(b) => req.header(CONTENT_TYPE, "application/json").body(b),
            Body::MergePatch(b) => req
                .header(CONTENT_TYPE, "application/merge-patch+json")
                .body(b),
        };
        let res = req
            .send()
            .await
            .map_err(|source| Error::Transport { url, source })?;
        if res.status().is_success() {
            Ok(res)
        } else {
            Err(api_error(method.as_str(), template, res).await)
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        template: &'static str,
        path: &str,
        body: Body,
    ) -> Result<T, Error> {
        let res = self.send(method, template, path, body, None).await?;
        let status = res.status().as_u16();
        let url = res.url().to_string();
        let bytes = res
            .bytes()
            .await
            .map_err(|source| Error::Transport { url, source })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Unexpected {
            status,
            detail: format!("the answer is not the documented JSON: {e}"),
        })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        template: &'static str,
        path: &str,
    ) -> Result<T, Error> {
        self.call(Method::GET, template, path, Body::None).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        template: &'static str,
        path: &str,
    ) -> Result<T, Error> {
        self.call(Method::POST, template, path, Body::None).await
    }

    async fn post_json<T: DeserializeOwned>(
        &self,
        template: &'static str,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T, Error> {
        self.call(Method::POST, template, path, Body::Json(encode(body)?))
            .await
    }

    async fn patch<T: DeserializeOwned>(
        &self,
        template: &'static str,
        path: &str,
        patch: &(impl Serialize + ?Sized),
    ) -> Result<T, Error> {
        self.call(
            Method::PATCH,
            template,
            path,
            Body::MergePatch(encode(patch)?),
        )
        .await
    }

    async fn delete(&self, template: &'static str, path: &str) -> Result<(), Error> {
        self.send(Method::DELETE, template, path, Body::None, None)
            .await
            .map(drop)
    }

    // ---- who am I ----

    /// `GET /me`: the key this client uses and its role.
    pub async fn me(&self) -> Result<WhoAmI, Error> {
        self.get("/api/v1/me", "/api/v1/me").await
    }

    // ---- API keys (admin) ----

    /// `GET /api-keys`: one page of keys, newest first, revoked ones included.
    pub async fn list_api_keys(&self, page: &PageParams) -> Result<ApiKeyPage, Error> {
        let path = format!("/api/v1/api-keys{}", page.query());
        self.get("/api/v1/api-keys", &path).await
    }

    /// `POST /api-keys`: a new key; its secret (`key`) is shown only here.
    pub async fn create_api_key(&self, name: &str, role: Role) -> Result<CreatedApiKeyDto, Error> {
        let body = CreateApiKeyRequest {
            name: name.to_owned(),
            role,
        };
        self.post_json("/api/v1/api-keys", "/api/v1/api-keys", &body)
            .await
    }

    /// `DELETE /api-keys/{id}`: revokes a key at once.
    pub async fn revoke_api_key(&self, id: ApiKeyId) -> Result<(), Error> {
        self.delete("/api/v1/api-keys/{id}", &format!("/api/v1/api-keys/{id}"))
            .await
    }

    // ---- connectors ----

    /// `GET /connectors`: one page of connectors (never their credentials).
    pub async fn list_connectors(&self, page: &PageParams) -> Result<ConnectorPage, Error> {
        let path = format!("/api/v1/connectors{}", page.query());
        self.get("/api/v1/connectors", &path).await
    }

    /// `GET /connectors/{id}`.
    pub async fn get_connector(&self, id: ConnectorId) -> Result<Connector, Error> {
        self.get(
            "/api/v1/connectors/{id}",
            &format!("/api/v1/connectors/{id}"),
        )
        .await
    }

    /// `POST /connectors` (admin): `body` is the connector's JSON, credentials included.
    pub async fn create_connector(
        &self,
        body: &(impl Serialize + ?Sized),
    ) -> Result<Connector, Error> {
        self.post_json("/api/v1/connectors", "/api/v1/connectors", body)
            .await
    }

    /// `PATCH /connectors/{id}` (admin): a JSON merge patch.
    pub async fn update_connector(
        &self,
        id: ConnectorId,
        patch: &(impl Serialize + ?Sized),
    ) -> Result<Connector, Error> {
        let path = format!("/api/v1/connectors/{id}");
        self.patch("/api/v1/connectors/{id}", &path, patch).await
    }

    /// `DELETE /connectors/{id}` (admin); a 409 while a pipeline uses it.
    pub async fn delete_connector(&self, id: ConnectorId) -> Result<(), Error> {
        self.delete(
            "/api/v1/connectors/{id}",
            &format!("/api/v1/connectors/{id}"),
        )
        .await
    }

    /// `POST /connectors/{id}/test` (admin): whether the store answers and
    /// the credentials work.
    pub async fn test_connector(&self, id: ConnectorId) -> Result<ConnectorCheckDto, Error> {
        let path = format!("/api/v1/connectors/{id}/test");
        self.post("/api/v1/connectors/{id}/test", &path).await
    }

    // ---- pipelines ----

    /// `GET /pipelines`: one page of pipelines.
    pub async fn list_pipelines(&self, page: &PageParams) -> Result<PipelinePage, Error> {
        let path = format!("/api/v1/pipelines{}", page.query());
        self.get("/api/v1/pipelines", &path).await
    }

    /// `GET /pipelines/{id}`.
    pub async fn get_pipeline(&self, id: PipelineId) -> Result<Pipeline, Error> {
        self.get("/api/v1/pipelines/{id}", &format!("/api/v1/pipelines/{id}"))
            .await
    }

    /// `POST /pipelines` (admin, editor).
    pub async fn create_pipeline(
        &self,
        body: &(impl Serialize + ?Sized),
    ) -> Result<Pipeline, Error> {
        self.post_json("/api/v1/pipelines", "/api/v1/pipelines", body)
            .await
    }

    /// `PATCH /pipelines/{id}` (admin, editor): a JSON merge patch, the
    /// result validated as a whole.
    pub async fn update_pipeline(
        &self,
        id: PipelineId,
        patch: &(impl Serialize + ?Sized),
    ) -> Result<Pipeline, Error> {
        let path = format!("/api/v1/pipelines/{id}");
        self.patch("/api/v1/pipelines/{id}", &path, patch).await
    }

    /// `DELETE /pipelines/{id}` (admin, editor); a 409 while a run is active.
    pub async fn delete_pipeline(&self, id: PipelineId) -> Result<(), Error> {
        self.delete("/api/v1/pipelines/{id}", &format!("/api/v1/pipelines/{id}"))
            .await
    }

    /// `POST /pipelines/{id}/dry-run` (admin, editor): validates the first
    /// `rows` rows (default 1,000) as a run would, loading nothing.
    pub async fn dry_run(&self, id: PipelineId, rows: Option<u64>) -> Result<DryRunDto, Error> {
        let query = rows.map_or_else(String::new, |n| format!("?rows={n}"));
        let path = format!("/api/v1/pipelines/{id}/dry-run{query}");
        self.post("/api/v1/pipelines/{id}/dry-run", &path).await
    }

    // ---- runs ----

    /// `POST /pipelines/{id}/runs` (admin, editor): starts a run (`pending`).
    pub async fn start_run(&self, pipeline: PipelineId) -> Result<RunDto, Error> {
        let path = format!("/api/v1/pipelines/{pipeline}/runs");
        self.post("/api/v1/pipelines/{id}/runs", &path).await
    }

    /// `POST /pipelines/{id}/runs` with a body (admin, editor): a run that
    /// also reads files the ledger holds, every listed file
    /// (`files: Some(FileSelection::All)`) or the keys in `reload`.
    pub async fn start_run_with(
        &self,
        pipeline: PipelineId,
        request: &StartRunRequest,
    ) -> Result<RunDto, Error> {
        let path = format!("/api/v1/pipelines/{pipeline}/runs");
        self.post_json("/api/v1/pipelines/{id}/runs", &path, request)
            .await
    }

    /// `GET /pipelines/{id}/runs`: one page of a pipeline's runs, newest first.
    pub async fn list_runs(
        &self,
        pipeline: PipelineId,
        page: &PageParams,
    ) -> Result<RunPage, Error> {
        let path = format!("/api/v1/pipelines/{pipeline}/runs{}", page.query());
        self.get("/api/v1/pipelines/{id}/runs", &path).await
    }

    /// `GET /pipelines/{id}/runs/{runId}`.
    pub async fn get_run(&self, pipeline: PipelineId, run: RunId) -> Result<RunDto, Error> {
        let path = format!("/api/v1/pipelines/{pipeline}/runs/{run}");
        self.get("/api/v1/pipelines/{id}/runs/{runId}", &path).await
    }

    /// `GET /runs/{runId}`: a run found by its id alone (its `pipeline_id`
    /// leads to the other run calls).
    pub async fn find_run(&self, run: RunId) -> Result<RunDto, Error> {
        self.get("/api/v1/runs/{runId}", &format!("/api/v1/runs/{run}"))
            .await
    }

    /// `POST …/cancel` (admin, editor); a 422 for a run that ended.
    pub async fn cancel_run(&self, pipeline: PipelineId, run: RunId) -> Result<RunDto, Error> {
        let path = format!("/api/v1/pipelines/{pipeline}/runs/{run}/cancel");
        self.post("/api/v1/pipelines/{id}/runs/{runId}/cancel", &path)
            .await
    }

    /// `GET …/progress`: counts, partitions, ETA, first errors, log.
    pub async fn run_progress(
        &self,
        pipeline: PipelineId,
        run: RunId,
    ) -> Result<RunProgress, Error> {
        let path = format!("/api/v1/pipelines/{pipeline}/runs/{run}/progress");
        self.get("/api/v1/pipelines/{id}/runs/{runId}/progress", &path)
            .await
    }

    /// `POST …/retry` (admin, editor): a new run resuming the original; a
    /// 422 unless it is `failed` or `completed_with_errors`.
    pub async fn retry_run(
        &self,
        pipeline: PipelineId,
        run: RunId,
    ) -> Result<RetryResponse, Error> {
        let path = format!("/api/v1/pipelines/{pipeline}/runs/{run}/retry");
        self.post("/api/v1/pipelines/{id}/runs/{runId}/retry", &path)
            .await
    }

    /// `GET …/errors?limit=&cursor=`: one page of a run's rejected rows, in
    /// row order.
    pub async fn run_errors_page(
        &self,
        pipeline: PipelineId,
        run: RunId,
        page: &PageParams,
    ) -> Result<RunErrorsResponse, Error> {
        let path = format!(
            "/api/v1/pipelines/{pipeline}/runs/{run}/errors{}",
            page.query()
        );
        self.get("/api/v1/pipelines/{id}/runs/{runId}/errors", &path)
            .await
    }

    // ---- the file ledger ----

    /// `GET /pipelines/{id}/files`: one page of the files the pipeline has
    /// loaded (its file ledger), newest first, only keys starting with
    /// `prefix` when given.
    pub async fn list_files(
        &self,
        pipeline: PipelineId,
        prefix: Option<&str>,
        page: &PageParams,
    ) -> Result<LedgerPage, Error> {
        let extra: Vec<(&str, &str)> = prefix.map(|p| ("prefix", p)).into_iter().collect();
        let path = format!(
            "/api/v1/pipelines/{pipeline}/files{}",
            page.query_with(&extra)
        );
        self.get("/api/v1/pipelines/{id}/files", &path).await
    }

    /// `DELETE /pipelines/{id}/files` (admin, editor): forgets ledger
    /// entries so the next run reads those files again.
    pub async fn forget_files(
        &self,
        pipeline: PipelineId,
        which: &ForgetFiles,
    ) -> Result<ForgetResponse, Error> {
        let (name, value) = match which {
            ForgetFiles::Key(k) => ("key", k.as_str()),
            ForgetFiles::Prefix(p) => ("prefix", p.as_str()),
        };
        let path = format!(
            "/api/v1/pipelines/{pipeline}/files?{name}={}",
            percent_encode(value)
        );
        self.call(
            Method::DELETE,
            "/api/v1/pipelines/{id}/files",
            &path,
            Body::None,
        )
        .await
    }

    /// `GET /pipelines/{id}/runs/{runId}/files`: one page of the files a run
    /// reads, in its order, with their rows' outcomes.
    pub async fn run_files(
        &self,
        pipeline: PipelineId,
        run: RunId,
        page: &PageParams,
    ) -> Result<RunFilePage, Error> {
        let path = format!(
            "/api/v1/pipelines/{pipeline}/runs/{run}/files{}",
            page.query()
        );
        self.get("/api/v1/pipelines/{id}/runs/{runId}/files", &path)
            .await
    }

    // ---- polling ----

    /// `GET /pipelines/poll`: the pipelines watching a touch file.
    pub async fn poll_status(&self) -> Result<PollStatusResponse, Error> {
        self.get("/api/v1/pipelines/poll", "/api/v1/pipelines/poll")
            .await
    }

    /// `POST /pipelines/poll` (admin, editor): one polling cycle now.
    pub async fn poll_now(&self) -> Result<PollTriggerResponse, Error> {
        self.post("/api/v1/pipelines/poll", "/api/v1/pipelines/poll")
            .await
    }

    // ---- health and the document (no key needed) ----

    /// `GET /readyz`: true when the server and its database answer.
    pub async fn ready(&self) -> Result<bool, Error> {
        match self
            .send(Method::GET, "/readyz", "/readyz", Body::None, None)
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::Api(e)) if e.status == 503 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/v1/openapi.json`: the API's OpenAPI document.
    pub async fn openapi(&self) -> Result<serde_json::Value, Error> {
        self.get("/api/v1/openapi.json", "/api/v1/openapi.json")
            .await
    }

    /// A streamed GET of `path` with `accept`, for the exports.
    async fn stream(
        &self,
        template: &'static str,
        path: &str,
        accept: &'static str,
    ) -> Result<impl futures::Stream<Item = Result<Bytes, Error>> + Send + use<>, Error> {
        use futures::StreamExt;
        let res = self
            .send(Method::GET, template, path, Body::None, Some(accept))
            .await?;
        let url = res.url().to_string();
        Ok(res.bytes_stream().map(move |chunk| {
            chunk.map_err(|source| Error::Transport {
                url: url.clone(),
                source,
            })
        }))
    }
}

/// The [`Error`] for an error answer: the API's body when it is one.
async fn api_error(method: &str, template: &'static str, mut res: reqwest::Response) -> Error {
    let status = res.status().as_u16();
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = res.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ERROR_BODY {
            break;
        }
    }
    match serde_json::from_slice::<types::ErrorBody>(&body) {
        Ok(b) => Error::Api(ApiError {
            status,
            code: b.error.code,
            message: b.error.message,
            field: b.error.field,
            allowed_roles: types::allowed_roles(method, template),
        }),
        Err(_) => {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(200).collect();
            Error::Unexpected {
                status,
                detail: if text.trim().is_empty() {
                    "no error body".into()
                } else {
                    text.trim().to_owned()
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        let page = PageParams::first(10);
        assert_eq!(
            page.query_with(&[("prefix", "in/2024 a&b=c")]),
            "?prefix=in%2F2024%20a%26b%3Dc&limit=10"
        );
        assert_eq!(PageParams::default().query(), "");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn base_urls_are_checked_and_trimmed() {
        let c = Client::anonymous("http://127.0.0.1:8080/api/v1/").expect("valid");
        assert_eq!(c.base_url(), "http://127.0.0.1:8080");
        assert!(matches!(
            Client::anonymous("127.0.0.1:8080"),
            Err(Error::InvalidUrl(_))
        ));
    }
}
