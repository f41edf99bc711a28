//! Fixtures shared by the integration tests: a fresh bucket on the
//! S3-compatible test server, or a fresh temporary directory, with a
//! connector pointing at it.
//!
//! The S3 server comes from the test harness, which exports
//! `SLUICE_TEST_S3_ENDPOINT` (access key `test`, secret `test`, region
//! `us-east-1`). Without it these tests fail: they are the proof that the
//! adapter works against a real server, so skipping silently would hide that
//! nothing was proved.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sluice_application::ports::{ObjectSource, ObjectSourceFactory, SourceError, SourceFile};
use sluice_application::reading::{ReadItem, RecordReader};
use sluice_domain::connector::{Connector, ConnectorConfig, ConnectorType, Credentials};
use sluice_domain::format::{RecordBody, RecordFormat};
use sluice_domain::ids::{ConnectorId, Ulid};
use sluice_domain::run::SourcePosition;
use sluice_domain::time::Timestamp;
use sluice_object_store::{ObjectStoreSource, ObjectStoreSourceFactory};
use tempfile::TempDir;

/// The variable the test harness sets to the S3 server's URL.
pub const ENDPOINT_VAR: &str = "SLUICE_TEST_S3_ENDPOINT";
/// Credentials the harness's server accepts.
pub const ACCESS_KEY: &str = "test";
/// See [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "test";

/// The S3 server's URL; panics with instructions when the harness did not
/// start one.
pub fn s3_endpoint() -> String {
    match std::env::var(ENDPOINT_VAR) {
        Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_owned(),
        _ => panic!(
            "{ENDPOINT_VAR} is not set: these tests need an S3-compatible server. Run them \
             with `cargo xtask test`, or start one yourself (e.g. `moto_server -H 127.0.0.1 \
             -p 9123`) and export {ENDPOINT_VAR}=http://127.0.0.1:9123"
        ),
    }
}

/// A name no other test (or earlier run) uses: lowercase, valid as a bucket.
pub fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "sluice-{tag}-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

/// Creates a bucket with an unsigned PUT (the test server accepts it;
/// `object_store` cannot create buckets).
pub async fn create_bucket(endpoint: &str, bucket: &str) {
    let response = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("cannot reach the S3 server at {endpoint}: {e}"));
    assert!(
        response.status().is_success(),
        "creating bucket {bucket} failed: {}",
        response.status()
    );
}

/// A connector record for tests.
pub fn connector(
    kind: ConnectorType,
    config: ConnectorConfig,
    credentials: &Credentials,
) -> Connector {
    Connector {
        id: ConnectorId::from_ulid(Ulid::from_parts(1_700_000_000_000, 42)),
        name: "test connector".into(),
        connector_type: kind,
        config,
        credential_source: credentials.source(),
        credential_keys: credentials.keys().into_iter().map(str::to_owned).collect(),
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    }
}

/// Credentials from pairs.
pub fn credentials(pairs: &[(&str, &str)]) -> Credentials {
    Credentials::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    )
}

/// The config of an S3 connector on the test server.
pub fn s3_config(endpoint: &str, bucket: &str) -> ConnectorConfig {
    ConnectorConfig {
        bucket: Some(bucket.to_owned()),
        endpoint: Some(endpoint.to_owned()),
        region: Some("us-east-1".into()),
        ..ConnectorConfig::default()
    }
}

/// Which kind of store a fixture is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A bucket on the S3 test server.
    S3,
    /// A temporary directory.
    Local,
}

/// A fresh, empty store with a connector pointing at it, and a direct
/// `object_store` client (`raw`) to lay out test files.
pub struct Fixture {
    pub connector: Connector,
    pub credentials: Credentials,
    pub factory: ObjectStoreSourceFactory,
    pub raw: Arc<dyn ObjectStore>,
    /// The local root (local fixtures) or bucket name (s3).
    pub place: String,
    /// Keeps the temporary directory alive.
    pub dir: Option<TempDir>,
}

impl Fixture {
    /// A fixture of either kind.
    pub async fn new(kind: Kind) -> Self {
        match kind {
            Kind::S3 => Self::s3().await,
            Kind::Local => Self::local(),
        }
    }

    /// A new bucket on the S3 test server.
    pub async fn s3() -> Self {
        let endpoint = s3_endpoint();
        let bucket = unique_name("b");
        create_bucket(&endpoint, &bucket).await;
        let raw = AmazonS3Builder::new()
            .with_endpoint(&endpoint)
            .with_allow_http(true)
            .with_bucket_name(&bucket)
            .with_region("us-east-1")
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .expect("raw s3 client");
        let credentials =
            credentials(&[("accessKeyId", ACCESS_KEY), ("secretAccessKey", SECRET_KEY)]);
        Self {
            connector: connector(
                ConnectorType::S3,
                s3_config(&endpoint, &bucket),
                &credentials,
            ),
            credentials,
            factory: ObjectStoreSourceFactory::new(Vec::new()),
            raw: Arc::new(raw),
            place: bucket,
            dir: None,
        }
    }

