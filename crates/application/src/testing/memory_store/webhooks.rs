//! [`WebhookStore`] in memory, and the outbox writes the run transitions make.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sluice_domain::ids::{DeliveryId, EventId, RunId, WebhookId};
use sluice_domain::status::RunStatus;
use sluice_domain::time::Timestamp;
use sluice_domain::webhook::{Webhook, WebhookEvent, event_id};

use super::{InMemoryStore, State, page_of};
use crate::ports::{
    AttemptResult, ClaimedEvent, Delivery, EventState, LeaseToken, OutboxStats, Page, PageRequest,
    StoreError, WebhookStore, WorkerId,
};

/// One outbox row.
#[derive(Debug, Clone)]
pub(super) struct EventRec {
    webhook_id: WebhookId,
    run_id: RunId,
    pipeline_id: sluice_domain::ids::PipelineId,
    event: WebhookEvent,
    errors_threshold: Option<u64>,
    created_at: Timestamp,
    state: EventState,
    attempts: u32,
    window_start: Timestamp,
    next_attempt_at: Timestamp,
    body: Option<String>,
    lease: Option<(LeaseToken, Timestamp)>,
}

/// Webhook state of the in-memory store.
#[derive(Debug, Default)]
pub(super) struct WebhookState {
    hooks: BTreeMap<WebhookId, Webhook>,
    events: BTreeMap<EventId, EventRec>,
    deliveries: BTreeMap<DeliveryId, Delivery>,
}

impl State {
    /// Writes the events a run moving to `status` owes (called inside the
    /// transition, under the same lock: the in-memory transaction).
    pub(super) fn enqueue_webhook_events(
        &mut self,
        run_id: RunId,
        status: RunStatus,
        at: Timestamp,
    ) {
        let Some(rec) = self.runs.get(&run_id) else {
            return;
        };
        let pipeline_id = rec.run.pipeline_id;
        let failed = self.run_view(rec).counters.failed;
        let mut new = Vec::new();
        for hook in self.webhooks.hooks.values() {
            for event in hook.events_for(pipeline_id, status, failed) {
                let id = event_id(hook.id, run_id, event, at);
                let dup = self
                    .webhooks
                    .events
                    .values()
                    .any(|e| e.webhook_id == hook.id && e.run_id == run_id && e.event == event);
                if !dup {
                    new.push((
                        id,
                        EventRec {
                            webhook_id: hook.id,
                            run_id,
                            pipeline_id,
                            event,
                            errors_threshold: hook.errors_threshold,
                            created_at: at,
                            state: EventState::Pending,
                            attempts: 0,
                            window_start: at,
                            next_attempt_at: at,
                            body: None,
                            lease: None,
                        },
                    ));
                }
            }
        }
        self.webhooks.events.extend(new);
    }
}

