//! The private PostgreSQL clusters of `cargo xtask test`, `bench` and
//! `fuzz-api`, under `target/xtask/<name>`: the same supervisor as `sluice
//! serve`'s embedded database (sluice-embedded-postgres), set up for
//! throw-away data (no password, no fsync, more connections).

use std::process::Command;

use sluice_embedded_postgres::{Auth, Binaries, Cluster, Error, Options, find_binaries};

use super::{Res, state_dir};

/// A test cluster: started here, or already supervised by another xtask of
/// this checkout (then shared and left running).
#[derive(Debug)]
pub struct Postgres {
    cluster: Option<Cluster>,
    binaries: Binaries,
    /// Its port on 127.0.0.1.
    pub port: u16,
    pid: u32,
}

fn options(name: &str) -> Options {
    let mut o = Options::new(state_dir().join(name));
    o.superuser = "postgres".into();
    o.database = "postgres".into();
    o.auth = Auth::Trust;
    o.durable = false;
    o.settings = vec![
        ("max_connections".into(), "400".into()),
        ("shared_buffers".into(), "256MB".into()),
    ];
    o
}

impl Postgres {
    /// Starts cluster `name`, creating it on first use; when another xtask
    /// of this checkout already runs it, uses that one.
    pub fn start(name: &str) -> Res<Self> {
        let options = options(name);
        match Cluster::start(options.clone()) {
            Ok(cluster) => Ok(Self {
                binaries: cluster.binaries().clone(),
                port: cluster.port(),
                pid: cluster.pid(),
                cluster: Some(cluster),
            }),
            Err(Error::InUse { .. }) => {
                let running = Cluster::running(&options).ok_or_else(|| {
                    format!("the PostgreSQL of target/xtask/{name} is in use but not ready")
                })?;
                eprintln!(
                    "xtask: sharing the PostgreSQL another xtask runs (process {})",
                    running.pid
                );
                Ok(Self {
                    binaries: find_binaries(None).map_err(|e| e.to_string())?,
                    port: running.port,
                    pid: running.pid,
                    cluster: None,
                })
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// The superuser URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops the cluster if this process started it.
    pub fn stop(&mut self) {
        if let Some(mut cluster) = self.cluster.take() {
            if let Err(e) = cluster.stop() {
                eprintln!("xtask: {e}");
            }
        }
    }

    /// A `psql` client on database `db`, over loopback TCP as `postgres`, that
    /// stops at the first error (for the benchmark baselines).
    pub fn psql(&self, db: &str) -> Command {
        let mut c = Command::new(self.binaries.program("psql"));
        c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", db]);
        c
    }

    /// The pid of the postmaster (its backends are its children), to account
    /// for the CPU time PostgreSQL spends during a benchmark.
    pub fn postmaster_pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    /// Creates database `name` unless it exists.
    pub fn ensure_database(&self, name: &str) -> Res<()> {
        let query = |sql: &str| {
            let mut c = self.psql("postgres");
            c.args(["-tAc", sql])
                .output()
                .map_err(|e| format!("cannot run psql: {e}"))
        };
        let found = query(&format!(
            "select 1 from pg_database where datname = '{name}'"
        ))?;
        if String::from_utf8_lossy(&found.stdout).trim() == "1" {
            return Ok(());
        }
        let created = query(&format!("create database \"{name}\""))?;
        if created.status.success() {
            Ok(())
        } else {
            Err(format!(
                "cannot create database {name}: {}",
                String::from_utf8_lossy(&created.stderr).trim()
            ))
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
