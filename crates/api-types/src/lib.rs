//! # sluice-api-types
//!
//! The wire shapes of Sluice's HTTP API that the domain does not define
//! itself: runs with their counters, the retry answer,
//! API keys, pages, polling answers, the error body. Domain types that
//! already match the wire (pipelines, connectors, progress, row errors) are
//! used as they are. The server (`sluice-http`) answers with these types and
//! derives its OpenAPI document from them; the client (`sluice-client`)
//! reads them back, so the two cannot drift.

use std::borrow::Cow;

mod error;
mod operations;

pub use error::{ErrorBody, ErrorDetail};
pub use operations::{OPERATION_ACTIONS, allowed_roles};

use serde::{Deserialize, Deserializer, Serialize};
use sluice_domain::connector::ConnectorType;
use sluice_domain::ids::{
    ApiKeyId, ConnectorId, DeliveryId, EventId, PipelineId, RunId, WebhookId,
};
use sluice_domain::inference::{InferredColumn, NameMapping};
use sluice_domain::pipeline::{
    Compression, CsvOptions, LoadStrategy, PipelineSpec, PipelineStatus, PollingSpec, SchemaDrift,
    SourceFormat,
};
use sluice_domain::role::Role;
use sluice_domain::run::{LogEntry, Run, RunMetadata, Trigger};
use sluice_domain::status::RunStatus;
use sluice_domain::time::Timestamp;
use sluice_domain::validation::RowError;
use sluice_domain::webhook::{Webhook, WebhookEvent, WebhookFormat};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// One page of a list, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPage<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

// Written by hand: utoipa's derive inlines the item schema into every page
// type; this one refers to it and names the page after it (`RunPage`).
impl<T: ToSchema> PartialSchema for ListPage<T> {
    fn schema() -> RefOr<Schema> {
        let nullable_string = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .description(Some(
                "Pass as `cursor` to get the next page; null on the last page.",
            ));
        ObjectBuilder::new()
            .description(Some(format!("One page of {}s, newest first.", T::name())))
            .property(
                "items",
                ArrayBuilder::new().items(Ref::from_schema_name(T::name())),
            )
            .required("items")
            .property("nextCursor", nullable_string)
            .required("nextCursor")
            .into()
    }
}

impl<T: ToSchema> ToSchema for ListPage<T> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("{}Page", T::name()))
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
}

/// A page of API keys.
pub type ApiKeyPage = ListPage<ApiKeyDto>;
/// A page of connectors.
pub type ConnectorPage = ListPage<sluice_domain::connector::Connector>;
/// A page of pipelines.
pub type PipelinePage = ListPage<sluice_domain::pipeline::Pipeline>;
/// A page of runs.
pub type RunPage = ListPage<RunDto>;
/// A page of a pipeline's file ledger.
pub type LedgerPage = ListPage<sluice_domain::ledger::LedgerEntry>;
/// A page of a run's files.
pub type RunFilePage = ListPage<sluice_domain::ledger::RunFile>;
/// A page of webhook subscriptions.
pub type WebhookPage = ListPage<WebhookDto>;
/// A page of webhook delivery attempts.
pub type DeliveryPage = ListPage<DeliveryDto>;

/// The answer of `DELETE /pipelines/{id}/files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ForgetResponse {
    /// Ledger entries forgotten (0 when none matched).
    pub forgotten: u64,
}

/// The optional body of `POST /pipelines/{id}/runs`. Without a body a run
/// reads the files its pipeline's `source.files` selects (by default those
/// not in the file ledger).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartRunRequest {
    /// `all`: read every listed file, whatever the ledger says (a forced reload).
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<sluice_domain::ledger::FileSelection>,
    /// Keys to read again although the ledger holds them (at most 1000).
    #[schema(max_items = 1000)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reload: Option<Vec<String>>,
}

