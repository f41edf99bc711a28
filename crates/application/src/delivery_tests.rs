use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use sluice_domain::ids::WebhookId;
use sluice_domain::pipeline::LoadStrategy;
use sluice_domain::webhook::{Webhook, WebhookFormat, WebhookSecret, verify_signature};

use super::*;
use crate::ports::{PageRequest, Ports, RunStore, WebhookStore, WorkQueue};
use crate::testing::contract::{Fixture, T0};
use crate::testing::{
    InMemorySource, InMemorySourceFactory, InMemoryStore, ManualClock, SequentialIds,
};

const SECRET: &str = "delivery-test-secret-0123";

/// Answers from a script, remembering every request.
#[derive(Default)]
struct ScriptedSender {
    answers: Mutex<VecDeque<SendResult>>,
    seen: Mutex<Vec<OutboundRequest>>,
}

#[async_trait]
impl WebhookSender for ScriptedSender {
    async fn send(&self, request: &OutboundRequest) -> SendResult {
        self.seen.lock().expect("lock").push(request.clone());
        self.answers
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or(SendResult::Answered {
                status: 200,
                retry_after: None,
            })
    }
}

fn status(code: u16) -> SendResult {
    SendResult::Answered {
        status: code,
        retry_after: None,
    }
}

struct Harness {
    store: Arc<InMemoryStore>,
    clock: Arc<ManualClock>,
    sender: Arc<ScriptedSender>,
    deliverer: Deliverer,
    hook: Webhook,
}

async fn harness(answers: Vec<SendResult>, format: WebhookFormat) -> Harness {
    let store = Arc::new(InMemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let ports = Ports::from_store(
        store.clone(),
        Arc::new(InMemorySourceFactory(InMemorySource::default())),
        clock.clone(),
        Arc::new(SequentialIds::default()),
    );
    let hook = Webhook {
        id: WebhookId::from_ulid(sluice_domain::ids::Ulid(77)),
        url: "https://hooks.example.com/x".into(),
        events: vec![WebhookEvent::RunCompleted, WebhookEvent::RunFailed],
        pipeline_ids: None,
        format,
        enabled: true,
        errors_threshold: None,
        secret: WebhookSecret::new(SECRET).expect("secret"),
        created_at: T0,
        updated_at: T0,
    };
    store.insert_webhook(&hook).await.expect("insert");
    let sender = Arc::new(ScriptedSender {
        answers: Mutex::new(answers.into()),
        seen: Mutex::default(),
    });
    let deliverer = Deliverer::new(
        ports,
        sender.clone(),
        DeliverySettings {
            public_url: Some("https://sluice.example.com".into()),
            ..DeliverySettings::default()
        },
        WorkerId("delivery-test".into()),
    );
    Harness {
        store,
        clock,
        sender,
        deliverer,
        hook,
    }
}

/// A completed run of a new pipeline.
async fn completed_run(h: &Harness) -> sluice_domain::ids::RunId {
    let f = Fixture::new();
    let p = f
        .pipeline(&*h.store, "t", LoadStrategy::Append, false)
        .await;
    let run = f.new_run(&p);
    h.store.create_run(&run).await.expect("create");
    let claim = h
        .store
        .claim_extraction(&f.worker(1), T0, 1_000)
        .await
        .expect("claim")
        .expect("claimed");
    let mut nothing = f.extraction(0, 0);
    nothing.files.clear();
    h.store
        .complete_extraction(&claim, Some(&nothing), T0)
        .await
        .expect("complete");
    assert_eq!(
        h.store
            .finalize_ready_runs(T0)
            .await
            .expect("finalize")
            .len(),
        1
    );
    run.id
}

fn header<'a>(r: &'a OutboundRequest, name: &str) -> &'a str {
    r.headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_completed_run_is_sent_once_signed() {
    let h = harness(vec![], WebhookFormat::Json).await;
    let run = completed_run(&h).await;
    assert_eq!(h.deliverer.deliver_due().await.expect("deliver"), 1);
    assert_eq!(
        h.deliverer.deliver_due().await.expect("deliver"),
        0,
        "delivered once"
    );
    let seen = h.sender.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    let sig = header(r, SIGNATURE_HEADER);
    let now = T0.millis() / 1000;
    assert_eq!(
        verify_signature(sig, SECRET, r.body.as_bytes(), now, 300),
        Ok(())
    );
    let body: serde_json::Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(body["type"], "run.completed");
    assert_eq!(body["id"], header(r, EVENT_ID_HEADER));
    assert_eq!(body["data"]["run"]["id"], run.to_string());
    assert_eq!(body["data"]["pipeline"]["name"], "Daily Customer Import");
    assert!(
        body["links"]["progress"]
            .as_str()
            .is_some_and(|l| l.starts_with("https://sluice.example.com/api/v1/pipelines/")),
        "{body}"
    );
    assert!(!r.body.contains(SECRET));
    assert!(
        !format!("{r:?}").contains(sig),
        "the signature stays out of Debug"
    );
    let log = h
        .store
        .list_deliveries(h.hook.id, &PageRequest::default())
        .await
        .expect("log");
    assert_eq!(log.items.len(), 1);
    assert_eq!(log.items[0].result, AttemptResult::Delivered);
    assert_eq!(log.items[0].status_code, Some(200));
}

