//! `cargo xtask run`: a working Sluice with demo data, and `cargo xtask openapi`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::infra::{Res, cargo, root, state_dir};

const BIND: &str = "127.0.0.1:8080";

pub(crate) fn build_sluice(release: bool) -> Res<std::path::PathBuf> {
    let mut cmd = Command::new(cargo());
    cmd.args(["build", "--quiet", "-p", "sluice-server"])
        .current_dir(root());
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo build: {e}"))?;
    if !status.success() {
        return Err("building sluice failed".into());
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), Into::into);
    Ok(target
        .join(if release { "release" } else { "debug" })
        .join("sluice"))
}

/// An admin key kept under target/xtask so it is the same on every run.
fn admin_key() -> Res<String> {
    let path = state_dir().join("admin-key");
    if let Ok(k) = std::fs::read_to_string(&path) {
        if k.trim().len() >= 16 {
            return Ok(k.trim().to_owned());
        }
    }
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read random bytes: {e}"))?;
    let key: String = std::iter::once("sk_dev_".to_owned())
        .chain(bytes.iter().map(|b| format!("{b:02x}")))
        .collect();
    std::fs::write(&path, &key).map_err(|e| e.to_string())?;
    Ok(key)
}

/// A minimal HTTP/1.1 JSON client for the demo set-up (keeps xtask dependency-free).
pub(crate) fn http_at(
    bind: &str,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&str>,
) -> Res<(u16, String)> {
    let mut stream = TcpStream::connect(bind).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {bind}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad HTTP response: {response}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn http(method: &str, path: &str, key: &str, body: Option<&str>) -> Res<(u16, String)> {
    http_at(BIND, method, path, key, body)
}

pub(crate) fn json_field(body: &str, field: &str) -> Option<String> {
    let needle = format!("\"{field}\":\"");
    let start = body.find(&needle)? + needle.len();
    let end = body.get(start..)?.find('"')? + start;
    body.get(start..end).map(str::to_owned)
}

/// Writes the demo source: customers with a few invalid rows and duplicate ids.
fn write_demo_files(dir: &Path) -> Res<()> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut csv = String::from("id,email,name,age,signup_date,score\n");
    for i in 1..=5000u32 {
        let email = if i % 500 == 0 {
            "not-an-email".to_owned()
        } else {
            format!("user{i}@example.com")
        };
        let age = if i % 777 == 0 {
            "abc".to_owned()
        } else {
            (18 + i % 60).to_string()
        };
        let id = if i % 1000 == 0 { i - 1 } else { i };
        csv.push_str(&format!(
            "{id},{email},\"Customer {i}, Jr.\",{age},2024-{:02}-{:02},{}.{}\n",
            1 + i % 12,
            1 + i % 28,
            i % 100,
            i % 10
        ));
    }
    std::fs::write(dir.join("customers.csv"), csv).map_err(|e| e.to_string())
}

fn setup_demo(key: &str) -> Res<Option<String>> {
    let (status, body) = http("GET", "/api/v1/pipelines?limit=200", key, None)?;
    if status == 200 && body.contains("Demo customers") {
        return Ok(json_field(&body, "id"));
    }
    let connector = r#"{"name":"Demo files","type":"local","config":{"root":"./data"}}"#;
    let (status, body) = http("POST", "/api/v1/connectors", key, Some(connector))?;
    if status != 201 {
        return Err(format!(
            "creating the demo connector answered {status}: {body}"
        ));
    }
    let connector_id = json_field(&body, "id").ok_or("no connector id in the answer")?;
    let pipeline = format!(
        r#"{{"name":"Demo customers","connectorId":"{connector_id}",
        "source":{{"prefix":"demo/","pattern":"*.csv","format":"csv","csv":{{"header":true}}}},
        "schema":{{"columns":[{{"name":"id","type":"integer","required":true}},{{"name":"email","type":"email","required":true}},
        {{"name":"name","type":"string","maxLength":200}},{{"name":"age","type":"integer"}},
        {{"name":"signup_date","type":"date"}},{{"name":"score","type":"number"}}]}},
        "destination":{{"table":"demo_customers","keyColumns":["id"]}},
        "loadStrategy":"upsert","partitions":4,
        "polling":{{"enabled":true,"intervalMinutes":1,"touchFile":"_READY.dat","deleteAfterProcess":true}}}}"#
    );
    let (status, body) = http("POST", "/api/v1/pipelines", key, Some(&pipeline))?;
    if status != 201 {
        return Err(format!(
            "creating the demo pipeline answered {status}: {body}"
        ));
    }
    Ok(json_field(&body, "id"))
}

