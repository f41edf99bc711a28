//! [`ObjectStoreSource`]: one connector's store behind the [`ObjectSource`] port.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt};
use sluice_application::ports::{
    ByteStream, FileFilter, ObjectInfo, ObjectListing, ObjectSource, SourceCheck, SourceError,
    listing_of,
};
use sluice_domain::connector::ConnectorType;
use sluice_domain::time::Timestamp;
use tracing::{debug, warn};

use crate::credentials::AmbientEnvironment;
use crate::error::{ErrorContext, Target, map_error, store_missing};
use crate::gzip::{gunzip, rechunk, skip};
use crate::local::{LocalJail, OpenedRoot, check_local_key};
use crate::paged::{OwnedContext, PagedListing};
use crate::secret::Redactor;
use crate::settings::{Purpose, RemoteSettings};

/// A connector's object store, ready to list, read and delete files.
///
/// Built by [`crate::ObjectStoreSourceFactory`]. Its `Debug` form names the
/// connector type and location only: the credentials live inside the
/// `object_store` client and in a redaction list, neither of which is printed.
pub struct ObjectStoreSource {
    kind: ConnectorType,
    location: String,
    endpoint: String,
    backend: Backend,
    redactor: Redactor,
    /// The server's environment, for connectors that sign in as the server.
    ambient: AmbientEnvironment,
    check_timeout: Duration,
    read_chunk_bytes: usize,
}

enum Backend {
    /// A store reached over HTTP, built once; the settings are kept to build
    /// the connector test's own client (with fewer retries).
    Remote {
        store: Arc<dyn ObjectStore>,
        settings: RemoteSettings,
    },
    /// A directory, opened (and re-checked) for each operation.
    Local(LocalJail),
}

/// The store to use for one operation, and the jail to respect (local only).
struct Opened {
    store: Arc<dyn ObjectStore>,
    local: Option<OpenedRoot>,
}

impl fmt::Debug for ObjectStoreSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreSource")
            .field("type", &self.kind.as_str())
            .field("location", &self.location)
            .field("check_timeout", &self.check_timeout)
            .finish_non_exhaustive()
    }
}

impl ObjectStoreSource {
    pub(crate) fn remote(
        kind: ConnectorType,
        settings: RemoteSettings,
        redactor: Redactor,
        ambient: AmbientEnvironment,
        check_timeout: Duration,
        read_chunk_bytes: usize,
    ) -> Result<Self, SourceError> {
        let store = settings.build(Purpose::Data, &redactor, &ambient)?.store;
        Ok(Self {
            kind,
            location: settings.location(),
            endpoint: settings.endpoint(),
            backend: Backend::Remote { store, settings },
            redactor,
            ambient,
            check_timeout,
            read_chunk_bytes,
        })
    }

    pub(crate) fn local(jail: LocalJail, check_timeout: Duration, read_chunk_bytes: usize) -> Self {
        Self {
            kind: ConnectorType::Local,
            location: jail.location(),
            endpoint: jail.root().display().to_string(),
            backend: Backend::Local(jail),
            redactor: Redactor::default(),
            ambient: AmbientEnvironment::default(),
            check_timeout,
            read_chunk_bytes,
        }
    }

    /// The connector type.
    pub fn connector_type(&self) -> ConnectorType {
        self.kind
    }

    /// A description of the store without secrets, e.g.
    /// "s3 bucket `raw` at http://minio:9000".
    pub fn location(&self) -> &str {
        &self.location
    }

