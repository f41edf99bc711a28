//! What the dashboard's browser tests need: Debian's Chromium (installed by
//! `.ci/run`, never downloaded by a test tool) and `playwright-core` from npm,
//! installed here under `target/xtask/browser` at the version pinned by
//! `tests/browser/package-lock.json`.

use std::path::PathBuf;
use std::process::Command;

use super::{Res, root, run_quiet, state_dir};

/// Paths the browser tests are given.
#[derive(Debug)]
pub struct Browser {
    /// The Chromium executable.
    pub chromium: PathBuf,
    /// The directory whose `node_modules` holds `playwright-core` (scripts
    /// `require` it from there).
    pub playwright_dir: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && path.is_file()).then_some(path)
}

/// Finds Chromium and installs Playwright when its pinned version is missing.
pub fn prepare() -> Res<Browser> {
    let chromium = std::env::var_os("SLUICE_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| on_path("chromium"))
        .or_else(|| on_path("chromium-browser"))
        .ok_or("Chromium not found; install it with: sudo apt-get install -y chromium")?;
    if on_path("node").is_none() || on_path("npm").is_none() {
        return Err(
            "Node.js not found; install it with: sudo apt-get install -y nodejs npm".into(),
        );
    }
    let source = root().join("tests").join("browser");
    let dir = state_dir().join("browser");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let lock = std::fs::read(source.join("package-lock.json"))
        .map_err(|e| format!("tests/browser/package-lock.json: {e}"))?;
    let installed = dir.join("node_modules").join(".package-lock.json");
    // npm writes its own copy of the lock into node_modules once it has installed.
    let current = std::fs::read(&installed).is_ok_and(|have| {
        String::from_utf8_lossy(&have).contains(&format!(
            "\"version\": \"{}\"",
            pinned_version(&lock).unwrap_or_default()
        ))
    });
    if !current {
        eprintln!(
            "xtask: installing playwright-core (browser tests) into {}",
            dir.display()
        );
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(source.join(file), dir.join(file))
                .map_err(|e| format!("cannot copy tests/browser/{file}: {e}"))?;
        }
        run_quiet(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
                .current_dir(&dir),
            "npm ci (playwright-core)",
        )?;
    }
    Ok(Browser {
        chromium,
        playwright_dir: dir,
    })
}

/// The version of `playwright-core` a lock file pins.
fn pinned_version(lock: &[u8]) -> Option<String> {
    let lock: serde_json::Value = serde_json::from_slice(lock).ok()?;
    lock["packages"]["node_modules/playwright-core"]["version"]
        .as_str()
        .map(str::to_owned)
}
