//! Services the commands start: PostgreSQL, the S3 server, and the guard that
//! stops them; and the browser the dashboard's tests drive.

pub mod browser;
pub mod moto;
pub mod pg;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Result type of xtask commands: errors are one line for the user.
pub type Res<T> = Result<T, String>;

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// Where xtask keeps its state (`target/xtask`).
pub fn state_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    target.join("xtask")
}

/// A TCP port on 127.0.0.1 that is free right now.
pub fn free_port() -> Res<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16, what: &str, limit: Duration) -> Res<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "{what} did not start listening on 127.0.0.1:{port} within {} s",
        limit.as_secs()
    ))
}

/// Runs a command to completion, failing with its stderr.
pub fn run_quiet(cmd: &mut Command, what: &str) -> Res<()> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A Python virtualenv `target/xtask/<name>` holding `spec` (a pip
/// requirement), created on first use; returns its `bin` directory. A
/// marker file records a finished install, so an interrupted one is redone.
pub fn python_venv(name: &str, spec: &str) -> Res<PathBuf> {
    let venv = state_dir().join(name);
    let bin = venv.join("bin");
    let marker = venv.join(".xtask-installed");
    if std::fs::read_to_string(&marker).is_ok_and(|s| s == spec) {
        return Ok(bin);
    }
    eprintln!("xtask: installing {spec} into {} ...", venv.display());
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run_quiet(
        Command::new(&python).args(["-m", "venv"]).arg(&venv),
        "python3 -m venv (install python3-venv)",
    )?;
    run_quiet(
        Command::new(bin.join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            spec,
        ]),
        &format!("pip install {spec}"),
    )?;
    std::fs::write(&marker, spec).map_err(|e| e.to_string())?;
    Ok(bin)
}

/// The path of `cargo` that invoked us.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}
