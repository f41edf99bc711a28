//! Webhooks: who is told when a run starts or ends, what they are sent, how
//! it is signed, when a failed delivery is tried again, and which addresses
//! may receive one (`docs/api.md`, decision 0017).
//!
//! Everything here is pure: the payload is built from a run the caller read,
//! the signature from a timestamp the caller gives, the retry plan from the
//! jitter the caller draws, and the address rule from an [`IpAddr`] the
//! caller resolved.
//!
//! ```
//! use sluice_domain::webhook::{sign, verify_signature, WebhookSecret};
//!
//! let secret = WebhookSecret::new("whsec_0123456789abcdef").unwrap();
//! let body = br#"{"id":"evt_01","type":"run.completed"}"#;
//! let header = sign(&secret, 1_700_000_000, body);
//! assert!(header.starts_with("t=1700000000,v1="));
//! assert!(verify_signature(&header, secret.expose(), body, 1_700_000_030, 300).is_ok());
//! assert!(verify_signature(&header, secret.expose(), body, 1_700_009_000, 300).is_err());
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::DomainError;
use crate::ids::{EventId, PipelineId, RunId, Ulid, WebhookId};
use crate::run::Run;
use crate::status::RunStatus;
use crate::time::Timestamp;
use crate::validation::RowError;

/// The header that carries the signature: `t=<unix seconds>,v1=<hex HMAC>`.
pub const SIGNATURE_HEADER: &str = "Sluice-Signature";
/// The header that carries the event id (the same on every attempt).
pub const EVENT_ID_HEADER: &str = "Sluice-Event-Id";
/// The header that carries the event type.
pub const EVENT_TYPE_HEADER: &str = "Sluice-Event-Type";
/// How many validation errors a payload carries.
pub const PAYLOAD_ERROR_LIMIT: usize = 5;
/// Shortest secret accepted.
pub const MIN_SECRET_CHARS: usize = 16;
/// Longest secret accepted.
pub const MAX_SECRET_CHARS: usize = 256;
/// Longest URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// What a subscription can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WebhookEvent {
    /// A run left `pending` for `running` (its source was extracted).
    #[serde(rename = "run.started")]
    RunStarted,
    /// A run completed with every row loaded or skipped.
    #[serde(rename = "run.completed")]
    RunCompleted,
    /// A run completed and some rows failed validation.
    #[serde(rename = "run.completed_with_errors")]
    RunCompletedWithErrors,
    /// A run failed.
    #[serde(rename = "run.failed")]
    RunFailed,
    /// A run was cancelled.
    #[serde(rename = "run.cancelled")]
    RunCancelled,
    /// A run ended with more failed rows than the subscription's
    /// `errorsThreshold`.
    #[serde(rename = "run.errors_exceeded")]
    RunErrorsExceeded,
}

impl WebhookEvent {
    /// Every event, in documentation order.
    pub const ALL: [WebhookEvent; 6] = [
        Self::RunStarted,
        Self::RunCompleted,
        Self::RunCompletedWithErrors,
        Self::RunFailed,
        Self::RunCancelled,
        Self::RunErrorsExceeded,
    ];

    /// The wire name (`run.completed`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RunStarted => "run.started",
            Self::RunCompleted => "run.completed",
            Self::RunCompletedWithErrors => "run.completed_with_errors",
            Self::RunFailed => "run.failed",
            Self::RunCancelled => "run.cancelled",
            Self::RunErrorsExceeded => "run.errors_exceeded",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The event a run reaching `status` announces (`None` for the active
    /// statuses).
    pub fn for_terminal(status: RunStatus) -> Option<Self> {
        match status {
            RunStatus::Completed => Some(Self::RunCompleted),
            RunStatus::CompletedWithErrors => Some(Self::RunCompletedWithErrors),
            RunStatus::Failed => Some(Self::RunFailed),
            RunStatus::Cancelled => Some(Self::RunCancelled),
            RunStatus::Pending | RunStatus::Running => None,
        }
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body a subscription receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The event as JSON ([`payload`]).
    #[default]
    Json,
    /// A Slack incoming-webhook message with the same facts ([`slack_message`]).
    Slack,
}

impl WebhookFormat {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Slack => "slack",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "json" => Some(Self::Json),
            "slack" => Some(Self::Slack),
            _ => None,
        }
    }
}