/// Starts a run of the demo pipeline; `None` (with a note) if it cannot, for
/// example while an earlier one is still active.
fn start_demo_run(key: &str, pipeline: &str) -> Option<String> {
    match http(
        "POST",
        &format!("/api/v1/pipelines/{pipeline}/runs"),
        key,
        None,
    ) {
        Ok((201, body)) => json_field(&body, "id"),
        Ok((status, body)) => {
            eprintln!("xtask: the demo run did not start ({status}): {body}");
            None
        }
        Err(e) => {
            eprintln!("xtask: the demo run did not start: {e}");
            None
        }
    }
}

struct ServerGuard(Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// Starts `sluice serve` on its embedded PostgreSQL (the zero-setup
/// default, under `target/xtask/sluice-data`), sets up the demo, and waits
/// for Ctrl-C.
pub fn run(args: &[String]) -> Res<ExitCode> {
    let release = args.iter().any(|a| a == "--release");
    std::fs::create_dir_all(state_dir()).map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;

    let bin = build_sluice(release)?;
    let key = admin_key()?;
    let data = root().join("data");
    write_demo_files(&data.join("demo"))?;

    let mut child = Command::new(&bin)
        .arg("serve")
        .current_dir(root())
        .env_remove("DATABASE_URL")
        .env("SLUICE_DATA_DIR", state_dir().join("sluice-data"))
        .env("SLUICE_BIND", BIND)
        .env("SLUICE_ADMIN_KEY", &key)
        .env("SLUICE_LOCAL_ROOTS", "./data")
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start sluice: {e}"))?;
    // Until it listens, a failure to start (the embedded PostgreSQL's
    // included) is sluice's own one-line message: stop waiting then.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(BIND).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("sluice serve exited ({status})"));
        }
        if std::time::Instant::now() > deadline {
            return Err("sluice serve did not listen on 127.0.0.1:8080 within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _server = ServerGuard(child);
    let (status, _) = http("GET", "/healthz", &key, None)?;
    if status != 200 {
        return Err(format!("/healthz answered {status}"));
    }
    let pipeline = match setup_demo(&key) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask: demo set-up skipped: {e}");
            None
        }
    };

    // A run of the demo pipeline, so that the dashboard has one to show.
    let demo_run = pipeline.as_deref().and_then(|p| start_demo_run(&key, p));

    println!("\nDashboard: http://{BIND}/  (sign in with the admin API key below)");
    if let (Some(p), Some(r)) = (&pipeline, &demo_run) {
        println!("  the demo run: http://{BIND}/#/pipelines/{p}/runs/{r}");
    }
    println!("\nSluice is running on http://{BIND}\n");
    println!("Admin API key:\n  {key}\n");
    println!("Try:");
    println!("  curl -s http://{BIND}/healthz");
    println!("  curl -s -H 'Authorization: Bearer {key}' http://{BIND}/api/v1/pipelines");
    if let Some(p) = pipeline {
        println!(
            "  curl -s -X POST -H 'Authorization: Bearer {key}' 'http://{BIND}/api/v1/pipelines/{p}/dry-run?rows=100'   # validate, load nothing"
        );
        println!(
            "  curl -s -X POST -H 'Authorization: Bearer {key}' http://{BIND}/api/v1/pipelines/{p}/runs   # reads only files not loaded yet"
        );
        println!(
            "  curl -s -X POST -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -d '{{\"files\":\"all\"}}' http://{BIND}/api/v1/pipelines/{p}/runs   # reads every file again"
        );
        println!(
            "  curl -s -H 'Authorization: Bearer {key}' http://{BIND}/api/v1/pipelines/{p}/files   # the file ledger"
        );
        println!(
            "  curl -s -H 'Authorization: Bearer {key}' http://{BIND}/api/v1/pipelines/{p}/runs   # then .../runs/<runId>/progress"
        );
        println!(
            "  touch data/demo/_READY.dat   # the poller starts a run within a minute (or: curl -X POST .../api/v1/pipelines/poll)"
        );
    }
    println!("\nPress Ctrl-C to stop.");
    let _ = rx.recv();
    eprintln!("\nxtask: stopping");
    Ok(ExitCode::SUCCESS)
}

/// Writes `docs/openapi.json` from the code.
pub fn openapi() -> Res<ExitCode> {
    let bin = build_sluice(false)?;
    let out = Command::new(bin)
        .arg("openapi")
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "sluice openapi failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let path = root().join("docs").join("openapi.json");
    // `sluice openapi` prints the document and a newline; the committed file
    // is the document exactly as the code serves it (a test compares them).
    let document = out.stdout.strip_suffix(b"\n").unwrap_or(&out.stdout);
    std::fs::write(&path, document).map_err(|e| e.to_string())?;
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}
