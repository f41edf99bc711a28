//! What the client commands print for people: tables (comfy-table) and
//! short sentences. Scripts use `--json`, which prints the API's JSON.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use sluice_client::domain::connector::Connector;
use sluice_client::domain::pipeline::Pipeline;
use sluice_client::domain::progress::RunProgress;
use sluice_client::domain::time::Timestamp;
use sluice_client::types::{
    ApiKeyPage, ConnectorPage, DryRunDto, LedgerPage, ListPage, PipelinePage, PollStatusResponse,
    RetryResponse, RunDto, RunFilePage, RunPage,
};

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A table, and under a full page the command for the next one.
fn with_more<T>(t: &Table, page: &ListPage<T>, empty: &str) -> String {
    if page.items.is_empty() {
        return empty.to_owned();
    }
    match &page.next_cursor {
        Some(c) => format!("{t}\nMore: add --cursor {c}"),
        None => t.to_string(),
    }
}

/// Rows of `n` as "1,234,567".
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Milliseconds as `4.2s`, `3m 10s`, `1h 02m`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    if s < 60 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

pub fn connectors(page: &ConnectorPage) -> String {
    let mut t = table(&["ID", "NAME", "TYPE", "WHERE", "CREATED"]);
    for c in &page.items {
        t.add_row(vec![
            c.id.to_string(),
            c.name.clone(),
            c.connector_type.as_str().to_owned(),
            location(c),
            c.created_at.to_string(),
        ]);
    }
    with_more(
        &t,
        page,
        "No connectors yet: sluice connectors create -f connector.json",
    )
}

fn location(c: &Connector) -> String {
    let cfg = &c.config;
    [&cfg.bucket, &cfg.container, &cfg.root, &cfg.url]
        .into_iter()
        .find_map(|v| v.clone())
        .unwrap_or_default()
}

pub fn connector(c: &Connector) -> String {
    let config = serde_json::to_string_pretty(&c.config).unwrap_or_default();
    let keys = if c.credential_keys.is_empty() {
        "none".to_owned()
    } else {
        c.credential_keys.join(", ")
    };
    format!(
        "{} ({})\n  type         {}\n  credentials  {keys} (values are never shown)\n  created      {}\n  updated      {}\n  config       {}",
        c.name,
        c.id,
        c.connector_type.as_str(),
        c.created_at,
        c.updated_at,
        config.replace('\n', "\n               ")
    )
}

pub fn pipelines(page: &PipelinePage) -> String {
    let mut t = table(&[
        "ID", "NAME", "STATUS", "STRATEGY", "TABLE", "SOURCE", "POLLING",
    ]);
    for p in &page.items {
        let s = &p.spec;
        let polling = if s.polling.enabled {
            format!("every {} min", s.polling.interval_minutes)
        } else {
            "off".into()
        };
        t.add_row(vec![
            p.id.to_string(),
            s.name.clone(),
            name(&s.status),
            s.load_strategy.as_str().to_owned(),
            s.destination.table.to_string(),
            format!(
                "{}{}",
                s.source.prefix,
                s.source.pattern.as_deref().unwrap_or("")
            ),
            polling,
        ]);
    }
    with_more(
        &t,
        page,
        "No pipelines yet: sluice pipelines create -f pipeline.json",
    )
}

pub fn pipeline(p: &Pipeline) -> String {
    let spec = serde_json::to_string_pretty(&p.spec).unwrap_or_default();
    format!(
        "{} ({})\n  created {}, updated {}\n{spec}",
        p.spec.name, p.id, p.created_at, p.updated_at
    )
}

pub fn dry_run(r: &DryRunDto) -> String {
    let scope = if r.complete {
        "every row of the source"
    } else {
        "the first rows"
    };
    let mut out = format!(
        "Checked {} rows ({scope}) in {} of {} matching files: {} would load, {} would be rejected.",
        count(r.rows_checked),
        r.files_read,
        r.files_matched,
        count(r.valid_rows),
        count(r.failed_rows)
    );
    for w in &r.warnings {
        out.push_str(&format!("\nwarning: {w}"));
    }
    if !r.errors.is_empty() {
        let mut t = table(&["ROW", "COLUMN", "VALUE", "ERROR"]);
        for e in &r.errors {
            t.add_row(vec![
                e.row.to_string(),
                e.column.clone(),
                e.value.clone(),
                e.error.clone(),
            ]);
        }
        out.push_str(&format!("\n{t}"));
    }
    out
}

pub fn api_keys(page: &ApiKeyPage) -> String {
    let mut t = table(&["ID", "NAME", "ROLE", "PREFIX", "CREATED", "REVOKED"]);
    for k in &page.items {
        t.add_row(vec![
            k.id.to_string(),
            k.name.clone(),
            k.role.as_str().to_owned(),
            k.prefix.clone(),
            k.created_at.to_string(),
            or_dash(k.revoked_at.map(Timestamp::to_rfc3339)),
        ]);
    }
    with_more(&t, page, "No API keys.")
}

pub fn runs(page: &RunPage) -> String {
    let mut t = table(&[
        "ID", "STATUS", "TRIGGER", "ROWS", "LOADED", "FAILED", "SKIPPED", "CREATED", "DURATION",
    ]);
    for r in &page.items {
        t.add_row(vec![
            r.id.to_string(),
            r.status.as_str().to_owned(),
            name(&r.trigger),
            or_dash(r.total_rows.map(count)),
            count(r.loaded_rows),
            count(r.failed_rows),
            count(r.skipped_rows),
            r.created_at.to_string(),
            duration(r.duration_ms),
        ]);
    }
    with_more(&t, page, "No runs yet: sluice run PIPELINE --follow")
}

