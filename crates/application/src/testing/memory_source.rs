//! The in-memory [`ObjectSource`], run through the same contract suite as the
//! object-store adapter (`source_contract_tests!`).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use sluice_domain::connector::{Connector, Credentials};

use crate::ports::{
    ByteStream, FileFilter, ObjectInfo, ObjectSource, ObjectSourceFactory, SourceCheck, SourceError,
};
use crate::testing::contract::SourceFixture;

/// An object store held in memory, for use-case tests. Reads come in chunks of
/// `chunk_size` bytes to exercise record boundaries across chunks. Listing
/// follows the adapter's rules ([`FileFilter`]); gzip objects are decompressed
/// whole (they are test-sized), with the adapter's offsets and errors.
#[derive(Debug, Clone)]
pub struct InMemorySource {
    objects: Arc<Mutex<BTreeMap<String, (Bytes, u64)>>>,
    /// The last version given to a put: every put gets a new one, so an ETag
    /// is never given twice, even to a key deleted and written again.
    versions: Arc<AtomicU64>,
    chunk_size: usize,
    failing: Arc<Mutex<Option<SourceError>>>,
}

impl Default for InMemorySource {
    fn default() -> Self {
        Self::new(7)
    }
}

impl InMemorySource {
    /// An empty store serving reads in chunks of `chunk_size` bytes.
    pub fn new(chunk_size: usize) -> Self {
        Self {
            objects: Arc::default(),
            versions: Arc::default(),
            chunk_size: chunk_size.max(1),
            failing: Arc::default(),
        }
    }

    /// Stores (or replaces) an object; its ETag changes on every put.
    pub fn put(&self, key: &str, content: impl Into<Bytes>) {
        let version = self.versions.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(mut o) = self.objects.lock() {
            o.insert(key.to_owned(), (content.into(), version));
        }
    }

    /// True if `key` exists.
    pub fn contains(&self, key: &str) -> bool {
        self.objects
            .lock()
            .map(|o| o.contains_key(key))
            .unwrap_or(false)
    }

    /// Makes every later call fail with `error` (or work again with `None`).
    pub fn fail_with(&self, error: Option<SourceError>) {
        if let Ok(mut f) = self.failing.lock() {
            *f = error;
        }
    }

    fn check_failing(&self) -> Result<(), SourceError> {
        match self.failing.lock().map(|f| f.clone()) {
            Ok(Some(e)) => Err(e),
            _ => Ok(()),
        }
    }

    fn info(key: &str, content: &Bytes, version: u64) -> ObjectInfo {
        ObjectInfo {
            key: key.to_owned(),
            size: content.len() as u64,
            etag: Some(format!("\"v{version}-{}\"", content.len())),
            last_modified: None,
        }
    }

    /// The bytes a read of `key` yields from byte 0, decompressed with `gzip`.
    fn content(&self, key: &str, gzip: bool) -> Result<Bytes, SourceError> {
        let stored = {
            let objects = self
                .objects
                .lock()
                .map_err(|_| SourceError::Other("poisoned".into()))?;
            objects
                .get(key)
                .map(|(c, _)| c.clone())
                .ok_or_else(|| SourceError::NotFound(format!("`{key}` does not exist")))?
        };
        if !gzip {
            return Ok(stored);
        }
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(stored.as_ref())
            .read_to_end(&mut out)
            .map_err(|e| SourceError::Other(format!("`{key}` is not valid gzip data ({e})")))?;
        Ok(out.into())
    }
}

#[async_trait]
impl ObjectSource for InMemorySource {
    async fn list(
        &self,
        prefix: &str,
        pattern: Option<&str>,
        exclude: &[String],
    ) -> Result<Vec<ObjectInfo>, SourceError> {
        self.check_failing()?;
        let filter = FileFilter::new(prefix, pattern, exclude)?;
        let objects = self
            .objects
            .lock()
            .map_err(|_| SourceError::Other("poisoned".into()))?;
        Ok(filter.select(
            objects
                .iter()
                .map(|(k, (c, v))| Self::info(k, c, *v))
                .collect(),
        ))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, SourceError> {
        self.check_failing()?;
        let objects = self
            .objects
            .lock()
            .map_err(|_| SourceError::Other("poisoned".into()))?;
        Ok(objects.get(key).map(|(c, v)| Self::info(key, c, *v)))
    }

    async fn read(&self, key: &str, offset: u64, gzip: bool) -> Result<ByteStream, SourceError> {
        self.check_failing()?;
        let content = self.content(key, gzip)?;
        let start = usize::try_from(offset)
            .ok()
            .filter(|&start| start <= content.len())
            .ok_or_else(|| SourceError::past_end(key, offset))?;
        let rest = content.slice(start..);
        let chunks: Vec<Result<Bytes, SourceError>> = (0..rest.len())
            .step_by(self.chunk_size)
            .map(|i| Ok(rest.slice(i..(i + self.chunk_size).min(rest.len()))))
            .collect();
        let failing = self.failing.clone();
        Ok(futures::stream::iter(chunks)
            .map(move |c| match failing.lock().map(|f| f.clone()) {
                Ok(Some(e)) => Err(e),
                _ => c,
            })
            .boxed())
    }

    async fn delete(&self, key: &str) -> Result<(), SourceError> {
        self.check_failing()?;
        if let Ok(mut o) = self.objects.lock() {
            o.remove(key);
        }
        Ok(())
    }

    async fn check(&self) -> Result<SourceCheck, SourceError> {
        self.check_failing()?;
        Ok(SourceCheck::default())
    }
}

#[async_trait]
impl SourceFixture for InMemorySource {
    fn source(&self) -> Arc<dyn ObjectSource> {
        Arc::new(self.clone())
    }

    async fn put(&self, key: &str, content: Bytes) {
        InMemorySource::put(self, key, content);
    }
}

/// Opens the same [`InMemorySource`] for every connector.
#[derive(Debug, Clone, Default)]
pub struct InMemorySourceFactory(pub InMemorySource);

impl ObjectSourceFactory for InMemorySourceFactory {
    fn open(
        &self,
        _connector: &Connector,
        _credentials: &Credentials,
    ) -> Result<Arc<dyn ObjectSource>, SourceError> {
        Ok(Arc::new(self.0.clone()))
    }
}

#[cfg(test)]
mod contract_tests {
    crate::source_contract_tests!(async { super::InMemorySource::new(5) });
}

#[cfg(test)]
mod tests {
    use crate::ports::{FileFilter, ObjectInfo};

    /// Whether `pattern` selects `text` in a listing of the root: the fake
    /// matches globs the way the adapter does, through [`FileFilter`].
    fn glob_match(pattern: &str, text: &str) -> bool {
        let listed = vec![ObjectInfo {
            key: text.to_owned(),
            size: 1,
            etag: None,
            last_modified: None,
        }];
        let filter = FileFilter::new("", Some(pattern), &[]).expect("a valid glob");
        filter.select(listed).len() == 1
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.csv", "a.csv"));
        assert!(!glob_match("*.csv", "d/a.csv"));
        assert!(glob_match("**/*.csv", "d/e/a.csv"));
        assert!(glob_match("**/*.csv", "a.csv"));
        assert!(!glob_match("*.csv", "a.csv.gz"));
    }
}