/// A subscription's signing secret. Write-only: it has no `Serialize`, and
/// its `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// Checks the length (16–256 characters) and that it has no control
    /// characters or surrounding spaces.
    pub fn new(secret: impl Into<String>) -> Result<Self, DomainError> {
        let secret = secret.into();
        let n = secret.chars().count();
        if !(MIN_SECRET_CHARS..=MAX_SECRET_CHARS).contains(&n) {
            return Err(DomainError::field(
                "secret",
                format!("must be between {MIN_SECRET_CHARS} and {MAX_SECRET_CHARS} characters"),
            ));
        }
        if secret.chars().any(char::is_control) || secret.trim() != secret {
            return Err(DomainError::field(
                "secret",
                "must not contain control characters or surrounding spaces",
            ));
        }
        Ok(Self(secret))
    }

    /// The secret itself, for signing and storing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// A stored subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Id.
    pub id: WebhookId,
    /// Where events are POSTed.
    pub url: String,
    /// The events it wants (at least one).
    pub events: Vec<WebhookEvent>,
    /// Only runs of these pipelines; `None` for every pipeline.
    pub pipeline_ids: Option<Vec<PipelineId>>,
    /// Body format.
    pub format: WebhookFormat,
    /// Disabled subscriptions are sent nothing.
    pub enabled: bool,
    /// For `run.errors_exceeded`: more failed rows than this.
    pub errors_threshold: Option<u64>,
    /// The signing secret.
    pub secret: WebhookSecret,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl Webhook {
    /// The events this subscription is owed when a run of `pipeline_id`
    /// reaches `status` with `failed_rows` failed rows: the status's own event
    /// and `run.errors_exceeded` when asked for and passed. Empty when
    /// disabled or for another pipeline.
    pub fn events_for(
        &self,
        pipeline_id: PipelineId,
        status: RunStatus,
        failed_rows: u64,
    ) -> Vec<WebhookEvent> {
        if !self.enabled || !self.watches(pipeline_id) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let own = match status {
            RunStatus::Running => Some(WebhookEvent::RunStarted),
            other => WebhookEvent::for_terminal(other),
        };
        if let Some(e) = own.filter(|e| self.events.contains(e)) {
            out.push(e);
        }
        if status.is_terminal() && self.events.contains(&WebhookEvent::RunErrorsExceeded) {
            if let Some(t) = self.errors_threshold {
                if failed_rows > t {
                    out.push(WebhookEvent::RunErrorsExceeded);
                }
            }
        }
        out
    }

    fn watches(&self, pipeline_id: PipelineId) -> bool {
        self.pipeline_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&pipeline_id))
    }
}

/// A subscription as asked for (POST, or the result of a PATCH), before it
/// is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    /// Target URL.
    pub url: String,
    /// Events.
    pub events: Vec<WebhookEvent>,
    /// Pipelines (`None`: all).
    pub pipeline_ids: Option<Vec<PipelineId>>,
    /// Format.
    pub format: WebhookFormat,
    /// Enabled.
    pub enabled: bool,
    /// Threshold of `run.errors_exceeded`.
    pub errors_threshold: Option<u64>,
}

impl WebhookSpec {
    /// Checks every rule; `allow_private` is the server's
    /// `SLUICE_WEBHOOK_ALLOW_PRIVATE`. Errors name the field.
    pub fn validate(&self, allow_private: bool) -> Result<(), DomainError> {
        check_url(&self.url, allow_private)?;
        if self.events.is_empty() {
            return Err(DomainError::field("events", "must name at least one event"));
        }
        if self.events.contains(&WebhookEvent::RunErrorsExceeded) && self.errors_threshold.is_none()
        {
            return Err(DomainError::field(
                "errorsThreshold",
                "is required with run.errors_exceeded",
            ));
        }
        if let Some(ids) = &self.pipeline_ids {
            if ids.is_empty() {
                return Err(DomainError::field(
                    "pipelineIds",
                    "must name at least one pipeline (or be absent for all)",
                ));
            }
            if ids.len() > 1000 {
                return Err(DomainError::field(
                    "pipelineIds",
                    "must name at most 1000 pipelines",
                ));
            }
        }
        Ok(())
    }
}