    /// A new temporary directory: the allowed root is the directory, the
    /// connector's root is its `data` subdirectory (so tests can put files
    /// outside the connector's root but inside the temporary directory).
    pub fn local() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("data");
        std::fs::create_dir_all(&root).expect("mkdir");
        let raw = LocalFileSystem::new_with_prefix(&root).expect("raw local store");
        let credentials = Credentials::default();
        let config = ConnectorConfig {
            root: Some(root.display().to_string()),
            ..ConnectorConfig::default()
        };
        Self {
            connector: connector(ConnectorType::Local, config, &credentials),
            credentials,
            factory: ObjectStoreSourceFactory::new(vec![dir.path().to_path_buf()]),
            raw: Arc::new(raw),
            place: root.display().to_string(),
            dir: Some(dir),
        }
    }

    /// Replaces the factory (chunk size, timeout).
    pub fn with_factory(
        mut self,
        f: impl FnOnce(ObjectStoreSourceFactory) -> ObjectStoreSourceFactory,
    ) -> Self {
        self.factory = f(self.factory);
        self
    }

    /// The connector's root directory (local fixtures).
    pub fn root(&self) -> PathBuf {
        PathBuf::from(&self.place)
    }

    /// The temporary directory holding the root (local fixtures).
    pub fn tmp(&self) -> &Path {
        self.dir.as_ref().map(TempDir::path).expect("local fixture")
    }

    /// Writes a file.
    pub async fn put(&self, key: &str, content: impl Into<Bytes>) {
        self.raw
            .put(&ObjectPath::from(key), PutPayload::from(content.into()))
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
    }

    /// The source through the port, as the engine gets it.
    pub fn source(&self) -> Arc<dyn ObjectSource> {
        self.factory
            .open(&self.connector, &self.credentials)
            .expect("open source")
    }

    /// The source as its concrete type.
    pub fn concrete(&self) -> ObjectStoreSource {
        self.factory
            .open_source(&self.connector, &self.credentials)
            .expect("open source")
    }
}

/// Reads a whole stream into memory (small test files only).
pub async fn read_all(
    source: &dyn ObjectSource,
    key: &str,
    offset: u64,
    gzip: bool,
) -> Result<Vec<u8>, SourceError> {
    let chunks: Vec<Bytes> = source.read(key, offset, gzip).await?.try_collect().await?;
    Ok(chunks.concat())
}

/// gzip of `data` as one member.
pub fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip write");
    e.finish().expect("gzip finish")
}

/// A file entry for [`RecordReader`].
pub fn source_file(index: u32, key: &str, gzip: bool) -> SourceFile {
    SourceFile {
        index,
        key: key.to_owned(),
        size: 0,
        etag: None,
        last_modified: None,
        gzip,
        header: None,
        first_row: 1,
        row_count: 0,
    }
}

/// One record as the tests compare it: its row number, where it starts and
/// ends, and its fields (CSV) or its line (JSON Lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub row: u64,
    pub start: u64,
    pub end: u64,
    pub fields: Vec<String>,
}

/// Reads records from `start` until `last_row` (inclusive) or the end.
pub async fn read_records(
    source: Arc<dyn ObjectSource>,
    files: Vec<SourceFile>,
    format: RecordFormat,
    header: bool,
    start: SourcePosition,
    first_row: u64,
    last_row: Option<u64>,
) -> Result<Vec<Rec>, SourceError> {
    let mut reader = RecordReader::new(source, files.into(), format, header, start, first_row);
    let mut out = Vec::new();
    loop {
        match reader.advance().await? {
            ReadItem::Header { .. } => {}
            ReadItem::Record(meta) => {
                if last_row.is_some_and(|l| meta.row > l) {
                    break;
                }
                let fields = match reader.record() {
                    RecordBody::Fields(f) => f
                        .iter()
                        .map(|x| String::from_utf8_lossy(x).into_owned())
                        .collect(),
                    RecordBody::Json(line) => vec![String::from_utf8_lossy(line).into_owned()],
                    RecordBody::Malformed(p) => vec![format!("MALFORMED: {}", p.message())],
                };
                out.push(Rec {
                    row: meta.row,
                    start: meta.start,
                    end: meta.end,
                    fields,
                });
            }
            ReadItem::End => break,
        }
    }
    Ok(out)
}

/// A loopback server that answers every request like S3 refusing it: HTTP
/// `status` with an XML error `code`. Real S3 echoes the access key id in
/// some error bodies (`SignatureDoesNotMatch`), so `echo` is put in the body
/// (message and key id) to prove that it does not reach our messages. Returns its URL.
pub async fn s3_error_stub(status: u16, code: &'static str, echo: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let echo = echo.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
                     <Message>refused by the test stub for {echo}</Message>\
                     <AWSAccessKeyId>{echo}</AWSAccessKeyId><RequestId>1</RequestId></Error>"
                );
                let response = format!(
                    "HTTP/1.1 {status} Refused\r\nContent-Type: application/xml\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// A loopback server that accepts connections and never answers.
pub async fn silent_stub() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

/// A loopback URL where nothing listens (connections are refused).
pub async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}
