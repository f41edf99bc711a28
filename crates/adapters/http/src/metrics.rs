//! `/metrics` in the Prometheus text format: runs by status (from the store)
//! and HTTP requests by method, route pattern and status (counted here).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use sluice_application::usecases::MetricsSnapshot;

/// Counters of the HTTP requests served. Labels are route *patterns*
/// (`/api/v1/pipelines/{id}`) and a fixed set of methods, so their number is
/// bounded whatever clients send.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    requests: Mutex<BTreeMap<RequestKey, RequestStats>>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RequestKey {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Copy, Default)]
struct RequestStats {
    count: u64,
    seconds: f64,
}

/// The route label of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("OTHER")
}

/// Escapes a label value as the text format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl HttpMetrics {
    /// Counts one request.
    pub fn record(&self, method: &str, route: Option<&str>, status: u16, elapsed: Duration) {
        let key = RequestKey {
            method: method_label(method),
            route: route.unwrap_or(UNMATCHED_ROUTE).to_owned(),
            status,
        };
        // A poisoned lock only means another thread panicked mid-update of a
        // counter; the counts are still usable.
        let mut map = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stats = map.entry(key).or_default();
        stats.count += 1;
        stats.seconds += elapsed.as_secs_f64();
    }

    /// The exposition text. `store` is `None` when the store could not be
    /// read; `sluice_store_up` says so and the HTTP counters are still served.
    pub fn render(&self, store: Option<&MetricsSnapshot>) -> String {
        let mut out = String::new();
        write_runs_by_status(&mut out, store);
        write_rows_by_outcome(&mut out, store);
        write_drift(&mut out, store);
        write_webhooks(&mut out, store);
        self.write_requests(&mut out);
        out
    }

    fn write_requests(&self, out: &mut String) {
        let map = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.push_str(
            "# HELP sluice_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE sluice_http_requests_total counter\n");
        for (k, s) in map.iter() {
            let _ = writeln!(
                out,
                "sluice_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}",
                k.method,
                label(&k.route),
                k.status,
                s.count
            );
        }
        out.push_str("# HELP sluice_http_request_duration_seconds Time to the response head, by method, route and status.\n");
        out.push_str("# TYPE sluice_http_request_duration_seconds summary\n");
        for (k, s) in map.iter() {
            let labels = format!(
                "method=\"{}\",route=\"{}\",status=\"{}\"",
                k.method,
                label(&k.route),
                k.status
            );
            let _ = writeln!(
                out,
                "sluice_http_request_duration_seconds_sum{{{labels}}} {}",
                s.seconds
            );
            let _ = writeln!(
                out,
                "sluice_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
    }
}

fn write_runs_by_status(out: &mut String, store: Option<&MetricsSnapshot>) {
    out.push_str("# HELP sluice_store_up Whether the store answered this scrape (1) or not (0).\n");
    out.push_str("# TYPE sluice_store_up gauge\n");
    let _ = writeln!(out, "sluice_store_up {}", u8::from(store.is_some()));
    let Some(snapshot) = store else { return };
    out.push_str("# HELP sluice_runs Runs by status.\n");
    out.push_str("# TYPE sluice_runs gauge\n");
    for (status, n) in &snapshot.runs_by_status {
        let _ = writeln!(out, "sluice_runs{{status=\"{}\"}} {n}", status.as_str());
    }
}

/// Hook for `sluice_rows_total{outcome="loaded|skipped|failed"}`: the store
/// does not report row outcomes yet. When [`MetricsSnapshot`] gains them,
/// render them here (a counter, one line per outcome); nothing else changes.
/// Rows by outcome (loaded, skipped, failed), from the store.
fn write_rows_by_outcome(out: &mut String, store: Option<&MetricsSnapshot>) {
    let Some(snapshot) = store else { return };
    out.push_str("# HELP sluice_rows Rows by outcome over all runs, each row counted once.\n");
    out.push_str("# TYPE sluice_rows gauge\n");
    let r = snapshot.rows;
    for (outcome, n) in [
        ("loaded", r.loaded),
        ("skipped", r.skipped),
        ("failed", r.failed),
    ] {
        let _ = writeln!(out, "sluice_rows{{outcome=\"{outcome}\"}} {n}");
    }
}

/// Drift events: headers runs found differing from their schema.
fn write_drift(out: &mut String, store: Option<&MetricsSnapshot>) {
    let Some(snapshot) = store else { return };
    out.push_str(
        "# HELP sluice_schema_drift_events Log entries of stage drift over all runs: files whose header differed from the schema.\n",
    );
    out.push_str("# TYPE sluice_schema_drift_events gauge\n");
    let _ = writeln!(out, "sluice_schema_drift_events {}", snapshot.drift_events);
}

/// Webhook deliveries by outcome, the outbox's depth and its oldest event.
fn write_webhooks(out: &mut String, store: Option<&MetricsSnapshot>) {
    let Some(snapshot) = store else { return };
    let w = snapshot.webhooks;
    out.push_str("# HELP sluice_webhook_deliveries Webhook delivery attempts by outcome.\n");
    out.push_str("# TYPE sluice_webhook_deliveries gauge\n");
    for (outcome, n) in [
        ("delivered", w.delivered),
        ("retrying", w.retrying),
        ("failed", w.failed),
    ] {
        let _ = writeln!(
            out,
            "sluice_webhook_deliveries{{outcome=\"{outcome}\"}} {n}"
        );
    }
    out.push_str("# HELP sluice_webhook_queue_depth Webhook events waiting to be sent.\n");
    out.push_str("# TYPE sluice_webhook_queue_depth gauge\n");
    let _ = writeln!(out, "sluice_webhook_queue_depth {}", w.pending);
    out.push_str("# HELP sluice_webhook_oldest_pending_seconds Age of the oldest undelivered webhook event (0 when none).\n");
    out.push_str("# TYPE sluice_webhook_oldest_pending_seconds gauge\n");
    let _ = writeln!(
        out,
        "sluice_webhook_oldest_pending_seconds {}",
        w.oldest_pending_seconds
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_domain::status::RunStatus;

    #[test]
    fn renders_runs_and_requests() {
        let m = HttpMetrics::default();
        m.record(
            "GET",
            Some("/api/v1/pipelines/{id}"),
            200,
            Duration::from_millis(5),
        );
        m.record(
            "GET",
            Some("/api/v1/pipelines/{id}"),
            200,
            Duration::from_millis(5),
        );
        m.record("BREW", None, 404, Duration::from_millis(1));
        let snapshot = MetricsSnapshot {
            runs_by_status: vec![(RunStatus::Running, 2), (RunStatus::Failed, 0)],
            rows: sluice_domain::run::Counters {
                loaded: 90,
                skipped: 7,
                failed: 3,
            },
            webhooks: sluice_application::usecases::WebhookMetrics {
                delivered: 4,
                retrying: 3,
                failed: 1,
                pending: 2,
                oldest_pending_seconds: 61,
            },
            drift_events: 5,
        };
        let text = m.render(Some(&snapshot));
        assert!(text.contains("sluice_store_up 1\n"), "{text}");
        assert!(text.contains("sluice_schema_drift_events 5\n"), "{text}");
        assert!(
            text.contains("sluice_runs{status=\"running\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("sluice_runs{status=\"failed\"} 0\n"),
            "{text}"
        );
        assert!(text.contains(
            "sluice_http_requests_total{method=\"GET\",route=\"/api/v1/pipelines/{id}\",status=\"200\"} 2\n"
        ));
        assert!(text.contains(
            "sluice_http_requests_total{method=\"OTHER\",route=\"unmatched\",status=\"404\"} 1\n"
        ));
        for line in [
            "sluice_rows{outcome=\"loaded\"} 90\n",
            "sluice_rows{outcome=\"skipped\"} 7\n",
            "sluice_rows{outcome=\"failed\"} 3\n",
            "sluice_webhook_deliveries{outcome=\"delivered\"} 4\n",
            "sluice_webhook_deliveries{outcome=\"retrying\"} 3\n",
            "sluice_webhook_queue_depth 2\n",
            "sluice_webhook_oldest_pending_seconds 61\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        let down = m.render(None);
        assert!(down.contains("sluice_store_up 0\n"));
        assert!(!down.contains("sluice_rows{"));
        assert!(!down.contains("sluice_runs{"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
