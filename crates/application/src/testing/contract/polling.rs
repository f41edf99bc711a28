//! Contracts of the polling store.

use std::sync::Arc;

use sluice_domain::pipeline::{LoadStrategy, PipelineStatus};
use sluice_domain::run::{LogEntry, LogStage, Trigger};

use super::fixtures::T0;
use super::{ContractStore, Fixture, newest_run};

/// Only one caller per interval gets to check a pipeline.
pub async fn polling_checks_are_claimed_once_per_interval<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let mut p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    p.spec.polling.enabled = true;
    s.update_pipeline(&p).await.expect("update");
    let paused = {
        let mut q = f.pipeline(&*s, "u", LoadStrategy::Append, false).await;
        q.spec.polling.enabled = true;
        q.spec.status = PipelineStatus::Paused;
        s.update_pipeline(&q).await.expect("update");
        q
    };
    let _disabled = f.pipeline(&*s, "v", LoadStrategy::Append, false).await;
    let targets = s.poll_targets().await.expect("targets");
    assert_eq!(
        targets.iter().map(|t| t.pipeline.id).collect::<Vec<_>>(),
        vec![p.id]
    );
    assert!(!targets.iter().any(|t| t.pipeline.id == paused.id));
    assert_eq!(targets[0].connector.id, p.spec.connector_id);
    assert_eq!(targets[0].state.last_checked_at, None);
    assert_eq!(targets[0].last_run, None);

    let interval = 60_000;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        let id = p.id;
        tasks.push(tokio::spawn(async move {
            s.claim_poll_check(id, T0, T0.plus_millis(1)).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.expect("join").expect("claim") {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    let now = T0.plus_millis(30_000);
    assert!(
        !s.claim_poll_check(p.id, now.plus_millis(-interval), now)
            .await
            .expect("claim")
    );
    let later = T0.plus_millis(61_000);
    assert!(
        s.claim_poll_check(p.id, later.plus_millis(-interval), later)
            .await
            .expect("claim")
    );
    s.record_poll_result(p.id, Some("access denied: bad key"))
        .await
        .expect("record");
    let t = &s.poll_targets().await.expect("targets")[0];
    assert_eq!(
        t.state.last_error.as_deref(),
        Some("access denied: bad key")
    );
    assert_eq!(t.state.last_checked_at, Some(later));
    s.record_poll_result(p.id, None).await.expect("record");
    assert_eq!(
        s.poll_targets().await.expect("targets")[0].state.last_error,
        None
    );
}

/// A touch file starts a run once per ETag, and never while a run is active.
pub async fn polled_runs_start_once_per_etag<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let mut p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    p.spec.polling.enabled = true;
    s.update_pipeline(&p).await.expect("update");
    let polled = |f: &Fixture| {
        let mut r = f.new_run(&p);
        r.trigger = Trigger::Poll;
        r
    };
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        let run = polled(&f);
        tasks.push(tokio::spawn(async move {
            s.start_polled_run(&run, "\"etag-1\"").await
        }));
    }
    let mut started = 0;
    for t in tasks {
        if t.await.expect("join").expect("start") {
            started += 1;
        }
    }
    assert_eq!(started, 1, "one run per touch file");
    let first = newest_run(&*s, p.id).await.expect("a run");
    assert_eq!(first.trigger, Trigger::Poll);
    // A new ETag while the first run is active: not started.
    assert!(
        !s.start_polled_run(&polled(&f), "\"etag-2\"")
            .await
            .expect("start")
    );
    let entry = LogEntry {
        stage: LogStage::Cancel,
        message: "done".into(),
        timestamp: T0,
    };
    s.cancel_run(first.id, T0, &entry).await.expect("cancel");
    // Same ETag again: never a second run.
    assert!(
        !s.start_polled_run(&polled(&f), "\"etag-1\"")
            .await
            .expect("start")
    );
    // A new ETag: a new run.
    assert!(
        s.start_polled_run(&polled(&f), "\"etag-2\"")
            .await
            .expect("start")
    );
    let targets = s.poll_targets().await.expect("targets");
    assert_eq!(targets[0].state.last_etag.as_deref(), Some("\"etag-2\""));
    assert_ne!(targets[0].last_run.as_ref().map(|r| r.id), Some(first.id));
}

/// A scheduled pipeline is a polling target; each cron tick starts one run,
/// whatever the number of concurrent callers, and never while a run is active.
pub async fn scheduled_runs_start_once_per_tick<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let mut p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    p.spec.schedule = Some(sluice_domain::pipeline::Schedule {
        cron: "0 2 * * *".into(),
        timezone: "Europe/Berlin".into(),
    });
    s.update_pipeline(&p).await.expect("update");
    let targets = s.poll_targets().await.expect("targets");
    assert_eq!(
        targets.iter().map(|t| t.pipeline.id).collect::<Vec<_>>(),
        vec![p.id],
        "a schedule makes a pipeline a target without polling"
    );
    assert_eq!(targets[0].state.last_tick, None);
    let tick = T0.plus_millis(60_000);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        let run = f.new_run(&p);
        tasks.push(tokio::spawn(async move {
            s.start_scheduled_run(&run, tick).await
        }));
    }
    let mut started = 0;
    for t in tasks {
        started += u32::from(t.await.expect("join").expect("start"));
    }
    assert_eq!(started, 1, "one run per tick");
    let first = newest_run(&*s, p.id).await.expect("a run");
    let later = tick.plus_millis(86_400_000);
    assert!(
        !s.start_scheduled_run(&f.new_run(&p), later)
            .await
            .expect("start"),
        "not while a run is active"
    );
    let entry = LogEntry {
        stage: LogStage::Cancel,
        message: "done".into(),
        timestamp: T0,
    };
    s.cancel_run(first.id, T0, &entry).await.expect("cancel");
    assert!(
        !s.start_scheduled_run(&f.new_run(&p), tick)
            .await
            .expect("start"),
        "a tick starts one run, ever"
    );
    // The touch-file claim is its own: an ETag does not consume a tick.
    assert!(
        s.start_polled_run(&f.new_run(&p), "\"etag-1\"")
            .await
            .expect("start")
    );
    let second = newest_run(&*s, p.id).await.expect("a run");
    s.cancel_run(second.id, T0, &entry).await.expect("cancel");
    assert!(
        s.start_scheduled_run(&f.new_run(&p), later)
            .await
            .expect("start")
    );
    let targets = s.poll_targets().await.expect("targets");
    assert_eq!(targets[0].state.last_tick, Some(later));
    assert_eq!(targets[0].state.last_etag.as_deref(), Some("\"etag-1\""));
}
