//! [`WebhookStore`]: subscriptions, the outbox (`webhook_events`) and the
//! delivery log; and [`enqueue_events`], which the run transitions call
//! inside their own transactions (decision 0017).

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sluice_application::ports::{
    AttemptResult, ClaimedEvent, Delivery, EventState, LeaseToken, OutboxStats, Page, PageRequest,
    StoreError, WebhookStore, WorkerId,
};
use sluice_domain::ids::{DeliveryId, EventId, PipelineId, RunId, WebhookId};
use sluice_domain::status::RunStatus;
use sluice_domain::time::Timestamp;
use sluice_domain::webhook::{Webhook, WebhookEvent, WebhookFormat, WebhookSecret, event_id};

use super::{PgStore, page};
use crate::error::{DbError, DbResult, IntoStore};
use crate::rows::{Ts, from_ts, int4, int8, ts, uint4, uint8};

const HOOK_COLUMNS: &str = "id, url, events, pipeline_ids, format, enabled, errors_threshold, \
                            secret, created_at, updated_at";

#[derive(QueryableByName)]
struct HookRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Array<Text>)]
    events: Vec<String>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    pipeline_ids: Option<Vec<String>>,
    #[diesel(sql_type = Text)]
    format: String,
    #[diesel(sql_type = Bool)]
    enabled: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    errors_threshold: Option<i64>,
    #[diesel(sql_type = Text)]
    secret: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: Ts,
    #[diesel(sql_type = Timestamptz)]
    updated_at: Ts,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Internal(format!("stored webhook {what} does not parse"))
}

fn parse_id<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, StoreError> {
    s.parse().map_err(|_| corrupt(what))
}

impl HookRow {
    fn into_webhook(self) -> Result<Webhook, StoreError> {
        Ok(Webhook {
            id: parse_id(&self.id, "id")?,
            url: self.url,
            events: self
                .events
                .iter()
                .map(|e| WebhookEvent::parse(e).ok_or_else(|| corrupt("event")))
                .collect::<Result<_, _>>()?,
            pipeline_ids: self
                .pipeline_ids
                .map(|ids| ids.iter().map(|p| parse_id(p, "pipeline id")).collect())
                .transpose()?,
            format: WebhookFormat::parse(&self.format).ok_or_else(|| corrupt("format"))?,
            enabled: self.enabled,
            errors_threshold: self.errors_threshold.map(uint8),
            secret: WebhookSecret::new(self.secret).map_err(|_| corrupt("secret"))?,
            created_at: from_ts(self.created_at),
            updated_at: from_ts(self.updated_at),
        })
    }
}

fn event_names(h: &Webhook) -> Vec<String> {
    h.events.iter().map(|e| e.as_str().to_owned()).collect()
}

fn pipeline_names(h: &Webhook) -> Option<Vec<String>> {
    h.pipeline_ids
        .as_ref()
        .map(|ids| ids.iter().map(ToString::to_string).collect())
}

#[derive(QueryableByName)]
struct RunFacts {
    #[diesel(sql_type = Text)]
    pipeline_id: String,
    #[diesel(sql_type = BigInt)]
    failed: i64,
}