/// A run with its counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Run)]
#[serde(rename_all = "camelCase")]
pub struct RunDto {
    /// Id (`run_…`).
    pub id: RunId,
    /// Its pipeline.
    pub pipeline_id: PipelineId,
    /// Status.
    pub status: RunStatus,
    /// Load strategy, frozen when the run was created.
    pub load_strategy: LoadStrategy,
    /// How it started: `api`, `poll` or `retry`.
    pub trigger: Trigger,
    /// Rows in the source; null until the source is counted.
    #[schema(required = true)]
    pub total_rows: Option<u64>,
    /// Rows with a committed outcome (loaded + skipped + failed).
    pub processed_rows: u64,
    /// Rows written to the destination.
    pub loaded_rows: u64,
    /// Rows that failed validation.
    pub failed_rows: u64,
    /// Valid rows not written (duplicate key, or a newer version won).
    pub skipped_rows: u64,
    /// Partition count (0 until the source is counted).
    pub partitions: u32,
    /// Retry and trigger facts (`retryOf`, `resumeFromRow`, `resumable`,
    /// `touchFile`, `touchFileEtag`), each present only when it applies.
    pub metadata: RunMetadata,
    /// Why the run failed, if it did.
    #[schema(required = true)]
    pub error: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// When loading started.
    #[schema(required = true)]
    pub started_at: Option<Timestamp>,
    /// When it reached a terminal status.
    #[schema(required = true)]
    pub finished_at: Option<Timestamp>,
    /// Elapsed milliseconds, to now or to the end.
    pub duration_ms: u64,
}

impl RunDto {
    /// The wire view of `run` at `now`.
    pub fn new(run: Run, now: Timestamp) -> Self {
        let duration_ms = run.duration_ms(now);
        Self {
            id: run.id,
            pipeline_id: run.pipeline_id,
            status: run.status,
            load_strategy: run.load_strategy,
            trigger: run.trigger,
            total_rows: run.total_rows,
            processed_rows: run.counters.processed(),
            loaded_rows: run.counters.loaded,
            failed_rows: run.counters.failed,
            skipped_rows: run.counters.skipped,
            partitions: run.partition_count,
            metadata: run.metadata,
            error: run.error,
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            duration_ms,
        }
    }
}

/// The `metadata` of a retry answer: exactly these three fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryMetadata {
    /// The run retried.
    pub retry_of: RunId,
    /// Rows already committed by the original run (0 when not resumable).
    pub resume_from_row: u64,
    /// True for `append` and `upsert` (resume), false for `replace` (full re-run).
    pub resumable: bool,
}

/// The `201` answer of `POST …/retry`, field for field as `docs/api.md` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryResponse {
    /// The new run's id.
    pub id: RunId,
    /// Its pipeline.
    pub pipeline_id: PipelineId,
    /// Always `pending`.
    pub status: RunStatus,
    /// Load strategy of the new run.
    pub load_strategy: LoadStrategy,
    /// Where the retry resumes.
    pub metadata: RetryMetadata,
    /// The new run's log: its first entry has stage `retry`.
    pub log: Vec<LogEntry>,
}

impl RetryResponse {
    /// The answer for a retry of `original`.
    pub fn new(run: Run, log: Vec<LogEntry>, original: RunId) -> Self {
        let m = &run.metadata;
        Self {
            metadata: RetryMetadata {
                retry_of: m.retry_of.unwrap_or(original),
                resume_from_row: m.resume_from_row.unwrap_or(0),
                resumable: m.resumable.unwrap_or(false),
            },
            id: run.id,
            pipeline_id: run.pipeline_id,
            status: run.status,
            load_strategy: run.load_strategy,
            log,
        }
    }
}

/// The body of `GET /me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmI {
    /// The key used (`key_…`).
    pub key_id: ApiKeyId,
    /// Its role.
    pub role: Role,
}

/// The body of `GET …/errors` with `Accept: application/json` (streamed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunErrorsResponse {
    /// The run.
    pub run_id: RunId,
    /// Number of errors.
    pub total: u64,
    /// Every validation error in row order; with `limit` or `cursor`, one
    /// page of them.
    pub errors: Vec<RowError>,
    /// Only with `limit` or `cursor`: pass as `cursor` for the next page;
    /// null on the last page.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[schema(value_type = Option<String>)]
    pub next_cursor: Option<Option<String>>,
}

