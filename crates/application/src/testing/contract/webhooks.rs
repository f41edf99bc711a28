//! Contracts of the webhook store: subscriptions, the outbox written by run
//! transitions, leased claims and the delivery log.

use std::sync::Arc;

use sluice_domain::ids::{DeliveryId, PipelineId, RunId, WebhookId};
use sluice_domain::pipeline::{LoadStrategy, Pipeline};
use sluice_domain::run::{LogEntry, LogStage};
use sluice_domain::status::RunStatus;
use sluice_domain::time::Timestamp;
use sluice_domain::webhook::{Webhook, WebhookEvent, WebhookFormat, WebhookSecret, event_id};

use super::fixtures::T0;
use super::{ContractStore, Fixture};
use crate::ports::{AttemptResult, ClaimedEvent, Delivery, PageRequest, StoreError};

fn hook(f: &Fixture, events: &[WebhookEvent], pipelines: Option<Vec<PipelineId>>) -> Webhook {
    Webhook {
        id: WebhookId::from_ulid(f.ulid()),
        url: "https://hooks.example.com/sluice".into(),
        events: events.to_vec(),
        pipeline_ids: pipelines,
        format: WebhookFormat::Json,
        enabled: true,
        errors_threshold: None,
        secret: WebhookSecret::new("contract-secret-0123456789").expect("secret"),
        created_at: T0,
        updated_at: T0,
    }
}

fn entry(message: &str) -> LogEntry {
    LogEntry {
        stage: LogStage::Load,
        message: message.into(),
        timestamp: T0,
    }
}

/// A run of `p` extracted with no files, then finalised: `completed`.
async fn completed_run<S: ContractStore>(f: &Fixture, s: &S, p: &Pipeline, at: Timestamp) -> RunId {
    let run = f.new_run(p);
    s.create_run(&run).await.expect("create");
    let claim = s
        .claim_extraction(&f.worker(1), T0, 1_000)
        .await
        .expect("claim")
        .expect("claimed");
    let mut nothing = f.extraction(0, 0);
    nothing.files.clear();
    s.complete_extraction(&claim, Some(&nothing), T0)
        .await
        .expect("complete");
    let done = s.finalize_ready_runs(at).await.expect("finalize");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].run.status, RunStatus::Completed);
    run.id
}

fn attempt(
    f: &Fixture,
    c: &ClaimedEvent,
    result: AttemptResult,
    at: Timestamp,
    next: Option<Timestamp>,
) -> Delivery {
    Delivery {
        id: DeliveryId::from_ulid(f.ulid()),
        event_id: c.id,
        event: c.event,
        run_id: c.run_id,
        webhook_id: c.webhook.id,
        attempt: c.attempts + 1,
        attempted_at: at,
        status_code: Some(match result {
            AttemptResult::Delivered => 200,
            _ => 503,
        }),
        latency_ms: 12,
        error: None,
        result,
        next_attempt_at: next,
    }
}