    fn ctx(&self) -> ErrorContext<'_> {
        ErrorContext {
            location: &self.location,
            endpoint: &self.endpoint,
            redactor: &self.redactor,
        }
    }

    async fn opened(&self) -> Result<Opened, SourceError> {
        match &self.backend {
            Backend::Remote { store, .. } => Ok(Opened {
                store: Arc::clone(store),
                local: None,
            }),
            Backend::Local(jail) => {
                let root = jail.open().await?;
                Ok(Opened {
                    store: Arc::clone(&root.store) as Arc<dyn ObjectStore>,
                    local: Some(root),
                })
            }
        }
    }

    /// Parses a key (or, with `allow_empty`, a prefix) after the checks that
    /// keep `local` connectors in their root. `..` is refused for every type:
    /// `object_store` cannot address it, and the message should say why.
    fn parse_key(&self, key: &str, allow_empty: bool) -> Result<ObjectPath, SourceError> {
        if matches!(self.backend, Backend::Local(_)) {
            check_local_key(key)?;
        }
        if key.split(['/', '\\']).any(|segment| segment == "..") {
            return Err(SourceError::InvalidConfig(format!(
                "`{key}` contains `..`; keys cannot leave the connector's root"
            )));
        }
        if key.trim_matches('/').is_empty() {
            return if allow_empty {
                Ok(ObjectPath::ROOT)
            } else {
                Err(SourceError::InvalidConfig(
                    "an object key must not be empty".to_owned(),
                ))
            };
        }
        ObjectPath::parse(key).map_err(|_| {
            SourceError::InvalidConfig(format!(
                "`{key}` is not a valid key (empty segments such as `a//b` and `.` are not allowed)"
            ))
        })
    }

    async fn ensure_inside(
        &self,
        opened: &Opened,
        paths: Vec<ObjectPath>,
    ) -> Result<(), SourceError> {
        match &opened.local {
            Some(root) => root.ensure_inside(paths).await,
            None => Ok(()),
        }
    }

    async fn get_stream(
        &self,
        store: &Arc<dyn ObjectStore>,
        path: &ObjectPath,
        key: &str,
        offset: u64,
    ) -> Result<ByteStream, SourceError> {
        let options = GetOptions {
            range: (offset > 0).then_some(GetRange::Offset(offset)),
            ..GetOptions::default()
        };
        let result = match store.get_opts(path, options).await {
            Ok(r) => r,
            Err(e) => {
                let mapped = map_error(&e, Target::Object(key), &self.ctx());
                // Servers refuse a range that starts at or after the end
                // (416, or an invalid-range error on local files); reading from
                // the very end is an empty read, and past it an error of ours.
                if offset > 0 && !matches!(mapped, SourceError::NotFound(_)) {
                    if let Ok(meta) = store.head(path).await {
                        if offset == meta.size {
                            return Ok(futures::stream::empty().boxed());
                        }
                        if offset > meta.size {
                            return Err(SourceError::past_end(key, offset));
                        }
                    }
                }
                return Err(mapped);
            }
        };
        let owned_key = key.to_owned();
        let location = self.location.clone();
        let endpoint = self.endpoint.clone();
        let redactor = self.redactor.clone();
        Ok(result
            .into_stream()
            .map_err(move |e| {
                let ctx = ErrorContext {
                    location: &location,
                    endpoint: &endpoint,
                    redactor: &redactor,
                };
                map_error(&e, Target::Object(&owned_key), &ctx)
            })
            .boxed())
    }

    /// Drops the zero-byte "folder/" objects S3 consoles create for empty
    /// folders (see [`is_empty_folder_marker`]).
    async fn without_empty_folder_markers(
        &self,
        store: &Arc<dyn ObjectStore>,
        files: Vec<ObjectInfo>,
    ) -> Result<Vec<ObjectInfo>, SourceError> {
        let mut kept = Vec::with_capacity(files.len());
        for file in files {
            if !is_empty_folder_marker(store, &file, &self.ctx()).await? {
                kept.push(file);
            }
        }
        Ok(kept)
    }

    async fn check_inner(&self) -> Result<SourceCheck, SourceError> {
        let (store, identity): (Arc<dyn ObjectStore>, _) = match &self.backend {
            Backend::Remote { settings, .. } => {
                let built = settings.build(Purpose::Check, &self.redactor, &self.ambient)?;
                (built.store, built.identity)
            }
            Backend::Local(jail) => (jail.open().await?.store, None),
        };
        // One page is enough to prove the store answers and the credentials work.
        if let Some(Err(e)) = store.list(None).next().await {
            return Err(map_error(&e, Target::Store, &self.ctx()));
        }
        let identity = match identity {
            Some(i) => Some(i.name().await),
            None => None,
        };
        Ok(SourceCheck { identity })
    }
}

/// True if `file` is a zero-byte "folder/" object as S3 consoles create for
/// empty folders. `object_store` lists `a/` as `a`, so such a marker looks
/// like an empty file named `a`, which would then fail to read; a marker
/// with files under it is already dropped by [`FileFilter`]. Only zero-byte
/// entries are checked, with one `head` each: a real empty file answers, a
/// marker does not.
pub(crate) async fn is_empty_folder_marker(
    store: &Arc<dyn ObjectStore>,
    file: &ObjectInfo,
    ctx: &ErrorContext<'_>,
) -> Result<bool, SourceError> {
    // Listed keys parse; a key that did not would simply be kept.
    let (0, Ok(path)) = (file.size, ObjectPath::parse(&file.key)) else {
        return Ok(false);
    };
    match store.head(&path).await {
        Ok(_) => Ok(false),
        Err(object_store::Error::NotFound { .. }) => Ok(true),
        Err(e) => Err(map_error(&e, Target::Object(&file.key), ctx)),
    }
}

pub(crate) fn info(meta: ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        key: meta.location.to_string(),
        size: meta.size,
        etag: meta.e_tag,
        last_modified: Some(Timestamp(meta.last_modified.timestamp_millis())),
    }
}

