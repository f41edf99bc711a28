//! Issue 20: the `sluice` command for people. The real binary serving on its
//! own embedded PostgreSQL, and the client commands against a real server:
//! progress bars under a pseudo-terminal, plain lines elsewhere, exit
//! statuses, API errors as one line, the errors export byte for byte in
//! bounded memory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Api, Launch, SluiceMigrations, TestDb, env};

/// What a `sluice` client command did.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The `sluice` binary as a client of `url` with `key`.
#[derive(Clone)]
struct Sluice {
    url: String,
    key: String,
}

impl Sluice {
    fn of(api: &Api) -> Self {
        Self {
            url: api.base.clone(),
            key: api.key.clone(),
        }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env().bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SLUICE_URL", &self.url)
            .env("SLUICE_API_KEY", &self.key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    async fn run(&self, args: &[&str]) -> Out {
        let out = self
            .command(args)
            .output()
            .await
            .expect("run the sluice binary");
        Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and expects exit status 0; returns the output.
    async fn ok(&self, args: &[&str]) -> Out {
        let out = self.run(args).await;
        assert_eq!(out.code, Some(0), "sluice {}: {out}", args.join(" "));
        out
    }
}

/// A temporary directory the embedded PostgreSQL's own user can reach.
fn shared_temp_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut perms = std::fs::metadata(dir.path()).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dir.path(), perms).expect("chmod");
    dir
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write file");
}

/// Every process whose command line names `needle`, as "pid: cmdline".
fn processes_naming(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

/// A `sluice serve` with no DATABASE_URL in `dir`.
struct EmbeddedServe {
    child: std::process::Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl EmbeddedServe {
    fn start(dir: &Path, port: u16, run: u32) -> Self {
        let stdout = dir.join(format!("serve-{run}.out"));
        let stderr = dir.join(format!("serve-{run}.log"));
        let child = std::process::Command::new(env().bin)
            .arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SLUICE_BIND", format!("127.0.0.1:{port}"))
            .env("SLUICE_WORKERS", "1")
            .env("SLUICE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start sluice serve");
        Self {
            child,
            stdout,
            stderr,
        }
    }

    fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// Waits for /readyz; returns how long it took.
    async fn ready(&mut self, base: &str) -> Duration {
        let start = Instant::now();
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
                if r.status().is_success() {
                    return start.elapsed();
                }
            }
            assert!(
                matches!(self.child.try_wait(), Ok(None)),
                "sluice serve exited:\n{}",
                self.output()
            );
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "sluice serve not ready within 30 s:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits for the exit; returns its status code.
    async fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "sluice serve still running 30 s after SIGTERM:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for EmbeddedServe {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // A failed test: let it stop its PostgreSQL too.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("addr").port()
}

/// Acceptance 1: in an empty directory, `sluice serve` with no DATABASE_URL
/// serves within 30 s on a PostgreSQL of its own; a local-directory
/// pipeline created and run through `sluice` commands completes; after a
/// restart the pipeline and its run are still there; SIGTERM leaves
/// nothing running.
#[tokio::test(flavor = "multi_thread")]
async fn zero_setup_serve_keeps_pipelines_and_runs_across_restarts() {
    let dir = shared_temp_dir();
    let root = dir.path().to_path_buf();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");

    let mut serve = EmbeddedServe::start(&root, port, 1);
    let took = serve.ready(&base).await;
    eprintln!("sluice serve (embedded PostgreSQL, first start) ready in {took:?}");
    let banner = std::fs::read_to_string(&serve.stdout).expect("banner");
    let key = banner
        .split_whitespace()
        .find_map(|w| w.strip_prefix("SLUICE_API_KEY="))
        .unwrap_or_else(|| panic!("no admin key in the banner:\n{}", serve.output()))
        .to_owned();
    assert!(banner.contains("embedded PostgreSQL"), "{banner}");
    let running = processes_naming(root.to_str().expect("utf-8"));
    assert!(
        running.iter().any(|p| p.contains("postgres")),
        "its PostgreSQL runs from the directory (so the checks below can see it): {running:?}"
    );
    assert!(
        !std::fs::read_to_string(&serve.stderr)
            .unwrap_or_default()
            .contains(&key),
        "the admin key is printed once, on standard output, never logged"
    );
    let cli = Sluice {
        url: base.clone(),
        key: key.clone(),
    };

    // Files in ./data, the default local root.
    std::fs::create_dir(root.join("data")).expect("data dir");
    write(
        &root.join("data/customers.csv"),
        "id,name\n1,Ada\n2,Grace\n3,Edsger\n",
    );
    write(
        &root.join("connector.json"),
        &json!({"name": "Landing", "type": "local", "config": {"root": root.join("data")}})
            .to_string(),
    );
    let connector = cli
        .ok(&[
            "connectors",
            "create",
            "-f",
            root.join("connector.json").to_str().expect("utf-8"),
            "--json",
        ])
        .await
        .json();
    write(
        &root.join("pipeline.json"),
        &json!({
            "name": "Customers",
            "connectorId": connector["id"],
            "source": {"prefix": "", "pattern": "*.csv"},
            "schema": {"columns": [
                {"name": "id", "type": "integer", "required": true},
                {"name": "name", "type": "string"}
            ]},
            "destination": {"table": "customers"},
            "loadStrategy": "append"
        })
        .to_string(),
    );
    let pipeline = cli
        .ok(&[
            "pipelines",
            "create",
            "-f",
            root.join("pipeline.json").to_str().expect("utf-8"),
        ])
        .await;
    assert!(pipeline.stdout.contains("Created pipeline"), "{pipeline}");
    let run = cli.run(&["run", "Customers", "--follow"]).await;
    assert_eq!(run.code, Some(0), "a clean run exits 0: {run}");
    assert!(
        run.stdout.contains("completed in") && run.stdout.contains("3 loaded"),
        "{run}"
    );

    assert_eq!(serve.terminate().await, Some(0), "{}", serve.output());
    let left = processes_naming(root.to_str().expect("utf-8"));
    assert!(left.is_empty(), "left running after SIGTERM: {left:?}");

    // Again, in the same directory: same key, same pipeline, same run.
    let mut serve = EmbeddedServe::start(&root, port, 2);
    let took = serve.ready(&base).await;
    eprintln!("sluice serve (embedded PostgreSQL, restart) ready in {took:?}");
    let banner = std::fs::read_to_string(&serve.stdout).expect("banner");
    assert!(
        !banner.contains("sk_"),
        "a key is created only on the first start: {banner}"
    );
    let pipelines = cli.ok(&["pipelines", "ls", "--json"]).await.json();
    let items = pipelines["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{pipelines}");
    assert_eq!(items[0]["name"], "Customers");
    let runs = cli.ok(&["runs", "ls", "Customers", "--json"]).await.json();
    let runs = runs["items"].as_array().expect("items").clone();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "completed");
    assert_eq!(runs[0]["loadedRows"], 3);
    let table = cli.ok(&["runs", "ls", "Customers"]).await;
    assert!(table.stdout.contains("completed"), "{table}");

    assert_eq!(serve.terminate().await, Some(0), "{}", serve.output());
    let left = processes_naming(root.to_str().expect("utf-8"));
    assert!(left.is_empty(), "left running after SIGTERM: {left:?}");
}

/// A server on the harness's database whose `local` connectors may read
/// `root`, a connector there and a pipeline over `*.csv`.
async fn local_pipeline(
    db: &TestDb,
    root: &Path,
    name: &str,
    extra: Value,
) -> (crate::support::Process, Api, String) {
    let (server, api) = Launch::new(db)
        .workers(2)
        .var("SLUICE_LOCAL_ROOTS", root.to_str().expect("utf-8"))
        .var("SLUICE_BATCH_ROWS", "1000")
        .serve()
        .await;
    let (status, connector) = api
        .post(
            "/api/v1/connectors",
            json!({"name": format!("{name} files"), "type": "local", "config": {"root": root}}),
        )
        .await;
    assert_eq!(status, 201, "{connector}");
    let mut spec = json!({
        "name": name,
        "connectorId": connector["id"],
        "source": {"prefix": "", "pattern": "*.csv"},
        "schema": {"columns": [
            {"name": "id", "type": "integer", "required": true},
            {"name": "note", "type": "string"}
        ]},
        "destination": {"table": name},
        "loadStrategy": "append",
        "partitions": 2
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    let pipeline = api.pipeline(spec).await;
    (server, api, pipeline)
}

/// `rows` rows; every `bad`th has an id that is not an integer.
fn rows_csv(rows: u64, bad: u64, note: &str) -> String {
    let mut s = String::from("id,note\n");
    for n in 1..=rows {
        if n % bad == 0 {
            s.push_str(&format!("x{n},{note}\n"));
        } else {
            s.push_str(&format!("{n},{note}\n"));
        }
    }
    s
}

/// Acceptance 2: `sluice run … --follow` under a pseudo-terminal draws the
/// overall and partition bars and ends with the summary and exit status 2
/// for a run with rejected rows; without a terminal the same command prints
/// plain progress lines.
#[tokio::test(flavor = "multi_thread")]
async fn follow_draws_bars_on_a_terminal_and_plain_lines_elsewhere() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let dir = tempfile::tempdir().expect("temp dir");
    write(&dir.path().join("a.csv"), &rows_csv(30_000, 100, "first"));
    write(&dir.path().join("b.csv"), &rows_csv(30_000, 100, "second"));
    let (_server, api, pipeline) = local_pipeline(&db, dir.path(), "follow_bars", json!({})).await;
    let cli = Sluice::of(&api);

    // Under a pseudo-terminal (util-linux `script`, which returns the
    // command's exit status with -e).
    let command = format!(
        "{} run {pipeline} --follow",
        env().bin.to_str().expect("utf-8")
    );
    let out = tokio::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TERM", "xterm-256color")
        .env("SLUICE_URL", &cli.url)
        .env("SLUICE_API_KEY", &cli.key)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("script (util-linux)");
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit 2 for rejected rows:\n{screen}"
    );
    assert!(screen.contains("partition 1"), "{screen}");
    assert!(screen.contains("partition 2"), "{screen}");
    assert!(screen.contains('█'), "bars are drawn: {screen}");
    assert!(
        screen.contains("\u{1b}["),
        "with terminal control codes: {screen}"
    );
    let summary = screen
        .lines()
        .rev()
        .find(|l| l.contains("completed_with_errors in"))
        .unwrap_or_else(|| panic!("no summary:\n{screen}"));
    assert!(
        summary.contains("60,000 of 60,000 rows processed")
            && summary.contains("59,400 loaded")
            && summary.contains("600 failed"),
        "{summary}"
    );
    assert!(
        screen.contains("sluice runs errors") && screen.contains("sluice runs retry"),
        "the summary says what to do next: {screen}"
    );

    // Without a terminal: a forced reload of both files, followed through a pipe.
    let plain = cli
        .run(&["run", &pipeline, "--all-files", "--follow"])
        .await;
    assert_eq!(plain.code, Some(2), "{plain}");
    let all = format!("{}{}", plain.stdout, plain.stderr);
    assert!(!all.contains("\u{1b}["), "no control codes: {plain}");
    assert!(!all.contains('█'), "no bars: {plain}");
    let progress: Vec<&str> = plain
        .stderr
        .lines()
        .filter(|l| l.contains(" rows") && l.contains("partitions "))
        .collect();
    assert!(
        progress
            .last()
            .is_some_and(|l| l.starts_with("completed_with_errors: 60,000 of 60,000 rows")),
        "plain progress lines end with the final counts: {plain}"
    );
    assert!(
        plain.stdout.contains("completed_with_errors in"),
        "the summary goes to standard output: {plain}"
    );
    let runs = cli.ok(&["runs", "ls", &pipeline, "--json"]).await.json();
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(2), "{runs}");

    // `runs files` names both files of the reload.
    let run_id = runs["items"][0]["id"].as_str().expect("id").to_owned();
    let files = cli.ok(&["runs", "files", &run_id, "--json"]).await.json();
    let keys: Vec<&str> = files["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|f| f["key"].as_str())
        .collect();
    assert_eq!(keys, ["a.csv", "b.csv"], "{files}");
}

/// API errors are one line with the API's message and exit status 1 (a 403
/// names the role that may); `--json` prints the API's own JSON.
#[tokio::test(flavor = "multi_thread")]
async fn api_errors_are_one_clear_line_and_exit_1() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let dir = tempfile::tempdir().expect("temp dir");
    write(&dir.path().join("a.csv"), &rows_csv(10, 1000, "n"));
    let (_server, api, pipeline) = local_pipeline(&db, dir.path(), "cli_errors", json!({})).await;
    let cli = Sluice::of(&api);

    let missing = cli
        .run(&["pipelines", "show", "pipe_01ARZ3NDEKTSV4RRFFQ69G5FAV"])
        .await;
    assert_eq!(missing.code, Some(1), "{missing}");
    assert!(missing.stdout.is_empty(), "{missing}");
    assert_eq!(missing.stderr.lines().count(), 1, "{missing}");
    assert!(missing.stderr.starts_with("sluice: "), "{missing}");
    assert!(!missing.stderr.contains("panicked"), "{missing}");

    let by_name = cli.run(&["pipelines", "show", "no such pipeline"]).await;
    assert_eq!(by_name.code, Some(1), "{by_name}");
    assert!(by_name.stderr.contains("no pipeline is named"), "{by_name}");

    let viewer = cli
        .ok(&["apikeys", "create", "--role", "viewer", "--json"])
        .await
        .json();
    let secret = viewer["key"].as_str().expect("secret").to_owned();
    let listed = cli.ok(&["apikeys", "ls"]).await;
    assert!(
        !listed.stdout.contains(&secret) && !listed.stdout.contains(&cli.key),
        "secrets are never listed: {listed}"
    );
    let as_viewer = Sluice {
        url: cli.url.clone(),
        key: secret,
    };
    let refused = as_viewer.run(&["run", &pipeline]).await;
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(
        refused.stderr.contains("admin or editor"),
        "a 403 names the roles that may: {refused}"
    );
    let shown = as_viewer.ok(&["pipelines", "show", &pipeline]).await;
    assert!(shown.stdout.contains("cli_errors"), "{shown}");

    let no_key = Sluice {
        url: cli.url.clone(),
        key: String::new(),
    };
    let out = no_key.run(&["pipelines", "ls"]).await;
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("SLUICE_API_KEY"), "{out}");