/// Subscriptions are stored with their secret, listed newest first, replaced
/// and deleted.
pub async fn webhooks_round_trip<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let a = hook(&f, &[WebhookEvent::RunCompleted], None);
    let mut b = hook(
        &f,
        &[WebhookEvent::RunFailed],
        Some(vec![PipelineId::from_ulid(f.ulid())]),
    );
    b.errors_threshold = Some(5);
    b.format = WebhookFormat::Slack;
    s.insert_webhook(&a).await.expect("insert a");
    s.insert_webhook(&b).await.expect("insert b");
    assert!(matches!(
        s.insert_webhook(&a).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_webhook(b.id).await.expect("get"), b);
    let page = s
        .list_webhooks(&PageRequest {
            limit: 1,
            cursor: None,
        })
        .await
        .expect("list");
    assert_eq!(page.items, vec![b.clone()]);
    let next = s
        .list_webhooks(&PageRequest {
            limit: 1,
            cursor: page.next_cursor,
        })
        .await
        .expect("list");
    assert_eq!(next.items, vec![a.clone()]);
    assert_eq!(next.next_cursor, None);
    let mut a2 = a.clone();
    a2.enabled = false;
    a2.url = "https://other.example.com/".into();
    a2.secret = WebhookSecret::new("another-secret-0123456789").expect("secret");
    s.update_webhook(&a2).await.expect("update");
    assert_eq!(s.get_webhook(a.id).await.expect("get"), a2);
    s.delete_webhook(a.id).await.expect("delete");
    assert!(matches!(
        s.get_webhook(a.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.delete_webhook(a.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.update_webhook(&a2).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Starting, finishing, failing and cancelling runs write exactly the events
/// subscriptions asked for, once, with the ids `event_id` gives.
pub async fn run_transitions_write_one_event_per_subscription<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let other = f.pipeline(&*s, "u", LoadStrategy::Append, false).await;
    let all = hook(
        &f,
        &[WebhookEvent::RunStarted, WebhookEvent::RunCompleted],
        None,
    );
    let failed_on_p = hook(&f, &[WebhookEvent::RunFailed], Some(vec![p.id]));
    let mut disabled = hook(
        &f,
        &[WebhookEvent::RunCompleted, WebhookEvent::RunFailed],
        None,
    );
    disabled.enabled = false;
    let elsewhere = hook(&f, &[WebhookEvent::RunCompleted], Some(vec![other.id]));
    for h in [&all, &failed_on_p, &disabled, &elsewhere] {
        s.insert_webhook(h).await.expect("insert");
    }
    let t1 = T0.plus_millis(1_000);
    let done = completed_run(&f, &*s, &p, t1).await;
    // Finalising again finds nothing and writes nothing.
    assert!(
        s.finalize_ready_runs(t1)
            .await
            .expect("finalize")
            .is_empty()
    );

    let failing = f.running_run(&*s, &p, 1, 10).await;
    assert!(s.fail_run(failing, &entry("boom"), t1).await.expect("fail"));
    assert!(
        !s.fail_run(failing, &entry("again"), t1)
            .await
            .expect("fail")
    );

    let cancelled = f.new_run(&p);
    s.create_run(&cancelled).await.expect("create");
    s.cancel_run(cancelled.id, t1, &entry("stop"))
        .await
        .expect("cancel");

    let mut got: Vec<(WebhookId, RunId, WebhookEvent)> = s
        .claim_events(&f.worker(1), t1, 60_000, 100)
        .await
        .expect("claim")
        .into_iter()
        .map(|c| {
            let at = if c.event == WebhookEvent::RunStarted {
                T0
            } else {
                t1
            };
            assert_eq!(c.id, event_id(c.webhook.id, c.run_id, c.event, at));
            assert_eq!(c.created_at, at);
            assert_eq!(c.attempts, 0);
            assert_eq!(c.body, None);
            assert_eq!(c.webhook.secret.expose(), "contract-secret-0123456789");
            (c.webhook.id, c.run_id, c.event)
        })
        .collect();
    got.sort();
    let mut want = vec![
        (all.id, done, WebhookEvent::RunStarted),
        (all.id, done, WebhookEvent::RunCompleted),
        (all.id, failing, WebhookEvent::RunStarted),
        (failed_on_p.id, failing, WebhookEvent::RunFailed),
    ];
    want.sort();
    assert_eq!(got, want);
    // No event for a run that did not end: a running run owes only its start.
    let _active = f.running_run(&*s, &other, 1, 10).await;
    let later = s
        .claim_events(&f.worker(1), t1, 60_000, 100)
        .await
        .expect("claim");
    assert_eq!(
        later.iter().map(|c| c.event).collect::<Vec<_>>(),
        vec![WebhookEvent::RunStarted]
    );
    assert_eq!(later[0].webhook.id, all.id);
}

/// `run.errors_exceeded` is written with the threshold when a run ends with
/// more failed rows than the subscription allows.
pub async fn errors_exceeded_is_written_with_its_threshold<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let mut h = hook(
        &f,
        &[WebhookEvent::RunErrorsExceeded, WebhookEvent::RunFailed],
        None,
    );
    h.errors_threshold = Some(0);
    s.insert_webhook(&h).await.expect("insert");
    // A run with no failed rows passes no threshold.
    completed_run(&f, &*s, &p, T0).await;
    assert!(
        s.claim_events(&f.worker(1), T0, 1_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let failing = f.running_run(&*s, &p, 1, 10).await;
    assert!(s.fail_run(failing, &entry("boom"), T0).await.expect("fail"));
    let got = s
        .claim_events(&f.worker(1), T0, 1_000, 10)
        .await
        .expect("claim");
    assert_eq!(
        got.iter().map(|c| c.event).collect::<Vec<_>>(),
        vec![WebhookEvent::RunFailed],
        "no rows failed, so no threshold passed"
    );
}

/// An event is claimed by one worker at a time; an expired lease passes it
/// on with a new token; the old token records nothing; retries keep the
/// first body; a delivered event is done until it is redelivered.
pub async fn events_are_leased_retried_and_redelivered<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let h = hook(&f, &[WebhookEvent::RunCompleted], None);
    s.insert_webhook(&h).await.expect("insert");
    completed_run(&f, &*s, &p, T0).await;

    let first = s
        .claim_events(&f.worker(1), T0, 10_000, 10)
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    assert!(
        s.claim_events(&f.worker(2), T0.plus_millis(5_000), 10_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let t = T0.plus_millis(10_000);
    let second = s
        .claim_events(&f.worker(2), t, 10_000, 10)
        .await
        .expect("claim");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, first[0].id);
    assert_ne!(second[0].token, first[0].token);
    let stale = attempt(&f, &first[0], AttemptResult::Delivered, t, None);
    assert!(
        !s.record_attempt(&first[0], "{\"old\":1}", &stale)
            .await
            .expect("record")
    );

    let retry_at = t.plus_millis(20_000);
    let a1 = attempt(&f, &second[0], AttemptResult::Retrying, t, Some(retry_at));
    assert!(
        s.record_attempt(&second[0], "{\"body\":1}", &a1)
            .await
            .expect("record")
    );
    assert!(
        s.claim_events(&f.worker(1), retry_at.plus_millis(-1), 10_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let stats = s.outbox_stats().await.expect("stats");
    assert_eq!(stats.pending, 1);
    assert_eq!(stats.oldest_pending_at, Some(T0));

    let third = s
        .claim_events(&f.worker(1), retry_at, 10_000, 10)
        .await
        .expect("claim");
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].attempts, 1);
    assert_eq!(third[0].body.as_deref(), Some("{\"body\":1}"));
    let a2 = attempt(&f, &third[0], AttemptResult::Delivered, retry_at, None);
    assert!(
        s.record_attempt(&third[0], "{\"other\":2}", &a2)
            .await
            .expect("record")
    );
    let much_later = retry_at.plus_millis(86_400_000);
    assert!(
        s.claim_events(&f.worker(1), much_later, 10_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );

    let log = s
        .list_deliveries(h.id, &PageRequest::default())
        .await
        .expect("log");
    assert_eq!(log.items, vec![a2.clone(), a1.clone()]);
    let stats = s.outbox_stats().await.expect("stats");
    assert_eq!(stats.pending, 0);
    assert_eq!(stats.oldest_pending_at, None);
    assert_eq!((stats.delivered, stats.retrying, stats.failed), (1, 1, 0));

    let other = hook(&f, &[WebhookEvent::RunFailed], None);
    s.insert_webhook(&other).await.expect("insert");
    assert!(matches!(
        s.redeliver(other.id, a1.id, much_later).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        s.redeliver(h.id, a1.id, much_later)
            .await
            .expect("redeliver"),
        first[0].id
    );
    let again = s
        .claim_events(&f.worker(1), much_later, 10_000, 10)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].window_start, much_later);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].body.as_deref(), Some("{\"body\":1}"));

    // Deleting the subscription deletes its events and their log.
    s.delete_webhook(h.id).await.expect("delete");
    assert!(
        s.claim_events(&f.worker(1), much_later.plus_millis(60_000), 10_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(matches!(
        s.list_deliveries(h.id, &PageRequest::default()).await,
        Err(StoreError::NotFound { .. })
    ));
}
