//! Starting, supervising and stopping one cluster.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::Error;
use crate::binaries::{self, Binaries};
use crate::identity::RunAs;
use crate::layout::Layout;
use crate::lock::{self, DirLock};

/// How clients authenticate to the cluster (always over loopback TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// A random password generated at `initdb` and kept in the cluster's
    /// directory (mode 600): other users of the machine cannot connect.
    Password,
    /// No password: any local process may connect. For throw-away test
    /// clusters only.
    Trust,
}

/// What cluster to run and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The data directory: its lock, and normally the cluster's files
    /// (`<data_dir>/postgres`).
    pub data_dir: PathBuf,
    /// Where the cluster's files go when the user PostgreSQL runs as cannot
    /// reach `data_dir` (a root process in a private directory).
    pub fallback_root: PathBuf,
    /// The user PostgreSQL runs as when this process is root.
    pub service_user: String,
    /// A directory holding the server programs; found on the system when unset.
    pub bin_dir: Option<PathBuf>,
    /// The cluster's superuser.
    pub superuser: String,
    /// The database created at `initdb` (none when `postgres`).
    pub database: String,
    /// Authentication.
    pub auth: Auth,
    /// Keep PostgreSQL's crash safety (`fsync`, full page writes). Only
    /// throw-away test clusters turn it off, for speed.
    pub durable: bool,
    /// More server settings (`-c name=value`).
    pub settings: Vec<(String, String)>,
    /// How long the server may take to accept connections.
    pub start_timeout: Duration,
}

impl Options {
    /// A durable cluster under `data_dir` with a password-protected
    /// superuser `sluice` and a database `sluice`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            fallback_root: PathBuf::from("/var/lib/sluice"),
            service_user: "postgres".into(),
            bin_dir: None,
            superuser: "sluice".into(),
            database: "sluice".into(),
            auth: Auth::Password,
            durable: true,
            settings: Vec::new(),
            start_timeout: Duration::from_secs(60),
        }
    }
}

/// How the server process ended, shared with the thread waiting for it.
#[derive(Debug, Default)]
struct ExitState {
    status: Mutex<Option<ExitStatus>>,
    changed: Condvar,
}

impl ExitState {
    fn set(&self, status: ExitStatus) {
        if let Ok(mut s) = self.status.lock() {
            *s = Some(status);
        }
        self.changed.notify_all();
    }

    fn get(&self) -> Option<ExitStatus> {
        self.status.lock().ok().and_then(|s| *s)
    }

    fn wait(&self, limit: Option<Duration>) -> Option<ExitStatus> {
        let deadline = limit.map(|l| Instant::now() + l);
        let mut guard = self.status.lock().ok()?;
        loop {
            if let Some(s) = *guard {
                return Some(s);
            }
            guard = match deadline {
                None => self.changed.wait(guard).ok()?,
                Some(d) => {
                    let left = d.checked_duration_since(Instant::now())?;
                    self.changed.wait_timeout(guard, left).ok()?.0
                }
            };
        }
    }
}

/// Blocks until the supervised server exits, from any thread.
#[derive(Debug, Clone)]
pub struct ExitWatch(Arc<ExitState>);

impl ExitWatch {
    /// Waits for the server to exit and returns how it ended.
    pub fn wait(&self) -> Option<ExitStatus> {
        self.0.wait(None)
    }
}

/// A cluster this process started and supervises: stopped cleanly when
/// [`Cluster::stop`] is called or the value is dropped.
#[derive(Debug)]
pub struct Cluster {
    options: Options,
    binaries: Binaries,
    run_as: RunAs,
    layout: Layout,
    port: u16,
    pid: u32,
    password: Option<String>,
    exit: Arc<ExitState>,
    initialised: bool,
    took_over: bool,
    stopped: bool,
    _lock: DirLock,
}

/// A cluster another process supervises, found through its data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// Its URL (with the password).
    pub url: String,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its postmaster's process id.
    pub pid: u32,
}

/// The first `n` lines and the status of `postmaster.pid`: pid, data
/// directory, start time, port, socket directory, listen address, shared
/// memory key, status (`ready` once it accepts connections).
fn postmaster_pid_lines(pgdata: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    Some(text.lines().map(|l| l.trim().to_owned()).collect())
}

