//! # sluice-embedded-postgres
//!
//! A private PostgreSQL cluster under a data directory, run from the server
//! programs installed on the machine and supervised by the process that
//! started it: the zero-setup database of `sluice serve` (no `DATABASE_URL`)
//! and the clusters `cargo xtask` runs its tests and demos on.
//!
//! - The programs are found the way packages lay them out: `pg_config
//!   --bindir`, Debian's `/usr/lib/postgresql/<N>/bin` (newest first),
//!   `/usr/pgsql-<N>/bin`, Homebrew, `PATH`. Without them the error names
//!   the package to install.
//! - The cluster listens on a free loopback port only (no socket file), with
//!   a random superuser password kept beside it (mode 600), and is created
//!   in one step that either completes or leaves nothing (`initdb` into a
//!   scratch directory, then a rename).
//! - One supervisor per data directory: a file lock, released however the
//!   process ends; a second start says the directory is in use and by which
//!   process. A server left running by a supervisor that was killed is
//!   stopped and started again by the next one.
//! - Run as root, PostgreSQL runs as the `postgres` user, which must reach
//!   its files: when it cannot enter the data directory (a private home
//!   directory), they go to `/var/lib/sluice/<name>-<hash>` instead,
//!   remembered in the data directory so that later starts find them.
//! - [`Cluster::stop`] (or drop) is a fast shutdown that keeps everything
//!   committed; the server runs in a process group of its own, so Ctrl-C in
//!   a terminal reaches only the supervisor, which stops it last.
//!
//! ```no_run
//! use sluice_embedded_postgres::{Cluster, Options};
//!
//! let mut cluster = Cluster::start(Options::new("./sluice-data"))?;
//! println!("PostgreSQL on 127.0.0.1:{}", cluster.port());
//! let url = cluster.url(); // postgres://sluice:…@127.0.0.1:…/sluice
//! # let _ = url;
//! cluster.stop()?;
//! # Ok::<(), sluice_embedded_postgres::Error>(())
//! ```

mod binaries;
mod cluster;
mod error;
mod identity;
mod layout;
mod lock;

pub use binaries::{Binaries, find as find_binaries, install_hint};
pub use cluster::{Auth, Cluster, ExitWatch, Options, Running};
pub use error::Error;
pub use identity::is_root;