/// Writes the events a run moving to `status` at `at` owes, inside the
/// caller's transaction (the one that makes the transition), once per
/// (subscription, run, event).
pub(crate) async fn enqueue_events(
    conn: &mut AsyncPgConnection,
    run_id: RunId,
    status: RunStatus,
    at: Timestamp,
) -> DbResult<()> {
    let key = run_id.to_string();
    let facts: RunFacts = diesel::sql_query(
        "SELECT r.pipeline_id, \
                COALESCE((SELECT sum(p.failed) FROM sluice.partitions p WHERE p.run_id = r.id), 0)::bigint AS failed \
         FROM sluice.runs r WHERE r.id = $1",
    )
    .bind::<Text, _>(&key)
    .get_result(conn)
    .await?;
    let pipeline_id: PipelineId = parse_id(&facts.pipeline_id, "pipeline id")?;
    let hooks: Vec<HookRow> = diesel::sql_query(format!(
        "SELECT {HOOK_COLUMNS} FROM sluice.webhooks WHERE enabled \
           AND (pipeline_ids IS NULL OR $1 = ANY (pipeline_ids))"
    ))
    .bind::<Text, _>(&facts.pipeline_id)
    .load(conn)
    .await?;
    for row in hooks {
        let hook = row.into_webhook()?;
        for event in hook.events_for(pipeline_id, status, uint8(facts.failed)) {
            diesel::sql_query(
                "INSERT INTO sluice.webhook_events \
                   (id, webhook_id, run_id, pipeline_id, event, errors_threshold, created_at, \
                    window_start, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7) \
                 ON CONFLICT (webhook_id, run_id, event) DO NOTHING",
            )
            .bind::<Text, _>(event_id(hook.id, run_id, event, at).to_string())
            .bind::<Text, _>(hook.id.to_string())
            .bind::<Text, _>(&key)
            .bind::<Text, _>(&facts.pipeline_id)
            .bind::<Text, _>(event.as_str())
            .bind::<Nullable<BigInt>, _>(hook.errors_threshold.map(int8))
            .bind::<Timestamptz, _>(ts(at))
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}

#[derive(QueryableByName)]
struct ClaimRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    webhook_id: String,
    #[diesel(sql_type = Text)]
    run_id: String,
    #[diesel(sql_type = Text)]
    pipeline_id: String,
    #[diesel(sql_type = Text)]
    event: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    errors_threshold: Option<i64>,
    #[diesel(sql_type = Timestamptz)]
    created_at: Ts,
    #[diesel(sql_type = Timestamptz)]
    window_start: Ts,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    body: Option<String>,
    #[diesel(sql_type = BigInt)]
    lease_token: i64,
}

#[derive(QueryableByName)]
struct DeliveryRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    event_id: String,
    #[diesel(sql_type = Text)]
    event: String,
    #[diesel(sql_type = Text)]
    run_id: String,
    #[diesel(sql_type = Text)]
    webhook_id: String,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = Timestamptz)]
    attempted_at: Ts,
    #[diesel(sql_type = Nullable<Integer>)]
    status_code: Option<i32>,
    #[diesel(sql_type = BigInt)]
    latency_ms: i64,
    #[diesel(sql_type = Nullable<Text>)]
    error: Option<String>,
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    next_attempt_at: Option<Ts>,
}

