//! Which listed objects are a pipeline's files, and in which order: the
//! selection rules of [`ObjectSource::list`](super::ObjectSource::list), written once for every
//! implementation (the object-store adapter and the in-memory fake), so they
//! cannot disagree on what a prefix or a glob means.

use std::collections::{HashSet, VecDeque};

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

    /// True if `key`, a listed object's, is one of the pipeline's files as
    /// far as the key alone tells (the directory rule needs the other keys).
    fn keeps(&self, key: &str) -> bool {
        !key.ends_with('/')
            && !self.exclude.contains(key)
            && self.relative(key).is_some_and(|rel| {
                !rel.is_empty() && self.matcher.as_ref().is_none_or(|m| m.is_match(rel))
            })
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
            .map(|o| self.keeps(&o.key) && !is_directory(&o.key))
            .collect();
        listed
            .into_iter()
            .zip(keep)
            .filter_map(|(o, k)| k.then_some(o))
            .collect()
    }

    /// [`FileFilter::select`] for a listing that arrives in key order, one
    /// object at a time (an object store's pages): see [`SortedSelection`].
    pub fn select_sorted(self) -> SortedSelection {
        SortedSelection {
            filter: self,
            pending: VecDeque::new(),
            last: None,
        }
    }
}

/// The selection of [`FileFilter::select`] over a listing that arrives in
/// lexical key order. An object is handed on once no later key can sit under
/// it (a key at or past `key0` has arrived, since every `key/…` sorts
/// before `key0`), so what this holds is the few keys between a file and its
/// would-be children (`day1-a` between `day1` and `day1/`), not the listing.
#[derive(Debug)]
pub struct SortedSelection {
    filter: FileFilter,
    /// Candidates not yet handed on, in key order, and whether a key under
    /// them was seen (then they are directories).
    pending: VecDeque<(ObjectInfo, bool)>,
    last: Option<String>,
}

impl SortedSelection {
    /// Takes the next listed object; answers the files now decided, in key
    /// order. A repeated key is ignored; a key before the previous one is an
    /// `Other` error (the store broke its listing order).
    pub fn push(&mut self, object: ObjectInfo) -> Result<Vec<ObjectInfo>, SourceError> {
        if let Some(last) = &self.last {
            match object.key.as_str().cmp(last.as_str()) {
                std::cmp::Ordering::Equal => return Ok(Vec::new()),
                std::cmp::Ordering::Less => {
                    return Err(SourceError::Other(format!(
                        "the store listed `{}` after `{last}`, out of key order",
                        object.key
                    )));
                }
                std::cmp::Ordering::Greater => {}
            }
        }
        let key = object.key.as_str();
        for (candidate, directory) in &mut self.pending {
            if !*directory && is_under(key, &candidate.key) {
                *directory = true;
            }
        }
        let mut decided = Vec::new();
        while let Some((front, directory)) = self.pending.front() {
            if !*directory && !is_past_children(key, &front.key) {
                break;
            }
            if let Some((file, false)) = self.pending.pop_front() {
                decided.push(file);
            }
        }
        self.last = Some(object.key.clone());
        if self.filter.keeps(&object.key) {
            self.pending.push_back((object, false));
        }
        Ok(decided)
    }

    /// The listing has ended: the files still held.
    pub fn finish(self) -> Vec<ObjectInfo> {
        self.pending
            .into_iter()
            .filter_map(|(file, directory)| (!directory).then_some(file))
            .collect()
    }
}

/// True if `key` sits under `parent` (starts with `parent/`).
fn is_under(key: &str, parent: &str) -> bool {
    key.strip_prefix(parent)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// True if `key`, which sorts after `earlier`, is at or past `earlier0`, so no
/// key arriving after it can sit under `earlier`.
fn is_past_children(key: &str, earlier: &str) -> bool {
    match key.strip_prefix(earlier) {
        Some(rest) => rest.as_bytes().first().is_some_and(|b| *b >= b'0'),
        None => true,
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

    /// [`SortedSelection`] over `listed` (sorted first, as a store lists).
    fn select_sorted(f: FileFilter, mut listed: Vec<ObjectInfo>) -> Vec<ObjectInfo> {
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        let mut selection = f.select_sorted();
        let mut out = Vec::new();
        for o in listed {
            out.extend(selection.push(o).expect("in order"));
        }
        out.extend(selection.finish());
        out
    }

    #[test]
    fn the_sorted_selection_agrees_with_the_whole_one() {
        let listed = infos(&[
            "d",
            "d-1",
            "d.csv",
            "d/x",
            "d/x/y",
            "d0",
            "e/",
            "e/f.csv",
            "in/_READY.dat",
            "in/a.csv",
            "in/a.csv/b.csv",
            "in/a.csv-2",
            "in/sub/c.csv",
            "in",
            "inbox/z.csv",
            "z",
        ]);
        for (prefix, pattern) in [
            ("", None),
            ("in", Some("*.csv")),
            ("in/", Some("**/*.csv")),
            ("", Some("**")),
            ("d", None),
        ] {
            let exclude = ["in/_READY.dat".to_owned()];
            let whole = FileFilter::new(prefix, pattern, &exclude).expect("f");
            let sorted = FileFilter::new(prefix, pattern, &exclude).expect("f");
            assert_eq!(
                keys(select_sorted(sorted, listed.clone())),
                keys(whole.select(listed.clone())),
                "prefix {prefix:?}, pattern {pattern:?}"
            );
        }
    }

    #[test]
    fn the_sorted_selection_holds_only_undecided_keys() {
        let mut selection = FileFilter::new("", None, &[]).expect("f").select_sorted();
        let mut handed_on = 0;
        for i in 0..10_000 {
            handed_on += selection
                .push(infos(&[&format!("k/{i:05}.csv")]).remove(0))
                .expect("in order")
                .len();
            assert!(selection.pending.len() <= 1, "{}", selection.pending.len());
        }
        assert_eq!(handed_on + selection.finish().len(), 10_000);
    }

    #[test]
    fn the_sorted_selection_refuses_a_listing_out_of_order() {
        let mut selection = FileFilter::new("", None, &[]).expect("f").select_sorted();
        selection.push(infos(&["b"]).remove(0)).expect("first");
        assert!(
            selection
                .push(infos(&["b"]).remove(0))
                .expect("repeat")
                .is_empty()
        );
        let Err(SourceError::Other(message)) = selection.push(infos(&["a"]).remove(0)) else {
            panic!("out of order accepted");
        };
        assert!(message.contains("`a` after `b`"), "{message}");
    }

    #[test]
    fn bad_glob_is_invalid_config() {
        assert!(matches!(
            FileFilter::new("", Some("a[.csv"), &[]),
            Err(SourceError::InvalidConfig(_))
        ));
    }
}
