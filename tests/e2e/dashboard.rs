//! Issue 15: the dashboard in real headless Chromium, against the real binary,
//! PostgreSQL and the S3 server. The browser is driven by Playwright
//! (`tests/browser/dashboard.mjs`, run with Node); this test prepares the
//! source files and the server, runs the script and checks what only the
//! server side can see (its log).

use std::path::PathBuf;
use std::process::Command;

use crate::support::s3::Bucket;
use crate::support::{Launch, TestDb, env, suffix};

/// Rows of the source file: enough that a run stays `running` for a few
/// polls of the page with small batches.
const ROWS: u64 = 60_000;

/// The write-only secret of the connector the script creates: it must appear
/// neither in a page nor in the server's log.
const CONNECTOR_SECRET: &str = "dashboard-secret-value-never-shown";

/// The source: `id,email,name,age`, a bad e-mail every 1,000th row, and two
/// rows whose rejected values are markup that must stay text.
fn customers_csv() -> String {
    let mut csv = String::from("id,email,name,age\n");
    for n in 1..=ROWS {
        let email = match n {
            7 => "<img src=x onerror=alert(1)>".to_owned(),
            _ if n % 1_000 == 0 => "not-an-email".to_owned(),
            _ => format!("user{n}@example.com"),
        };
        let age = if n == 11 {
            "\"<script>alert(document.domain)</script>\"".to_owned()
        } else {
            (18 + n % 60).to_string()
        };
        csv.push_str(&format!("{n},{email},Customer {n},{age}\n"));
    }
    csv
}

/// Where the browser tests keep what a person should look at.
fn screenshot_dir() -> PathBuf {
    std::env::var_os("SLUICE_SCREENSHOT_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/dashboard-screenshots"),
        PathBuf::from,
    )
}

/// The harness setting that names a browser-test prerequisite.
fn required(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not set: run the browser tests through `cargo xtask test`, \
                 which installs Playwright and finds Chromium"
            )
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_signs_in_builds_a_pipeline_watches_a_run_and_respects_roles() {
    let db = TestDb::new().await;
    let bucket = Bucket::new().await;
    bucket.put("in/customers.csv", customers_csv()).await;
    // No in-process workers: the run stays `pending` until the script starts
    // a `sluice worker`, so the page is seen moving through every status.
    let (server, api) = Launch::new(&db)
        .workers(0)
        .var("SLUICE_AUTH_CACHE_MS", "0")
        .serve()
        .await;
    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).expect("screenshot directory");
    let harness = env();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser/dashboard.mjs");
    let out = Command::new("node")
        .arg(&script)
        .env("SLUICE_URL", &api.base)
        .env("SLUICE_ADMIN_KEY", &api.key)
        .env("SLUICE_S3_ENDPOINT", &harness.s3)
        .env("SLUICE_BUCKET", &bucket.name)
        .env("SLUICE_CONNECTOR_SECRET", CONNECTOR_SECRET)
        .env("SLUICE_EXPECTED_ROWS", ROWS.to_string())
        .env("SLUICE_BIN", &harness.bin)
        .env("SLUICE_WORKER_DATABASE_URL", &db.url)
        .env("SLUICE_SCREENSHOT_DIR", &shots)
        .env("SLUICE_CHROMIUM", required("SLUICE_CHROMIUM"))
        .env("SLUICE_PLAYWRIGHT_DIR", required("SLUICE_PLAYWRIGHT_DIR"))
        .env("SLUICE_RUN_SUFFIX", suffix())
        .output()
        .expect("run node (is Node.js installed? `.ci/run` installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser script failed ({}):\n{stdout}\n{stderr}\nserver log:\n{}",
        out.status,
        server.log_text()
    );
    assert!(
        stdout.contains("dashboard: all steps passed"),
        "the script did not reach its end:\n{stdout}\n{stderr}"
    );
    for shot in [
        "pipelines-1280.png",
        "pipelines-390.png",
        "run-running-1280.png",
        "run-running-390.png",
        "run-errors-1280.png",
        "run-errors-390.png",
    ] {
        let path = shots.join(shot);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{} is missing or empty", path.display());
    }
    let log = server.log_text();
    assert!(
        !log.contains(&api.key),
        "the admin key appears in the server log"
    );
    assert!(
        !log.contains(CONNECTOR_SECRET),
        "the connector secret appears in the server log"
    );
}
