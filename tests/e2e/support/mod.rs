//! Shared helpers of the end-to-end tests: a fresh database per test, the real
//! `sluice` binary in child processes, an API client, the S3 server, SQL checks.

pub mod api;
pub mod proxy;
pub mod s3;
pub mod sql;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use sluice_test_db::Migrations;

pub use api::Api;
pub use sluice_test_db::{TestDb, admin};

/// What the harness (`cargo xtask test`) provides.
pub struct Env {
    /// Base URL of the S3 server.
    pub s3: String,
    /// The `sluice` binary.
    pub bin: PathBuf,
}

/// Reads the harness environment; fails the test with the fix when missing.
pub fn env() -> Env {
    let get = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| {
                panic!("{name} is not set: run the end-to-end tests through `cargo xtask test`")
            })
    };
    let bin = PathBuf::from(get("SLUICE_BIN"));
    assert!(
        bin.exists(),
        "SLUICE_BIN={} does not exist: run `cargo xtask test`",
        bin.display()
    );
    Env {
        s3: get("SLUICE_TEST_S3_ENDPOINT"),
        bin,
    }
}

/// A short random lower-case suffix for names.
pub fn suffix() -> String {
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

/// The schema `sluice migrate` (the binary under test) gives a database:
/// `TestDb::migrated(&SluiceMigrations)` is a database of the test's own, a clone of
/// the template `sluice migrate` made, dropped when the test ends.
pub struct SluiceMigrations;

impl Migrations for SluiceMigrations {
    fn dir(&self) -> PathBuf {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../crates/adapters/postgres/migrations"
        ))
    }

    async fn apply(&self, url: &str) -> Result<(), String> {
        let out = tokio::process::Command::new(env().bin)
            .arg("migrate")
            .env_clear()
            .env("DATABASE_URL", url)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run sluice migrate: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "sluice migrate failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

/// A running `sluice` process, killed when dropped.
pub struct Process {
    child: Child,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl Process {
    /// Kills it with SIGKILL (no chance to clean up), like a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// True while it runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Settings for starting `sluice`.
pub struct Launch<'a> {
    /// Database.
    pub db: &'a TestDb,
    /// In-process workers.
    pub workers: usize,
    /// Extra environment.
    pub env: Vec<(String, String)>,
}

impl<'a> Launch<'a> {
    /// Defaults: 2 workers, 2 s leases.
    pub fn new(db: &'a TestDb) -> Self {
        Self {
            db,
            workers: 2,
            env: Vec::new(),
        }
    }

    /// Sets a variable.
    pub fn var(mut self, k: &str, v: impl Into<String>) -> Self {
        self.env.push((k.to_owned(), v.into()));
        self
    }

    /// Sets the worker count.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    fn command(&self, sub: &str) -> (Command, PathBuf) {
        let env = env();
        let log = std::env::temp_dir().join(format!("sluice-e2e-{sub}-{}.log", suffix()));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(&env.bin);
        cmd.arg(sub)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.db.url)
            .env("SLUICE_WORKERS", self.workers.to_string())
            .env("SLUICE_LEASE_SECONDS", "2")
            .env("SLUICE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        (cmd, log)
    }

    /// Starts `sluice serve` on a free port and waits until it is ready.
    pub async fn serve(self) -> (Process, Api) {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let key = format!("sk_e2e_admin_{}", suffix());
        let (mut cmd, log) = self.command("serve");
        cmd.env("SLUICE_BIND", format!("127.0.0.1:{port}"))
            .env("SLUICE_ADMIN_KEY", &key);
        let child = cmd.spawn().expect("start sluice serve");
        let mut process = Process { child, log };
        let api = Api::new(format!("http://127.0.0.1:{port}"), key);
        let start = Instant::now();
        loop {
            if let Ok(r) = api.raw_get("/readyz").await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                process.is_running(),
                "sluice serve exited:\n{}",
                process.log_text()
            );
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "sluice serve not ready:\n{}",
                process.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (process, api)
    }

    /// Starts a `sluice worker` process.
    pub fn worker(self) -> Process {
        let (mut cmd, log) = self.command("worker");
        let child = cmd.spawn().expect("start sluice worker");
        Process { child, log }
    }
}
