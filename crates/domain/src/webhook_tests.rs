use super::*;
use crate::ids::{EventId, PipelineId, RunId, Ulid, WebhookId};
use crate::pipeline::LoadStrategy;
use crate::run::{Counters, RunMetadata, Trigger};

fn secret() -> WebhookSecret {
    WebhookSecret::new("whsec_test_0123456789").expect("valid secret")
}

fn pipe(n: u128) -> PipelineId {
    PipelineId::from_ulid(Ulid(n))
}

fn hook(events: &[WebhookEvent]) -> Webhook {
    Webhook {
        id: WebhookId::from_ulid(Ulid(1)),
        url: "https://hooks.example.com/sluice".into(),
        events: events.to_vec(),
        pipeline_ids: None,
        format: WebhookFormat::Json,
        enabled: true,
        errors_threshold: Some(10),
        secret: secret(),
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    }
}

fn facts(status: RunStatus, failed: u64, errors: usize) -> RunFacts {
    RunFacts {
        run: Run {
            id: RunId::from_ulid(Ulid(7)),
            pipeline_id: pipe(3),
            status,
            load_strategy: LoadStrategy::Append,
            trigger: Trigger::Api,
            total_rows: Some(100),
            partition_count: 2,
            counters: Counters {
                loaded: 90 - failed,
                skipped: 10,
                failed,
            },
            metadata: RunMetadata {
                retry_of: Some(RunId::from_ulid(Ulid(6))),
                ..RunMetadata::default()
            },
            error: None,
            created_at: Timestamp(1_000),
            started_at: Some(Timestamp(2_000)),
            finished_at: Some(Timestamp(42_000)),
        },
        pipeline_name: "Daily <import> & more".into(),
        errors: (0..errors)
            .map(|i| RowError::new(i as u64 + 1, "email", "x", "Invalid email format"))
            .collect(),
    }
}

fn header(event: WebhookEvent) -> EventHeader {
    EventHeader {
        id: EventId::from_ulid(Ulid(99)),
        event,
        created_at: Timestamp(42_000),
        errors_threshold: None,
    }
}

#[test]
fn event_names_round_trip_and_match_serde() {
    for e in WebhookEvent::ALL {
        assert_eq!(WebhookEvent::parse(e.as_str()), Some(e));
        let json = serde_json::to_string(&e).expect("serialises");
        assert_eq!(json, format!("\"{}\"", e.as_str()));
    }
    assert_eq!(WebhookEvent::parse("run.done"), None);
    assert_eq!(
        WebhookEvent::for_terminal(RunStatus::CompletedWithErrors),
        Some(WebhookEvent::RunCompletedWithErrors)
    );
    assert_eq!(WebhookEvent::for_terminal(RunStatus::Running), None);
}

#[test]
fn secret_is_redacted_in_debug_of_the_secret_and_the_subscription() {
    let h = hook(&[WebhookEvent::RunCompleted]);
    let text = format!("{h:?} {:?} {:#?}", h.secret, h);
    assert!(!text.contains("whsec_test_0123456789"), "{text}");
    assert!(text.contains("[redacted]"));
    assert_eq!(h.secret.expose(), "whsec_test_0123456789");
}

#[test]
fn secret_length_and_characters_are_checked() {
    assert!(WebhookSecret::new("short").is_err());
    assert!(WebhookSecret::new("x".repeat(257)).is_err());
    assert!(WebhookSecret::new(" 0123456789abcdef").is_err());
    assert!(WebhookSecret::new("0123456789abcde\n").is_err());
    let e = WebhookSecret::new("short").expect_err("too short");
    assert!(matches!(e, DomainError::InvalidField { ref field, .. } if field == "secret"));
}

#[test]
fn a_subscription_is_owed_the_events_it_asked_for_on_its_pipelines() {
    let mut h = hook(&[WebhookEvent::RunCompleted, WebhookEvent::RunFailed]);
    assert_eq!(
        h.events_for(pipe(3), RunStatus::Completed, 0),
        vec![WebhookEvent::RunCompleted]
    );
    assert!(h.events_for(pipe(3), RunStatus::Cancelled, 0).is_empty());
    assert!(h.events_for(pipe(3), RunStatus::Running, 0).is_empty());
    h.pipeline_ids = Some(vec![pipe(4)]);
    assert!(h.events_for(pipe(3), RunStatus::Completed, 0).is_empty());
    assert_eq!(h.events_for(pipe(4), RunStatus::Failed, 0).len(), 1);
    h.enabled = false;
    assert!(h.events_for(pipe(4), RunStatus::Failed, 0).is_empty());
}