fn free_port() -> Result<u16, Error> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::failed("finding a free port", e))
}

/// The last lines of `path`, for an error message.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

fn random_password() -> Result<String, Error> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::failed("generating the database password", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Runs `cmd` to completion; a failure carries its stderr.
fn run(mut cmd: Command, step: &'static str) -> Result<String, Error> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::failed(step, format!("cannot start: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if out.status.success() {
        Ok(stderr)
    } else {
        Err(Error::failed(
            step,
            format!("{} ({})", stderr.replace('\n', " | "), out.status),
        ))
    }
}

impl Cluster {
    /// Starts the cluster of `options.data_dir`, creating it on first use,
    /// and waits until it accepts connections. [`Error::InUse`] when another
    /// process supervises it; a server left running by a supervisor that
    /// was killed is stopped and started again under this one.
    pub fn start(mut options: Options) -> Result<Self, Error> {
        let binaries = binaries::find(options.bin_dir.as_deref())?;
        let run_as = RunAs::detect(&options.service_user)?;
        let failed = |e: std::io::Error| {
            Error::failed(
                "creating the data directory",
                format!("{}: {e}", options.data_dir.display()),
            )
        };
        std::fs::create_dir_all(&options.data_dir).map_err(failed)?;
        // PostgreSQL's programs run elsewhere (their working directory may
        // not be ours): every path they get is absolute.
        options.data_dir = std::fs::canonicalize(&options.data_dir).map_err(failed)?;
        let lock = lock::acquire(&options.data_dir)?;
        let layout = Layout::prepare(&options.data_dir, &options.fallback_root, &run_as)?;
        let mut cluster = Self {
            binaries,
            run_as,
            layout,
            port: 0,
            pid: 0,
            password: None,
            exit: Arc::default(),
            initialised: false,
            took_over: false,
            stopped: true,
            _lock: lock,
            options,
        };
        if !cluster.layout.pgdata().join("PG_VERSION").is_file() {
            cluster.initialise()?;
            cluster.initialised = true;
        }
        if cluster.options.auth == Auth::Password {
            let text = std::fs::read_to_string(cluster.layout.password_file())
                .map_err(|e| Error::failed("reading the database password", e))?;
            cluster.password = Some(text.trim().to_owned());
        }
        cluster.took_over = cluster.stop_orphan()?;
        cluster.launch()?;
        Ok(cluster)
    }

    /// The running cluster of `data_dir` that another process supervises,
    /// if there is one (for commands that share `sluice serve`'s database).
    pub fn running(options: &Options) -> Option<Running> {
        if !lock::held_elsewhere(&options.data_dir) {
            return None;
        }
        let layout = Layout::existing(&options.data_dir)?;
        let lines = postmaster_pid_lines(&layout.pgdata())?;
        let pid = lines.first()?.parse().ok()?;
        let port: u16 = lines.get(3)?.parse().ok()?;
        if lines.get(7).map(String::as_str) != Some("ready") {
            return None;
        }
        let password = match options.auth {
            Auth::Password => Some(
                std::fs::read_to_string(layout.password_file())
                    .ok()?
                    .trim()
                    .to_owned(),
            ),
            Auth::Trust => None,
        };
        Some(Running {
            url: url(options, password.as_deref(), port, &options.database),
            port,
            pid,
        })
    }