    let down = Sluice {
        url: format!("http://127.0.0.1:{}", free_port()),
        key: cli.key.clone(),
    };
    let out = down.run(&["pipelines", "ls"]).await;
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");

    let bad_file = cli
        .run(&["pipelines", "create", "-f", "/nonexistent.json"])
        .await;
    assert_eq!(bad_file.code, Some(1), "{bad_file}");
    assert!(bad_file.stderr.contains("cannot read"), "{bad_file}");

    let ls = cli.ok(&["pipelines", "ls", "--json"]).await.json();
    assert_eq!(ls["items"][0]["id"], pipeline.as_str(), "{ls}");
}

/// The peak resident set (VmHWM, KiB) of a child, read until it exits:
/// the mark only grows, so the last reading covers everything but the exit.
async fn peak_rss_kib(mut child: tokio::process::Child) -> (Option<i32>, u64) {
    let pid = child.id().expect("pid");
    let status_file = format!("/proc/{pid}/status");
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        if let Some(status) = child.try_wait().expect("wait") {
            return (status.code(), peak);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Acceptance 3: `sluice runs errors RUN --csv -o f.csv` writes exactly the
/// errors endpoint's CSV for 100,000 rejected rows, in bounded memory.
#[tokio::test(flavor = "multi_thread")]
async fn errors_export_of_100k_rows_matches_the_endpoint_in_bounded_memory() {
    const ROWS: u64 = 100_000;
    let db = TestDb::migrated(&SluiceMigrations).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in");
    std::fs::create_dir(&input).expect("in");
    // Every row rejected, each with a 300-character value: ~35 MB of CSV.
    let mut csv = String::from("id,note\n");
    for n in 1..=ROWS {
        csv.push_str(&format!("x{n:0>299},n\n"));
    }
    write(&input.join("bad.csv"), &csv);
    drop(csv);
    let (_server, api, pipeline) = local_pipeline(&db, &input, "errors_export", json!({})).await;
    let cli = Sluice::of(&api);
    let run = api.start_run(&pipeline).await;
    let p = api
        .wait_terminal(&pipeline, &run, Duration::from_secs(300))
        .await;
    assert_eq!(p["status"], "completed_with_errors", "{p}");
    assert_eq!(p["failedRows"], ROWS, "{p}");

    let file = dir.path().join("f.csv");
    let export = cli
        .command(&[
            "runs",
            "errors",
            &run,
            "--csv",
            "-o",
            file.to_str().expect("utf-8"),
        ])
        .spawn()
        .expect("sluice runs errors");
    let (code, peak) = peak_rss_kib(export).await;
    assert_eq!(code, Some(0));
    let baseline = cli
        .command(&["runs", "show", &run])
        .spawn()
        .expect("sluice runs show");
    let (code, base_peak) = peak_rss_kib(baseline).await;
    assert_eq!(code, Some(0));

    let written = std::fs::read(&file).expect("f.csv");
    let endpoint = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/pipelines/{pipeline}/runs/{run}/errors",
            api.base
        ))
        .bearer_auth(&api.key)
        .header("accept", "text/csv")
        .send()
        .await
        .expect("errors endpoint");
    assert_eq!(endpoint.status(), 200);
    let expected = endpoint.bytes().await.expect("body");
    assert_eq!(written.len(), expected.len(), "same length");
    assert!(written == expected.as_ref(), "same bytes");
    let lines = written.iter().filter(|b| **b == b'\n').count();
    assert_eq!(lines as u64, ROWS + 1, "a header and one line per row");
    let size_kib = written.len() as u64 / 1024;
    eprintln!(
        "errors export: {} bytes; peak RSS of `sluice runs errors --csv -o` {peak} KiB, of `sluice runs show` {base_peak} KiB",
        written.len()
    );
    assert!(
        peak < base_peak + size_kib / 4,
        "the export is streamed: peak {peak} KiB against {base_peak} KiB for `runs show`, file {size_kib} KiB"
    );
}
