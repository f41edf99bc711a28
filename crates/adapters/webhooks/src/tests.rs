use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A server on loopback that answers every connection with `response`
/// (raw HTTP), or never answers when `None`; counts connections.
async fn server(response: Option<&'static str>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                let _ = sock.read(&mut buf).await;
                match response {
                    Some(r) => {
                        let _ = sock.write_all(r.as_bytes()).await;
                        let _ = sock.shutdown().await;
                    }
                    // Hold the connection open without answering.
                    None => {
                        let _ = sock.read(&mut buf).await;
                    }
                }
            });
        }
    });
    (format!("http://{addr}/hook"), hits)
}

fn request(url: &str) -> OutboundRequest {
    OutboundRequest {
        url: url.into(),
        headers: vec![("Sluice-Event-Id", "evt_1".into())],
        body: "{}".into(),
    }
}

fn allowing() -> HttpWebhookSender {
    HttpWebhookSender::new(SenderConfig {
        timeout: Duration::from_millis(500),
        allow_private: true,
        ..SenderConfig::default()
    })
    .expect("client")
}

#[tokio::test]
async fn an_answer_reports_its_status_and_retry_after() {
    let (url, _) = server(Some(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno",
    ))
    .await;
    assert_eq!(
        allowing().send(&request(&url)).await,
        SendResult::Answered {
            status: 503,
            retry_after: Some("7".into())
        }
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let (target, target_hits) = server(Some(
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ))
    .await;
    let redirect: &'static str = Box::leak(
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_boxed_str(),
    );
    let (url, hits) = server(Some(redirect)).await;
    let got = allowing().send(&request(&url)).await;
    assert_eq!(
        got,
        SendResult::Answered {
            status: 307,
            retry_after: None
        }
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        target_hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}

#[tokio::test]
async fn a_huge_answer_is_read_only_up_to_the_cap() {
    // Claims a gigabyte and sends a few kilobytes, then holds: reading it
    // all would wait for the timeout; the sender stops at the cap.
    let body: &'static str = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n{}",
            "x".repeat(8 * 1024)
        )
        .into_boxed_str(),
    );
    let (url, _) = server(Some(body)).await;
    let sender = HttpWebhookSender::new(SenderConfig {
        timeout: Duration::from_secs(30),
        allow_private: true,
        ..SenderConfig::default()
    })
    .expect("client");
    let started = std::time::Instant::now();
    assert_eq!(
        sender.send(&request(&url)).await,
        SendResult::Answered {
            status: 200,
            retry_after: None
        }
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn silence_times_out_and_is_retryable() {
    let (url, _) = server(None).await;
    match allowing().send(&request(&url)).await {
        SendResult::NoAnswer { error, retryable } => {
            assert!(retryable);
            assert_eq!(error, "timed out");
        }
        other => panic!("expected no answer, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    match allowing().send(&request(&format!("http://{addr}/"))).await {
        SendResult::NoAnswer { retryable, .. } => assert!(retryable),
        other => panic!("expected no answer, got {other:?}"),
    }
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let (url, hits) = server(Some(
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ))
    .await;
    let strict = HttpWebhookSender::new(SenderConfig::default()).expect("client");
    let port = url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/hook");
    for target in [url.clone(), format!("http://localhost:{port}/hook")] {
        match strict.send(&request(&target)).await {
            SendResult::NoAnswer { retryable, error } => {
                assert!(!retryable, "{target}");
                assert!(error.contains("SLUICE_WEBHOOK_ALLOW_PRIVATE"), "{error}");
            }
            other => panic!("{target}: expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    // A name that resolves to loopback only is refused at resolution.
    let resolved = PublicOnly.resolve("localhost".parse().expect("name")).await;
    assert!(resolved.is_err());
    assert!(matches!(
        allowing().send(&request(&url)).await,
        SendResult::Answered { status: 200, .. }
    ));
}