#[tokio::test]
async fn three_503s_then_200_send_the_same_event_four_times() {
    let h = harness(
        vec![status(503), status(503), status(503)],
        WebhookFormat::Json,
    )
    .await;
    completed_run(&h).await;
    for i in 0..4 {
        assert_eq!(
            h.deliverer.deliver_due().await.expect("deliver"),
            1,
            "attempt {i}"
        );
        // Not due again until the backoff passed.
        assert_eq!(
            h.deliverer.deliver_due().await.expect("deliver"),
            0,
            "attempt {i}"
        );
        h.clock.advance_ms(3_600_000);
    }
    assert_eq!(h.deliverer.deliver_due().await.expect("deliver"), 0);
    let seen = h.sender.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 4);
    let ids: Vec<&str> = seen.iter().map(|r| header(r, EVENT_ID_HEADER)).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert!(
        seen.iter().all(|r| r.body == seen[0].body),
        "the same bytes every time"
    );
    let log = h
        .store
        .list_deliveries(h.hook.id, &PageRequest::default())
        .await
        .expect("log");
    let results: Vec<(u32, AttemptResult)> =
        log.items.iter().map(|d| (d.attempt, d.result)).collect();
    assert_eq!(
        results,
        vec![
            (4, AttemptResult::Delivered),
            (3, AttemptResult::Retrying),
            (2, AttemptResult::Retrying),
            (1, AttemptResult::Retrying),
        ]
    );
    // Backoff: the second retry waits longer than the first, with jitter.
    let first = &log.items[3];
    let delay = first
        .next_attempt_at
        .expect("scheduled")
        .millis_since(first.attempted_at);
    assert!((5_000..=10_000).contains(&delay), "{delay}");
}

#[tokio::test]
async fn a_4xx_stops_and_retry_after_is_honoured() {
    let h = harness(
        vec![
            SendResult::Answered {
                status: 429,
                retry_after: Some("120".into()),
            },
            status(410),
        ],
        WebhookFormat::Slack,
    )
    .await;
    completed_run(&h).await;
    assert_eq!(h.deliverer.deliver_due().await.expect("deliver"), 1);
    h.clock.advance_ms(119_000);
    assert_eq!(
        h.deliverer.deliver_due().await.expect("deliver"),
        0,
        "Retry-After: 120"
    );
    h.clock.advance_ms(1_000);
    assert_eq!(h.deliverer.deliver_due().await.expect("deliver"), 1);
    h.clock.advance_ms(86_000_000);
    assert_eq!(
        h.deliverer.deliver_due().await.expect("deliver"),
        0,
        "410 is final"
    );
    let seen = h.sender.seen.lock().expect("lock").clone();
    let slack: serde_json::Value = serde_json::from_str(&seen[0].body).expect("json");
    assert!(
        slack["text"]
            .as_str()
            .is_some_and(|t| t.contains("completed")),
        "{slack}"
    );
    let log = h
        .store
        .list_deliveries(h.hook.id, &PageRequest::default())
        .await
        .expect("log");
    assert_eq!(log.items[0].result, AttemptResult::Failed);
    assert_eq!(log.items[0].status_code, Some(410));
    assert_eq!(
        h.store.outbox_stats().await.expect("stats").pending,
        0,
        "given up"
    );
}

#[tokio::test]
async fn no_answer_is_retried_and_a_refused_address_is_not() {
    let h = harness(
        vec![
            SendResult::NoAnswer {
                error: "connection refused".into(),
                retryable: true,
            },
            SendResult::NoAnswer {
                error: "resolves to a private address".into(),
                retryable: false,
            },
        ],
        WebhookFormat::Json,
    )
    .await;
    completed_run(&h).await;
    assert_eq!(h.deliverer.deliver_due().await.expect("deliver"), 1);
    h.clock.advance_ms(60_000);
    assert_eq!(h.deliverer.deliver_due().await.expect("deliver"), 1);
    h.clock.advance_ms(3_600_000);
    assert_eq!(h.deliverer.deliver_due().await.expect("deliver"), 0);
    let log = h
        .store
        .list_deliveries(h.hook.id, &PageRequest::default())
        .await
        .expect("log");
    assert_eq!(log.items[1].error.as_deref(), Some("connection refused"));
    assert_eq!(log.items[1].result, AttemptResult::Retrying);
    assert_eq!(log.items[0].result, AttemptResult::Failed);
}