impl DeliveryRow {
    fn into_delivery(self) -> Result<Delivery, StoreError> {
        Ok(Delivery {
            id: parse_id(&self.id, "delivery id")?,
            event_id: parse_id(&self.event_id, "event id")?,
            event: WebhookEvent::parse(&self.event).ok_or_else(|| corrupt("event"))?,
            run_id: parse_id(&self.run_id, "run id")?,
            webhook_id: parse_id(&self.webhook_id, "id")?,
            attempt: uint4(self.attempt),
            attempted_at: from_ts(self.attempted_at),
            status_code: self.status_code.and_then(|c| u16::try_from(c).ok()),
            latency_ms: uint8(self.latency_ms),
            error: self.error,
            result: AttemptResult::parse(&self.outcome).ok_or_else(|| corrupt("outcome"))?,
            next_attempt_at: self.next_attempt_at.map(from_ts),
        })
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Pending {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest: Option<Ts>,
}

#[derive(QueryableByName)]
struct OutcomeCount {
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn insert_webhook(&self, h: &Webhook) -> Result<(), StoreError> {
        let mut conn = self.conn().await.store("insert webhook")?;
        diesel::sql_query(format!(
            "INSERT INTO sluice.webhooks ({HOOK_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind::<Text, _>(h.id.to_string())
        .bind::<Text, _>(&h.url)
        .bind::<Array<Text>, _>(event_names(h))
        .bind::<Nullable<Array<Text>>, _>(pipeline_names(h))
        .bind::<Text, _>(h.format.as_str())
        .bind::<Bool, _>(h.enabled)
        .bind::<Nullable<BigInt>, _>(h.errors_threshold.map(int8))
        .bind::<Text, _>(h.secret.expose())
        .bind::<Timestamptz, _>(ts(h.created_at))
        .bind::<Timestamptz, _>(ts(h.updated_at))
        .execute(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| match DbError::from(e).into_store("insert webhook") {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("webhook {} already exists", h.id))
            }
            other => other,
        })
    }

    async fn get_webhook(&self, id: WebhookId) -> Result<Webhook, StoreError> {
        let mut conn = self.conn().await.store("get webhook")?;
        let row: Option<HookRow> = diesel::sql_query(format!(
            "SELECT {HOOK_COLUMNS} FROM sluice.webhooks WHERE id = $1"
        ))
        .bind::<Text, _>(id.to_string())
        .get_result(&mut conn)
        .await
        .optional()
        .store("get webhook")?;
        row.ok_or_else(|| StoreError::not_found("webhook", id))?
            .into_webhook()
    }

    async fn list_webhooks(&self, req: &PageRequest) -> Result<Page<Webhook>, StoreError> {
        let mut conn = self.conn().await.store("list webhooks")?;
        let rows: Vec<HookRow> = diesel::sql_query(format!(
            "SELECT {HOOK_COLUMNS} FROM sluice.webhooks \
             WHERE $1::text IS NULL OR id < $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind::<Nullable<Text>, _>(page::after::<WebhookId>(req))
        .bind::<BigInt, _>(page::fetch(req))
        .load(&mut conn)
        .await
        .store("list webhooks")?;
        let items = rows
            .into_iter()
            .map(HookRow::into_webhook)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page::cut(items, req, |h| h.id.to_string()))
    }

    async fn update_webhook(&self, h: &Webhook) -> Result<(), StoreError> {
        let mut conn = self.conn().await.store("update webhook")?;
        let n = diesel::sql_query(
            "UPDATE sluice.webhooks SET url = $2, events = $3, pipeline_ids = $4, format = $5, \
               enabled = $6, errors_threshold = $7, secret = $8, updated_at = $9 \
             WHERE id = $1",
        )
        .bind::<Text, _>(h.id.to_string())
        .bind::<Text, _>(&h.url)
        .bind::<Array<Text>, _>(event_names(h))
        .bind::<Nullable<Array<Text>>, _>(pipeline_names(h))
        .bind::<Text, _>(h.format.as_str())
        .bind::<Bool, _>(h.enabled)
        .bind::<Nullable<BigInt>, _>(h.errors_threshold.map(int8))
        .bind::<Text, _>(h.secret.expose())
        .bind::<Timestamptz, _>(ts(h.updated_at))
        .execute(&mut conn)
        .await
        .store("update webhook")?;
        if n == 0 {
            return Err(StoreError::not_found("webhook", h.id));
        }
        Ok(())
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<(), StoreError> {
        let mut conn = self.conn().await.store("delete webhook")?;
        let n = diesel::sql_query("DELETE FROM sluice.webhooks WHERE id = $1")
            .bind::<Text, _>(id.to_string())
            .execute(&mut conn)
            .await
            .store("delete webhook")?;
        if n == 0 {
            return Err(StoreError::not_found("webhook", id));
        }
        Ok(())
    }

    async fn claim_events(
        &self,
        worker: &WorkerId,
        now: Timestamp,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedEvent>, StoreError> {
        let mut conn = self.conn().await.store("claim webhook events")?;
        let rows: Vec<ClaimRow> = diesel::sql_query(
            "WITH due AS ( \
                 SELECT id FROM sluice.webhook_events \
                 WHERE state = 'pending' AND next_attempt_at <= $1 \
                   AND (lease_expires_at IS NULL OR lease_expires_at <= $1) \
                 ORDER BY next_attempt_at, id LIMIT $4 \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE sluice.webhook_events e \
             SET lease_owner = $2, lease_token = nextval('sluice.lease_tokens'), \
                 lease_expires_at = $3 \
             FROM due WHERE e.id = due.id \
             RETURNING e.id, e.webhook_id, e.run_id, e.pipeline_id, e.event, e.errors_threshold, \
                       e.created_at, e.window_start, e.attempts, e.body, e.lease_token",
        )
        .bind::<Timestamptz, _>(ts(now))
        .bind::<Text, _>(&worker.0)
        .bind::<Timestamptz, _>(ts(now.plus_millis(lease_ms)))
        .bind::<BigInt, _>(i64::from(limit))
        .load(&mut conn)
        .await
        .store("claim webhook events")?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let webhook = self.get_webhook(parse_id(&r.webhook_id, "id")?).await?;
            out.push(ClaimedEvent {
                id: parse_id(&r.id, "event id")?,
                webhook,
                run_id: parse_id(&r.run_id, "run id")?,
                pipeline_id: parse_id(&r.pipeline_id, "pipeline id")?,
                event: WebhookEvent::parse(&r.event).ok_or_else(|| corrupt("event"))?,
                errors_threshold: r.errors_threshold.map(uint8),
                created_at: from_ts(r.created_at),
                window_start: from_ts(r.window_start),
                attempts: uint4(r.attempts),
                body: r.body,
                token: LeaseToken(r.lease_token),
            });
        }
        out.sort_by_key(|c| c.id);
        Ok(out)
    }

    async fn record_attempt(
        &self,
        claim: &ClaimedEvent,
        body: &str,
        d: &Delivery,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await.store("record webhook attempt")?;
        let state = match d.result {
            AttemptResult::Delivered => EventState::Delivered,
            AttemptResult::Failed => EventState::Failed,
            AttemptResult::Retrying => EventState::Pending,
        };
        conn.transaction::<_, DbError, _>(async |conn| {
            let n = diesel::sql_query(
                "UPDATE sluice.webhook_events \
                 SET attempts = attempts + 1, body = COALESCE(body, $3), state = $4, \
                     next_attempt_at = COALESCE($5, next_attempt_at), \
                     lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL \
                 WHERE id = $1 AND lease_token = $2 AND state = 'pending'",
            )
            .bind::<Text, _>(claim.id.to_string())
            .bind::<BigInt, _>(claim.token.0)
            .bind::<Text, _>(body)
            .bind::<Text, _>(state.as_str())
            .bind::<Nullable<Timestamptz>, _>(d.next_attempt_at.map(ts))
            .execute(conn)
            .await?;
            if n == 0 {
                return Ok(false);
            }
            diesel::sql_query(
                "INSERT INTO sluice.webhook_deliveries \
                   (id, event_id, webhook_id, attempt, attempted_at, status_code, latency_ms, \
                    error, outcome, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind::<Text, _>(d.id.to_string())
            .bind::<Text, _>(claim.id.to_string())
            .bind::<Text, _>(claim.webhook.id.to_string())
            .bind::<Integer, _>(int4(d.attempt))
            .bind::<Timestamptz, _>(ts(d.attempted_at))
            .bind::<Nullable<Integer>, _>(d.status_code.map(i32::from))
            .bind::<BigInt, _>(int8(d.latency_ms))
            .bind::<Nullable<Text>, _>(d.error.as_deref())
            .bind::<Text, _>(d.result.as_str())
            .bind::<Nullable<Timestamptz>, _>(d.next_attempt_at.map(ts))
            .execute(conn)
            .await?;
            Ok(true)
        })
        .await
        .store("record webhook attempt")
    }

    async fn list_deliveries(
        &self,
        webhook: WebhookId,
        req: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        let mut conn = self.conn().await.store("list deliveries")?;
        let exists: Count =
            diesel::sql_query("SELECT count(*) AS n FROM sluice.webhooks WHERE id = $1")
                .bind::<Text, _>(webhook.to_string())
                .get_result(&mut conn)
                .await
                .store("list deliveries")?;
        if exists.n == 0 {
            return Err(StoreError::not_found("webhook", webhook));
        }
        let rows: Vec<DeliveryRow> = diesel::sql_query(
            "SELECT d.id, d.event_id, e.event, e.run_id, d.webhook_id, d.attempt, d.attempted_at, \
                    d.status_code, d.latency_ms, d.error, d.outcome, d.next_attempt_at \
             FROM sluice.webhook_deliveries d JOIN sluice.webhook_events e ON e.id = d.event_id \
             WHERE d.webhook_id = $1 AND ($2::text IS NULL OR d.id < $2) \
             ORDER BY d.id DESC LIMIT $3",
        )
        .bind::<Text, _>(webhook.to_string())
        .bind::<Nullable<Text>, _>(page::after::<DeliveryId>(req))
        .bind::<BigInt, _>(page::fetch(req))
        .load(&mut conn)
        .await
        .store("list deliveries")?;
        let items = rows
            .into_iter()
            .map(DeliveryRow::into_delivery)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page::cut(items, req, |d| d.id.to_string()))
    }

    async fn redeliver(
        &self,
        webhook: WebhookId,
        delivery: DeliveryId,
        now: Timestamp,
    ) -> Result<EventId, StoreError> {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = Text)]
            id: String,
        }
        let mut conn = self.conn().await.store("redeliver")?;
        let found: Option<Id> = diesel::sql_query(
            "UPDATE sluice.webhook_events e \
             SET state = 'pending', next_attempt_at = $3, window_start = $3, \
                 lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL \
             FROM sluice.webhook_deliveries d \
             WHERE d.id = $2 AND d.webhook_id = $1 AND e.id = d.event_id \
             RETURNING e.id",
        )
        .bind::<Text, _>(webhook.to_string())
        .bind::<Text, _>(delivery.to_string())
        .bind::<Timestamptz, _>(ts(now))
        .get_result(&mut conn)
        .await
        .optional()
        .store("redeliver")?;
        let found = found.ok_or_else(|| StoreError::not_found("delivery", delivery))?;
        parse_id(&found.id, "event id")
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let mut conn = self.conn().await.store("outbox stats")?;
        let pending: Pending = diesel::sql_query(
            "SELECT count(*) AS n, min(created_at) AS oldest \
             FROM sluice.webhook_events WHERE state = 'pending'",
        )
        .get_result(&mut conn)
        .await
        .store("outbox stats")?;
        let counts: Vec<OutcomeCount> = diesel::sql_query(
            "SELECT outcome, count(*) AS n FROM sluice.webhook_deliveries GROUP BY outcome",
        )
        .load(&mut conn)
        .await
        .store("outbox stats")?;
        let of = |r: AttemptResult| {
            counts
                .iter()
                .find(|c| c.outcome == r.as_str())
                .map_or(0, |c| uint8(c.n))
        };
        Ok(OutboxStats {
            pending: uint8(pending.n),
            oldest_pending_at: pending.oldest.map(from_ts),
            delivered: of(AttemptResult::Delivered),
            retrying: of(AttemptResult::Retrying),
            failed: of(AttemptResult::Failed),
        })
    }
}
