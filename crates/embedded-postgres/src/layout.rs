//! Where a cluster's files live. Normally in `<data dir>/postgres`; when the
//! user PostgreSQL runs as cannot reach that (root running sluice from a
//! private home directory), in a directory of its own under a fallback
//! root, remembered in `<data dir>/postgres.location` so that every later
//! start finds it again.

use std::hash::{Hash, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::identity::RunAs;

/// The file in the data directory naming a cluster kept elsewhere.
pub const POINTER_FILE: &str = "postgres.location";

/// The directory holding one cluster's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The directory (owned by the user PostgreSQL runs as).
    pub base: PathBuf,
    /// True when it is the fallback place, not under the data directory.
    pub elsewhere: bool,
}

impl Layout {
    /// PostgreSQL's data directory (`PGDATA`).
    pub fn pgdata(&self) -> PathBuf {
        self.base.join("data")
    }

    /// Where `initdb` writes before the result is moved to [`Layout::pgdata`].
    pub fn pgdata_in_progress(&self) -> PathBuf {
        self.base.join("data.init")
    }

    /// The superuser's password (with password authentication).
    pub fn password_file(&self) -> PathBuf {
        self.base.join("password")
    }

    /// PostgreSQL's log.
    pub fn log_file(&self) -> PathBuf {
        self.base.join("postgres.log")
    }

    /// The layout of an existing cluster of `data_dir`, creating nothing.
    pub fn existing(data_dir: &Path) -> Option<Self> {
        if let Some(base) = read_pointer(data_dir) {
            return Some(Self {
                base,
                elsewhere: true,
            });
        }
        let base = data_dir.join("postgres");
        base.is_dir().then_some(Self {
            base,
            elsewhere: false,
        })
    }

    /// The layout of `data_dir`'s cluster, creating its directory for
    /// `run_as` where that user can reach it: under `data_dir`, else under
    /// `fallback_root`.
    pub fn prepare(data_dir: &Path, fallback_root: &Path, run_as: &RunAs) -> Result<Self, Error> {
        if let Some(base) = read_pointer(data_dir) {
            make_private_dir(&base, run_as)?;
            if !run_as.can_use(&base) {
                return Err(unreachable(run_as, base, None));
            }
            return Ok(Self {
                base,
                elsewhere: true,
            });
        }
        let base = data_dir.join("postgres");
        make_private_dir(&base, run_as)?;
        if run_as.can_use(&base) {
            return Ok(Self {
                base,
                elsewhere: false,
            });
        }
        // Nothing was written there yet: leave no empty directory behind.
        let _ = std::fs::remove_dir(&base);
        let fallback = fallback_dir(data_dir, fallback_root);
        create_public_dir(fallback_root)?;
        make_private_dir(&fallback, run_as)?;
        if !run_as.can_use(&fallback) {
            return Err(unreachable(run_as, base, Some(fallback)));
        }
        std::fs::write(
            data_dir.join(POINTER_FILE),
            format!("{}\n", fallback.display()),
        )
        .map_err(|e| Error::failed("remembering where the cluster is", e))?;
        Ok(Self {
            base: fallback,
            elsewhere: true,
        })
    }
}

fn unreachable(run_as: &RunAs, dir: PathBuf, fallback: Option<PathBuf>) -> Error {
    Error::Unreachable {
        user: run_as.name().to_owned(),
        dir,
        fallback,
    }
}

fn read_pointer(data_dir: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(data_dir.join(POINTER_FILE)).ok()?;
    let path = text.trim();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// `<fallback_root>/<data dir's name>-<hash of its absolute path>`: one
/// directory per data directory, recognisable by name.
fn fallback_dir(data_dir: &Path, fallback_root: &Path) -> PathBuf {
    let absolute = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    absolute.hash(&mut hasher);
    let name: String = absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(40)
        .collect();
    let name = if name.is_empty() { "data".into() } else { name };
    fallback_root.join(format!("{name}-{:016x}", hasher.finish()))
}

fn create_public_dir(dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| {
            Error::failed(
                "creating the cluster's directory",
                format!("{}: {e}", dir.display()),
            )
        })
}

/// Creates `dir` (mode 700, owned by `run_as`) unless it exists.
fn make_private_dir(dir: &Path, run_as: &RunAs) -> Result<(), Error> {
    let failed = |e: std::io::Error| {
        Error::failed(
            "creating the cluster's directory",
            format!("{}: {e}", dir.display()),
        )
    };
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).map_err(failed)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    }
    run_as.own(dir).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_directories_differ_per_data_directory_and_keep_its_name() {
        let root = Path::new("/var/lib/sluice");
        let a = fallback_dir(Path::new("/home/a/project/sluice-data"), root);
        let b = fallback_dir(Path::new("/home/b/project/sluice-data"), root);
        assert_ne!(a, b);
        assert!(a.starts_with(root));
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("sluice-data-"), "{name}");
        assert_eq!(
            a,
            fallback_dir(Path::new("/home/a/project/sluice-data"), root)
        );
    }

    #[test]
    fn a_reachable_data_directory_keeps_the_cluster_inside() {
        let dir = tempfile::tempdir().unwrap();
        let layout =
            Layout::prepare(dir.path(), &dir.path().join("fb"), &RunAs::CurrentUser).unwrap();
        assert_eq!(layout.base, dir.path().join("postgres"));
        assert!(!layout.elsewhere);
        assert_eq!(Layout::existing(dir.path()), Some(layout));
        assert!(!dir.path().join(POINTER_FILE).exists());
    }
}