#[async_trait]
impl WebhookStore for InMemoryStore {
    async fn insert_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if s.webhooks.hooks.contains_key(&webhook.id) {
            return Err(StoreError::Conflict(format!(
                "webhook {} already exists",
                webhook.id
            )));
        }
        s.webhooks.hooks.insert(webhook.id, webhook.clone());
        Ok(())
    }

    async fn get_webhook(&self, id: WebhookId) -> Result<Webhook, StoreError> {
        self.lock()?
            .webhooks
            .hooks
            .get(&id)
            .cloned()
            .ok_or_else(|| StoreError::not_found("webhook", id))
    }

    async fn list_webhooks(&self, page: &PageRequest) -> Result<Page<Webhook>, StoreError> {
        Ok(page_of(&self.lock()?.webhooks.hooks, page, |_| true))
    }

    async fn update_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        match s.webhooks.hooks.get_mut(&webhook.id) {
            Some(h) => {
                *h = webhook.clone();
                Ok(())
            }
            None => Err(StoreError::not_found("webhook", webhook.id)),
        }
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if s.webhooks.hooks.remove(&id).is_none() {
            return Err(StoreError::not_found("webhook", id));
        }
        s.webhooks.events.retain(|_, e| e.webhook_id != id);
        s.webhooks.deliveries.retain(|_, d| d.webhook_id != id);
        Ok(())
    }

    async fn claim_events(
        &self,
        _worker: &WorkerId,
        now: Timestamp,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedEvent>, StoreError> {
        let mut s = self.lock()?;
        let mut due: Vec<(Timestamp, EventId)> = s
            .webhooks
            .events
            .iter()
            .filter(|(_, e)| e.state == EventState::Pending && e.next_attempt_at <= now)
            .filter(|(_, e)| e.lease.is_none_or(|(_, until)| until <= now))
            .map(|(id, e)| (e.next_attempt_at, *id))
            .collect();
        due.sort();
        due.truncate(limit as usize);
        let mut out = Vec::new();
        for (_, id) in due {
            s.next_token += 1;
            let token = LeaseToken(s.next_token);
            let Some(e) = s.webhooks.events.get_mut(&id) else {
                continue;
            };
            e.lease = Some((token, now.plus_millis(lease_ms)));
            let e = e.clone();
            let Some(webhook) = s.webhooks.hooks.get(&e.webhook_id).cloned() else {
                continue;
            };
            out.push(ClaimedEvent {
                id,
                webhook,
                run_id: e.run_id,
                pipeline_id: e.pipeline_id,
                event: e.event,
                errors_threshold: e.errors_threshold,
                created_at: e.created_at,
                window_start: e.window_start,
                attempts: e.attempts,
                body: e.body,
                token,
            });
        }
        Ok(out)
    }

    async fn record_attempt(
        &self,
        claim: &ClaimedEvent,
        body: &str,
        delivery: &Delivery,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock()?;
        let Some(e) = s.webhooks.events.get_mut(&claim.id) else {
            return Ok(false);
        };
        if e.lease.map(|(t, _)| t) != Some(claim.token) || e.state != EventState::Pending {
            return Ok(false);
        }
        e.lease = None;
        e.attempts += 1;
        if e.body.is_none() {
            e.body = Some(body.to_owned());
        }
        match delivery.result {
            AttemptResult::Delivered => e.state = EventState::Delivered,
            AttemptResult::Failed => e.state = EventState::Failed,
            AttemptResult::Retrying => {
                e.next_attempt_at = delivery.next_attempt_at.unwrap_or(delivery.attempted_at);
            }
        }
        s.webhooks.deliveries.insert(delivery.id, delivery.clone());
        Ok(true)
    }

    async fn list_deliveries(
        &self,
        webhook: WebhookId,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        let s = self.lock()?;
        if !s.webhooks.hooks.contains_key(&webhook) {
            return Err(StoreError::not_found("webhook", webhook));
        }
        Ok(page_of(&s.webhooks.deliveries, page, |d| {
            d.webhook_id == webhook
        }))
    }

    async fn redeliver(
        &self,
        webhook: WebhookId,
        delivery: DeliveryId,
        now: Timestamp,
    ) -> Result<EventId, StoreError> {
        let mut s = self.lock()?;
        let event_id = s
            .webhooks
            .deliveries
            .get(&delivery)
            .filter(|d| d.webhook_id == webhook)
            .map(|d| d.event_id)
            .ok_or_else(|| StoreError::not_found("delivery", delivery))?;
        let e = s
            .webhooks
            .events
            .get_mut(&event_id)
            .ok_or_else(|| StoreError::not_found("delivery", delivery))?;
        e.state = EventState::Pending;
        e.next_attempt_at = now;
        e.window_start = now;
        e.lease = None;
        Ok(event_id)
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let s = self.lock()?;
        let pending: Vec<&EventRec> = s
            .webhooks
            .events
            .values()
            .filter(|e| e.state == EventState::Pending)
            .collect();
        let count = |r: AttemptResult| {
            s.webhooks
                .deliveries
                .values()
                .filter(|d| d.result == r)
                .count() as u64
        };
        Ok(OutboxStats {
            pending: pending.len() as u64,
            oldest_pending_at: pending.iter().map(|e| e.created_at).min(),
            delivered: count(AttemptResult::Delivered),
            retrying: count(AttemptResult::Retrying),
            failed: count(AttemptResult::Failed),
        })
    }
}
