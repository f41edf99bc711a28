use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use sluice_domain::connector::{Connector, Credentials};

use crate::ports::{
    ByteStream, ObjectInfo, ObjectSource, ObjectSourceFactory, SourceCheck, SourceError,
};

/// An object store held in memory, for use-case tests. Reads come in chunks of
/// `chunk_size` bytes to exercise record boundaries across chunks. gzip is not
/// supported (the fake refuses it loudly).
#[derive(Debug, Clone)]
pub struct InMemorySource {
    objects: Arc<Mutex<BTreeMap<String, (Bytes, u64)>>>,
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
            chunk_size: chunk_size.max(1),
            failing: Arc::default(),
        }
    }

    /// Stores (or replaces) an object; its ETag changes on every put.
    pub fn put(&self, key: &str, content: impl Into<Bytes>) {
        if let Ok(mut o) = self.objects.lock() {
            let version = o.get(key).map_or(1, |(_, v)| v + 1);
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
}

/// A glob matcher good enough for the fake: `*` within a segment, `**` across.
fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) if p.get(1) == Some(&b'*') => {
                let rest = p.get(2..).unwrap_or_default();
                let rest = rest.strip_prefix(b"/").unwrap_or(rest);
                (0..=t.len()).any(|i| go(rest, t.get(i..).unwrap_or_default()))
            }
            (Some(b'*'), _) => {
                let rest = p.get(1..).unwrap_or_default();
                (0..=t.len())
                    .take_while(|&i| i == 0 || t.get(i - 1) != Some(&b'/'))
                    .any(|i| go(rest, t.get(i..).unwrap_or_default()))
            }
            (Some(a), Some(b)) if a == b || *a == b'?' && *b != b'/' => go(
                p.get(1..).unwrap_or_default(),
                t.get(1..).unwrap_or_default(),
            ),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
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
        let objects = self
            .objects
            .lock()
            .map_err(|_| SourceError::Other("poisoned".into()))?;
        Ok(objects
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) && !k.ends_with('/') && !exclude.contains(k))
            .filter(|(k, _)| {
                pattern.is_none_or(|p| {
                    glob_match(
                        p,
                        k.get(prefix.len()..)
                            .unwrap_or_default()
                            .trim_start_matches('/'),
                    )
                })
            })
            .map(|(k, (c, v))| Self::info(k, c, *v))
            .collect())
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
        if gzip {
            return Err(SourceError::Other(
                "the in-memory source does not gunzip".into(),
            ));
        }
        let content = {
            let objects = self
                .objects
                .lock()
                .map_err(|_| SourceError::Other("poisoned".into()))?;
            objects
                .get(key)
                .map(|(c, _)| c.clone())
                .ok_or_else(|| SourceError::NotFound(key.to_owned()))?
        };
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(content.len());
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
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("*.csv", "a.csv"));
        assert!(!glob_match("*.csv", "d/a.csv"));
        assert!(glob_match("**/*.csv", "d/e/a.csv"));
        assert!(glob_match("**/*.csv", "a.csv"));
        assert!(!glob_match("*.csv", "a.csv.gz"));
    }
}
