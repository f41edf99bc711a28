//! What starting, finding or stopping a cluster can fail with: each variant
//! calls for a different fix, and each displays as one line saying it.

use std::fmt;
use std::path::PathBuf;

/// Why a cluster could not be started, found or stopped.
#[derive(Debug)]
pub enum Error {
    /// No directory with PostgreSQL's server programs (`initdb`, `postgres`,
    /// `pg_ctl`) was found.
    NoBinaries {
        /// Where we looked, for the message.
        looked_at: String,
        /// The command that installs them on this system.
        install: String,
    },
    /// Another process holds the data directory's lock: it supervises the
    /// cluster there.
    InUse {
        /// The data directory.
        data_dir: PathBuf,
        /// That process, when it wrote its id into the lock file.
        pid: Option<u32>,
    },
    /// Running as root, PostgreSQL must run as another user, and the one it
    /// would run as does not exist.
    NoServiceUser {
        /// The user looked for.
        user: String,
    },
    /// The user PostgreSQL runs as can reach neither the data directory nor
    /// the fallback place for its files.
    Unreachable {
        /// That user.
        user: String,
        /// The place under the data directory.
        dir: PathBuf,
        /// The fallback place, when one was tried.
        fallback: Option<PathBuf>,
    },
    /// A step failed; `detail` says how (with the end of PostgreSQL's log
    /// when the server itself failed).
    Failed {
        /// The step (`initdb`, `starting PostgreSQL`, …).
        step: &'static str,
        /// What went wrong.
        detail: String,
    },
}

impl Error {
    /// A failed step.
    pub(crate) fn failed(step: &'static str, detail: impl fmt::Display) -> Self {
        Self::Failed {
            step,
            detail: detail.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoBinaries { looked_at, install } => write!(
                f,
                "no PostgreSQL server programs found (looked for initdb, postgres and pg_ctl in {looked_at}): \
                 install them ({install}), or set DATABASE_URL to a PostgreSQL database you run"
            ),
            Self::InUse { data_dir, pid } => {
                let by = pid.map_or_else(String::new, |p| format!(" (process {p})"));
                write!(
                    f,
                    "{} is in use by another sluice process{by}: stop it first, or give this one another SLUICE_DATA_DIR",
                    data_dir.display()
                )
            }
            Self::NoServiceUser { user } => write!(
                f,
                "running as root, PostgreSQL must run as another user, and there is no user `{user}`: \
                 create it (useradd --system --create-home {user}) or run sluice as a normal user"
            ),
            Self::Unreachable {
                user,
                dir,
                fallback,
            } => {
                let neither = fallback.as_ref().map_or_else(
                    || dir.display().to_string(),
                    |fb| format!("neither {} nor {}", dir.display(), fb.display()),
                );
                write!(
                    f,
                    "PostgreSQL runs as user `{user}` (sluice runs as root) and cannot reach {neither}: \
                     set SLUICE_DATA_DIR to a directory whose parents that user may enter (chmod o+x on each), or run sluice as a normal user"
                )
            }
            Self::Failed { step, detail } => write!(f, "{step}: {detail}"),
        }
    }
}

impl std::error::Error for Error {}