pub fn ledger(page: &LedgerPage) -> String {
    let mut t = table(&[
        "KEY",
        "ROWS",
        "LOADED",
        "SKIPPED",
        "FAILED",
        "SIZE",
        "RUN",
        "LOADED AT",
    ]);
    for f in &page.items {
        t.add_row(vec![
            f.key.clone(),
            count(f.total_rows),
            or_dash(f.loaded_rows.map(count)),
            or_dash(f.skipped_rows.map(count)),
            count(f.failed_rows),
            count(f.size),
            f.run_id.to_string(),
            f.loaded_at.to_string(),
        ]);
    }
    with_more(&t, page, "No files loaded yet.")
}

pub fn run_files(page: &RunFilePage) -> String {
    let mut t = table(&[
        "#",
        "KEY",
        "STATUS",
        "FIRST ROW",
        "ROWS",
        "LOADED",
        "SKIPPED",
        "FAILED",
    ]);
    for f in &page.items {
        t.add_row(vec![
            f.index.to_string(),
            f.key.clone(),
            name(&f.status),
            count(f.first_row),
            count(f.total_rows),
            or_dash(f.loaded_rows.map(count)),
            or_dash(f.skipped_rows.map(count)),
            count(f.failed_rows),
        ]);
    }
    with_more(&t, page, "The run reads no files.")
}

pub fn run_started(r: &RunDto) -> String {
    format!(
        "Started run {} ({}). Follow it: sluice runs watch {}",
        r.id, r.status, r.id
    )
}

pub fn retry(r: &RetryResponse) -> String {
    format!(
        "Started retry {} of {}: {}. Follow it: sluice runs watch {}",
        r.id,
        r.metadata.retry_of,
        if r.metadata.resumable {
            format!("resumes after row {}", count(r.metadata.resume_from_row))
        } else {
            "starts over (replace)".to_owned()
        },
        r.id
    )
}

pub fn run(r: &RunDto, p: &RunProgress) -> String {
    let mut out = format!(
        "Run {} of pipeline {}: {} ({})\n  {} of {} rows processed: {} loaded, {} skipped, {} failed\n  created {}, duration {}, ETA {}",
        r.id,
        r.pipeline_id,
        r.status,
        r.load_strategy.as_str(),
        count(r.processed_rows),
        or_dash(r.total_rows.map(count)),
        count(r.loaded_rows),
        count(r.skipped_rows),
        count(r.failed_rows),
        r.created_at,
        duration(r.duration_ms),
        or_dash(p.eta.as_deref()),
    );
    if let Some(of) = r.metadata.retry_of {
        out.push_str(&format!("\n  retry of {of}"));
    }
    if let Some(e) = &r.error {
        out.push_str(&format!("\n  error: {e}"));
    }
    if !p.partition_details.is_empty() {
        let mut t = table(&["PARTITION", "STATUS", "ROWS", "PROGRESS"]);
        for d in &p.partition_details {
            t.add_row(vec![
                d.index.to_string(),
                d.status.as_str().to_owned(),
                count(d.rows),
                or_dash(d.progress.map(|v| format!("{v}%"))),
            ]);
        }
        out.push_str(&format!("\n{t}"));
    }
    if !p.validation_errors.is_empty() {
        let mut t = table(&["ROW", "COLUMN", "VALUE", "ERROR"]);
        for e in &p.validation_errors {
            t.add_row(vec![
                e.row.to_string(),
                e.column.clone(),
                e.value.clone(),
                e.error.clone(),
            ]);
        }
        out.push_str(&format!(
            "\nFirst rejected rows (all of them: sluice runs errors {}):\n{t}",
            r.id
        ));
    }
    if !p.log.is_empty() {
        out.push_str("\nLog:");
        for e in &p.log {
            out.push_str(&format!(
                "\n  {} {:<8} {}",
                e.timestamp,
                name(&e.stage),
                e.message
            ));
        }
    }
    out
}

/// The wire name of an enum value (`paused`, `api`, `extract`).
pub fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub fn poll_status(s: &PollStatusResponse) -> String {
    if s.pipelines.is_empty() {
        return "No active pipeline watches a touch file.".into();
    }
    let mut t = table(&["ID", "NAME", "CONNECTOR", "TOUCH FILE", "EVERY", "LAST RUN"]);
    for p in &s.pipelines {
        let last = match (p.last_run_at, p.last_run_status) {
            (Some(at), Some(status)) => format!("{status} at {at}"),
            _ => "never".into(),
        };
        t.add_row(vec![
            p.id.to_string(),
            p.name.clone(),
            format!("{} ({})", p.connector, p.connector_type.as_str()),
            format!(
                "{}{}",
                p.polling.prefix.clone().unwrap_or_default(),
                p.polling.touch_file
            ),
            format!("{} min", p.polling.interval_minutes),
            last,
        ]);
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations_read_easily() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(duration(4_200), "4.2s");
        assert_eq!(duration(190_000), "3m 10s");
        assert_eq!(duration(3_720_000), "1h 02m");
    }
}