#[test]
fn errors_exceeded_fires_only_above_the_threshold_at_the_end() {
    let h = hook(&[WebhookEvent::RunStarted, WebhookEvent::RunErrorsExceeded]);
    assert!(
        h.events_for(pipe(3), RunStatus::CompletedWithErrors, 10)
            .is_empty()
    );
    assert_eq!(
        h.events_for(pipe(3), RunStatus::CompletedWithErrors, 11),
        vec![WebhookEvent::RunErrorsExceeded]
    );
    assert_eq!(
        h.events_for(pipe(3), RunStatus::Failed, 50),
        vec![WebhookEvent::RunErrorsExceeded]
    );
    assert_eq!(
        h.events_for(pipe(3), RunStatus::Running, 50),
        vec![WebhookEvent::RunStarted]
    );
}

#[test]
fn spec_validation_names_the_field() {
    let spec = WebhookSpec {
        url: "https://hooks.example.com/x".into(),
        events: vec![WebhookEvent::RunCompleted],
        pipeline_ids: None,
        format: WebhookFormat::Json,
        enabled: true,
        errors_threshold: None,
    };
    assert!(spec.validate(false).is_ok());
    let field = |s: &WebhookSpec| match s.validate(false) {
        Err(DomainError::InvalidField { field, .. }) => field,
        other => panic!("expected a field error, got {other:?}"),
    };
    let mut s = spec.clone();
    s.events.clear();
    assert_eq!(field(&s), "events");
    let mut s = spec.clone();
    s.events.push(WebhookEvent::RunErrorsExceeded);
    assert_eq!(field(&s), "errorsThreshold");
    let mut s = spec.clone();
    s.pipeline_ids = Some(vec![]);
    assert_eq!(field(&s), "pipelineIds");
    let mut s = spec;
    s.url = "http://10.0.0.5/hook".into();
    assert_eq!(field(&s), "url");
    assert!(s.validate(true).is_ok());
}

#[test]
fn private_loopback_and_link_local_urls_need_the_setting() {
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://api.localhost./hook",
        "http://[::1]/hook",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://172.31.255.255/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "http://2130706433/", // 127.0.0.1 as one number, normalised by the URL parser
        "http://0x7f.1/",
    ] {
        assert!(check_url(url, false).is_err(), "{url} must be refused");
        assert!(
            check_url(url, true).is_ok(),
            "{url} must be allowed with the setting"
        );
    }
    for url in [
        "https://hooks.slack.com/services/T/B/X",
        "http://8.8.8.8/",
        "http://172.32.0.1/",
        "https://[2001:db8::1]/",
    ] {
        assert!(check_url(url, false).is_ok(), "{url} must be allowed");
    }
    for url in [
        "ftp://example.com/",
        "not a url",
        "https://user:pw@example.com/",
        "file:///etc/passwd",
    ] {
        assert!(check_url(url, true).is_err(), "{url} must be refused");
    }
    assert!(check_url(&format!("https://e.com/{}", "a".repeat(2048)), true).is_err());
}

#[test]
fn payload_carries_the_facts_and_at_most_five_errors() {
    let f = facts(RunStatus::CompletedWithErrors, 12, 8);
    let v = payload(
        &header(WebhookEvent::RunCompletedWithErrors),
        &f,
        Some("https://sluice.example.com/"),
    );
    assert_eq!(v["id"], format!("evt_{}", Ulid(99)));
    assert_eq!(v["type"], "run.completed_with_errors");
    assert_eq!(v["data"]["pipeline"]["id"], pipe(3).to_string());
    assert_eq!(v["data"]["pipeline"]["name"], "Daily <import> & more");
    let run = &v["data"]["run"];
    assert_eq!(run["status"], "completed_with_errors");
    assert_eq!(run["totalRows"], 100);
    assert_eq!(run["processedRows"], 100);
    assert_eq!(run["failedRows"], 12);
    assert_eq!(run["skippedRows"], 10);
    assert_eq!(run["durationMs"], 41_000);
    assert_eq!(run["retryOf"], RunId::from_ulid(Ulid(6)).to_string());
    assert_eq!(v["data"]["errors"].as_array().map(Vec::len), Some(5));
    let r = RunId::from_ulid(Ulid(7));
    assert_eq!(
        v["links"]["progress"],
        format!(
            "https://sluice.example.com/api/v1/pipelines/{}/runs/{r}/progress",
            pipe(3)
        )
    );
    assert_eq!(
        v["links"]["dashboard"],
        format!(
            "https://sluice.example.com/#/pipelines/{}/runs/{r}",
            pipe(3)
        )
    );
    let relative = payload(&header(WebhookEvent::RunCompleted), &f, None);
    assert!(
        relative["links"]["errors"]
            .as_str()
            .is_some_and(|l| l.starts_with("/api/v1/pipelines/") && l.ends_with("/errors"))
    );
}

