//! A private PostgreSQL cluster under `target/xtask/pg`, on loopback only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Res, free_port, is_root, run_quiet, state_dir, wait_for_port};

/// Debian's versioned server directories, newest first.
fn find_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version: u32 = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    dirs.sort();
    if let Some((_, bin)) = dirs.pop() {
        return Some(bin);
    }
    // Other distributions put them on PATH.
    let which = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&which.stdout).trim());
    path.parent()
        .filter(|_| which.status.success())
        .map(Path::to_path_buf)
}

/// A running private cluster.
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    as_root: bool,
    started_here: bool,
}

impl Postgres {
    /// The superuser URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn cmd(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    /// Starts the cluster, initialising it on first use. With `reuse`, a
    /// cluster already running from an earlier `cargo xtask run` is reused.
    pub fn start(name: &str, reuse: bool) -> Res<Self> {
        let bin = find_bin_dir().ok_or_else(|| {
            "PostgreSQL server binaries not found; install them with: sudo apt-get install -y postgresql".to_owned()
        })?;
        let base = state_dir().join(name);
        let data = base.join("data");
        let as_root = is_root();
        std::fs::create_dir_all(&base)
            .map_err(|e| format!("cannot create {}: {e}", base.display()))?;
        if as_root {
            run_quiet(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&base),
                "chown",
            )?;
        }
        let mut pg = Self {
            bin,
            data,
            port: 0,
            as_root,
            started_here: false,
        };
        if reuse {
            if let Some(port) = pg.running_port() {
                pg.port = port;
                return Ok(pg);
            }
        }
        if !pg.data.join("PG_VERSION").exists() {
            let mut initdb = pg.cmd("initdb");
            initdb.arg("-D").arg(&pg.data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ]);
            run_quiet(&mut initdb, "initdb")?;
        }
        pg.port = free_port()?;
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=400 -c shared_buffers=256MB",
            pg.port,
            base.display()
        );
        let mut start = pg.cmd("pg_ctl");
        start
            .arg("-D")
            .arg(&pg.data)
            .arg("-l")
            .arg(base.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]);
        run_quiet(&mut start, "pg_ctl start")?;
        pg.started_here = true;
        wait_for_port(pg.port, "PostgreSQL", Duration::from_secs(30))?;
        Ok(pg)
    }

    /// The port of a cluster already running on this data directory.
    fn running_port(&self) -> Option<u16> {
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        // Line 4 of postmaster.pid is the port.
        let port: u16 = pid_file.lines().nth(3)?.trim().parse().ok()?;
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| port)
    }

    /// Stops the cluster if this process started it.
    pub fn stop(&mut self) {
        if !self.started_here {
            return;
        }
        self.started_here = false;
        let mut stop = self.cmd("pg_ctl");
        stop.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"]);
        if let Err(e) = run_quiet(&mut stop, "pg_ctl stop") {
            eprintln!("xtask: {e}");
        }
    }

    /// A `psql` client on database `db`, over loopback TCP as `postgres`, that
    /// stops at the first error (for the benchmark baselines).
    pub fn psql(&self, db: &str) -> Command {
        let mut c = Command::new(self.bin.join("psql"));
        c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", db]);
        c
    }

    /// The pid of the postmaster (its backends are its children), to account
    /// for the CPU time PostgreSQL spends during a benchmark.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    /// Creates database `name` unless it exists.
    pub fn ensure_database(&self, name: &str) -> Res<()> {
        let port = self.port.to_string();
        let psql = |sql: &str| {
            Command::new(self.bin.join("psql"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-tAc",
                    sql,
                ])
                .output()
                .map_err(|e| format!("cannot run psql: {e}"))
        };
        let found = psql(&format!(
            "select 1 from pg_database where datname = '{name}'"
        ))?;
        if String::from_utf8_lossy(&found.stdout).trim() == "1" {
            return Ok(());
        }
        let created = psql(&format!("create database \"{name}\""))?;
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
