//! The jail of `local` connectors.
//!
//! Three fences, because `LocalFileSystem` itself follows symbolic links
//! wherever they lead:
//! 1. the connector's root must lie inside one of the server's allowed roots
//!    (`SLUICE_LOCAL_ROOTS`), checked on the canonical path at open time and
//!    again before every operation, since the root may be swapped for a link
//!    while the connector lives;
//! 2. a key or prefix may not be absolute nor contain a `..` segment (checked
//!    on the text, before any filesystem call);
//! 3. the canonical form of every path we touch, and of every listed file, must
//!    stay inside the canonical root, which catches links that lead out.
//!
//! A check and the following open are not atomic: someone with write access
//! to the root could swap a file for a link in between. Sluice trusts the
//! server's own filesystem that far; the jail is against connector settings
//! and links placed in the data directory, not against a hostile local user.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use sluice_application::ports::SourceError;

/// A `local` connector's root and the roots the server allows.
#[derive(Debug, Clone)]
pub(crate) struct LocalJail {
    /// The root as configured, made absolute (for messages and re-checks).
    root: PathBuf,
    /// The allowed roots, canonical where they exist.
    allowed: Arc<[PathBuf]>,
}

/// A local store opened on the canonical root, for one operation.
#[derive(Debug, Clone)]
pub(crate) struct OpenedRoot {
    /// The store, rooted at `root`.
    pub store: Arc<LocalFileSystem>,
    /// The canonical root: every touched path must stay under it.
    pub root: PathBuf,
}

impl LocalJail {
    /// Checks the configured root against the allowed roots. A root that
    /// does not exist yet is accepted when its text lies inside an allowed
    /// root; operations report `NotFound` until it is created.
    pub(crate) fn new(root: &str, allowed: Arc<[PathBuf]>) -> Result<Self, SourceError> {
        let configured = Path::new(root);
        if configured
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(SourceError::InvalidConfig(format!(
                "the root `{root}` must not contain `..`"
            )));
        }
        let absolute = absolute(configured)?;
        let effective = std::fs::canonicalize(&absolute).unwrap_or_else(|_| absolute.clone());
        let jail = Self {
            root: absolute,
            allowed,
        };
        jail.ensure_allowed(&effective)?;
        Ok(jail)
    }

    /// "local directory `/srv/data`".
    pub(crate) fn location(&self) -> String {
        format!("local directory `{}`", self.root.display())
    }

    /// The root's path as configured (absolute).
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Canonicalises the root, checks it again and opens a store on it.
    pub(crate) async fn open(&self) -> Result<OpenedRoot, SourceError> {
        let jail = self.clone();
        blocking(move || {
            let canonical = match std::fs::canonicalize(&jail.root) {
                Ok(p) => p,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(SourceError::NotFound(format!(
                        "{} does not exist",
                        jail.location()
                    )));
                }
                Err(e) => {
                    return Err(SourceError::Other(format!(
                        "cannot open {}: {e}",
                        jail.location()
                    )));
                }
            };
            if !canonical.is_dir() {
                return Err(SourceError::InvalidConfig(format!(
                    "{} is not a directory",
                    jail.location()
                )));
            }
            jail.ensure_allowed(&canonical)?;
            let store = LocalFileSystem::new_with_prefix(&canonical)
                .map_err(|e| SourceError::Other(format!("cannot open {}: {e}", jail.location())))?;
            Ok(OpenedRoot {
                store: Arc::new(store),
                root: canonical,
            })
        })
        .await
    }

    fn ensure_allowed(&self, effective: &Path) -> Result<(), SourceError> {
        if self.allowed.iter().any(|a| effective.starts_with(a)) {
            Ok(())
        } else {
            Err(SourceError::InvalidConfig(format!(
                "the root `{}` is outside the directories this server allows for local \
                 connectors (SLUICE_LOCAL_ROOTS)",
                self.root.display()
            )))
        }
    }
}

impl OpenedRoot {
    /// Checks that `keys` (already lexically valid) resolve inside the root.
    /// For a path that does not exist, its deepest existing ancestor is
    /// checked, so a missing file behind a link that leads out is refused
    /// too instead of revealing that it is absent.
    pub(crate) async fn ensure_inside(&self, keys: Vec<ObjectPath>) -> Result<(), SourceError> {
        let opened = self.clone();
        blocking(move || {
            for key in &keys {
                if key.as_ref().is_empty() {
                    continue;
                }
                let path = opened.store.path_to_filesystem(key).map_err(|_| {
                    SourceError::InvalidConfig(format!("`{key}` is not a valid file name"))
                })?;
                let resolved = canonical_ancestor(&path).map_err(|e| {
                    SourceError::Other(format!("cannot resolve `{key}` in the root: {e}"))
                })?;
                if !resolved.starts_with(&opened.root) {
                    return Err(SourceError::InvalidConfig(format!(
                        "`{key}` is a symbolic link that leads outside the connector's root"
                    )));
                }
            }
            Ok(())
        })
        .await
    }
}

/// Lexical checks of a key or prefix of a `local` connector.
pub(crate) fn check_local_key(key: &str) -> Result<(), SourceError> {
    if key.starts_with('/') || Path::new(key).is_absolute() {
        return Err(SourceError::InvalidConfig(format!(
            "`{key}` is an absolute path; keys are relative to the connector's root"
        )));
    }
    Ok(())
}

/// The canonical form of `path`, or of its deepest ancestor that exists.
fn canonical_ancestor(path: &Path) -> io::Result<PathBuf> {
    let mut current = path;
    loop {
        match std::fs::canonicalize(current) {
            Ok(p) => return Ok(p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match current.parent() {
                Some(parent) => current = parent,
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

/// `path` made absolute against the working directory, without touching
/// the filesystem otherwise.
fn absolute(path: &Path) -> Result<PathBuf, SourceError> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| SourceError::Other(format!("cannot read the working directory: {e}")))?
            .join(path)
    };
    // Drop `.` segments so "./data" and "data" compare equal.
    Ok(joined
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect())
}

/// Makes the allowed roots comparable with canonical connector roots.
pub(crate) fn normalize_allowed(roots: impl IntoIterator<Item = PathBuf>) -> Vec<PathBuf> {
    roots
        .into_iter()
        .filter(|r| !r.as_os_str().is_empty())
        .filter_map(|r| absolute(&r).ok())
        .map(|r| std::fs::canonicalize(&r).unwrap_or(r))
        .collect()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SourceError::Other(format!("a filesystem task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_keys_are_refused() {
        assert!(check_local_key("a/b.csv").is_ok());
        assert!(matches!(
            check_local_key("/etc/passwd"),
            Err(SourceError::InvalidConfig(_))
        ));
    }

    #[test]
    fn root_outside_allowed_is_refused_even_if_missing() {
        let allowed: Arc<[PathBuf]> =
            normalize_allowed([PathBuf::from("/nonexistent-allowed")]).into();
        assert!(LocalJail::new("/nonexistent-allowed/sales", allowed.clone()).is_ok());
        assert!(matches!(
            LocalJail::new("/nonexistent-other", allowed.clone()),
            Err(SourceError::InvalidConfig(_))
        ));
        assert!(matches!(
            LocalJail::new("/nonexistent-allowed/../etc", allowed),
            Err(SourceError::InvalidConfig(_))
        ));
    }

    #[test]
    fn prefix_match_is_by_component() {
        let allowed: Arc<[PathBuf]> =
            normalize_allowed([PathBuf::from("/nonexistent-data")]).into();
        assert!(LocalJail::new("/nonexistent-data2", allowed).is_err());
    }
}