#[async_trait]
impl ObjectSource for ObjectStoreSource {
    async fn list(
        &self,
        prefix: &str,
        pattern: Option<&str>,
        exclude: &[String],
    ) -> Result<Vec<ObjectInfo>, SourceError> {
        let prefix_path = self.parse_key(prefix, true)?;
        let filter = FileFilter::new(prefix_path.as_ref(), pattern, exclude)?;
        let opened = self.opened().await?;
        self.ensure_inside(&opened, vec![prefix_path.clone()])
            .await?;
        let listing = if prefix_path.as_ref().is_empty() {
            opened.store.list(None)
        } else {
            opened.store.list(Some(&prefix_path))
        };
        let listed: Vec<ObjectMeta> = match listing.try_collect().await {
            Ok(v) => v,
            // A prefix (folder) that does not exist is an empty listing; only
            // a missing bucket or root is `NotFound`, and for `local` the
            // root was checked when it was opened.
            Err(object_store::Error::NotFound { .. }) if opened.local.is_some() => Vec::new(),
            Err(e) => return Err(map_error(&e, Target::Store, &self.ctx())),
        };
        if opened.local.is_some() {
            let paths = listed.iter().map(|m| m.location.clone()).collect();
            self.ensure_inside(&opened, paths).await?;
        }
        let mut files = filter.select(listed.into_iter().map(info).collect());
        if opened.local.is_none() {
            files = self
                .without_empty_folder_markers(&opened.store, files)
                .await?;
        }
        debug!(
            connector_type = self.kind.as_str(),
            location = %self.location,
            prefix,
            pattern,
            files = files.len(),
            "listed source files"
        );
        Ok(files)
    }

    /// A remote store's listing page by page; a directory's is collected
    /// (its paths are checked against the root together).
    async fn list_stream(
        &self,
        prefix: &str,
        pattern: Option<&str>,
        exclude: &[String],
    ) -> Result<ObjectListing, SourceError> {
        let Backend::Remote { store, .. } = &self.backend else {
            return Ok(listing_of(self.list(prefix, pattern, exclude).await?));
        };
        let prefix_path = self.parse_key(prefix, true)?;
        let filter = FileFilter::new(prefix_path.as_ref(), pattern, exclude)?;
        let errors = OwnedContext {
            location: self.location.clone(),
            endpoint: self.endpoint.clone(),
            redactor: self.redactor.clone(),
        };
        Ok(PagedListing::start(Arc::clone(store), &prefix_path, filter, errors).into_stream())
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, SourceError> {
        let path = self.parse_key(key, false)?;
        let opened = self.opened().await?;
        self.ensure_inside(&opened, vec![path.clone()]).await?;
        match opened.store.head(&path).await {
            Ok(meta) => Ok(Some(info(meta))),
            Err(e) => match map_error(&e, Target::Object(key), &self.ctx()) {
                SourceError::NotFound(_) if !store_missing(&e) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn read(&self, key: &str, offset: u64, gzip: bool) -> Result<ByteStream, SourceError> {
        let path = self.parse_key(key, false)?;
        let opened = self.opened().await?;
        self.ensure_inside(&opened, vec![path.clone()]).await?;
        debug!(
            connector_type = self.kind.as_str(),
            location = %self.location,
            key,
            offset,
            gzip,
            "reading object"
        );
        let stream = if gzip {
            // Compressed bytes cannot be entered mid-stream: decompress from the
            // start and drop the first `offset` decompressed bytes.
            let raw = self.get_stream(&opened.store, &path, key, 0).await?;
            skip(gunzip(raw, key, self.read_chunk_bytes), offset, key)
        } else {
            let raw = self.get_stream(&opened.store, &path, key, offset).await?;
            rechunk(raw, self.read_chunk_bytes)
        };
        Ok(stream)
    }

    async fn delete(&self, key: &str) -> Result<(), SourceError> {
        if let Backend::Remote { settings, .. } = &self.backend {
            if settings.is_read_only() {
                return Err(SourceError::Other(format!(
                    "{} is read-only: `{key}` cannot be deleted",
                    self.location
                )));
            }
        }
        let path = self.parse_key(key, false)?;
        let opened = self.opened().await?;
        self.ensure_inside(&opened, vec![path.clone()]).await?;
        match opened.store.delete(&path).await {
            Ok(()) => {}
            Err(e) => match map_error(&e, Target::Object(key), &self.ctx()) {
                SourceError::NotFound(_) if !store_missing(&e) => {}
                other => return Err(other),
            },
        }
        debug!(
            connector_type = self.kind.as_str(),
            location = %self.location,
            key,
            "deleted object"
        );
        Ok(())
    }

    async fn check(&self) -> Result<SourceCheck, SourceError> {
        let outcome = match tokio::time::timeout(self.check_timeout, self.check_inner()).await {
            Ok(result) => result,
            Err(_) => Err(SourceError::Unreachable(format!(
                "{} did not answer within {} s",
                self.location,
                self.check_timeout.as_secs_f64()
            ))),
        };
        match &outcome {
            Ok(check) => debug!(
                connector_type = self.kind.as_str(),
                location = %self.location,
                identity = check.identity.as_deref(),
                "connector test passed"
            ),
            Err(e) => warn!(
                connector_type = self.kind.as_str(),
                location = %self.location,
                error = %e,
                "connector test failed"
            ),
        }
        outcome
    }
}
