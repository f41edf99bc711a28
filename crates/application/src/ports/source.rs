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

impl SourceError {
    /// The error for reading `key` from an `offset` beyond its end: the
    /// offset came from an earlier read of the same file, so the file must
    /// have changed since it was listed.
    pub fn past_end(key: &str, offset: u64) -> Self {
        Self::Other(format!(
            "offset {offset} is past the end of `{key}`; the file has changed since it was listed"
        ))
    }
}

/// A listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Full key (relative to the connector's bucket or root).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Entity tag, if the store has one: it changes whenever the content
    /// changes, and `list` and `head` report the same one while it does not
    /// (polling starts a run per new touch-file ETag, and the clean-up deletes
    /// a touch file only while its ETag is still the one that started the run).
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

/// A listing delivered object by object, as the store's pages arrive (see
/// [`ObjectSource::list_stream`]).
pub type ObjectListing = BoxStream<'static, Result<ObjectInfo, SourceError>>;

/// A listing already collected, as an [`ObjectListing`].
pub fn listing_of(listed: Vec<ObjectInfo>) -> ObjectListing {
    Box::pin(futures::stream::iter(listed.into_iter().map(Ok)))
}

/// One connector's store. (No mockall mock: use the in-memory fake of the
/// `testing` feature.) Every implementation passes the contract suite
/// `sluice_application::source_contract_tests!`, which checks each promise
/// below.
#[async_trait]
pub trait ObjectSource: Send + Sync {
    /// Objects under `prefix` whose key relative to the prefix matches the glob
    /// `pattern` (every object when `None`), without directories and without
    /// the keys in `exclude` (the touch file), in lexical (byte) key order.
    /// The prefix counts whole key segments: `in` and `in/` both mean the keys
    /// under `in/`, never `inbox/…` or `in.csv`; [`FileFilter`] holds these
    /// rules for every implementation. A prefix with nothing under it is
    /// `Ok(vec![])`; `NotFound` when the bucket or root does not exist;
    /// `InvalidConfig` when `pattern` is not a valid glob.
    ///
    /// [`FileFilter`]: crate::ports::FileFilter
    async fn list(
        &self,
        prefix: &str,
        pattern: Option<&str>,
        exclude: &[String],
    ) -> Result<Vec<ObjectInfo>, SourceError>;

    /// The listing of [`ObjectSource::list`] (the same objects, in the same
    /// order, with the same errors), delivered as it arrives, so that a
    /// caller going through a million keys holds a page at a time instead of
    /// the whole listing. An error may come from this call or, for a page
    /// after the first, from the stream. The default collects
    /// [`ObjectSource::list`]; a store that lists in pages overrides it.
    async fn list_stream(
        &self,
        prefix: &str,
        pattern: Option<&str>,
        exclude: &[String],
    ) -> Result<ObjectListing, SourceError> {
        Ok(listing_of(self.list(prefix, pattern, exclude).await?))
    }

    /// The object at `key` (size and ETag as `list` reports them), or `None`
    /// when it does not exist, also when `key` is only a "folder" that other
    /// keys sit under.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, SourceError>;

    /// Streams the object's content from byte `offset` to the end. With `gzip`
    /// the content is decompressed on the fly (every member of a multi-member
    /// file) and `offset` counts decompressed bytes. Memory stays bounded
    /// whatever the object size. Dropping the stream aborts the read.
    ///
    /// `NotFound` (naming the key) when the object does not exist. Reading
    /// from the very end yields no bytes; an offset past the end is
    /// [`SourceError::past_end`]. Content that is not gzip, read with `gzip`,
    /// is an `Other` error naming the key, from this call or from the stream.
    async fn read(&self, key: &str, offset: u64, gzip: bool) -> Result<ByteStream, SourceError>;

    /// Deletes the object at `key`; deleting a missing object is `Ok`.
    async fn delete(&self, key: &str) -> Result<(), SourceError>;

    /// Checks that the store answers and the credentials work, by listing the
    /// bucket or root, within a timeout. The error says why in plain words.
    /// For ambient credentials the answer names the identity used (an ARN,
    /// a service account, a managed identity; never a secret).
    async fn check(&self) -> Result<SourceCheck, SourceError>;
}

/// Builds an [`ObjectSource`] from a connector's settings and secrets. (A
/// mockall mock in this crate's own tests, where what matters is how the
/// use cases call it.)
#[cfg_attr(test, mockall::automock)]
pub trait ObjectSourceFactory: Send + Sync {
    /// Opens the connector. `InvalidConfig` when its settings cannot work.
    fn open(
        &self,
        connector: &Connector,
        credentials: &Credentials,
    ) -> Result<Arc<dyn ObjectSource>, SourceError>;
}