#[test]
fn slack_message_has_the_same_facts_escaped() {
    let f = facts(RunStatus::Failed, 3, 2);
    let mut h = header(WebhookEvent::RunErrorsExceeded);
    h.errors_threshold = Some(2);
    let v = slack_message(&h, &f, None);
    let text = v["text"].as_str().unwrap_or_default();
    assert!(text.contains("passed its error threshold"), "{text}");
    assert!(text.contains("Daily &lt;import&gt; &amp; more"), "{text}");
    let all = v.to_string();
    assert!(all.contains("*Threshold:* 2 failed rows"), "{all}");
    assert!(all.contains("3 failed"), "{all}");
    assert!(all.contains("row 1 `email`"), "{all}");
    assert_eq!(v["blocks"].as_array().map(Vec::len), Some(3));
}

#[test]
fn render_picks_the_format() {
    let f = facts(RunStatus::Completed, 0, 0);
    let h = header(WebhookEvent::RunCompleted);
    let json: Value =
        serde_json::from_str(&render(WebhookFormat::Json, &h, &f, None)).expect("json body");
    assert_eq!(json["type"], "run.completed");
    let slack: Value =
        serde_json::from_str(&render(WebhookFormat::Slack, &h, &f, None)).expect("slack body");
    assert!(slack["text"].is_string() && slack.get("type").is_none());
}

#[test]
fn signature_is_hmac_sha256_of_timestamp_dot_body() {
    // Computed independently: HMAC-SHA256("whsec_test_0123456789", "1700000000.{}").
    let header = sign(&secret(), 1_700_000_000, b"{}");
    assert_eq!(
        header,
        "t=1700000000,v1=875e3fae219931c6a6bb1177e37553968753cdb5e5fc0294caa82dbfaec6608c"
    );
    assert_ne!(header, sign(&secret(), 1_700_000_001, b"{}"));
    assert_ne!(header, sign(&secret(), 1_700_000_000, b"{ }"));
}

#[test]
fn verification_accepts_the_right_secret_in_time_only() {
    let body = br#"{"id":"evt_1"}"#;
    let h = sign(&secret(), 1_700_000_000, body);
    assert_eq!(
        verify_signature(&h, "whsec_test_0123456789", body, 1_700_000_100, 300),
        Ok(())
    );
    assert_eq!(
        verify_signature(&h, "whsec_other_secret__", body, 1_700_000_100, 300),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(&h, "whsec_test_0123456789", b"{}", 1_700_000_100, 300),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(&h, "whsec_test_0123456789", body, 1_700_000_301, 300),
        Err(SignatureError::Stale)
    );
    assert_eq!(
        verify_signature("v1=00", "s", body, 0, 300),
        Err(SignatureError::Malformed)
    );
    assert_eq!(
        verify_signature("t=1,v1=zz", "s", body, 1, 300),
        Err(SignatureError::Malformed)
    );
    let rotated = format!("{h},v1={}", "00".repeat(32));
    assert_eq!(
        verify_signature(&rotated, "whsec_test_0123456789", body, 1_700_000_000, 300),
        Ok(())
    );
}

const HOUR: u64 = 3_600_000;

#[test]
fn backoff_doubles_with_jitter_up_to_the_cap() {
    let plan = BackoffPlan::default();
    assert_eq!(plan.delay_ms(1), 10_000);
    assert_eq!(plan.delay_ms(2), 20_000);
    assert_eq!(plan.delay_ms(5), 160_000);
    assert_eq!(plan.delay_ms(30), HOUR);
    assert_eq!(plan.delay_ms(u32::MAX), HOUR);
    let now = Timestamp(1_000_000);
    let fail = AttemptOutcome::Status {
        status: 503,
        retry_after_secs: None,
    };
    assert_eq!(
        plan.next(fail, 3, now, now, 0.0),
        NextStep::RetryAt(now.plus_millis(20_000))
    );
    assert_eq!(
        plan.next(fail, 3, now, now, 0.999_999),
        NextStep::RetryAt(now.plus_millis(39_999))
    );
    assert_eq!(
        plan.next(fail, 3, now, now, f64::NAN),
        NextStep::RetryAt(now.plus_millis(20_000))
    );
}

#[test]
fn backoff_retries_5xx_429_and_no_answer_and_stops_on_other_4xx() {
    let plan = BackoffPlan::default();
    let t = Timestamp(0);
    let st = |status| AttemptOutcome::Status {
        status,
        retry_after_secs: None,
    };
    assert_eq!(plan.next(st(200), 1, t, t, 0.5), NextStep::Delivered);
    assert_eq!(plan.next(st(204), 1, t, t, 0.5), NextStep::Delivered);
    for s in [500, 502, 503, 504, 429] {
        assert!(
            matches!(plan.next(st(s), 1, t, t, 0.5), NextStep::RetryAt(_)),
            "{s}"
        );
    }
    for s in [400, 401, 403, 404, 410, 422, 301, 302] {
        assert_eq!(plan.next(st(s), 1, t, t, 0.5), NextStep::GiveUp, "{s}");
    }
    assert!(matches!(
        plan.next(AttemptOutcome::NoAnswer { retryable: true }, 1, t, t, 0.5),
        NextStep::RetryAt(_)
    ));
    assert_eq!(
        plan.next(AttemptOutcome::NoAnswer { retryable: false }, 1, t, t, 0.5),
        NextStep::GiveUp
    );
}

