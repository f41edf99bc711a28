//! Issue 17: signed webhooks when runs end, delivered at least once. A
//! receiver on loopback (allowed by `SLUICE_WEBHOOK_ALLOW_PRIVATE=1`) in the
//! test records what the real binary sends.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::data;
use crate::support::api::Api;
use crate::support::s3::Bucket;
use crate::support::{Launch, SluiceMigrations, TestDb};

const SECRET: &str = "whsec-e2e-0123456789abcdef";

/// A receiver script entry: read the request, never answer.
const HANG: &str = "hang";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: BTreeMap<String, String>,
    body: String,
}

/// An HTTP receiver on loopback answering from a script (then 200), telling
/// the test of every request on a channel.
struct Receiver {
    url: String,
    got: mpsc::UnboundedReceiver<Received>,
}

async fn receiver(script: Vec<&'static str>) -> Receiver {
    receiver_on(
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        script,
    )
}

fn receiver_on(listener: TcpListener, script: Vec<&'static str>) -> Receiver {
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, got) = mpsc::unbounded_channel();
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, length) = loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let headers = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
                    .collect();
                let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
                let answer = script
                    .lock()
                    .ok()
                    .and_then(|mut s| s.pop_front())
                    .unwrap_or("200 OK");
                if answer == HANG {
                    // Tell the test the request is in flight, then never answer.
                    let _ = tx.send(Received { headers, body });
                    let _ = sock.read(&mut chunk).await;
                    return;
                }
                let reply = format!(
                    "HTTP/1.1 {answer}\r\nRetry-After: 0\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
                let _ = tx.send(Received { headers, body });
            });
        }
    });
    Receiver { url, got }
}

impl Receiver {
    async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(60), self.got.recv())
            .await
            .expect("a webhook within 60 s")
            .expect("receiver alive")
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> String {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    hex::encode(
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize(),
    )
}

/// Checks `Sluice-Signature: t=…,v1=…` as docs/api.md tells receivers to.
fn assert_signed(r: &Received) {
    let header = r.headers.get("sluice-signature").expect("signature header");
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_owned()),
            Some(("v1", v)) => v1 = Some(v.to_owned()),
            _ => {}
        }
    }
    let t = t.expect("t=");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let sent: u64 = t.parse().expect("t is a number");
    assert!(now.abs_diff(sent) < 300, "timestamp {sent} is now ({now})");
    let expected = hmac_sha256(SECRET.as_bytes(), format!("{t}.{}", r.body).as_bytes());
    assert_eq!(
        v1.as_deref(),
        Some(expected.as_str()),
        "signature of {}",
        r.body
    );
}

