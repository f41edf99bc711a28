//! Which listed objects are a pipeline's files, and in which order: the
//! selection rules of [`ObjectSource::list`](super::ObjectSource::list), written once for every
//! implementation (the object-store adapter and the in-memory fake), so they
//! cannot disagree on what a prefix or a glob means.

use std::collections::HashSet;

use globset::{GlobBuilder, GlobMatcher};

use super::{ObjectInfo, SourceError};

/// Prefix, glob and exclusions of one listing. An implementation of
/// [`ObjectSource::list`](super::ObjectSource::list) lists every object under the prefix (or more) and
/// hands them to [`FileFilter::select`].
#[derive(Debug)]
pub struct FileFilter {
    /// The prefix without leading or trailing `/` (empty: the whole store).
    prefix: String,
    matcher: Option<GlobMatcher>,
    exclude: HashSet<String>,
}

impl FileFilter {
    /// `prefix` is a whole number of key segments (`in` and `in/` both mean
    /// the keys under `in/`, never `inbox/…` or `in.csv`). `pattern` is
    /// matched on the key relative to `prefix`, with globset's syntax; `*`
    /// stays within one path segment and `**` crosses them, so `*.csv` finds
    /// the files directly under the prefix and `**/*.csv` those at any depth.
    /// `InvalidConfig` when the pattern is not a valid glob.
    pub fn new(
        prefix: &str,
        pattern: Option<&str>,
        exclude: &[String],
    ) -> Result<Self, SourceError> {
        let matcher = match pattern.map(str::trim).filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => Some(
                GlobBuilder::new(p)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| {
                        SourceError::InvalidConfig(format!(
                            "the pattern `{p}` is not a valid glob: {}",
                            e.kind()
                        ))
                    })?
                    .compile_matcher(),
            ),
        };
        Ok(Self {
            prefix: prefix.trim_matches('/').to_owned(),
            matcher,
            exclude: exclude
                .iter()
                .map(|k| k.trim_start_matches('/').to_owned())
                .collect(),
        })
    }

    /// The key relative to the prefix, if it lies under it.
    fn relative<'a>(&self, key: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            return Some(key);
        }
        key.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
    }

    /// The pipeline's files among `listed`, in lexical (byte) key order.
    /// Directory markers — keys that other keys sit under, as S3 consoles
    /// create for "folders" — are never files.
    pub fn select(&self, mut listed: Vec<ObjectInfo>) -> Vec<ObjectInfo> {
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        listed.dedup_by(|a, b| a.key == b.key);
        let is_directory = |key: &str| {
            let child = format!("{key}/");
            // Keys under `key/` sort right at `key/`, but not necessarily just
            // after `key` (`key-1` sorts between), hence the search.
            let at = listed.partition_point(|o| o.key.as_str() < child.as_str());
            listed.get(at).is_some_and(|o| o.key.starts_with(&child))
        };
        let keep: Vec<bool> = listed
            .iter()
            .map(|o| {
                !o.key.ends_with('/')
                    && !self.exclude.contains(&o.key)
                    && !is_directory(&o.key)
                    && self.relative(&o.key).is_some_and(|rel| {
                        !rel.is_empty() && self.matcher.as_ref().is_none_or(|m| m.is_match(rel))
                    })
            })
            .collect();
        listed
            .into_iter()
            .zip(keep)
            .filter_map(|(o, k)| k.then_some(o))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infos(keys: &[&str]) -> Vec<ObjectInfo> {
        keys.iter()
            .map(|k| ObjectInfo {
                key: (*k).to_owned(),
                size: 1,
                etag: None,
                last_modified: None,
            })
            .collect()
    }

    fn keys(v: Vec<ObjectInfo>) -> Vec<String> {
        v.into_iter().map(|o| o.key).collect()
    }

    #[test]
    fn glob_is_relative_to_prefix_and_star_stays_in_segment() {
        let listed = infos(&[
            "in/b.csv",
            "in/a.csv",
            "in/sub/c.csv",
            "in/sub/d.csv.gz",
            "in/_READY.dat",
            "in/x.json",
        ]);
        let f = FileFilter::new("in/", Some("*.csv"), &["in/_READY.dat".into()]).expect("f");
        assert_eq!(keys(f.select(listed.clone())), ["in/a.csv", "in/b.csv"]);
        let f = FileFilter::new("in", Some("**/*.csv.gz"), &[]).expect("f");
        assert_eq!(keys(f.select(listed.clone())), ["in/sub/d.csv.gz"]);
        let f = FileFilter::new("in", None, &["in/_READY.dat".into()]).expect("f");
        assert_eq!(
            keys(f.select(listed)),
            [
                "in/a.csv",
                "in/b.csv",
                "in/sub/c.csv",
                "in/sub/d.csv.gz",
                "in/x.json"
            ]
        );
    }

    #[test]
    fn directory_markers_are_dropped() {
        let f = FileFilter::new("", None, &[]).expect("f");
        let listed = infos(&["d", "d-1", "d/x", "e/"]);
        assert_eq!(keys(f.select(listed)), ["d-1", "d/x"]);
    }

    #[test]
    fn bad_glob_is_invalid_config() {
        assert!(matches!(
            FileFilter::new("", Some("a[.csv"), &[]),
            Err(SourceError::InvalidConfig(_))
        ));
    }
}