/// The id of the event `event` of run `run` for subscription `webhook`,
/// announced at `at`: a ULID with `at` as its time and a hash of the three
/// as its random part. The store writes at most one event per triple (a
/// unique key), and anyone who computes the id again finds the same one.
pub fn event_id(webhook: WebhookId, run: RunId, event: WebhookEvent, at: Timestamp) -> EventId {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(webhook.to_string().as_bytes())
        .chain_update(b"/")
        .chain_update(run.to_string().as_bytes())
        .chain_update(b"/")
        .chain_update(event.as_str().as_bytes())
        .finalize();
    let random = digest
        .iter()
        .take(10)
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    let millis = u64::try_from(at.millis()).unwrap_or(0);
    EventId::from_ulid(Ulid::from_parts(millis, random))
}

/// The body of `POST /webhooks` (and, with the stored secret, the result
/// of a `PATCH`). The secret is write-only: no `Serialize`, and a redacting
/// `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookRequest {
    /// Where events are POSTed: `http` or `https`; loopback, link-local and
    /// private addresses only on a server started with
    /// `SLUICE_WEBHOOK_ALLOW_PRIVATE=1`.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "https://hooks.example.com/sluice")
    )]
    pub url: String,
    /// The events to send (at least one).
    pub events: Vec<WebhookEvent>,
    /// Only runs of these pipelines; absent or null for every pipeline.
    #[serde(default)]
    pub pipeline_ids: Option<Vec<PipelineId>>,
    /// `json` (the default) or `slack`.
    #[serde(default)]
    pub format: WebhookFormat,
    /// Whether events are sent (default true).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// For `run.errors_exceeded`: an event when a run ends with more failed
    /// rows than this.
    #[serde(default)]
    pub errors_threshold: Option<u64>,
    /// The signing secret, 16–256 characters (write-only: never returned).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 16, max_length = 256, write_only)
    )]
    pub secret: String,
}

fn enabled_by_default() -> bool {
    true
}

impl fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("url", &self.url)
            .field("events", &self.events)
            .field("pipeline_ids", &self.pipeline_ids)
            .field("format", &self.format)
            .field("enabled", &self.enabled)
            .field("errors_threshold", &self.errors_threshold)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl WebhookRequest {
    /// Splits the request into its checked spec and secret.
    pub fn into_parts(
        self,
        allow_private: bool,
    ) -> Result<(WebhookSpec, WebhookSecret), DomainError> {
        let secret = WebhookSecret::new(self.secret)?;
        let spec = WebhookSpec {
            url: self.url,
            events: dedup(self.events),
            pipeline_ids: self.pipeline_ids,
            format: self.format,
            enabled: self.enabled,
            errors_threshold: self.errors_threshold,
        };
        spec.validate(allow_private)?;
        Ok((spec, secret))
    }
}

fn dedup(mut events: Vec<WebhookEvent>) -> Vec<WebhookEvent> {
    events.sort();
    events.dedup();
    events
}

/// Whether an address is one that needs `SLUICE_WEBHOOK_ALLOW_PRIVATE`:
/// loopback, link-local, private (RFC 1918, unique local `fc00::/7`),
/// shared (`100.64.0.0/10`), unspecified, broadcast and multicast; an
/// IPv4-mapped IPv6 address is judged as its IPv4 address.
pub fn is_private_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private_v4(v4),
            None => is_private_v6(v6),
        },
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
}

