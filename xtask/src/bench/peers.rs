//! `cargo xtask bench --peers`: the same generated file loaded into the same
//! PostgreSQL by pgloader (Debian's package) and by dlt (PyPI, in a
//! virtualenv under `target/xtask/`), append and upsert, each timed as the
//! wall time of its process, so Sluice's rows/s can be put beside theirs as
//! ratios from one run. Both get their best reasonable settings for this
//! load (named in docs/benchmarks.md); neither validates e-mail addresses,
//! so what each rejects is counted, not assumed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::baseline;
use super::data::{self, DataSet};
use super::procfs::{self, Cpu, CpuMeter};
use crate::infra::pg::Postgres;
use crate::infra::{Res, python_venv, run_quiet};

/// The dlt release line the script is written for.
const DLT_SPEC: &str = "dlt[postgres]>=1.5,<2";

/// The schema (PostgreSQL schema) dlt loads into: its "dataset".
const DLT_DATASET: &str = "bench";

/// A peer tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// pgloader: `LOAD CSV` in a command file.
    Pgloader,
    /// dlt: a pipeline over the CSV rows, loaded with COPY.
    Dlt,
}

/// What a peer is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerLoad {
    /// Every row into a table without key.
    Append,
    /// Merge on `id` into a table prefilled with half of the ids.
    Upsert,
}

impl Peer {
    /// Both, in the order they run.
    pub const ALL: [Self; 2] = [Self::Pgloader, Self::Dlt];

    /// Its name in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pgloader => "pgloader",
            Self::Dlt => "dlt",
        }
    }
}

impl PeerLoad {
    /// Both, in the order they run.
    pub const ALL: [Self; 2] = [Self::Append, Self::Upsert];

    /// Its name in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Append => "append",
            Self::Upsert => "upsert",
        }
    }
}

/// One timed peer load.
#[derive(Debug, Clone)]
pub struct PeerSample {
    /// Wall time of the peer's process.
    pub seconds: f64,
    /// Source rows (the whole file, invalid rows included).
    pub rows: u64,
    /// Rows in the destination afterwards.
    pub table_rows: u64,
    /// Invalid rows of the file the peer kept out of the table.
    pub rejected: u64,
    /// Whether every prefilled row was updated (upsert only).
    pub prefill_updated: Option<bool>,
    /// Largest resident memory of the peer's process tree (MiB).
    pub peak_rss_mib: Option<f64>,
    /// CPU seconds of the peer (client), PostgreSQL and the rest.
    pub cpu: Cpu,
}

/// The installed tools and where their files go.
pub struct Peers {
    pgloader: PathBuf,
    python: PathBuf,
    dir: PathBuf,
    /// `pgloader --version` and dlt's version, for the report.
    pub versions: Vec<(String, String)>,
}

