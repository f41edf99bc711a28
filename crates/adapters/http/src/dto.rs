//! The API's wire shapes, defined in `sluice-api-types` (shared with the
//! client), and how application values become them.

pub use sluice_api_types::*;

use sluice_application::ports::{ApiKey, Delivery, Page};
use sluice_application::usecases::{
    ConnectorCheck, CreatedApiKey, DryRunReport, InferReport, PollReport, PollStatus, RunView,
};

/// A store page as a wire page, converting item by item.
pub fn page<S, T>(page: Page<S>, item: impl Fn(S) -> T) -> ListPage<T> {
    ListPage {
        items: page.items.into_iter().map(item).collect(),
        next_cursor: page.next_cursor,
    }
}

/// A run as read, its duration measured when it was read.
pub fn run(view: RunView) -> RunDto {
    RunDto::new(view.run, view.read_at)
}

/// The dry run's report.
pub fn dry_run(r: DryRunReport) -> DryRunDto {
    DryRunDto {
        files_matched: r.files_matched,
        files_read: r.files_read,
        rows_checked: r.rows_checked,
        valid_rows: r.valid_rows,
        failed_rows: r.failed_rows,
        errors: r.errors,
        warnings: r.warnings,
        complete: r.complete,
    }
}

/// What inference proposes.
pub fn inference(r: InferReport) -> InferenceDto {
    InferenceDto {
        columns: r.inferred.columns,
        mapping: r.inferred.mapping,
        warnings: r.inferred.warnings,
        files_matched: r.files_matched,
        files_sampled: r.files_sampled,
        rows_sampled: r.inferred.rows,
        malformed_rows: r.inferred.malformed,
        pipeline: r.pipeline,
        create_table: r
            .create_table
            .iter()
            .map(|s| format!("{s};"))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// A key as listed (never its secret).
pub fn api_key(k: ApiKey) -> ApiKeyDto {
    ApiKeyDto {
        id: k.id,
        name: k.name,
        role: k.role,
        prefix: k.prefix,
        created_at: k.created_at,
        revoked_at: k.revoked_at,
    }
}

/// A key just created, with its secret.
pub fn created_api_key(c: CreatedApiKey) -> CreatedApiKeyDto {
    CreatedApiKeyDto {
        id: c.key.id,
        name: c.key.name,
        role: c.key.role,
        prefix: c.key.prefix,
        created_at: c.key.created_at,
        key: c.secret,
    }
}

/// The outcome of a connector check.
pub fn connector_check(c: ConnectorCheck) -> ConnectorCheckDto {
    ConnectorCheckDto {
        ok: c.ok,
        message: c.message,
        duration_ms: c.duration_ms,
        identity: c.identity,
    }
}

/// One watched pipeline.
pub fn poll_status(p: PollStatus) -> PollStatusDto {
    PollStatusDto {
        id: p.id,
        name: p.name,
        connector: p.connector,
        connector_type: p.connector_type,
        polling: p.polling,
        last_run_at: p.last_run_at,
        last_run_status: p.last_run_status,
        schedule: p.schedule,
    }
}

/// The outcome of a polling cycle.
pub fn poll_trigger(r: PollReport) -> PollTriggerResponse {
    PollTriggerResponse {
        message: r.message(),
        checked: r.checked,
        triggered: r.triggered,
    }
}

/// One delivery attempt.
pub fn delivery(d: Delivery) -> DeliveryDto {
    DeliveryDto {
        id: d.id,
        event_id: d.event_id,
        event: d.event,
        run_id: d.run_id,
        attempt: d.attempt,
        attempted_at: d.attempted_at,
        status_code: d.status_code,
        latency_ms: d.latency_ms,
        error: d.error,
        result: d.result.as_str().to_owned(),
        next_attempt_at: d.next_attempt_at,
    }
}