async fn subscribe(api: &Api, url: &str, events: Value) -> String {
    let (status, body) = api
        .post(
            "/api/v1/webhooks",
            json!({"url": url, "events": events, "secret": SECRET}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(!body.to_string().contains(SECRET), "{body}");
    body["id"].as_str().expect("webhook id").to_owned()
}

async fn pipeline(api: &Api, connector: &str, prefix: &str, email: &str) -> String {
    api.pipeline(json!({
        "name": format!("webhook {prefix}"),
        "connectorId": connector,
        "source": {"prefix": prefix},
        "schema": data::schema(email),
        "destination": {"table": format!("hook_{}", prefix.trim_end_matches('/'))},
        "loadStrategy": "append",
        "partitions": 1
    }))
    .await
}

/// Waits until the subscription's delivery log has `n` attempts; returns it.
async fn deliveries(api: &Api, hook: &str, n: usize) -> Vec<Value> {
    let start = std::time::Instant::now();
    loop {
        let (status, body) = api
            .get(&format!("/api/v1/webhooks/{hook}/deliveries"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let items = body["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= n {
            return items;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_each_run_end_delivers_one_signed_event() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("ok/a.csv", data::csv(1, 100)).await;
    bucket.put("cwe/a.csv", data::csv(1, 300)).await;
    let mut rx = receiver(vec![]).await;
    let (server, api) = Launch::new(&db)
        .var("SLUICE_WEBHOOK_ALLOW_PRIVATE", "1")
        .serve()
        .await;
    let hook = subscribe(
        &api,
        &rx.url,
        json!(["run.completed", "run.completed_with_errors", "run.failed"]),
    )
    .await;
    let connector = api.s3_connector(&bucket.name).await;
    let mut expected = BTreeMap::new();
    for (prefix, email, status) in [
        ("ok/", "email", "completed"),
        ("cwe/", "email", "completed_with_errors"),
        ("none/", "email", "failed"),
    ] {
        let p = pipeline(&api, &connector, prefix, email).await;
        let run = api.start_run(&p).await;
        let progress = api.wait_terminal(&p, &run, Duration::from_secs(120)).await;
        assert_eq!(progress["status"], status, "{progress}");
        expected.insert(run, (p, status));
    }
    let mut got = BTreeMap::new();
    for _ in 0..3 {
        let r = rx.next().await;
        assert_signed(&r);
        let v: Value = serde_json::from_str(&r.body).expect("json body");
        let run = v["data"]["run"]["id"].as_str().expect("run id").to_owned();
        assert_eq!(
            r.headers.get("sluice-event-id").map(String::as_str),
            v["id"].as_str()
        );
        assert_eq!(
            r.headers.get("sluice-event-type").map(String::as_str),
            v["type"].as_str()
        );
        assert!(got.insert(run, v).is_none(), "one event per run");
    }
    for (run, (p, status)) in &expected {
        let v = got.get(run).expect("an event for every run");
        assert_eq!(v["type"], format!("run.{status}"), "{v}");
        assert_eq!(v["data"]["run"]["status"], *status, "{v}");
        assert_eq!(v["data"]["pipeline"]["id"], p.as_str(), "{v}");
        assert!(
            v["links"]["progress"]
                .as_str()
                .is_some_and(|l| l.ends_with(&format!("/runs/{run}/progress"))),
            "{v}"
        );
    }
    let cwe = got
        .values()
        .find(|v| v["type"] == "run.completed_with_errors")
        .expect("cwe event");
    assert_eq!(cwe["data"]["run"]["failedRows"], 1, "{cwe}");
    assert_eq!(cwe["data"]["errors"][0]["row"], 250, "{cwe}");
    // Exactly one attempt per event, each delivered; nothing else arrives.
    let log = deliveries(&api, &hook, 3).await;
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(
        log.iter()
            .all(|d| d["result"] == "delivered" && d["statusCode"] == 200),
        "{log:?}"
    );
    assert!(rx.got.try_recv().is_err(), "no second delivery");
    // The secret is in no answer and no log line.
    let (_, hooks) = api.get("/api/v1/webhooks").await;
    let (_, one) = api.get(&format!("/api/v1/webhooks/{hook}")).await;
    assert_eq!(one["secretSet"], true);
    for text in [hooks.to_string(), one.to_string(), server.log_text()] {
        assert!(!text.contains(SECRET), "the secret leaked: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_503_three_times_then_200_is_the_same_event_four_times() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("ok/a.csv", data::csv(1, 100)).await;
    let mut rx = receiver(vec![
        "503 Service Unavailable",
        "503 Service Unavailable",
        "503 Service Unavailable",
    ])
    .await;
    let (_server, api) = Launch::new(&db)
        .var("SLUICE_WEBHOOK_ALLOW_PRIVATE", "1")
        .serve()
        .await;
    let hook = subscribe(&api, &rx.url, json!(["run.completed"])).await;
    let connector = api.s3_connector(&bucket.name).await;
    let p = pipeline(&api, &connector, "ok/", "email").await;
    let run = api.start_run(&p).await;
    api.wait_terminal(&p, &run, Duration::from_secs(120)).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let r = rx.next().await;
        assert_signed(&r);
        ids.push(r.headers.get("sluice-event-id").cloned().expect("event id"));
    }
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    let log = deliveries(&api, &hook, 4).await;
    let seen: Vec<(u64, String, u64)> = log
        .iter()
        .map(|d| {
            (
                d["attempt"].as_u64().unwrap_or(0),
                d["result"].as_str().unwrap_or_default().to_owned(),
                d["statusCode"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (4, "delivered".to_owned(), 200),
            (3, "retrying".to_owned(), 503),
            (2, "retrying".to_owned(), 503),
            (1, "retrying".to_owned(), 503),
        ]
    );
    assert!(log.iter().all(|d| d["eventId"] == ids[0].as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_to_a_private_url_is_refused_unless_allowed() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let (_server, api) = Launch::new(&db).workers(0).serve().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://localhost:9/",
    ] {
        let (status, body) = api
            .post(
                "/api/v1/webhooks",
                json!({"url": url, "events": ["run.failed"], "secret": SECRET}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(body["error"]["field"], "url", "{body}");
        assert!(!body.to_string().contains(SECRET));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_receiver_down_for_a_while_gets_the_event_when_back() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("ok/a.csv", data::csv(1, 100)).await;
    // A port with nobody listening: connections are refused.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let (_server, api) = Launch::new(&db)
        .var("SLUICE_WEBHOOK_ALLOW_PRIVATE", "1")
        .serve()
        .await;
    let hook = subscribe(
        &api,
        &format!("http://{addr}/hook"),
        json!(["run.completed"]),
    )
    .await;
    let connector = api.s3_connector(&bucket.name).await;
    let p = pipeline(&api, &connector, "ok/", "email").await;
    let run = api.start_run(&p).await;
    api.wait_terminal(&p, &run, Duration::from_secs(120)).await;
    let first = deliveries(&api, &hook, 1).await;
    assert_eq!(first[0]["result"], "retrying", "{first:?}");
    assert_eq!(first[0]["statusCode"], Value::Null, "{first:?}");
    assert!(first[0]["error"].is_string(), "{first:?}");
    // The receiver comes back on that port.
    let mut rx = receiver_on(TcpListener::bind(addr).await.expect("rebind"), vec![]);
    let r = rx.next().await;
    assert_signed(&r);
    let v: Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(v["data"]["run"]["id"], run.as_str());
    assert_eq!(
        r.headers.get("sluice-event-id").map(String::as_str),
        first[0]["eventId"].as_str()
    );
}

/// Issue 17, acceptance 2: the process that finished the run is killed
/// (SIGKILL) while it sends the event; a new process sends it once the
/// dead one's lease ends.
#[tokio::test(flavor = "multi_thread")]
async fn webhook_survives_a_sigkill_of_the_process_sending_it() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let bucket = Bucket::new().await;
    bucket.put("ok/a.csv", data::csv(1, 100)).await;
    let mut rx = receiver(vec![HANG]).await;
    let (mut server, api) = Launch::new(&db)
        .var("SLUICE_WEBHOOK_ALLOW_PRIVATE", "1")
        .serve()
        .await;
    let hook = subscribe(&api, &rx.url, json!(["run.completed"])).await;
    let connector = api.s3_connector(&bucket.name).await;
    let p = pipeline(&api, &connector, "ok/", "email").await;
    let run = api.start_run(&p).await;
    api.wait_terminal(&p, &run, Duration::from_secs(120)).await;
    let in_flight = rx.next().await;
    server.kill();
    let (_again, api) = Launch::new(&db)
        .var("SLUICE_WEBHOOK_ALLOW_PRIVATE", "1")
        .serve()
        .await;
    let r = tokio::time::timeout(Duration::from_secs(150), rx.got.recv())
        .await
        .expect("the event after the lease ends")
        .expect("receiver alive");
    assert_signed(&r);
    assert_eq!(
        r.headers.get("sluice-event-id"),
        in_flight.headers.get("sluice-event-id")
    );
    assert_eq!(r.body, in_flight.body, "the same bytes");
    let log = deliveries(&api, &hook, 1).await;
    assert_eq!(log.len(), 1, "the killed attempt recorded nothing: {log:?}");
    assert_eq!(log[0]["result"], "delivered");
}