/// Checks a target URL: `http` or `https`, a host, no credentials, at most
/// 2,048 characters; a loopback, link-local or private address (an IP
/// literal, or `localhost`) only when `allow_private`. Host names are
/// checked again when a delivery resolves them, so a name that points inside
/// the network is refused at send time too. Errors name `url`.
pub fn check_url(url: &str, allow_private: bool) -> Result<(), DomainError> {
    let bad = |m: &str| DomainError::field("url", m);
    if url.chars().count() > MAX_URL_CHARS {
        return Err(bad("must be at most 2048 characters"));
    }
    let parsed = url::Url::parse(url).map_err(|_| bad("must be an absolute http(s) URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("must not contain credentials"));
    }
    let private = match parsed.host() {
        None => return Err(bad("must name a host")),
        Some(url::Host::Ipv4(ip)) => is_private_address(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_private_address(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    if private && !allow_private {
        return Err(bad(
            "points to a loopback, link-local or private address (allowed only with SLUICE_WEBHOOK_ALLOW_PRIVATE=1)",
        ));
    }
    Ok(())
}

/// The facts of a run a payload reports, as the store read them.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFacts {
    /// The run (terminal for the end events).
    pub run: Run,
    /// Its pipeline's name.
    pub pipeline_name: String,
    /// Its first validation errors in row order (at most
    /// [`PAYLOAD_ERROR_LIMIT`] are sent).
    pub errors: Vec<RowError>,
}

/// One event to send: what the outbox row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHeader {
    /// The event id, the same on every attempt.
    pub id: EventId,
    /// The event.
    pub event: WebhookEvent,
    /// When the event happened (the run's transition).
    pub created_at: Timestamp,
    /// The threshold passed, for `run.errors_exceeded`.
    pub errors_threshold: Option<u64>,
}

/// Where the links of a payload point: the server's public base URL
/// (`https://sluice.example.com`), or `None` for paths only.
fn link(base: Option<&str>, path: &str) -> String {
    match base {
        Some(b) => format!("{}{path}", b.trim_end_matches('/')),
        None => path.to_owned(),
    }
}

/// The JSON payload of an event:
///
/// ```json
/// {"id": "evt_…", "type": "run.completed", "createdAt": "2026-12-02T02:00:41Z",
///  "data": {"pipeline": {"id": "pipe_…", "name": "Daily import"},
///           "run": {"id": "run_…", "status": "completed", "totalRows": 5000,
///                   "processedRows": 5000, "loadedRows": 4990, "failedRows": 0,
///                   "skippedRows": 10, "durationMs": 41000, "retryOf": null,
///                   "error": null, …},
///           "errors": [], "errorsThreshold": null},
///  "links": {"progress": "…/progress", "errors": "…/errors", "dashboard": "…"}}
/// ```
pub fn payload(event: &EventHeader, facts: &RunFacts, base_url: Option<&str>) -> Value {
    let run = &facts.run;
    let p = run.pipeline_id;
    let r = run.id;
    let errors: Vec<&RowError> = facts.errors.iter().take(PAYLOAD_ERROR_LIMIT).collect();
    json!({
        "id": event.id,
        "type": event.event.as_str(),
        "createdAt": event.created_at,
        "data": {
            "pipeline": {"id": p, "name": facts.pipeline_name},
            "run": {
                "id": r,
                "status": run.status,
                "trigger": run.trigger,
                "totalRows": run.total_rows.unwrap_or(0),
                "processedRows": run.counters.processed(),
                "loadedRows": run.counters.loaded,
                "failedRows": run.counters.failed,
                "skippedRows": run.counters.skipped,
                "createdAt": run.created_at,
                "startedAt": run.started_at,
                "finishedAt": run.finished_at,
                "durationMs": run.duration_ms(event.created_at),
                "retryOf": run.metadata.retry_of,
                "error": run.error,
            },
            "errors": errors,
            "errorsThreshold": event.errors_threshold,
        },
        "links": {
            "progress": link(base_url, &format!("/api/v1/pipelines/{p}/runs/{r}/progress")),
            "errors": link(base_url, &format!("/api/v1/pipelines/{p}/runs/{r}/errors")),
            "dashboard": link(base_url, &format!("/#/pipelines/{p}/runs/{r}")),
        },
    })
}

/// The same facts as a Slack incoming-webhook message (`text` for
/// notifications, `blocks` for the message itself).
pub fn slack_message(event: &EventHeader, facts: &RunFacts, base_url: Option<&str>) -> Value {
    let run = &facts.run;
    let (p, r) = (run.pipeline_id, run.id);
    let headline = match event.event {
        WebhookEvent::RunStarted => "started",
        WebhookEvent::RunCompleted => "completed",
        WebhookEvent::RunCompletedWithErrors => "completed with errors",
        WebhookEvent::RunFailed => "failed",
        WebhookEvent::RunCancelled => "was cancelled",
        WebhookEvent::RunErrorsExceeded => "passed its error threshold",
    };
    let name = slack_escape(&facts.pipeline_name);
    let text = format!("Sluice: run {r} of {name} {headline}");
    let dashboard = link(base_url, &format!("/#/pipelines/{p}/runs/{r}"));
    let mut detail = format!(
        "*Status:* {}\n*Rows:* {} of {} processed, {} loaded, {} failed, {} skipped\n*Duration:* {} s",
        run.status,
        run.counters.processed(),
        run.total_rows.unwrap_or(0),
        run.counters.loaded,
        run.counters.failed,
        run.counters.skipped,
        run.duration_ms(event.created_at) / 1000,
    );
    if let Some(t) = event
        .errors_threshold
        .filter(|_| event.event == WebhookEvent::RunErrorsExceeded)
    {
        detail.push_str(&format!("\n*Threshold:* {t} failed rows"));
    }
    if let Some(of) = run.metadata.retry_of {
        detail.push_str(&format!("\n*Retry of:* {of}"));
    }
    if let Some(e) = &run.error {
        detail.push_str(&format!("\n*Error:* {}", slack_escape(e)));
    }
    for e in facts.errors.iter().take(PAYLOAD_ERROR_LIMIT) {
        detail.push_str(&format!(
            "\n• row {} `{}`: {}",
            e.row,
            slack_escape(&e.column),
            slack_escape(&e.error)
        ));
    }
    json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{text}*")}},
            {"type": "section", "text": {"type": "mrkdwn", "text": detail}},
            {"type": "context", "elements": [{"type": "mrkdwn",
                "text": format!("<{dashboard}|Open in Sluice> · event {}", event.id)}]},
        ],
    })
}

