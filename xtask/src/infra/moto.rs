//! An S3-compatible server on loopback: moto's server, installed into a
//! virtualenv under `target/xtask/venv` on first use.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Res, free_port, python_venv, state_dir, wait_for_port};

/// The moto version the tests are known to work with.
const MOTO_SPEC: &str = "moto[server]>=5.0,<6";

/// The virtualenv's `moto_server`, installing it when missing (tests that
/// need a moto of their own start this one).
pub fn moto_server() -> Res<PathBuf> {
    let exe = state_dir().join("venv").join("bin").join("moto_server");
    // An existing virtualenv of an earlier xtask (made before the marker).
    if exe.exists() {
        return Ok(exe);
    }
    Ok(python_venv("venv", MOTO_SPEC)?.join("moto_server"))
}

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Moto {
    /// Starts a server on a free loopback port.
    pub fn start() -> Res<Self> {
        let exe = moto_server()?;
        let port = free_port()?;
        let log = std::fs::File::create(state_dir().join("moto.log")).map_err(|e| e.to_string())?;
        let child = Command::new(exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start moto_server: {e}"))?;
        let moto = Self {
            child: Some(child),
            port,
        };
        wait_for_port(port, "moto (S3 server)", Duration::from_secs(60))?;
        Ok(moto)
    }

    /// The server's pid (for CPU accounting in the benchmarks).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