/// `pgloader` on the PATH, installing Debian's package when missing.
fn pgloader() -> Res<PathBuf> {
    let found = || {
        Command::new("sh")
            .args(["-c", "command -v pgloader"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
    };
    if let Some(p) = found() {
        return Ok(p);
    }
    eprintln!("bench: installing pgloader (apt-get install -y pgloader) ...");
    let sudo = |args: &[&str]| {
        let mut c = if is_root() {
            Command::new(args[0])
        } else {
            let mut c = Command::new("sudo");
            c.arg(args[0]);
            c
        };
        c.args(&args[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    // The package lists may be missing on a fresh machine.
    let _ = run_quiet(&mut sudo(&["apt-get", "update", "-qq"]), "apt-get update");
    run_quiet(
        &mut sudo(&["apt-get", "install", "-y", "-qq", "pgloader"]),
        "apt-get install pgloader",
    )?;
    found().ok_or_else(|| "pgloader is still not on the PATH after installing it".into())
}

fn is_root() -> bool {
    procfs::status_field(std::process::id(), "Uid")
        .is_some_and(|uid| uid.split_whitespace().next() == Some("0"))
}

/// The dlt virtualenv's python, creating it on first use.
fn dlt_python() -> Res<PathBuf> {
    Ok(python_venv("dlt-venv", DLT_SPEC)?.join("python"))
}

fn version(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or("").trim().to_owned()
        })
        .unwrap_or_default()
}

impl Peers {
    /// Installs what is missing; `dir` receives command files, scripts and logs.
    pub fn install(dir: &Path) -> Res<Self> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let pgloader = pgloader()?;
        let python = dlt_python()?;
        std::fs::write(dir.join("dlt_load.py"), DLT_SCRIPT).map_err(|e| e.to_string())?;
        let versions = vec![
            (
                "pgloader".to_owned(),
                version(Command::new(&pgloader).arg("--version")),
            ),
            (
                "dlt".to_owned(),
                version(Command::new(&python).args([
                    "-c",
                    "import dlt, psycopg2; print('dlt', dlt.__version__, '/ psycopg2', psycopg2.__version__.split()[0])",
                ])),
            ),
        ];
        Ok(Self {
            pgloader,
            python,
            dir: dir.to_owned(),
            versions,
        })
    }

    /// One timed load of `d`'s full file by `peer` into a fresh database.
    pub fn run(
        &self,
        pg: &Postgres,
        meter: &CpuMeter,
        db: &str,
        peer: Peer,
        load: PeerLoad,
        d: &DataSet,
    ) -> Res<PeerSample> {
        baseline::fresh_database(pg, db)?;
        // pgloader's connection strings are `postgresql://`; dlt takes both.
        let url = pg.url(db).replacen("postgres://", "postgresql://", 1);
        let table = match peer {
            Peer::Pgloader => "customers".to_owned(),
            Peer::Dlt => format!("{DLT_DATASET}.customers"),
        };
        let prefill = d
            .prefill
            .as_deref()
            .ok_or("the peers' upsert needs the prefill file")?;
        let log = self
            .dir
            .join(format!("{db}-{}-{}.log", peer.name(), load.name()));
        // Untimed set-up: the table (and for upsert its prefill), made the
        // way each tool would have made it.
        let mut cmd = match peer {
            Peer::Pgloader => {
                match load {
                    PeerLoad::Append => {
                        baseline::sql(pg, db, &baseline::create_table(false, "bigint"))?;
                    }
                    PeerLoad::Upsert => baseline::prefill(pg, db, "bigint", prefill)?,
                }
                let file = self.dir.join(format!("{db}-{}.load", load.name()));
                std::fs::write(&file, pgloader_command(&d.full, &url, load))
                    .map_err(|e| e.to_string())?;
                let mut c = Command::new(&self.pgloader);
                c.arg("--root-dir")
                    .arg(self.dir.join("pgloader-root"))
                    .arg("--logfile")
                    .arg(&log)
                    .arg(&file);
                c
            }
            Peer::Dlt => {
                let pipelines = self.dir.join(format!("dlt-pipelines-{db}"));
                let _ = std::fs::remove_dir_all(&pipelines);
                if load == PeerLoad::Upsert {
                    let out = self.dlt(&url, prefill, "upsert", &pipelines).output();
                    let out = out.map_err(|e| format!("cannot run dlt: {e}"))?;
                    if !out.status.success() {
                        return Err(format!(
                            "dlt prefill failed: {}",
                            String::from_utf8_lossy(&out.stderr).trim()
                        ));
                    }
                    baseline::sql(pg, db, &format!("VACUUM ANALYZE {table}"))?;
                }
                self.dlt(&url, &d.full, load.name(), &pipelines)
            }
        };
        baseline::checkpoint(pg, db)?;
        let output = std::fs::File::create(self.dir.join(format!(
            "{db}-{}-{}.out",
            peer.name(),
            load.name()
        )))
        .map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null())
            .stdout(output.try_clone().map_err(|e| e.to_string())?)
            .stderr(output);
        let meter = CpuMeter {
            client: None,
            ..*meter
        };
        let before = meter.snapshot();
        let start = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", peer.name()))?;
        let mut peak_kib = 0;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            peak_kib = peak_kib.max(tree_rss_kib(child.id()));
            if start.elapsed() > Duration::from_secs(3_600) {
                let _ = child.kill();
                return Err(format!("{} {} ran for an hour", peer.name(), load.name()));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let seconds = start.elapsed().as_secs_f64();
        // Let PostgreSQL's backend exit and be reaped (as for the baselines).
        std::thread::sleep(Duration::from_millis(200));
        let cpu = meter.between(&before, &meter.snapshot());
        if !status.success() {
            return Err(format!(
                "{} {} failed ({status}); see {}",
                peer.name(),
                load.name(),
                self.dir.display()
            ));
        }
        let table_rows = baseline::count(pg, db, &format!("SELECT count(*) FROM {table}"))?;
        let bad_emails = data::BAD_EMAILS
            .iter()
            .map(|e| format!("'{}'", e.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ");
        let invalid_in = baseline::count(
            pg,
            db,
            &format!("SELECT count(*) FROM {table} WHERE email IN ({bad_emails})"),
        )?;
        // An append keeps every row it accepts, so what is missing was
        // rejected; a merge may overwrite, so count the invalid rows that got in.
        let rejected = match load {
            PeerLoad::Append => d.rows.saturating_sub(table_rows),
            PeerLoad::Upsert => d.invalid.saturating_sub(invalid_in),
        };
        let prefill_updated = if load == PeerLoad::Upsert {
            let stale = baseline::count(
                pg,
                db,
                &format!(
                    "SELECT count(*) FROM {table} WHERE score = {}",
                    data::PREFILL_SCORE
                ),
            )?;
            Some(stale == 0)
        } else {
            None
        };
        baseline::drop_database(pg, db)?;
        Ok(PeerSample {
            seconds,
            rows: d.rows,
            table_rows,
            rejected,
            prefill_updated,
            peak_rss_mib: (peak_kib > 0).then(|| peak_kib as f64 / 1024.0),
            cpu,
        })
    }

    fn dlt(&self, url: &str, file: &Path, mode: &str, pipelines: &Path) -> Command {
        // dlt insists on a password; the cluster trusts loopback and ignores it.
        let url = url.replacen("://postgres@", "://postgres:unused@", 1);
        let mut c = Command::new(&self.python);
        c.arg(self.dir.join("dlt_load.py"))
            .arg(file)
            .arg(url)
            .arg(mode)
            .arg(DLT_DATASET)
            .arg(pipelines)
            // Never phone home from a benchmark.
            .env("RUNTIME__DLTHUB_TELEMETRY", "false")
            .env("RUNTIME__LOG_LEVEL", "WARNING");
        c
    }
}

/// Resident memory of `pid` and its descendants, in KiB (the largest of
/// that sum and `pid`'s own high-water mark).
fn tree_rss_kib(pid: u32) -> u64 {
    let mut total = 0;
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        total += procfs::status_kib(p, "VmRSS").unwrap_or(0);
        stack.extend(procfs::children_of(p));
    }
    total.max(procfs::status_kib(pid, "VmHWM").unwrap_or(0))
}

/// The pgloader command file. pgloader COPYs batches on `workers` threads
/// and, when PostgreSQL refuses a batch, retries it in smaller pieces until
/// it has isolated the bad rows (its reject files). Upsert: pgloader has no
/// merge of its own, so the documented way is a staging table loaded by
/// pgloader and an `INSERT … ON CONFLICT` in `AFTER LOAD DO` (the last
/// occurrence of an id in load order wins).
fn pgloader_command(file: &Path, url: &str, load: PeerLoad) -> String {
    let columns = "id, email, name, age, signup_date, score";
    let (target, before, after) = match load {
        PeerLoad::Append => ("customers", String::new(), String::new()),
        PeerLoad::Upsert => (
            "staging",
            "  BEFORE LOAD DO $$ CREATE UNLOGGED TABLE staging (LIKE customers, seq bigserial) $$\n"
                .to_owned(),
            format!(
                "  AFTER LOAD DO $$ INSERT INTO customers ({columns}) \
                 SELECT DISTINCT ON (id) {columns} FROM staging ORDER BY id, seq DESC \
                 ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name, \
                 age = EXCLUDED.age, signup_date = EXCLUDED.signup_date, score = EXCLUDED.score $$\n"
            ),
        ),
    };
    let path = file.display().to_string().replace('\'', "''");
    format!(
        "LOAD CSV\n\
         \x20 FROM '{path}' ({columns})\n\
         \x20 INTO {url}?{target} ({columns})\n\
         \x20 WITH skip header = 1,\n\
         \x20      fields optionally enclosed by '\"',\n\
         \x20      fields escaped by double-quote,\n\
         \x20      fields terminated by ',',\n\
         \x20      batch rows = 50000,\n\
         \x20      batch size = 32 MB,\n\
         \x20      prefetch rows = 100000,\n\
         \x20      workers = 2, concurrency = 1\n\
         \x20 SET work_mem to '64MB', maintenance_work_mem to '256MB'\n\
         {before}{after};\n"
    )
}

/// The dlt pipeline: the CSV rows as dicts in pages (what dlt's own CSV
/// readers hand on), typed by column hints, with the data-type contract
/// `discard_row` so a value that does not coerce to its column's type drops
/// its row instead of creating a variant column; normalised by 2 processes
/// (the machine's cores) and loaded with PostgreSQL COPY (`csv` files),
/// upsert as dlt's `merge` (`delete-insert`, which keeps one row per key of
/// a load) on primary key `id`.
const DLT_SCRIPT: &str = r#""""Loads the benchmark's CSV file with dlt (written by `cargo xtask bench --peers`).

usage: dlt_load.py FILE POSTGRES_URL append|upsert DATASET PIPELINES_DIR
"""

import csv
import os
import sys

os.environ.setdefault("NORMALIZE__WORKERS", "2")
os.environ.setdefault("DATA_WRITER__FILE_MAX_ITEMS", "200000")
os.environ.setdefault("DATA_WRITER__BUFFER_MAX_ITEMS", "10000")

import dlt  # noqa: E402

path, url, mode, dataset, pipelines_dir = sys.argv[1:6]

COLUMNS = {
    "id": {"data_type": "bigint", "nullable": False},
    "email": {"data_type": "text"},
    "name": {"data_type": "text"},
    "age": {"data_type": "bigint"},
    "signup_date": {"data_type": "date"},
    "score": {"data_type": "decimal"},
}
PAGE = 10_000


def pages():
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        page = []
        for row in reader:
            for k, v in row.items():
                if v == "":
                    row[k] = None
            page.append(row)
            if len(page) == PAGE:
                yield page
                page = []
        if page:
            yield page


if mode == "append":
    hints = {"write_disposition": "append"}
else:
    hints = {
        # dlt's default merge strategy: its `upsert` strategy fails when a
        # key repeats within one load (as 0.1% of the file's ids do).
        "write_disposition": {"disposition": "merge", "strategy": "delete-insert"},
        "primary_key": "id",
    }

customers = dlt.resource(
    pages,
    name="customers",
    columns=COLUMNS,
    schema_contract={"data_type": "discard_row"},
    **hints,
)

pipeline = dlt.pipeline(
    pipeline_name="bench_" + mode,
    pipelines_dir=pipelines_dir,
    destination=dlt.destinations.postgres(credentials=url),
    dataset_name=dataset,
)
info = pipeline.run(customers, loader_file_format="csv")
info.raise_on_failed_jobs()
"#;