/// A member that may be absent (`None`) or present and null (`Some(None)`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The body of `POST …/dry-run`: what a run would make of the first rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = DryRun)]
#[serde(rename_all = "camelCase")]
pub struct DryRunDto {
    /// Files the source pattern matches (the touch file excluded).
    pub files_matched: u64,
    /// Files read, in the order a run reads them.
    pub files_read: u64,
    /// Rows read and validated.
    pub rows_checked: u64,
    /// Rows a run would load.
    pub valid_rows: u64,
    /// Rows a run would reject.
    pub failed_rows: u64,
    /// The first 100 validation errors in row order, numbered as a run would number them.
    pub errors: Vec<RowError>,
    /// Header problems a run would log, or fail on.
    pub warnings: Vec<String>,
    /// True when these were all the source's rows.
    pub complete: bool,
}

/// The body of `POST /connectors/{id}/infer`: which files to sample, read
/// as a pipeline with this source would read them, and how much.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = InferRequest)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InferRequestDto {
    /// Key prefix (a folder, such as `data/customers/`).
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub prefix: String,
    /// Glob on the key relative to the prefix; all files when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 1024)]
    pub pattern: Option<String>,
    /// File format.
    #[serde(default)]
    pub format: SourceFormat,
    /// CSV settings (`header: false` names the columns `column_1`, …).
    #[serde(default)]
    pub csv: CsvOptions,
    /// Decompression.
    #[serde(default)]
    pub compression: Compression,
    /// Rows to sample in all, spread over the files (default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000000)]
    pub rows: Option<u64>,
    /// Files to sample, the oldest and the newest among them (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100)]
    pub files: Option<u32>,
}

/// The answer of `POST /connectors/{id}/infer`: a proposed schema with the
/// evidence for each column, a pipeline body ready to `POST /pipelines`,
/// and the `CREATE TABLE` a run would execute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Inference)]
#[serde(rename_all = "camelCase")]
pub struct InferenceDto {
    /// The proposed columns, in file order.
    pub columns: Vec<InferredColumn>,
    /// Every header name (or JSON member) and the column name it became.
    pub mapping: Vec<NameMapping>,
    /// What to look at before using the proposal: headers differing between
    /// files, columns empty everywhere, numbers with leading zeros, columns
    /// kept as strings by a few values, rows no schema could load.
    pub warnings: Vec<String>,
    /// Files the prefix and pattern match.
    pub files_matched: u64,
    /// The files sampled, in the order they were read.
    pub files_sampled: Vec<String>,
    /// Records sampled.
    pub rows_sampled: u64,
    /// Sampled records no schema could load.
    pub malformed_rows: u64,
    /// A pipeline body with the proposed schema, ready to `POST /pipelines`
    /// (rename its table and name as you like).
    pub pipeline: PipelineSpec,
    /// The statements a run executes to create the destination table when
    /// it is missing.
    pub create_table: String,
}

/// An API key as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = ApiKey)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyDto {
    /// Id (`key_…`).
    pub id: ApiKeyId,
    /// Label.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The first characters of the secret, to recognise it.
    #[schema(example = "sk_1a2b3c4")]
    pub prefix: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// When it was revoked; null while it works.
    #[schema(required = true)]
    pub revoked_at: Option<Timestamp>,
}

/// The answer of `POST /api-keys`: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = CreatedApiKey)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKeyDto {
    /// Id (`key_…`).
    pub id: ApiKeyId,
    /// Label.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The first characters of the secret.
    pub prefix: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// The secret for `Authorization: Bearer …`; store it now, it is never shown again.
    #[schema(example = "sk_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    pub key: String,
}

/// The body of `POST /api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// Label (1–200 characters).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// `admin`, `editor` or `viewer`.
    pub role: Role,
}