#[test]
fn retry_after_replaces_the_delay_and_the_window_ends_at_24_hours() {
    let plan = BackoffPlan::default();
    let event = Timestamp(0);
    let now = Timestamp(5_000);
    let ra = |secs| AttemptOutcome::Status {
        status: 429,
        retry_after_secs: Some(secs),
    };
    assert_eq!(plan.next(ra(0), 1, event, now, 0.5), NextStep::RetryAt(now));
    assert_eq!(
        plan.next(ra(120), 1, event, now, 0.5),
        NextStep::RetryAt(now.plus_millis(120_000))
    );
    assert_eq!(
        plan.next(ra(86_400 * 7), 1, event, now, 0.5),
        NextStep::RetryAt(now.plus_millis(HOUR as i64))
    );
    let late = Timestamp((24 * HOUR - 1000) as i64);
    assert_eq!(
        plan.next(
            AttemptOutcome::NoAnswer { retryable: true },
            20,
            event,
            late,
            0.0
        ),
        NextStep::GiveUp
    );
}

#[test]
fn retry_after_parses_seconds_and_http_dates() {
    let now = Timestamp::parse_rfc3339("2015-10-21T07:27:00Z").expect("date");
    assert_eq!(parse_retry_after("120", now), Some(120));
    assert_eq!(parse_retry_after(" 0 ", now), Some(0));
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
        Some(60)
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
        Some(0)
    );
    assert_eq!(parse_retry_after("soon", now), None);
    assert_eq!(parse_retry_after("-5", now), None);
    assert_eq!(
        parse_retry_after("Wed, 21 Foo 2015 07:28:00 GMT", now),
        None
    );
}

#[test]
fn private_address_rule_on_resolved_addresses() {
    let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
    assert!(is_private_address(ip("127.0.0.53")));
    assert!(is_private_address(ip("::ffff:10.0.0.1")));
    assert!(is_private_address(ip("fe80::abcd")));
    assert!(is_private_address(ip("224.0.0.1")));
    assert!(!is_private_address(ip("1.1.1.1")));
    assert!(!is_private_address(ip("2606:4700:4700::1111")));
}

#[test]
fn event_ids_are_stable_per_subscription_run_and_event() {
    let w = WebhookId::from_ulid(Ulid(1));
    let r = RunId::from_ulid(Ulid(2));
    let t = Timestamp(1_750_000_000_000);
    let a = event_id(w, r, WebhookEvent::RunCompleted, t);
    assert_eq!(a, event_id(w, r, WebhookEvent::RunCompleted, t));
    assert_ne!(a, event_id(w, r, WebhookEvent::RunErrorsExceeded, t));
    assert_ne!(
        a,
        event_id(
            WebhookId::from_ulid(Ulid(3)),
            r,
            WebhookEvent::RunCompleted,
            t
        )
    );
    assert_eq!(a.ulid().millis(), 1_750_000_000_000);
    assert!(a.to_string().starts_with("evt_"));
}

#[test]
fn a_request_keeps_its_secret_out_of_debug_and_checks_every_rule() {
    let req: WebhookRequest = serde_json::from_value(serde_json::json!({
        "url": "https://hooks.example.com/x",
        "events": ["run.failed", "run.completed", "run.failed"],
        "secret": "whsec_request_0123456789",
    }))
    .expect("decodes");
    let text = format!("{req:?}");
    assert!(!text.contains("whsec_request_0123456789"), "{text}");
    let (spec, secret) = req.clone().into_parts(false).expect("valid");
    assert_eq!(
        spec.events,
        vec![WebhookEvent::RunCompleted, WebhookEvent::RunFailed]
    );
    assert!(spec.enabled);
    assert_eq!(spec.format, WebhookFormat::Json);
    assert_eq!(secret.expose(), "whsec_request_0123456789");
    let mut private = req;
    private.url = "http://127.0.0.1:9/".into();
    assert!(matches!(
        private.clone().into_parts(false),
        Err(DomainError::InvalidField { ref field, .. }) if field == "url"
    ));
    assert!(private.into_parts(true).is_ok());
    let unknown = serde_json::from_value::<WebhookRequest>(serde_json::json!({
        "url": "https://e.com/", "events": ["run.failed"], "secret": "x", "extra": 1
    }));
    assert!(unknown.is_err());
}
