//! TLS to PostgreSQL (`sslmode=require`), through a TLS-terminating proxy in
//! front of the test cluster: the proxy answers PostgreSQL's `SSLRequest`,
//! does the TLS handshake with a certificate made for this test by a CA made
//! for this test (the `openssl` command, through `sluice_testkit`), and forwards the decrypted bytes to
//! the cluster. So the test works whatever cluster `DATABASE_URL` names.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sluice_application::ports::{ApiKeyStore, PageRequest, StoreError};
use sluice_postgres::{PgConfig, PgStore, migrate_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use sluice_testkit::{certificates, tls_acceptor};

use crate::support::{TestDb, cluster_url};

/// PostgreSQL's `SSLRequest`: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 4, 210, 22, 47];

/// `host:port` of a `postgres://[user[:password]@]host:port/db` URL.
fn upstream(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    assert!(
        host_port.contains(':'),
        "DATABASE_URL needs an explicit host:port for the TLS test, got {host_port}"
    );
    host_port.to_owned()
}

/// `url` pointing at `proxy` instead of its own host, with `sslmode=require`.
fn through(url: &str, proxy: &str) -> String {
    let up = upstream(url);
    let url = url.replacen(&up, proxy, 1);
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode=require")
}

/// A TLS-terminating proxy to `upstream`; counts completed handshakes.
async fn proxy(
    server_cert: &Path,
    server_key: &Path,
    upstream: String,
) -> (String, Arc<AtomicUsize>) {
    let acceptor = tls_acceptor(server_cert, server_key);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy address").to_string();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counted = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let upstream = upstream.clone();
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 8];
                if client.read_exact(&mut request).await.is_err() || request != SSL_REQUEST {
                    return;
                }
                if client.write_all(b"S").await.is_err() {
                    return;
                }
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    (addr, handshakes)
}

fn config(url: String, ca_file: Option<PathBuf>) -> PgConfig {
    let mut config = PgConfig::new(url);
    config.ca_file = ca_file;
    config.pool_size = 2;
    config.loader_pool_size = 1;
    config
}

#[tokio::test]
async fn sslmode_require_migrates_and_serves_over_verified_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ca, cert, key) = certificates(dir.path());
    let db = TestDb::empty().await;
    let (addr, handshakes) = proxy(&cert, &key, upstream(&cluster_url())).await;
    let url = through(&db.url, &addr);

    let cfg = config(url, Some(ca));
    assert!(migrate_with(&cfg).await.expect("migrate over TLS") >= 1);
    let store = PgStore::connect(&cfg).await.expect("connect over TLS");
    let keys = store
        .list_api_keys(&PageRequest::default())
        .await
        .expect("a query over TLS");
    assert!(keys.items.is_empty());
    // The migration's connection and at least one pooled one went through TLS
    // (the proxy forwards nothing else).
    assert!(handshakes.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn an_unverifiable_server_is_refused_and_bad_ca_files_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, cert, key) = certificates(dir.path());
    let db = TestDb::empty().await;
    let (addr, handshakes) = proxy(&cert, &key, upstream(&cluster_url())).await;
    let url = through(&db.url, &addr);

    // The system's roots do not know the test CA: no connection, no panic.
    let refused = migrate_with(&config(url.clone(), None)).await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    // Trusting the wrong CA (the server's own leaf is no CA) is refused too.
    let wrong = PgStore::connect(&config(url.clone(), Some(cert.clone()))).await;
    assert!(wrong.is_err());
    assert_eq!(handshakes.load(Ordering::SeqCst), 0);

    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "not a certificate").expect("write");
    match PgStore::connect(&config(url.clone(), Some(not_pem))).await {
        Err(StoreError::Internal(m)) => assert!(m.contains("not.pem"), "{m}"),
        other => panic!("expected a CA file error, got {other:?}"),
    }
    let missing = dir.path().join("missing.pem");
    match migrate_with(&config(url, Some(missing))).await {
        Err(StoreError::Internal(m)) => assert!(m.contains("missing.pem"), "{m}"),
        other => panic!("expected a CA file error, got {other:?}"),
    }
}