/// The answer of `POST /connectors/{id}/test`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = ConnectorCheck)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorCheckDto {
    /// True when the store answered and the credentials worked.
    pub ok: bool,
    /// What happened, in plain words.
    pub message: String,
    /// How long the check took.
    pub duration_ms: u64,
    /// For ambient credentials: the identity the server signed in as (an
    /// ARN, a service account, a managed identity; never a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// One watched pipeline in `GET /pipelines/poll`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = PollStatus)]
#[serde(rename_all = "camelCase")]
pub struct PollStatusDto {
    /// Pipeline id.
    pub id: PipelineId,
    /// Pipeline name.
    pub name: String,
    /// Connector name.
    pub connector: String,
    /// Connector type.
    pub connector_type: ConnectorType,
    /// Polling settings, with the effective prefix.
    pub polling: PollingSpec,
    /// Creation time of the newest run; null before the first.
    #[schema(required = true)]
    pub last_run_at: Option<Timestamp>,
    /// Status of the newest run; null before the first.
    #[schema(required = true)]
    pub last_run_status: Option<RunStatus>,
    /// The pipeline's cron schedule; present only when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<sluice_domain::pipeline::Schedule>,
}

/// The answer of `GET /pipelines/poll`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PollStatusResponse {
    /// Every active pipeline with polling enabled.
    pub pipelines: Vec<PollStatusDto>,
    /// Their number.
    pub total: u64,
}

/// The answer of `POST /pipelines/poll`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PollTriggerResponse {
    /// `Polling cycle complete: checked N pipelines, triggered M runs`.
    #[schema(example = "Polling cycle complete: checked 3 pipelines, triggered 1 runs")]
    pub message: String,
    /// Pipelines whose touch file was checked.
    pub checked: u64,
    /// Runs started.
    pub triggered: u64,
}

/// The answer of `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthStatus {
    /// `ok` (alive) or `ready` (the database answers).
    pub status: String,
}

/// The members a connector merge patch (RFC 7386) may set; any other member
/// is refused. Nested objects may carry any subset of their members, and
/// `null` removes an optional one. Documentation only: the patch is applied to
/// the stored connector and the result validated as a whole.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct ConnectorPatch {
    /// Display name.
    #[schema(
        min_length = 1,
        max_length = 200,
        nullable = false,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    name: Option<String>,
    /// Store kind.
    #[serde(rename = "type")]
    #[schema(nullable = false)]
    connector_type: Option<ConnectorType>,
    /// Settings to change.
    #[schema(value_type = Option<Object>)]
    config: Option<serde_json::Value>,
    /// Replaces every stored secret (write-only).
    #[schema(value_type = Option<Object>)]
    credentials: Option<serde_json::Value>,
}

/// The members a pipeline merge patch (RFC 7386) may set; any other member
/// is refused. Nested objects may carry any subset of their members, and
/// `null` removes an optional one (required members cannot be removed).
/// Documentation only: the patch is applied to the stored definition and the result validated as a whole.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct PipelinePatch {
    /// Display name.
    #[schema(
        min_length = 1,
        max_length = 200,
        nullable = false,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    name: Option<String>,
    /// `active` or `paused`.
    status: Option<PipelineStatus>,
    /// The connector holding the files.
    #[schema(nullable = false)]
    connector_id: Option<ConnectorId>,
    /// Which files and how to read them.
    #[schema(value_type = Option<Object>, nullable = false)]
    source: Option<serde_json::Value>,
    /// Row schema.
    #[schema(value_type = Option<Object>, nullable = false)]
    schema: Option<serde_json::Value>,
    /// Destination table and key.
    #[schema(value_type = Option<Object>, nullable = false)]
    destination: Option<serde_json::Value>,
    /// Load strategy.
    #[schema(nullable = false)]
    load_strategy: Option<LoadStrategy>,
    /// What a run does when a CSV header adds or lacks schema columns
    /// (`null` restores the default, `ignore`).
    schema_drift: Option<SchemaDrift>,
    /// Partitions per run.
    #[schema(minimum = 1, maximum = 64)]
    partitions: Option<u32>,
    /// Failed rows tolerated before a run fails.
    max_errors: Option<u64>,
    /// Touch-file or new-file polling.
    #[schema(value_type = Option<Object>)]
    polling: Option<serde_json::Value>,
    /// Cron schedule (`null` removes it).
    #[schema(value_type = Option<Object>)]
    schedule: Option<serde_json::Value>,
}

