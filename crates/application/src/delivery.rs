//! The webhook delivery worker (decision 0017): claims due events from the
//! outbox with a lease, renders and signs them, sends them through the
//! [`WebhookSender`] port, records every attempt and schedules the next one.
//! Any number of workers in any number of processes may run: the lease
//! hands each event to one at a time, and an expired lease (a worker that
//! died mid-send) hands it to another. Delivery is at least once.

use std::sync::Arc;
use std::time::Duration;

use sluice_domain::ids::DeliveryId;
use sluice_domain::status::RunStatus;
use sluice_domain::webhook::{
    self, AttemptOutcome, BackoffPlan, EVENT_ID_HEADER, EVENT_TYPE_HEADER, EventHeader, NextStep,
    RunFacts, SIGNATURE_HEADER, WebhookEvent,
};
use tokio::sync::watch;

use crate::ports::{
    AttemptResult, ClaimedEvent, Delivery, OutboundRequest, Ports, SendResult, StoreError,
    WebhookSender, WorkerId,
};

/// How the worker runs.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliverySettings {
    /// How long a claimed event stays this worker's (longer than the send
    /// timeout, so a live worker keeps it).
    pub lease_ms: i64,
    /// Events claimed at once.
    pub batch: u32,
    /// Pause between two looks at an empty outbox.
    pub idle_poll: Duration,
    /// Retry timing.
    pub backoff: BackoffPlan,
    /// The server's public base URL for the payload's links, if known.
    pub public_url: Option<String>,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            lease_ms: 60_000,
            batch: 16,
            idle_poll: Duration::from_millis(500),
            backoff: BackoffPlan::default(),
            public_url: None,
        }
    }
}

/// One delivery worker.
#[derive(Clone)]
pub struct Deliverer {
    ports: Ports,
    sender: Arc<dyn WebhookSender>,
    settings: DeliverySettings,
    worker: WorkerId,
    shutdown: Option<watch::Receiver<bool>>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// A worker named `worker` over `ports`, sending through `sender`.
    pub fn new(
        ports: Ports,
        sender: Arc<dyn WebhookSender>,
        settings: DeliverySettings,
        worker: WorkerId,
    ) -> Self {
        Self {
            ports,
            sender,
            settings,
            worker,
            shutdown: None,
        }
    }

    /// Stops [`Deliverer::run`] when `shutdown` turns true.
    pub fn with_shutdown(mut self, shutdown: watch::Receiver<bool>) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// Delivers until shut down: claims what is due, sends it, and waits
    /// `idle_poll` when nothing was.
    pub async fn run(self) {
        let mut shutdown = self.shutdown.clone();
        loop {
            if shutdown.as_ref().is_some_and(|s| *s.borrow()) {
                return;
            }
            let sent = match self.deliver_due().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook delivery cycle failed");
                    0
                }
            };
            if sent > 0 {
                continue;
            }
            match shutdown.as_mut() {
                Some(s) => {
                    tokio::select! {
                        _ = s.changed() => {}
                        () = tokio::time::sleep(self.settings.idle_poll) => {}
                    }
                }
                None => tokio::time::sleep(self.settings.idle_poll).await,
            }
        }
    }

    /// Claims the events due now and attempts each once; answers how many
    /// were attempted.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let now = self.ports.clock.now();
        let claimed = self
            .ports
            .webhooks
            .claim_events(
                &self.worker,
                now,
                self.settings.lease_ms,
                self.settings.batch,
            )
            .await?;
        let n = claimed.len();
        for event in claimed {
            if let Err(e) = self.attempt(&event).await {
                // The lease runs out and another attempt follows: nothing lost.
                tracing::warn!(event = %event.id, error = %e, "webhook attempt not recorded");
            }
        }
        Ok(n)
    }

    /// The body of an event: the stored one after the first attempt.
    async fn body(&self, event: &ClaimedEvent) -> Result<String, StoreError> {
        if let Some(body) = &event.body {
            return Ok(body.clone());
        }
        let mut run = self
            .ports
            .runs
            .get_run(event.pipeline_id, event.run_id)
            .await?;
        if event.event == WebhookEvent::RunStarted {
            // What the run was when it started, whatever it is now.
            run.status = RunStatus::Running;
            run.finished_at = None;
            run.error = None;
        }
        let pipeline_name = self
            .ports
            .pipelines
            .get_pipeline(event.pipeline_id)
            .await
            .map(|p| p.spec.name)
            .unwrap_or_default();
        let errors = self
            .ports
            .runs
            .first_errors(event.run_id, webhook::PAYLOAD_ERROR_LIMIT)
            .await?;
        let facts = RunFacts {
            run,
            pipeline_name,
            errors,
        };
        let header = EventHeader {
            id: event.id,
            event: event.event,
            created_at: event.created_at,
            errors_threshold: event.errors_threshold,
        };
        Ok(webhook::render(
            event.webhook.format,
            &header,
            &facts,
            self.settings.public_url.as_deref(),
        ))
    }

    async fn attempt(&self, event: &ClaimedEvent) -> Result<(), StoreError> {
        let body = self.body(event).await?;
        let sent_at = self.ports.clock.now();
        let signature = webhook::sign(
            &event.webhook.secret,
            sent_at.millis() / 1000,
            body.as_bytes(),
        );
        let request = OutboundRequest {
            url: event.webhook.url.clone(),
            headers: vec![
                (EVENT_ID_HEADER, event.id.to_string()),
                (EVENT_TYPE_HEADER, event.event.as_str().to_owned()),
                (SIGNATURE_HEADER, signature),
            ],
            body: body.clone(),
        };
        let started = std::time::Instant::now();
        let result = self.sender.send(&request).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let now = self.ports.clock.now();
        let (outcome, status_code, error) = match &result {
            SendResult::Answered {
                status,
                retry_after,
            } => (
                AttemptOutcome::Status {
                    status: *status,
                    retry_after_secs: retry_after
                        .as_deref()
                        .and_then(|v| webhook::parse_retry_after(v, now)),
                },
                Some(*status),
                None,
            ),
            SendResult::NoAnswer { error, retryable } => (
                AttemptOutcome::NoAnswer {
                    retryable: *retryable,
                },
                None,
                Some(error.clone()),
            ),
        };
        let id = self.ports.ids.ulid();
        // The id's random bits are the jitter.
        let jitter = (id.0 & 0xFFFF) as f64 / 65_536.0;
        let failures = event.attempts + 1;
        let step = self
            .settings
            .backoff
            .next(outcome, failures, event.window_start, now, jitter);
        let (result, next_attempt_at) = match step {
            NextStep::Delivered => (AttemptResult::Delivered, None),
            NextStep::RetryAt(at) => (AttemptResult::Retrying, Some(at)),
            NextStep::GiveUp => (AttemptResult::Failed, None),
        };
        let delivery = Delivery {
            id: DeliveryId::from_ulid(id),
            event_id: event.id,
            event: event.event,
            run_id: event.run_id,
            webhook_id: event.webhook.id,
            attempt: failures,
            attempted_at: sent_at,
            status_code,
            latency_ms,
            error,
            result,
            next_attempt_at,
        };
        let recorded = self
            .ports
            .webhooks
            .record_attempt(event, &body, &delivery)
            .await?;
        tracing::info!(
            event = %event.id,
            webhook = %event.webhook.id,
            kind = event.event.as_str(),
            attempt = failures,
            status = status_code,
            result = result.as_str(),
            recorded,
            "webhook attempt"
        );
        Ok(())
    }
}

#[cfg(test)]
#[path = "delivery_tests.rs"]
mod tests;
