//! Issue 19, the API's edges, against the real binary: huge headers, clients
//! that trickle a body or send nothing, and 10,000 connections held open at
//! once are refused or timed out cleanly, and other clients are served
//! throughout.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Api, Launch, SluiceMigrations, TestDb};

fn address(api: &Api) -> String {
    api.base.trim_start_matches("http://").to_owned()
}

/// Sends `request` on a new connection and reads what the server answers
/// until it closes the connection (or `limit` passes): the status line, or
/// `None` when it closed without answering.
async fn exchange(api: &Api, request: &[u8], limit: Duration) -> Option<String> {
    let mut stream = TcpStream::connect(address(api)).await.expect("connect");
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    text.lines()
        .next()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
}

/// Another client, served as usual.
async fn healthy(api: &Api) {
    let started = Instant::now();
    let (status, body) = api.get("/api/v1/connectors").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "another client waited {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_headers_and_slow_clients_are_refused_or_timed_out_cleanly() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let (server, api) = Launch::new(&db)
        .workers(0)
        .var("SLUICE_HTTP_BODY_TIMEOUT_SECONDS", "3")
        .serve()
        .await;
    let host = address(&api);

    // A 200 KiB header, and 500 small ones.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let status = exchange(&api, big.as_bytes(), Duration::from_secs(10)).await;
    assert!(
        status.as_deref().is_some_and(|s| s.contains(" 431 ")),
        "a huge header is refused with 431: {status:?}"
    );
    let many: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n{many}\r\n");
    let status = exchange(&api, many.as_bytes(), Duration::from_secs(10)).await;
    assert!(
        status
            .as_deref()
            .is_some_and(|s| s.contains(" 431 ") || s.contains(" 400 ")),
        "500 headers are refused: {status:?}"
    );
    healthy(&api).await;

    // A body trickled a byte every 200 ms (it would take over a minute):
    // answered 408 once the body timeout passes, while others are served.
    let trickle = {
        let api_key = api.key.clone();
        let host = host.clone();
        tokio::spawn(async move {
            let mut stream = TcpStream::connect(&host).await.expect("connect");
            let head = format!(
                "POST /api/v1/connectors HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api_key}\r\n\
                 Content-Type: application/json\r\nContent-Length: 400\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await.expect("head");
            let started = Instant::now();
            let mut answer = Vec::new();
            let mut buf = [0u8; 4096];
            for _ in 0..400 {
                if stream.write_all(b" ").await.is_err() {
                    break;
                }
                match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await
                {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => {
                        answer.extend_from_slice(&buf[..n]);
                        break;
                    }
                    Err(_) => {}
                }
            }
            (
                started.elapsed(),
                String::from_utf8_lossy(&answer).into_owned(),
            )
        })
    };
    for _ in 0..4 {
        healthy(&api).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (took, answer) = trickle.await.expect("trickling client");
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a trickled body is a 408: {answer}"
    );
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(took < Duration::from_secs(10), "timed out after {took:?}");

    // A client that connects and never sends its request head.
    let started = Instant::now();
    let status = exchange(&api, b"", Duration::from_secs(20)).await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a silent client is dropped: {status:?} after {:?}",
        started.elapsed()
    );
    healthy(&api).await;
    assert!(!server.log_text().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_open_connections_do_not_keep_other_clients_out() {
    const CONNECTIONS: usize = 10_000;
    // Every connection is an open file here too.
    let limit = rlimit::increase_nofile_limit(u64::MAX).expect("open-files limit");
    assert!(
        limit >= CONNECTIONS as u64 + 1_000,
        "the open-files hard limit ({limit}) must allow {CONNECTIONS} connections"
    );
    let db = TestDb::migrated(&SluiceMigrations).await;
    let (server, api) = Launch::new(&db).workers(0).serve().await;
    let host = address(&api);
    let mut open = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        match TcpStream::connect(&host).await {
            Ok(s) => open.push(s),
            Err(e) => panic!("connection {i} refused: {e}"),
        }
    }
    // Other clients are served while they are all open.
    for _ in 0..5 {
        healthy(&api).await;
    }
    // The server closes them once they have sent nothing for its request
    // timeout: reading each one ends (no answer, or a 408).
    let started = Instant::now();
    let mut closed = 0;
    for mut stream in open {
        let mut buf = [0u8; 1024];
        let left = Duration::from_secs(60).saturating_sub(started.elapsed());
        loop {
            match tokio::time::timeout(left, stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed += 1;
                    break;
                }
                Ok(Ok(_)) => {}
                Err(_) => break,
            }
        }
    }
    assert_eq!(
        closed, CONNECTIONS,
        "every idle connection was closed by the server"
    );
    println!(
        "{CONNECTIONS} idle connections closed within {:?}",
        started.elapsed()
    );
    healthy(&api).await;
    assert!(!server.log_text().contains("panicked"));
}