/// A webhook subscription as answered (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Webhook)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDto {
    /// Id (`whk_…`).
    pub id: WebhookId,
    /// Where events are POSTed.
    pub url: String,
    /// The events sent.
    pub events: Vec<WebhookEvent>,
    /// Only runs of these pipelines; null for every pipeline.
    #[schema(required = true)]
    pub pipeline_ids: Option<Vec<PipelineId>>,
    /// `json` or `slack`.
    pub format: WebhookFormat,
    /// Whether events are sent.
    pub enabled: bool,
    /// The threshold of `run.errors_exceeded`.
    #[schema(required = true)]
    pub errors_threshold: Option<u64>,
    /// Always true: a subscription has a secret, which is never shown.
    pub secret_set: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl WebhookDto {
    /// The answer for a stored subscription.
    pub fn new(w: Webhook) -> Self {
        Self {
            id: w.id,
            url: w.url,
            events: w.events,
            pipeline_ids: w.pipeline_ids,
            format: w.format,
            enabled: w.enabled,
            errors_threshold: w.errors_threshold,
            secret_set: true,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// The members a webhook merge patch (RFC 7386) may set; any other member is
/// refused. Without `secret` the stored secret is kept. Documentation only.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct WebhookPatch {
    /// Target URL.
    #[schema(nullable = false)]
    url: Option<String>,
    /// Events.
    #[schema(nullable = false)]
    events: Option<Vec<WebhookEvent>>,
    /// Pipelines (null: every pipeline).
    pipeline_ids: Option<Vec<PipelineId>>,
    /// Format.
    #[schema(nullable = false)]
    format: Option<WebhookFormat>,
    /// Enabled.
    #[schema(nullable = false)]
    enabled: Option<bool>,
    /// Threshold of `run.errors_exceeded`.
    errors_threshold: Option<u64>,
    /// A new signing secret (write-only).
    #[schema(nullable = false, min_length = 16, max_length = 256, write_only)]
    secret: Option<String>,
}

/// One delivery attempt of a webhook event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = WebhookDelivery)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDto {
    /// Id (`dlv_…`): pass to `…/redeliver`.
    pub id: DeliveryId,
    /// The event sent, the same on every attempt (`Sluice-Event-Id`).
    pub event_id: EventId,
    /// Its type.
    pub event: WebhookEvent,
    /// Its run.
    pub run_id: RunId,
    /// 1 for the event's first attempt.
    pub attempt: u32,
    /// When it was sent.
    pub attempted_at: Timestamp,
    /// The receiver's HTTP status; null when it did not answer.
    #[schema(required = true)]
    pub status_code: Option<u16>,
    /// From sending to the end of the answer (or the failure).
    pub latency_ms: u64,
    /// Why it failed without an answer (refused, timeout, ...); null otherwise.
    #[schema(required = true)]
    pub error: Option<String>,
    /// `delivered`, `retrying` (another attempt is scheduled) or `failed`.
    pub result: String,
    /// When the next attempt is due; null when none is.
    #[schema(required = true)]
    pub next_attempt_at: Option<Timestamp>,
}

/// The answer of `POST /webhooks/{id}/deliveries/{deliveryId}/redeliver`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Redelivery)]
#[serde(rename_all = "camelCase")]
pub struct RedeliverResponse {
    /// The event queued again.
    pub event_id: EventId,
    /// Always `pending`: a worker sends it shortly.
    pub state: String,
}
