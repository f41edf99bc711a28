//! Finding PostgreSQL's server programs the way the system's packages lay
//! them out, and naming the package to install when there are none.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// A directory holding `initdb`, `postgres` and `pg_ctl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// The directory.
    pub dir: PathBuf,
}

impl Binaries {
    /// The path of `program` in this directory.
    pub fn program(&self, program: &str) -> PathBuf {
        self.dir.join(program)
    }

    /// The server's version (`15.18`), from `postgres --version`.
    pub fn version(&self) -> Option<String> {
        let out = Command::new(self.program("postgres"))
            .arg("--version")
            .output()
            .ok()?;
        // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace().nth(2).map(str::to_owned)
    }
}

/// True when `dir` holds the three server programs.
fn is_server_dir(dir: &Path) -> bool {
    ["initdb", "postgres", "pg_ctl"]
        .iter()
        .all(|p| dir.join(p).is_file())
}

/// Subdirectories `<root>/<prefix><N><suffix>` for numeric `N`, newest first.
fn versioned(root: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut found: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name.strip_prefix(prefix)?.parse::<u32>().ok()?;
            Some((version, e.path().join(suffix)))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// `pg_config --bindir`, when `pg_config` is on `PATH`.
fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
}

/// Where the server programs may be, in order of preference: what
/// `pg_config --bindir` says, Debian's and Ubuntu's versioned directories
/// (newest first), the PostgreSQL project's RPM directories, Homebrew's,
/// then every directory on `PATH`.
pub fn candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    dirs.extend(pg_config_bindir());
    dirs.extend(versioned(Path::new("/usr/lib/postgresql"), "", "bin"));
    dirs.extend(versioned(Path::new("/usr"), "pgsql-", "bin"));
    for brew in ["/opt/homebrew/opt", "/usr/local/opt"] {
        dirs.extend(versioned(Path::new(brew), "postgresql@", "bin"));
        dirs.push(Path::new(brew).join("postgresql/bin"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// The first candidate that holds the server programs.
pub fn find_in(candidates: impl IntoIterator<Item = PathBuf>) -> Option<Binaries> {
    candidates
        .into_iter()
        .find(|d| is_server_dir(d))
        .map(|dir| Binaries { dir })
}

/// The server programs of this machine: in `explicit` when given, else the
/// first of the candidate directories. [`Error::NoBinaries`] names the package to install.
pub fn find(explicit: Option<&Path>) -> Result<Binaries, Error> {
    match explicit {
        Some(dir) => find_in([dir.to_path_buf()]).ok_or_else(|| Error::NoBinaries {
            looked_at: dir.display().to_string(),
            install: install_hint(),
        }),
        None => find_in(candidates()).ok_or_else(|| Error::NoBinaries {
            looked_at: "pg_config --bindir, /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin and PATH"
                .into(),
            install: install_hint(),
        }),
    }
}

/// The install command for this system, read from `/etc/os-release`.
pub fn install_hint() -> String {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    hint_for(&release, cfg!(target_os = "macos"))
}

/// The install command for an `/etc/os-release` text.
fn hint_for(os_release: &str, macos: bool) -> String {
    if macos {
        return "brew install postgresql".into();
    }
    let field = |key: &str| {
        os_release
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_ascii_lowercase())
            .unwrap_or_default()
    };
    let ids = format!("{} {}", field("ID"), field("ID_LIKE"));
    let has = |id: &str| ids.split_whitespace().any(|w| w == id);
    let command = if has("debian") || has("ubuntu") {
        "sudo apt-get install -y postgresql"
    } else if has("fedora") || has("rhel") || has("centos") {
        "sudo dnf install -y postgresql-server"
    } else if has("alpine") {
        "apk add postgresql"
    } else if has("arch") {
        "sudo pacman -S postgresql"
    } else if has("suse") || has("opensuse") {
        "sudo zypper install postgresql-server"
    } else {
        "your system's PostgreSQL server package"
    };
    command.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_directory_with_all_three_programs_wins() {
        let root = tempfile::tempdir().unwrap();
        let partial = root.path().join("partial");
        let full = root.path().join("full");
        std::fs::create_dir_all(&partial).unwrap();
        std::fs::create_dir_all(&full).unwrap();
        std::fs::write(partial.join("initdb"), "").unwrap();
        for p in ["initdb", "postgres", "pg_ctl"] {
            std::fs::write(full.join(p), "").unwrap();
        }
        let missing = root.path().join("missing");
        assert_eq!(
            find_in([missing.clone(), partial.clone(), full.clone()]),
            Some(Binaries { dir: full })
        );
        assert_eq!(find_in([missing, partial]), None);
    }

    #[test]
    fn versioned_directories_newest_first() {
        let root = tempfile::tempdir().unwrap();
        for v in ["9", "15", "13", "notes"] {
            std::fs::create_dir_all(root.path().join(v).join("bin")).unwrap();
        }
        let found = versioned(root.path(), "", "bin");
        let names: Vec<_> = found
            .iter()
            .map(|p| p.parent().unwrap().file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["15", "13", "9"]);
    }

    #[test]
    fn the_missing_package_is_named_for_the_system() {
        assert_eq!(
            hint_for("ID=debian\nVERSION_ID=\"12\"\n", false),
            "sudo apt-get install -y postgresql"
        );
        assert_eq!(
            hint_for("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n", false),
            "sudo apt-get install -y postgresql"
        );
        assert_eq!(
            hint_for("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n", false),
            "sudo dnf install -y postgresql-server"
        );
        assert_eq!(hint_for("ID=alpine\n", false), "apk add postgresql");
        assert_eq!(hint_for("", true), "brew install postgresql");
        assert_eq!(
            hint_for("ID=plan9\n", false),
            "your system's PostgreSQL server package"
        );
    }

    #[test]
    fn no_binaries_is_one_line_naming_the_package_and_database_url() {
        let dir = tempfile::tempdir().unwrap();
        let e = find(Some(dir.path())).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::NoBinaries { .. }));
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("DATABASE_URL"), "{text}");
        assert!(text.contains(&install_hint()), "{text}");
    }
}
