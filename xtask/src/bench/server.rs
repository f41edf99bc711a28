//! A `sluice serve` process per measurement (so its peak RSS is that
//! measurement's) and the few API calls the benchmark makes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::http::{Body, Conn};
use super::procfs;
use crate::infra::{Res, free_port};

/// The admin key every benchmark server is started with (each uses a
/// database of its own, so a fixed key is harmless).
const KEY: &str = "sk_bench_admin_0123456789abcdef";

/// A running `sluice serve`, stopped when dropped.
pub struct Sluice {
    child: Child,
    /// Its listen address (`127.0.0.1:port`).
    pub addr: String,
    /// Where its output goes.
    pub log: PathBuf,
}

impl Sluice {
    /// Spawns `bin <sub>` with `env`, its output going to `log`. `SLUICE_*`
    /// variables of the environment pass through (e.g. `SLUICE_BATCH_ROWS`
    /// for experiments) unless set here.
    fn spawn(bin: &Path, sub: &str, env: &[(&str, &str)], log: PathBuf) -> Res<Self> {
        let file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let level = std::env::var("SLUICE_LOG").unwrap_or_else(|_| "info".into());
        let child = Command::new(bin)
            .arg(sub)
            .envs(env.iter().copied())
            .env("SLUICE_LOG", level)
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(|e| e.to_string())?)
            .stderr(file)
            .spawn()
            .map_err(|e| format!("cannot start {} {sub}: {e}", bin.display()))?;
        Ok(Self {
            child,
            addr: String::new(),
            log,
        })
    }

    /// Starts `bin serve` on a free port against `database_url` with
    /// `workers` in-process workers, and waits until `/readyz` answers 200.
    pub fn start(bin: &Path, database_url: &str, workers: usize, log: PathBuf) -> Res<Self> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let workers = workers.to_string();
        let env = [
            ("DATABASE_URL", database_url),
            ("SLUICE_BIND", addr.as_str()),
            ("SLUICE_ADMIN_KEY", KEY),
            ("SLUICE_WORKERS", workers.as_str()),
        ];
        let mut server = Self::spawn(bin, "serve", &env, log)?;
        server.addr = addr;
        let start = Instant::now();
        let mut conn = Conn::new(&server.addr).with_timeout(Duration::from_secs(5));
        loop {
            if let Ok(r) = conn.request("GET", "/readyz", &[], &Body::Empty) {
                if r.status == 200 {
                    return Ok(server);
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "sluice serve exited ({status}); see {}",
                    server.log.display()
                ));
            }
            if start.elapsed() > Duration::from_secs(60) {
                server.stop();
                return Err(format!(
                    "sluice serve not ready after 60 s; see {}",
                    server.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts `bin worker` (partition workers only, no API) against
    /// `database_url`; it shares the queue with a `sluice serve`.
    pub fn start_worker(bin: &Path, database_url: &str, workers: usize, log: PathBuf) -> Res<Self> {
        let workers = workers.to_string();
        let env = [
            ("DATABASE_URL", database_url),
            ("SLUICE_WORKERS", workers.as_str()),
        ];
        let mut worker = Self::spawn(bin, "worker", &env, log)?;
        std::thread::sleep(Duration::from_millis(500));
        if let Ok(Some(status)) = worker.child.try_wait() {
            return Err(format!(
                "sluice worker exited ({status}); see {}",
                worker.log.display()
            ));
        }
        Ok(worker)
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory so far, in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        procfs::status_kib(self.pid(), "VmHWM").map(|k| k as f64 / 1024.0)
    }

    /// Resident memory now, in MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        procfs::status_kib(self.pid(), "VmRSS").map(|k| k as f64 / 1024.0)
    }

    /// An API client with the admin key.
    pub fn api(&self) -> Api {
        Api::new(&self.addr)
    }

    /// SIGTERM (a graceful stop), then SIGKILL after 15 s.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Terminal run statuses.
pub fn is_terminal(status: &str) -> bool {
    matches!(
        status,
        "completed" | "completed_with_errors" | "failed" | "cancelled"
    )
}

/// The API with the admin key, on one keep-alive connection.
pub struct Api {
    addr: String,
    conn: Conn,
    auth: String,
}

impl Api {
    /// A client of the server at `addr`.
    pub fn new(addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            conn: Conn::new(addr),
            auth: format!("Bearer {KEY}"),
        }
    }

    /// The `Authorization` header value.
    pub fn auth(&self) -> &str {
        &self.auth
    }

    /// The server address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// A JSON request; fails unless the status is `expect`.
    pub fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        expect: u16,
    ) -> Res<Value> {
        let bytes = body.map(Value::to_string).unwrap_or_default();
        let headers = [
            ("Authorization", self.auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        let r = if method == "POST" {
            // A POST is never repeated on a stale connection: use a fresh one.
            Conn::new(&self.addr).request(method, path, &headers, &Body::Bytes(bytes.as_bytes()))?
        } else {
            self.conn
                .request(method, path, &headers, &Body::Bytes(bytes.as_bytes()))?
        };
        if r.status != expect {
            return Err(format!(
                "{method} {path} answered {} (expected {expect}): {}",
                r.status,
                r.text()
            ));
        }
        r.json()
    }

    /// Creates an `s3` connector on the benchmark's S3 server.
    pub fn s3_connector(&mut self, bucket: &str, endpoint: &str) -> Res<String> {
        let body = json!({
            "name": "bench s3",
            "type": "s3",
            "config": {"bucket": bucket, "endpoint": endpoint, "region": "us-east-1", "pathStyle": true},
            "credentials": {"accessKeyId": "test", "secretAccessKey": "test"}
        });
        let v = self.call("POST", "/api/v1/connectors", Some(&body), 201)?;
        id_of(&v)
    }

    /// Creates a pipeline.
    pub fn pipeline(&mut self, spec: &Value) -> Res<String> {
        let v = self.call("POST", "/api/v1/pipelines", Some(spec), 201)?;
        id_of(&v)
    }

    /// Starts a run of `pipeline` that reads every listed file (`files:
    /// all`), whatever the pipeline's file ledger holds: every sample loads
    /// the whole data set. (Each sample also has a fresh database, so the
    /// ledger is empty anyway; servers older than the ledger ignore the body.)
    pub fn start_run(&mut self, pipeline: &str) -> Res<String> {
        let v = self.call(
            "POST",
            &format!("/api/v1/pipelines/{pipeline}/runs"),
            Some(&json!({"files": "all"})),
            201,
        )?;
        id_of(&v)
    }

    /// The progress path of a run.
    pub fn progress_path(pipeline: &str, run: &str) -> String {
        format!("/api/v1/pipelines/{pipeline}/runs/{run}/progress")
    }

    /// The progress of a run.
    pub fn progress(&mut self, pipeline: &str, run: &str) -> Res<Value> {
        self.call("GET", &Self::progress_path(pipeline, run), None, 200)
    }
}

fn id_of(v: &Value) -> Res<String> {
    v["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no id in {v}"))
}
