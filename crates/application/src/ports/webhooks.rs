//! The webhook port: subscriptions, the outbox of events, and the delivery log
//! (decision 0017).
//!
//! Contract, beyond the common one of [`crate::ports::store`]:
//! * events are never written through this port: every store writes them in
//!   the transaction that moves a run to `running` (`run.started`) or to a
//!   terminal status (the end events and `run.errors_exceeded`), one per
//!   subscription that wants it (enabled, watching the run's pipeline), with
//!   the id [`sluice_domain::webhook::event_id`] gives, at most once per
//!   (subscription, run, event);
//! * [`WebhookStore::claim_events`] hands a due pending event to one caller
//!   at a time (a lease with a fencing token); an expired lease makes it
//!   claimable again, so a worker that dies mid-delivery delays an event but
//!   never loses it;
//! * [`WebhookStore::record_attempt`] with a token that is no longer the
//!   event's changes nothing and answers `false`;
//! * the first recorded body is kept: later attempts send the same bytes.

use async_trait::async_trait;
use sluice_domain::ids::{DeliveryId, EventId, PipelineId, RunId, WebhookId};
use sluice_domain::time::Timestamp;
use sluice_domain::webhook::{Webhook, WebhookEvent};

use super::queue::{LeaseToken, WorkerId};
use super::store::{Page, PageRequest, StoreError};

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventState {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Given up: a final refusal, or the retry window ended.
    Failed,
}

impl EventState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A claimed event, with what sending it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedEvent {
    /// The event id (the same on every attempt).
    pub id: EventId,
    /// Its subscription as it is now (URL, format, secret).
    pub webhook: Webhook,
    /// The run it is about.
    pub run_id: RunId,
    /// That run's pipeline.
    pub pipeline_id: PipelineId,
    /// The event.
    pub event: WebhookEvent,
    /// The threshold passed, for `run.errors_exceeded`.
    pub errors_threshold: Option<u64>,
    /// When it was written (the run's transition).
    pub created_at: Timestamp,
    /// Start of its retry window (creation, or its last redelivery).
    pub window_start: Timestamp,
    /// Attempts recorded so far.
    pub attempts: u32,
    /// The body of its first attempt, once there was one.
    pub body: Option<String>,
    /// The claim's fencing token.
    pub token: LeaseToken,
}

/// How one attempt ended, as the delivery log shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptResult {
    /// 2xx.
    Delivered,
    /// Failed; another attempt is scheduled.
    Retrying,
    /// Failed; no other attempt.
    Failed,
}

impl AttemptResult {
    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "delivered" => Some(Self::Delivered),
            "retrying" => Some(Self::Retrying),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Id (`dlv_…`).
    pub id: DeliveryId,
    /// The event sent.
    pub event_id: EventId,
    /// The event's type.
    pub event: WebhookEvent,
    /// Its run.
    pub run_id: RunId,
    /// The subscription.
    pub webhook_id: WebhookId,
    /// 1 for the first attempt of the event.
    pub attempt: u32,
    /// When it was sent.
    pub attempted_at: Timestamp,
    /// The receiver's status, when it answered.
    pub status_code: Option<u16>,
    /// From sending to the answer's end (or the failure).
    pub latency_ms: u64,
    /// Why it failed without an answer (connection refused, timeout, ...), or
    /// a note on a refusing answer.
    pub error: Option<String>,
    /// How it ended.
    pub result: AttemptResult,
    /// When the next attempt is due, when one is.
    pub next_attempt_at: Option<Timestamp>,
}

/// Outbox figures for the metrics endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxStats {
    /// Events waiting for an attempt.
    pub pending: u64,
    /// The oldest of those, when there is one.
    pub oldest_pending_at: Option<Timestamp>,
    /// Attempts recorded that delivered.
    pub delivered: u64,
    /// Attempts recorded that failed and were retried.
    pub retrying: u64,
    /// Attempts recorded after which the event was given up.
    pub failed: u64,
}

/// Subscriptions, the outbox and its delivery log.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a new subscription (`Conflict` when its id exists).
    async fn insert_webhook(&self, webhook: &Webhook) -> Result<(), StoreError>;
    /// One subscription, with its secret.
    async fn get_webhook(&self, id: WebhookId) -> Result<Webhook, StoreError>;
    /// Subscriptions, newest first.
    async fn list_webhooks(&self, page: &PageRequest) -> Result<Page<Webhook>, StoreError>;
    /// Replaces a subscription (secret included).
    async fn update_webhook(&self, webhook: &Webhook) -> Result<(), StoreError>;
    /// Deletes a subscription with its events and their delivery log.
    async fn delete_webhook(&self, id: WebhookId) -> Result<(), StoreError>;

    /// Claims up to `limit` pending events due at `now` whose lease is free
    /// or expired, oldest due first, leasing each for `lease_ms`.
    async fn claim_events(
        &self,
        worker: &WorkerId,
        now: Timestamp,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedEvent>, StoreError>;

    /// Records an attempt of a claimed event and frees its lease: `body` is
    /// kept if the event has none yet; the event becomes delivered, failed,
    /// or pending again at `delivery.next_attempt_at`. `false` (and nothing
    /// written) when the claim's token is no longer the event's.
    async fn record_attempt(
        &self,
        claim: &ClaimedEvent,
        body: &str,
        delivery: &Delivery,
    ) -> Result<bool, StoreError>;

    /// The delivery log of a subscription, newest first.
    async fn list_deliveries(
        &self,
        webhook: WebhookId,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError>;

    /// Sends the event of one of a subscription's deliveries again: pending,
    /// due at `now`, with a new retry window. `NotFound` when the delivery
    /// is not the subscription's. Answers the event id.
    async fn redeliver(
        &self,
        webhook: WebhookId,
        delivery: DeliveryId,
        now: Timestamp,
    ) -> Result<EventId, StoreError>;

    /// Outbox figures.
    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError>;
}

/// One webhook request to send.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    /// Target URL (checked by [`sluice_domain::webhook::check_url`]).
    pub url: String,
    /// Headers besides `Content-Type: application/json`.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: String,
}

impl std::fmt::Debug for OutboundRequest {
    // The signature header is derived from the secret: it stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundRequest")
            .field("url", &self.url)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// What sending came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// The receiver answered.
    Answered {
        /// HTTP status.
        status: u16,
        /// Its `Retry-After` header, as sent.
        retry_after: Option<String>,
    },
    /// No answer.
    NoAnswer {
        /// Why, in a few words (never the secret or the body).
        error: String,
        /// False when trying again cannot help (an address the
        /// private-address rule refuses).
        retryable: bool,
    },
}

/// Sends webhook requests: POST, no redirect followed, the answer's body
/// read only up to a small cap, within the adapter's timeout (the call
/// always returns, never hangs).
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// Sends one request.
    async fn send(&self, request: &OutboundRequest) -> SendResult;
}