/// Escapes the three characters Slack's mrkdwn treats as control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The body of an event in a subscription's format.
pub fn render(
    format: WebhookFormat,
    event: &EventHeader,
    facts: &RunFacts,
    base_url: Option<&str>,
) -> String {
    match format {
        WebhookFormat::Json => payload(event, facts, base_url),
        WebhookFormat::Slack => slack_message(event, facts, base_url),
    }
    .to_string()
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length, so this never fails.
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()));
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The signature header value for `body` sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn sign(secret: &WebhookSecret, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret.expose().as_bytes(), timestamp, body)
        .finalize()
        .into_bytes();
    let mut hex = String::with_capacity(64);
    for b in tag.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("t={timestamp},v1={hex}")
}

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `t=` or no `v1=`, or not hex.
    #[error("malformed signature header")]
    Malformed,
    /// The timestamp is further from now than the tolerance (a replay).
    #[error("timestamp outside the tolerance")]
    Stale,
    /// No `v1` matches.
    #[error("signature does not match")]
    Mismatch,
}

/// What a receiver does: checks a signature header against the body, the
/// secret and a tolerance in seconds around `now` (Unix seconds). Any of
/// several `v1=` values may match (several secrets during a rotation).
pub fn verify_signature(
    header: &str,
    secret: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => tags.push(decode_hex(v).ok_or(SignatureError::Malformed)?),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if tags.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    let ok = tags.iter().any(|tag| {
        // verify_slice compares in constant time.
        mac(secret.as_bytes(), t, body).verify_slice(tag).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered with this status; `retry_after_secs` is its
    /// `Retry-After` header, when it sent one that parsed.
    Status {
        /// HTTP status.
        status: u16,
        /// `Retry-After`, in seconds from the answer.
        retry_after_secs: Option<u64>,
    },
    /// No answer: connection refused or reset, DNS failure, TLS failure, a
    /// timeout, or an address refused by the private-address rule at send
    /// time (which is final).
    NoAnswer {
        /// Whether trying again can help (false for a refused address).
        retryable: bool,
    },
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Delivered (2xx): done.
    Delivered,
    /// Try again at this instant.
    RetryAt(Timestamp),
    /// Stop: a final refusal (4xx other than 429), or the retry window is
    /// over.
    GiveUp,
}

/// Exponential backoff with jitter inside a retry window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPlan {
    /// Delay after the first failure, before jitter (ms).
    pub base_ms: u64,
    /// Longest delay between two attempts (ms).
    pub max_delay_ms: u64,
    /// No attempt later than this after the event (ms): 24 h.
    pub window_ms: u64,
}

impl Default for BackoffPlan {
    fn default() -> Self {
        Self {
            base_ms: 10_000,
            max_delay_ms: 3_600_000,
            window_ms: 24 * 3_600_000,
        }
    }
}

impl BackoffPlan {
    /// The delay after the `failures`-th failed attempt (1-based) before
    /// jitter: `base * 2^(failures-1)`, at most `max_delay_ms`.
    pub fn delay_ms(&self, failures: u32) -> u64 {
        let exp = failures.saturating_sub(1).min(40);
        self.base_ms
            .saturating_mul(1u64 << exp)
            .min(self.max_delay_ms)
    }

    /// What follows an attempt that ended at `now` with `outcome`, for an
    /// event that happened at `event_at`, after `failures` failed attempts
    /// (this one included). `jitter` in `[0, 1)` spreads the retries of many
    /// events: the delay is between half and all of [`Self::delay_ms`]. A
    /// `Retry-After` replaces the computed delay (capped at `max_delay_ms`).
    pub fn next(
        &self,
        outcome: AttemptOutcome,
        failures: u32,
        event_at: Timestamp,
        now: Timestamp,
        jitter: f64,
    ) -> NextStep {
        let retry_after = match outcome {
            AttemptOutcome::Status { status, .. } if (200..300).contains(&status) => {
                return NextStep::Delivered;
            }
            AttemptOutcome::Status {
                status,
                retry_after_secs,
            } if status == 429 || status >= 500 => retry_after_secs,
            AttemptOutcome::Status { .. } => return NextStep::GiveUp,
            AttemptOutcome::NoAnswer { retryable: false } => return NextStep::GiveUp,
            AttemptOutcome::NoAnswer { retryable: true } => None,
        };
        let delay = match retry_after {
            Some(secs) => secs.saturating_mul(1000).min(self.max_delay_ms),
            None => {
                let full = self.delay_ms(failures);
                let j = if jitter.is_finite() {
                    jitter.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                // Equal jitter: half fixed, half random.
                full / 2 + ((full / 2) as f64 * j) as u64
            }
        };
        let at = now.plus_millis(i64::try_from(delay).unwrap_or(i64::MAX));
        if at.millis_since(event_at) > self.window_ms {
            NextStep::GiveUp
        } else {
            NextStep::RetryAt(at)
        }
    }
}

/// Parses a `Retry-After` value: delay seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, read against `now`). A date in the
/// past is 0 seconds.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<u64> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs);
    }
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
    let rest = v.split_once(", ")?.1;
    let mut it = rest.split(' ');
    let day: u32 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let m: i64 = hms.next()?.parse().ok()?;
    let s: i64 = hms.next()?.parse().ok()?;
    if it.next()? != "GMT" || day == 0 || day > 31 || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let secs = crate::time::days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    let at = Timestamp(secs * 1000);
    Some(at.millis_since(now) / 1000)
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