    /// `initdb` into a scratch directory, the database, then the rename
    /// that makes the cluster exist: a cluster is there completely or not at all.
    fn initialise(&self) -> Result<(), Error> {
        let scratch = self.layout.pgdata_in_progress();
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch)
                .map_err(|e| Error::failed("removing an unfinished initdb", e))?;
        }
        let mut initdb = self.command("initdb");
        initdb.arg("-D").arg(&scratch).args([
            "-U",
            &self.options.superuser,
            "-E",
            "UTF8",
            "--no-locale",
        ]);
        if !self.options.durable {
            initdb.arg("--no-sync");
        }
        match self.options.auth {
            Auth::Trust => {
                initdb.arg("--auth=trust");
            }
            Auth::Password => {
                let file = self.layout.password_file();
                if !file.is_file() {
                    self.write_private(&file, &random_password()?)?;
                }
                initdb
                    .arg("--auth=scram-sha-256")
                    .arg(format!("--pwfile={}", file.display()));
            }
        }
        run(initdb, "initdb")?;
        if self.options.database != "postgres" {
            self.create_database(&scratch)?;
        }
        std::fs::rename(&scratch, self.layout.pgdata()).map_err(|e| {
            Error::failed(
                "initdb",
                format!("cannot move the new cluster in place: {e}"),
            )
        })
    }

    /// Creates the database in single-user mode, before any server runs.
    fn create_database(&self, pgdata: &Path) -> Result<(), Error> {
        let step = "creating the database";
        let mut single = self.command("postgres");
        single
            .args(["--single", "-D"])
            .arg(pgdata)
            .arg("postgres")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = single
            .spawn()
            .map_err(|e| Error::failed(step, format!("cannot start postgres --single: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            writeln!(stdin, "CREATE DATABASE \"{}\"", self.options.database)
                .map_err(|e| Error::failed(step, e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Error::failed(step, e))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Single-user mode exits 0 even when the statement failed.
        match stderr
            .lines()
            .find(|l| l.contains("ERROR") || l.contains("FATAL"))
        {
            Some(line) => Err(Error::failed(step, line.trim())),
            None if out.status.success() => Ok(()),
            None => Err(Error::failed(step, out.status)),
        }
    }

    /// Stops a server still running on this data directory from an earlier
    /// supervisor that died without stopping it (we hold the lock, so it is
    /// nobody's). True when there was one.
    fn stop_orphan(&self) -> Result<bool, Error> {
        let pgdata = self.layout.pgdata();
        if !pgdata.join("postmaster.pid").exists() {
            return Ok(false);
        }
        let mut status = self.command("pg_ctl");
        status.arg("status").arg("-D").arg(&pgdata);
        if run(status, "pg_ctl status").is_err() {
            // A stale pid file: the server removes it when it starts.
            return Ok(false);
        }
        let mut stop = self.command("pg_ctl");
        stop.arg("stop")
            .arg("-D")
            .arg(&pgdata)
            .args(["-m", "fast", "-w", "-t", "60"]);
        run(
            stop,
            "stopping the PostgreSQL left running by an earlier sluice",
        )?;
        Ok(true)
    }

    /// Starts the server on a free port; retried on another port when the
    /// one chosen was taken in between.
    fn launch(&mut self) -> Result<(), Error> {
        let mut last = None;
        for _ in 0..3 {
            match self.launch_once() {
                Ok(()) => return Ok(()),
                Err(e @ Error::Failed { .. }) if e.to_string().contains("already in use") => {
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::failed("starting PostgreSQL", "no free port")))
    }

    fn launch_once(&mut self) -> Result<(), Error> {
        let step = "starting PostgreSQL";
        let port = free_port()?;
        let log_path = self.layout.log_file();
        // Private: the log may quote values of rows that failed to load.
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .map_err(|e| Error::failed(step, format!("{}: {e}", log_path.display())))?;
        let _ = self.run_as.own(&log_path);
        let log_err = log.try_clone().map_err(|e| Error::failed(step, e))?;
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(self.layout.pgdata())
            .arg("-p")
            .arg(port.to_string())
            // Loopback TCP only: no socket file whose path could be too long.
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
            ]);
        if !self.options.durable {
            cmd.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        for (name, value) in &self.options.settings {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        // A group of its own: Ctrl-C in a terminal reaches the supervisor,
        // which stops the server after its own work, not the server first.
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let log_start = std::fs::metadata(&log_path).map_or(0, |m| m.len());
        let mut child = cmd.spawn().map_err(|e| Error::failed(step, e))?;
        let deadline = Instant::now() + self.options.start_timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Error::failed(
                    step,
                    format!(
                        "the server exited ({status}): {}",
                        new_log_lines(&log_path, log_start)
                    ),
                ));
            }
            if self.is_ready(port) {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::failed(
                    step,
                    format!(
                        "not accepting connections after {} s; see {}",
                        self.options.start_timeout.as_secs(),
                        log_path.display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.port = port;
        self.pid = child.id();
        self.stopped = false;
        self.exit = Arc::default();
        self.watch(child);
        Ok(())
    }

    /// True once `postmaster.pid` says `ready` for `port` and it accepts TCP.
    fn is_ready(&self, port: u16) -> bool {
        let Some(lines) = postmaster_pid_lines(&self.layout.pgdata()) else {
            return false;
        };
        lines.get(3).map(String::as_str) == Some(port.to_string().as_str())
            && lines.get(7).map(String::as_str) == Some("ready")
            && TcpStream::connect(("127.0.0.1", port)).is_ok()
    }

    /// A thread that waits for the server and records how it ended.
    fn watch(&self, mut child: Child) {
        let exit = self.exit.clone();
        let spawned = std::thread::Builder::new()
            .name("postgres-watch".into())
            .spawn(move || {
                if let Ok(status) = child.wait() {
                    exit.set(status);
                }
            });
        // Without the thread the server still runs; only `exited` cannot tell.
        let _ = spawned;
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = self.run_as.command(&self.binaries.program(program));
        // The working directory may be private to root.
        cmd.current_dir(&self.layout.base);
        cmd
    }

    fn write_private(&self, path: &Path, text: &str) -> Result<(), Error> {
        let step = "writing the database password";
        std::fs::write(path, format!("{text}\n"))
            .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)))
            .and_then(|()| self.run_as.own(path))
            .map_err(|e| Error::failed(step, e))
    }

    /// The URL of the cluster's database (with the password, if any).
    pub fn url(&self) -> String {
        self.url_for(&self.options.database)
    }

    /// The URL of database `db` on this cluster.
    pub fn url_for(&self, db: &str) -> String {
        url(&self.options, self.password.as_deref(), self.port, db)
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The superuser's name.
    pub fn superuser(&self) -> &str {
        &self.options.superuser
    }

    /// The server programs in use (`psql` and `pg_dump` sit beside them).
    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    /// PostgreSQL's data directory.
    pub fn pgdata(&self) -> PathBuf {
        self.layout.pgdata()
    }

    /// PostgreSQL's log file.
    pub fn log_file(&self) -> PathBuf {
        self.layout.log_file()
    }

    /// True when the cluster's files are kept outside the data directory
    /// (the user PostgreSQL runs as could not reach it).
    pub fn kept_elsewhere(&self) -> bool {
        self.layout.elsewhere
    }

    /// The user PostgreSQL runs as (`postgres` when this process is root).
    pub fn service_user(&self) -> &str {
        self.run_as.name()
    }

    /// True when this start created the cluster.
    pub fn initialised(&self) -> bool {
        self.initialised
    }

    /// True when this start stopped a server left running by an earlier
    /// supervisor that was killed.
    pub fn took_over(&self) -> bool {
        self.took_over
    }

    /// How the server ended, if it has.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.exit.get()
    }

    /// A handle that waits for the server to end, for a supervisor that
    /// must notice when it dies.
    pub fn exit_watch(&self) -> ExitWatch {
        ExitWatch(self.exit.clone())
    }

    /// Stops the server (fast shutdown: sessions are ended, everything
    /// committed is kept) and waits until it exited.
    pub fn stop(&mut self) -> Result<(), Error> {
        if std::mem::replace(&mut self.stopped, true) || self.exited().is_some() {
            return Ok(());
        }
        let mut stop = self.command("pg_ctl");
        stop.arg("stop")
            .arg("-D")
            .arg(self.layout.pgdata())
            .args(["-m", "fast", "-w", "-t", "60"]);
        let result = run(stop, "stopping PostgreSQL");
        if self.exit.wait(Some(Duration::from_secs(60))).is_none() {
            let mut kill = Command::new("kill");
            kill.args(["-KILL", &self.pid.to_string()]);
            let _ = run(kill, "killing PostgreSQL");
            let _ = self.exit.wait(Some(Duration::from_secs(10)));
        }
        result.map(|_| ())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The log lines written after byte `from`, joined on one line.
fn new_log_lines(path: &Path, from: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = usize::try_from(from).unwrap_or(0).min(text.len());
    let fresh = String::from_utf8_lossy(&text[start..]).into_owned();
    let lines: Vec<&str> = fresh.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return tail(path, 5);
    }
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

fn url(options: &Options, password: Option<&str>, port: u16, db: &str) -> String {
    let user = &options.superuser;
    match password {
        Some(pw) => format!("postgres://{user}:{pw}@127.0.0.1:{port}/{db}"),
        None => format!("postgres://{user}@127.0.0.1:{port}/{db}"),
    }
}
