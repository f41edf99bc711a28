//! Object sources: where a pipeline's files are read from.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use sluice_domain::connector::{Connector, Credentials};
use sluice_domain::time::Timestamp;

/// Why an object-store operation failed, in plain words fit for a user (never
/// containing a credential).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The connector's settings cannot work (missing bucket, root outside the
    /// allowed directories, bad URL, a path escaping the root).
    #[error("invalid connector configuration: {0}")]
    InvalidConfig(String),
    /// The object, bucket or directory does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The credentials were refused.
    #[error("access denied: {0}")]
    PermissionDenied(String),
    /// The endpoint could not be reached or did not answer in time.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// A listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Full key (relative to the connector's bucket or root).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Entity tag (changes whenever the content changes), if the store has one.
    pub etag: Option<String>,
    /// Last modification.
    pub last_modified: Option<Timestamp>,
}

/// What a successful connector check found out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceCheck {
    /// The identity the requests were signed as, when the connector uses
    /// the server's ambient credentials and the identity could be told.
    pub identity: Option<String>,
}

/// Bytes of an object, in chunks of any size.
pub type ByteStream = BoxStream<'static, Result<Bytes, SourceError>>;

/// One connector's store. (No mockall mock: use the in-memory fake of the
/// `testing` feature.)
#[async_trait]
pub trait ObjectSource: Send + Sync {
    /// Objects under `prefix` whose key relative to the prefix matches the glob
    /// `pattern` (every object when `None`), without directories and without
    /// the keys in `exclude` (the touch file), in lexical key order.
    /// `NotFound` when the bucket or root does not exist; an empty prefix is
    /// `Ok(vec![])`.
    async fn list(
        &self,
        prefix: &str,
        pattern: Option<&str>,
        exclude: &[String],
    ) -> Result<Vec<ObjectInfo>, SourceError>;

    /// The object at `key`, or `None` when it does not exist.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, SourceError>;

    /// Streams the object's content from byte `offset` to the end. With `gzip`
    /// the content is decompressed on the fly and `offset` counts decompressed
    /// bytes. Memory stays bounded whatever the object size. Dropping the
    /// stream aborts the read.
    async fn read(&self, key: &str, offset: u64, gzip: bool) -> Result<ByteStream, SourceError>;

    /// Deletes the object at `key`; deleting a missing object is `Ok`.
    async fn delete(&self, key: &str) -> Result<(), SourceError>;

    /// Checks that the store answers and the credentials work, by listing the
    /// bucket or root, within a timeout. The error says why in plain words.
    /// For ambient credentials the answer names the identity used (an ARN,
    /// a service account, a managed identity; never a secret).
    async fn check(&self) -> Result<SourceCheck, SourceError>;
}

/// Builds an [`ObjectSource`] from a connector's settings and secrets.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait ObjectSourceFactory: Send + Sync {
    /// Opens the connector. `InvalidConfig` when its settings cannot work.
    fn open(
        &self,
        connector: &Connector,
        credentials: &Credentials,
    ) -> Result<Arc<dyn ObjectSource>, SourceError>;
}
